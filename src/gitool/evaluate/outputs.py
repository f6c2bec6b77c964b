"""Where ``gitool evaluate`` writes its table, for coverage and label stores alike."""

from __future__ import annotations

from pathlib import Path

from gitool.files import COMPRESSED


def tsv_path(run: str | Path, checkpoint: str | Path, split: str, out: str | Path | None) -> Path:
    """``out`` when it names a ``.tsv`` (any case), else ``out/<split>[.tag].tsv``; without
    ``out``, ``<run>/eval/<split>[.tag].tsv``, the run being the folder given, or the one
    that holds the checkpoint given (``RUN/checkpoints/x.pt`` → ``RUN``). ``tag`` is the
    checkpoint's name unless it is ``best``, so that ``--which last`` never replaces the
    best checkpoint's table."""
    checkpoint = Path(checkpoint)
    tag = "" if checkpoint.stem == "best" else f".{checkpoint.stem}"
    if out is not None:
        path = Path(out)
        name = path.name.lower()
        if path.suffix.lower() == ".tsv" or any(name.endswith(".tsv" + c) for c in COMPRESSED):
            return path  # a table's name (a compressed one is then refused as such)
        return path / f"{split}{tag}.tsv"
    if Path(run).is_dir():
        base = Path(run)
    elif checkpoint.parent.name == "checkpoints":
        base = checkpoint.parent.parent
    else:
        base = checkpoint.parent
    return base / "eval" / f"{split}{tag}.tsv"
