"""MkDocs hook: fill the command reference (``reference/cli.md``) from the CLI itself.

The page holds the marker ``<!-- cli-reference -->`` (optionally followed by placeholder text for
readers of the source, up to ``<!-- /cli-reference -->``); at build time it is replaced by the help
of ``gitool`` and of every command, rendered from the Typer app (``gitool.cli.app``): each
command's docstring and a markdown table of its arguments and options (flags, type, default,
help). The parameters are rendered here, not through ``--help``, so the page does not depend
on the terminal width or on Rich's box drawing, and it cannot drift from the CLI.
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path
from typing import Any

MARKER = "<!-- cli-reference -->"
END_MARKER = "<!-- /cli-reference -->"
PAGE = "reference/cli.md"


def _escape(text: str, table: bool = False) -> str:
    """Markdown-escape ``text`` outside its `code spans` (help texts use backticks for code);
    in a table cell, also keep pipes and newlines from breaking the row."""
    text = text.replace("\\[", "[")  # Rich markup's escaped bracket, as the terminal shows it
    parts = re.split(r"(`[^`]*`)", text)
    out = []
    for i, part in enumerate(parts):
        if i % 2 == 0:
            part = part.replace("\\", "\\\\").replace("*", "\\*").replace("_", "\\_")
            part = part.replace("<", "&lt;").replace(">", "&gt;")
            if table:
                part = part.replace("|", "\\|")
        elif table:
            part = part.replace("|", "\\|")
        out.append(part)
    text = "".join(out)
    return " ".join(text.split()) if table else text


def _context(command: Any, name: str, parent: Any = None) -> Any:
    """A context for rendering (no arguments parsed, so required options do not fail)."""
    return command.context_class(command, info_name=name, parent=parent)


def _type(param: Any, ctx: Any) -> str:
    try:  # typer with its own click: display_type(ctx) gives e.g. "<int>"
        label = param.display_type(ctx)
    except (AttributeError, TypeError):
        click_type = getattr(param, "type", None)
        label = getattr(click_type, "name", "") or ""
        if getattr(param, "is_flag", False):
            label = "bool"
    label = str(label).strip("<>").upper() if label else ""
    return label.replace("LIST[", "list[").replace("BOOL", "flag")


def _is_flag(param: Any) -> bool:
    return bool(getattr(param, "is_flag", False)) or _type_name(param) == "bool"


def _type_name(param: Any) -> str:
    descriptor = getattr(param, "type_descriptor", None)
    annotation = getattr(descriptor, "annotation", None)
    return getattr(annotation, "__name__", "") if annotation is not None else ""


def _default(param: Any) -> str:
    if getattr(param, "required", False):
        return "required"
    default = getattr(param, "default", None)
    if callable(default):
        return ""
    if _is_flag(param):
        if default is None:
            return ""
        return f"`{param.opts[0]}`" if default else "off"
    if default is None or default == () or default == []:
        return ""
    if isinstance(default, (list, tuple)):
        default = ",".join(map(str, default))
    if isinstance(default, Path):
        default = str(default)
    return f"`{default}`"


def _flags(param: Any) -> str:
    if getattr(param, "param_type_name", "") == "argument":
        return f"`{param.name.upper()}`"
    flags = sorted(param.opts, key=lambda o: (o.startswith("--"), o))  # short flag first
    text = ", ".join(f"`{f}`" for f in flags)
    if param.secondary_opts:
        text += " / " + ", ".join(f"`{f}`" for f in param.secondary_opts)
    return text


def _params_table(command: Any, ctx: Any) -> list[str]:
    params = [p for p in command.params if not getattr(p, "hidden", False)]
    if not params:
        return ["No options besides `-h`, `--help`.", ""]
    lines = ["| argument / option | type | default | description |", "|---|---|---|---|"]
    for param in params:
        repeat = " (repeatable)" if getattr(param, "multiple", False) else ""
        help_text = _escape(getattr(param, "help", None) or "", table=True)
        lines.append(
            f"| {_flags(param)} | {_escape(_type(param, ctx), table=True)}{repeat} "
            f"| {_default(param)} | {help_text} |"
        )
    return [*lines, ""]


def _usage(command: Any, name: str) -> str:
    pieces = ["gitool", name]
    if any(getattr(p, "param_type_name", "") == "option" for p in command.params):
        pieces.append("[OPTIONS]")
    for param in command.params:
        if getattr(param, "param_type_name", "") == "argument":
            metavar = param.name.upper()
            pieces.append(metavar if param.required else f"[{metavar}]")
    return " ".join(pieces)


def _docstring(command: Any) -> list[str]:
    text = inspect.cleandoc(command.help or "")
    paragraphs = [" ".join(p.split()) for p in re.split(r"\n\s*\n", text) if p.strip()]
    paragraphs = [p for p in paragraphs if p != "\b"]
    return [line for p in paragraphs for line in (_escape(p), "")]


def render() -> str:
    """The reference as markdown: ``gitool`` itself, then one section per command."""
    import typer

    from gitool.cli import app

    group = typer.main.get_command(app)
    root = _context(group, "gitool")
    names = group.list_commands(root)
    lines = ["## gitool", "", "```", "gitool [GLOBAL OPTIONS] COMMAND [ARGS]...", "```", ""]
    lines += _docstring(group)
    lines += [
        "Global options (the `--debug` and `--quiet` flags are also accepted after the "
        "command; `-h`, `--help` works everywhere):",
        "",
        *_params_table(group, root),
        "| command | summary |",
        "|---|---|",
    ]
    for name in names:
        command = group.get_command(root, name)
        summary = _escape(command.get_short_help_str(limit=200), table=True)
        lines.append(f"| [`{name}`](#gitool-{name}) | {summary} |")
    lines.append("")
    for name in names:
        command = group.get_command(root, name)
        if getattr(command, "hidden", False):
            continue
        ctx = _context(command, name, parent=root)
        lines += [f"## gitool {name}", "", "```", _usage(command, name), "```", ""]
        lines += _docstring(command)
        lines += _params_table(command, ctx)
    return "\n".join(lines)


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    if page.file.src_uri != PAGE:
        return markdown
    if MARKER not in markdown:
        raise ValueError(f"{PAGE}: the marker {MARKER} is missing")
    start = markdown.index(MARKER)
    end = markdown.find(END_MARKER, start)
    end = start + len(MARKER) if end < 0 else end + len(END_MARKER)
    return markdown[:start] + render() + markdown[end:]
