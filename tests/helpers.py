"""Running the CLI in-process and checking the error contract."""

from __future__ import annotations

import pytest

from gitool.cli import main


def run_cli(args: list[str], capsys) -> tuple[int, str, str]:
    """Run ``gitool ARGS``; return (exit code, stdout, stderr)."""
    with pytest.raises(SystemExit) as exit_info:
        main([str(a) for a in args])
    out, err = capsys.readouterr()
    return int(exit_info.value.code or 0), out, err


def assert_input_error(code: int, err: str, *needles: str) -> None:
    """Exit 2, exactly one non-empty stderr line, no traceback, naming every needle."""
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, err
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
