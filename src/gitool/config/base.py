"""What every command's options dataclass shares: numeric ranges checked on construction,
and option values read from a YAML file.

A field with a range is declared with :func:`option`; :class:`Options` checks every such
field when the dataclass is made (so before any work starts) and raises
:class:`~gitool.errors.InputError` naming the field. ``None`` is always allowed where the
field's type allows it: it means "choose for me".
"""

from __future__ import annotations

import math
import types
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

import yaml

from gitool.errors import InputError

C = TypeVar("C")


@dataclass(frozen=True)
class Range:
    """A closed or open interval of allowed numbers; NaN and infinities never fall in it."""

    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None

    def __contains__(self, value: float) -> bool:
        if not math.isfinite(value):
            return False
        return (
            (self.ge is None or value >= self.ge)
            and (self.gt is None or value > self.gt)
            and (self.le is None or value <= self.le)
            and (self.lt is None or value < self.lt)
        )

    def __str__(self) -> str:
        if self.ge is not None and self.le is not None:
            return f"{self.ge:g} to {self.le:g}"
        bounds = ((">=", self.ge), (">", self.gt), ("<=", self.le), ("<", self.lt))
        return " and ".join(f"{op} {v:g}" for op, v in bounds if v is not None) or "any number"


def option(
    default: Any = MISSING,
    *,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    lt: float | None = None,
) -> Any:
    """A dataclass field whose value must lie in the given range (see :class:`Range`)."""
    return field(default=default, metadata={"range": Range(ge=ge, gt=gt, le=le, lt=lt)})


def check_ranges(options: Any) -> None:
    """Raise :class:`InputError` (with the field) for the first value outside its range or
    of the wrong kind (an integer field given 2.5, a number field given text). A list or
    tuple field (a repeatable option) has each of its values checked."""
    for f in fields(options):
        allowed = f.metadata.get("range")
        value = getattr(options, f.name)
        if allowed is None or value is None:
            continue
        annotation = str(f.type).replace(" ", "")
        integer = annotation.startswith(("int", "tuple[int", "list[int"))
        kind = "an integer" if integer else "a number"
        repeatable = annotation.startswith(("tuple[", "list["))
        for item in value if repeatable and isinstance(value, (list, tuple)) else (value,):
            if isinstance(item, bool) or not isinstance(item, int if integer else (int, float)):
                raise InputError(f"must be {kind} ({allowed}), got {item!r}", field=f.name)
            if item not in allowed:
                raise InputError(f"must be {allowed}, got {item!r}", field=f.name)


def check_text(options: Any) -> None:
    """Raise :class:`InputError` (with the field) for an empty text value (``--tracks ""``,
    a path ``""``), or an empty item of a repeatable one: left unchecked it would quietly
    mean the default (all tracks) or the current folder."""
    for f in fields(options):
        value = getattr(options, f.name)
        items = value if isinstance(value, (list, tuple)) else (value,)
        empty = [isinstance(item, str) and not item.strip() for item in items]
        if items and all(empty):
            required = f.default is MISSING and f.default_factory is MISSING
            hint = "" if required else ", or leave the option out for its default"
            raise InputError(f"is empty; give a value{hint}", field=f.name)
        if any(empty):
            raise InputError("has an empty value (a stray comma?); remove it", field=f.name)


@dataclass
class Options:
    """Base of the per-command options dataclasses: ranges and empty text are checked on
    construction."""

    def __post_init__(self) -> None:
        check_ranges(self)
        check_text(self)

    @classmethod
    def range_of(cls, name: str) -> Range | None:
        """The allowed range of field ``name`` (None when it has none)."""
        for f in fields(cls):  # type: ignore[arg-type]
            if f.name == name:
                return f.metadata.get("range")
        raise KeyError(name)


class _UniqueKeyLoader(yaml.SafeLoader):
    """A safe YAML loader that refuses a key given twice in one mapping (PyYAML keeps the
    last silently, so a config with two ``lr:`` lines would train with one of them)."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"{key!r} is given twice", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load_yaml_config(path: str | Path, cls: type[C]) -> dict[str, Any]:
    """Options from a YAML mapping; unknown keys are an error naming the valid ones."""
    path = Path(path)
    try:
        data = yaml.load(path.read_text(encoding="utf-8-sig"), _UniqueKeyLoader) or {}
    except FileNotFoundError:
        raise InputError(f"{path}: no such file", field="config") from None
    except IsADirectoryError:
        raise InputError(f"{path} is a folder; give a YAML file", field="config") from None
    except UnicodeDecodeError:
        raise InputError(f"{path}: not a text file; give a YAML file", field="config") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        where = f" line {mark.line + 1} column {mark.column + 1}" if mark is not None else ""
        tab = "\\t" in str(problem) or "\t" in str(problem)  # PyYAML writes a tab as \t
        hint = "; indent with spaces, not tabs" if tab else ""
        raise InputError(
            f"{path}{where}: not valid YAML ({problem}){hint}", field="config"
        ) from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a mapping of option: value", field="config")
    names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - names)
    if unknown:
        raise InputError(
            f"{path}: unknown option {unknown[0]!r}; valid options: {', '.join(sorted(names))}",
            field="config",
        )
    hints = get_type_hints(cls)
    return {key: _typed(path, key, value, hints[key]) for key, value in data.items()}


_WHAT = {bool: "true or false", int: "a whole number", float: "a number", str: "text"}


def _typed(path: Path, key: str, value: Any, hint: Any) -> Any:
    """``value`` as the field's type ``hint`` wants it (a number where text is wanted
    becomes text, as on the command line), or :class:`InputError` naming the file and key:
    YAML reads ``"false"`` as text, which would otherwise count as true."""
    converted = _convert(value, hint)
    if converted is _WRONG:
        raise InputError(f"{path}: {key} must be {_describe(hint)}, got {value!r}", field="config")
    return converted


_WRONG = object()


def _convert(value: Any, hint: Any) -> Any:
    origin, args = get_origin(hint), get_args(hint)
    if hint is Any:
        return value
    if origin in (Union, types.UnionType):
        for arg in args:
            if (converted := _convert(value, arg)) is not _WRONG:
                return converted
        return _WRONG
    if hint is type(None):
        return None if value is None else _WRONG
    if origin is Literal:
        return value if value in args else _WRONG
    if hint is bool:
        return value if isinstance(value, bool) else _WRONG
    if hint is int:
        return value if isinstance(value, int) and not isinstance(value, bool) else _WRONG
    if hint is float:
        if isinstance(value, str):  # YAML 1.1 reads 1e-3 (no dot) as text
            try:
                return float(value)
            except ValueError:
                return _WRONG
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        return float(value) if ok else _WRONG
    if hint is str:
        if isinstance(value, str):
            return value
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        return str(value) if ok else _WRONG
    if origin in (list, tuple) or hint in (list, tuple):
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            value = [value]  # one item, as one flag gives on the command line
        if not isinstance(value, list):
            return _WRONG
        items = [_convert(v, args[0]) for v in value] if args else value
        return _WRONG if any(v is _WRONG for v in items) else list(items)
    return value  # a mapping or another type: checked where it is used


def _describe(hint: Any) -> str:
    origin, args = get_origin(hint), get_args(hint)
    if origin in (Union, types.UnionType):
        return " or ".join(_describe(a) for a in args if a is not type(None)) + " (or null)"
    if origin is Literal:
        return "one of " + ", ".join(map(str, args))
    if origin in (list, tuple):
        return f"a list of {_describe(args[0])}" if args else "a list"
    return _WHAT.get(hint, getattr(hint, "__name__", str(hint)))
