"""The typer app, the global flags and the console-script entry point (:func:`main`)."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
import typer.core

from gitool import __version__
from gitool.console import (
    EXIT_INPUT,
    INTERRUPTED,
    console,
    run_reporting_errors,
    state,
    work_started,
)

app = typer.Typer(
    name="gitool",
    help=(
        "Sequence-to-function deep learning on genomes: build training windows from a FASTA "
        "genome and bigWig tracks, train models, predict, and look inside them."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

GLOBAL_FLAGS = ("--debug", "--quiet", "-q")


def _version(value: bool) -> None:
    if value:
        print(f"gitool {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
    debug: Annotated[
        bool,
        typer.Option(
            "--debug", help="Show tracebacks on errors (also accepted after the command)."
        ),
    ] = False,
    quiet: Annotated[
        bool,
        typer.Option(
            "--quiet", "-q", help="No progress bars or status lines (also after the command)."
        ),
    ] = False,
) -> None:
    state.debug = state.debug or debug
    state.quiet = state.quiet or quiet


def option_names(group, args: list[str]) -> dict[str, str]:
    """Field name -> flag of the command ``args`` run (its first option as declared, e.g.
    ``out`` -> ``-o``; arguments by their upper-case name), for error messages."""
    name = next((a for a in args if not a.startswith("-")), None)
    command = group.commands.get(name) if name else None
    names: dict[str, str] = {}
    for param in command.params if command is not None else ():
        if param.name is None:
            continue
        is_option = getattr(param, "param_type_name", "") == "option"
        names[param.name] = param.opts[0] if is_option else param.name.upper()
    return names


def empty_value(group, args: list[str]) -> str | None:
    """The one-line error for an empty value in ``args`` (``--data ""``, ``--out=``, a
    positional ``""``: an unset shell variable in quotes), an option followed by another
    option instead of its value (``-o --force``: click would write a file named
    ``--force``) or a short option written ``-o=x`` (click would take ``=x``), or None. Checked before parsing: a path option turns
    ``""`` into the current folder, and an empty text into the default."""
    name = next((a for a in args if not a.startswith("-")), None)
    command = group.commands.get(name) if name else None
    if command is None or "--help" in args or "-h" in args:
        return None
    by_flag = {o: p for p in command.params for o in (*p.opts, *p.secondary_opts)}
    positional = [p for p in command.params if getattr(p, "param_type_name", "") == "argument"]
    rest, position, options = args[args.index(name) + 1 :], 0, True
    while rest:
        arg = rest.pop(0)
        if arg == "--" and options:
            options = False  # what follows is positional
            continue
        flag, equals, value = arg.partition("=")
        param = by_flag.get(flag) if options and arg.startswith("-") else None
        if param is not None and not (getattr(param, "is_flag", False) or param.count):
            if equals and not flag.startswith("--"):  # click would read "=x" as the value
                return f"{arg}: a short option takes its value after a space; write {flag} VALUE"
            if not equals:
                value = rest.pop(0) if rest else "x"
                if value in by_flag or value in GLOBAL_FLAGS:  # click would take it as the value
                    return f"{flag} needs a value, but {value} follows it; give {flag} VALUE"
            if not value.strip():
                hint = "" if param.required else ", or leave the option out for its default"
                return f"{flag} is empty; give a value{hint}"
        elif not options or not arg.startswith("-") or arg == "-":
            if not arg.strip() and position < len(positional):
                return f"{positional[position].name.upper()} is empty; give a value"
            position += 1
    return None


_built: tuple[tuple[int, int], typer.core.TyperGroup] | None = None


def click_command() -> typer.core.TyperGroup:
    """The click command tree of :data:`app`, built once per process (typer builds it from
    the commands' signatures, about 0.08 s; tests call :func:`main` hundreds of times). It is
    built again if a command was registered since."""
    global _built
    key = (len(app.registered_commands), len(app.registered_groups))
    if _built is None or _built[0] != key:
        _built = (key, typer.main.get_command(app))
    return _built[1]


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point. Exit codes: 0 ok, 2 bad input, 1 internal error."""
    args = list(sys.argv[1:] if argv is None else argv)
    state.debug = "--debug" in args
    state.quiet = "--quiet" in args or "-q" in args
    args = [a for a in args if a not in GLOBAL_FLAGS]
    command = click_command()
    state.option_names = option_names(command, args)
    state.pending = []
    empty = empty_value(command, args)
    if empty is not None:
        console.print(f"[red]error:[/] {empty}", soft_wrap=True, markup=True)
        sys.exit(EXIT_INPUT)

    def invoke() -> int:
        try:
            code = command.main(args, prog_name="gitool", standalone_mode=False) or 0
            if code == 130:  # Ctrl-C, which typer turns into a silent exit 130
                work_started()  # what the command said on its way out (how to resume)
                console.print(INTERRUPTED)
            return code
        except typer.Abort:
            console.print("[red]aborted[/]")
            return 130
        except Exception as err:
            # Usage errors (typer's bundled click or click itself): one line, exit 2.
            if not (hasattr(err, "format_message") and getattr(err, "exit_code", None) == 2):
                raise
            ctx = getattr(err, "ctx", None)
            if type(err).__name__ == "NoArgsIsHelpError" and ctx is not None:
                console.print(ctx.get_help())
                return 0
            path = ctx.command_path if ctx is not None else "gitool"
            state.pending = None
            console.print(
                f"[red]error:[/] {err.format_message()} (see `{path} --help`)", soft_wrap=True
            )
            return EXIT_INPUT

    sys.exit(run_reporting_errors(invoke))
