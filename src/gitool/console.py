"""Terminal output: the rich console, progress bars and the error → exit-code map.

Exit codes: 0 success, 2 bad input (one line naming the file/line/option and the fix; also
a read-only or full disk), 1 internal failure, 130 Ctrl-C, 143 SIGTERM (after cleanup).
Tracebacks only with ``--debug``.
"""

from __future__ import annotations

import errno
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import TypeVar

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from gitool.errors import InputError, RunFailure, render

EXIT_OK, EXIT_INTERNAL, EXIT_INPUT = 0, 1, 2

T = TypeVar("T")


class _State:
    quiet = False
    debug = False
    # option field -> the running command's flag (``batch_size`` -> ``--batch-size``), set by
    # the CLI so that errors name flags (see gitool.errors)
    option_names: Mapping[str, str] | Callable[[str], str] = {}
    # the command whose work runs now, when one command runs others' (the quickstart's steps
    # set it, so that their messages name that command's options)
    command: str | None = None
    # status lines held back until work starts (the CLI sets a list; None prints at once),
    # so that a command refused during its checks prints exactly one line: the error
    pending: list[str] | None = None


state = _State()
INTERRUPTED = "[red]interrupted[/] (Ctrl-C); nothing half-written is left"
console = Console(stderr=True, highlight=False)


def stdout_console() -> Console:
    """A console for a command's results (stdout); wide when piped so tables stay whole."""
    return Console(highlight=False, width=None if sys.stdout.isatty() else 200)


def is_rank_zero() -> bool:
    """True in a single process and on rank 0 of a torchrun job."""
    return os.environ.get("RANK", "0") == "0"


def info(message: str) -> None:
    """Print a status line on stderr (rank 0 only, silenced by ``--quiet``); in the CLI it
    is held back until work starts (:func:`work_started`) and dropped if the input is
    refused first."""
    if state.quiet or not is_rank_zero():
        return
    message = render(message, state.option_names)
    if state.pending is not None:
        state.pending.append(message)
    else:
        console.print(message)


def work_started() -> None:
    """The checks are over: print the held-back status lines and stop holding them.
    Called by :func:`progress`, :func:`warn` and at a command's successful end."""
    pending, state.pending = state.pending, None
    for message in pending or ():
        console.print(message)


def warn(message: str) -> None:
    """Print a warning on stderr (rank 0 only; shown even with ``--quiet``)."""
    work_started()
    if is_rank_zero():
        # one logical line (paths may hold "[...]", which is not markup)
        text = escape(render(message, state.option_names))
        console.print(f"[yellow]warning:[/] {text}", soft_wrap=True)


@contextmanager
def progress(description: str, total: int | None) -> Iterator[Callable[[int], None]]:
    """A progress bar; yields ``advance(n=1, description=None)`` (a new description shows
    e.g. the running loss). Hidden when stderr is not a TTY, with ``--quiet`` and off rank 0.
    Held-back status lines are printed at the first ``advance`` (:func:`work_started`)."""
    disabled = state.quiet or not console.is_terminal or not is_rank_zero()
    bar = Progress(
        SpinnerColumn(),
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
        disable=disabled,
    )
    with bar:
        task = bar.add_task(description, total=total)

        def advance(n: int = 1, description: str | None = None) -> None:
            if state.pending is not None:
                work_started()
            bar.update(task, advance=n, description=description)

        yield advance


class Terminated(BaseException):
    """SIGTERM, raised where the process is. A BaseException, like KeyboardInterrupt, so
    ``except Exception`` blocks let it through while ``finally``/``except BaseException``
    cleanup runs; not a KeyboardInterrupt, which typer turns into a silent exit 130."""


def _terminate(signum, frame) -> None:
    raise Terminated


def run_reporting_errors(fn: Callable[[], T]) -> T:
    """Call ``fn``; turn exceptions into one line on stderr and the right exit code.

    SIGTERM (a cluster job's time limit, ``kill``) raises :class:`Terminated`, so every
    command's cleanup runs and no partial output is left; the exit code is then 143.
    """
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _terminate)
    try:
        result = fn()
        work_started()
        return result
    except InputError as err:
        state.pending = None  # refused: the error is the only line
        if state.debug:
            console.print_exception()
        message = err.render(state.option_names)
        console.print(f"[red]error:[/] {escape(message)}", soft_wrap=True)
        sys.exit(EXIT_INPUT)
    except RunFailure as err:
        work_started()
        if state.debug:
            console.print_exception()
        message = render(str(err), state.option_names)
        console.print(f"[red]error:[/] {escape(message)}", soft_wrap=True)
        sys.exit(EXIT_INTERNAL)
    except KeyboardInterrupt:
        console.print(INTERRUPTED)
        sys.exit(130)
    except Terminated:
        console.print("[red]terminated[/] (SIGTERM); nothing half-written is left")
        sys.exit(128 + signal.SIGTERM)
    except OSError as err:
        message = _environment_message(err)
        if message is None:
            _report_internal(err)
        state.pending = None
        if state.debug:
            console.print_exception()
        console.print(f"[red]error:[/] {escape(message)}", soft_wrap=True)
        sys.exit(EXIT_INPUT)
    except Exception as err:  # noqa: BLE001 - the last line of defence for the CLI
        _report_internal(err)


def _report_internal(err: BaseException) -> None:
    work_started()
    if state.debug:
        console.print_exception()
    else:
        console.print(
            f"[red]internal error:[/] {type(err).__name__}: {escape(str(err))} "
            "(rerun with --debug for the traceback, and please report it)",
            soft_wrap=True,
        )
    sys.exit(EXIT_INTERNAL)


# errno values that mean the machine refused, not that gitool failed: one line, exit 2
_ENVIRONMENT = {
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.EROFS: "read-only file system",
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "disk quota exceeded",
    errno.ENAMETOOLONG: "file name too long",
}


def _environment_message(err: OSError) -> str | None:
    """One line for an OSError the user can fix (permissions, read-only or full disk), naming
    the path; None for any other OSError (an internal error)."""
    what = _ENVIRONMENT.get(err.errno)
    if what is None:
        return None
    where = str(err.filename) if err.filename is not None else "a file gitool needed"
    if err.errno in (errno.ENOSPC, errno.EDQUOT):
        fix = "free some space or write the output to another disk"
    elif err.errno == errno.ENAMETOOLONG:
        fix = "choose a shorter path"
    else:
        fix = "check the permissions of the path and its folder, or choose another path"
    return f"{where}: {what}; {fix}"
