"""``gitool train``'s entry: resolve options (and, for the command line, the defaults that
depend on the current folder), check inputs once, then train here or relaunch through
torchrun."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import torch
import yaml

from gitool.config import TrainConfig, load_yaml_config
from gitool.console import info
from gitool.errors import InputError, RunFailure, opt
from gitool.runs import checkpoint_metadata, fresh_run_folder, newest_run
from gitool.train import distributed
from gitool.train.checks import check_inputs, resumed_checkpoint
from gitool.train.loop import TrainSummary, train

DEFAULT_STORE = "data"
"""``--data`` when neither the flags nor ``--config`` give one (and this folder exists)."""

RUNS = "runs"
"""Where default run folders go: ``runs/run``, then ``runs/run-2``, ... (never an old one)."""


LAUNCH_FIELDS = ("out", "resume", "gpus", "procs", "nodes", "node_rank", "rdzv_endpoint")
"""Fields a resumed run does not take from its checkpoint: they belong to this launch."""


def _file_values(config_file: str | None) -> dict[str, Any]:
    """The options of the YAML file ``config_file`` (none without one), typed as the
    options are (:func:`~gitool.config.base.load_yaml_config`: one store as a string, numbers
    such as ``1e-3`` that YAML 1.1 reads as text), heads also as ``a,b`` like ``--heads``."""
    values = load_yaml_config(config_file, TrainConfig) if config_file else {}
    if values.get("heads"):
        values["heads"] = [name for item in values["heads"] for name in item.split(",")]
    return values


def _values(config_file: str | None, flags: dict[str, Any]) -> dict[str, Any]:
    """YAML values (if any), overridden by the flags that were given (not None)."""
    values = _file_values(config_file)
    values.update({k: v for k, v in flags.items() if v is not None})
    return values


@contextlib.contextmanager
def _against_file(config_file: str | None, from_file: Iterable[str]) -> Iterator[None]:
    """An :class:`InputError` about a value that came from the YAML file (a key in
    ``from_file``, not overridden by a flag) is reported against ``config`` with the file's
    name and the key, wherever it is found (ranges, choices, heads against stores...)."""
    keys = set(from_file)
    try:
        yield
    except InputError as err:
        if not config_file or not keys & set(err.fields):
            raise
        if err.field in keys:  # about a value of the file: the file's keys by name
            message = err.render(lambda name: name if name in keys else opt(name))
            raise InputError(f"{config_file}: {message}", field="config") from None
        # about a flag (or nothing) but naming values of the file: say where those are
        raise InputError(
            err.render(lambda name: f"{name} (in {config_file})" if name in keys else opt(name))
        ) from None


def _make_config(
    config_file: str | None, values: dict[str, Any], from_file: Iterable[str] = ()
) -> TrainConfig:
    """``TrainConfig(**values)``, its ranges checked (:func:`_against_file`)."""
    try:
        with _against_file(config_file, from_file):
            return TrainConfig(**values)
    except TypeError as err:
        raise InputError(f"{config_file}: {err}", field="config") from None


def resolve_config(config_file: str | None, flags: dict[str, Any]) -> TrainConfig:
    """YAML values (if any), overridden by the flags that were given (not None)."""
    return _make_config(config_file, _values(config_file, flags))


def saved_options(last: Path) -> dict[str, Any]:
    """The training options recorded in the checkpoint ``last`` (its weights stay on disk),
    with the stores as the run opened them: ``data`` as absolute paths (as typed, a resume
    from another folder would read them relative to that one) and, unless ``--heads`` gave
    them, the head names (from the store folders' names: a store moved to a folder of
    another name keeps its head) under ``opened_heads``."""
    state = checkpoint_metadata(last)
    saved = state.get("train_config")
    saved = dict(saved) if isinstance(saved, dict) else {}
    entries = [entry for entry in state.get("data") or [] if isinstance(entry, dict)]
    opened = [entry.get("path") for entry in entries]
    if saved.get("data") and opened and all(opened) and len(opened) == len(saved["data"]):
        saved["data"] = opened
    named = [entry.get("head") for entry in entries]
    if not saved.get("heads") and named and all(named):
        saved["opened_heads"] = named
    return saved


def with_run_options(values: dict[str, Any]) -> dict[str, Any]:
    """On ``resume``: the options the run was trained with (from ``checkpoints/last.pt``)
    for every field not given, except :data:`LAUNCH_FIELDS`; the run's head names too,
    unless ``data`` is given (other stores name their own heads).

    Raises:
        InputError: ``resume`` and the run folder has no ``checkpoints/last.pt``.
    """
    if not values.get("resume"):
        return values
    last = resumed_checkpoint(values.get("out") or TrainConfig.out)
    names = {f.name for f in dataclasses.fields(TrainConfig)} - set(LAUNCH_FIELDS)
    recorded = saved_options(last)
    saved = {k: v for k, v in recorded.items() if k in names}
    if recorded.get("opened_heads") and values.get("data") is None:
        saved["heads"] = recorded["opened_heads"]
    return {**saved, **values}


def _default_out(values: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """``out`` when not given: a fresh run folder, or with ``resume`` the newest run."""
    if values.get("out") is not None:
        return values, []
    if values.get("resume"):
        run = newest_run(RUNS)
        if run is None:
            raise InputError(
                f"{opt('resume')}: no {opt('out')} given and no run under {RUNS}/ to continue; "
                f"give {opt('out')} RUN"
            )
        note = f"resuming {run} (newest under {RUNS}/; give {opt('out')} RUN to choose)"
        return {**values, "out": str(run)}, [note]
    out = fresh_run_folder(RUNS)
    taken = "" if out == Path(RUNS, "run") else f"; {RUNS}/run is taken"
    return {**values, "out": str(out)}, [f"using run folder {out} (default {opt('out')}{taken})"]


def choose_defaults(values: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """``gitool train``'s defaults for what neither a flag nor ``--config`` gave: ``--out`` a
    fresh run folder (:func:`gitool.runs.fresh_run_folder`; with ``--resume`` the newest run
    under ``runs/``, whose own options then fill the rest: :func:`with_run_options`),
    ``--data`` the store ``data/`` in this folder, ``--model`` and ``--gpus``.

    Returns:
        The completed values and one status line per default chosen.

    Raises:
        InputError: no ``data`` and no ``data/`` here; ``resume`` with no run to continue.
    """
    values, notes = _default_out(values)
    values = with_run_options(values)
    if not values.get("data"):
        if not Path(DEFAULT_STORE).is_dir():
            raise InputError(
                f"{opt('data')}: no store given and no {DEFAULT_STORE}/ here; build one with "
                f"`gitool build-dataset GENOME TRACKS` or give {opt('data')} STORE"
            )
        values["data"] = [DEFAULT_STORE]
        notes.insert(0, f"using store {DEFAULT_STORE}/ (default {opt('data')})")
    if values.get("model") is None:
        notes.append(
            f"using model {TrainConfig.model} (default {opt('model')}; see `gitool models`)"
        )
    if values.get("gpus") is None:
        visible = torch.cuda.device_count()
        notes.append(
            f"training on all {visible} visible GPU(s) (default {opt('gpus')}; {opt('gpus')} 0 for "
            "the CPU)"
            if visible
            else f"training on the CPU: no GPU is visible (default {opt('gpus')})"
        )
    return values, notes


def prepare(
    config_file: str | None, flags: dict[str, Any], defaults: bool = False
) -> tuple[TrainConfig, list[str]]:
    """The checked options of a run and the status lines of the defaults chosen.

    The ranges come first, before any store, run or checkpoint is read; then the defaults
    (``defaults=True``: :func:`choose_defaults`), the resumed run's own options, and
    :func:`~gitool.train.loop.check_inputs`, which also claims the run folder. Nothing is
    written.
    """
    from_file = _file_values(config_file)
    given = {k: v for k, v in flags.items() if v is not None}
    values = {**from_file, **given}
    unflagged = set(from_file) - set(given)
    _make_config(config_file, values, unflagged)
    with _against_file(config_file, unflagged):
        if defaults:
            values, notes = choose_defaults(values)
        else:
            values, notes = with_run_options(values), []
    cfg = _make_config(config_file, values, unflagged)
    with _against_file(config_file, unflagged):
        check_inputs(cfg)
    return cfg, notes


def run_training(
    config_file: str | None, flags: dict[str, Any], *, defaults: bool = False
) -> TrainSummary | None:
    """Train in this process, or launch N processes through torchrun and wait for them.

    ``defaults=True`` (``gitool train``) fills what neither ``flags`` nor the config gave
    with :func:`choose_defaults` and prints a line per default once the inputs are checked;
    library callers give ``data`` themselves.

    Returns the summary in a single process (rank 0 of torchrun children returns theirs;
    the launcher returns None).
    """
    if distributed.inside_torchrun():
        return train(resolve_config(config_file, flags))  # the launcher checked the inputs
    cfg, notes = prepare(config_file, flags, defaults)
    for note in notes:  # once the inputs passed, so that an error stays one line
        info(note)
    if not distributed.needs_launch(cfg):
        return train(cfg)
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as handle:
        yaml.safe_dump(dataclasses.asdict(cfg), handle, sort_keys=False)
        path = handle.name
    try:
        code = distributed.relaunch(cfg, path)
    finally:
        os.unlink(path)
    if code != 0:
        raise RunFailure(
            f"a training process failed (exit code {code}); see its messages above. "
            f"Resume from {Path(cfg.out) / 'checkpoints' / 'last.pt'} with --resume once fixed"
        )
    return None
