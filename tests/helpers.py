"""Running the CLI in-process and checking the error contract."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gitool.cli import main
from gitool.made import RECORD


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


def folder_bytes(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` by its relative path, except gitool's records of the
    files it made (they hold the files' times, which differ from one build to the next)."""
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(Path(folder).rglob("*"))
        if p.is_file() and p.name != RECORD
    }


def metrics_records(run: Path) -> list[dict]:
    """The records of a training run's ``metrics.jsonl``, in order."""
    return [json.loads(line) for line in (Path(run) / "metrics.jsonl").read_text().splitlines()]
