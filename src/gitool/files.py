"""Writing outputs so that a failure leaves nothing half-written behind.

A folder is built in a hidden sibling and renamed into place (:func:`staged_folder`,
:func:`replace_folder`); a file through a temporary sibling (:func:`staged_file`, used by
:func:`write_tsv`, PNGs, checkpoints and attention indexes).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

from gitool.errors import InputError


def replace_folder(tmp: Path, out: Path) -> None:
    """Move the finished folder ``tmp`` to ``out``; an old ``out`` goes only after."""
    if out.exists():
        trash = out.parent / f".{out.name}.old-{os.getpid()}"
        out.rename(trash)
        try:
            tmp.rename(out)
        except BaseException:
            trash.rename(out)  # put the old folder back before giving up
            raise
        shutil.rmtree(trash)
    else:
        tmp.rename(out)


@contextmanager
def staged_folder(out: str | Path) -> Iterator[Path]:
    """Yield an empty hidden sibling of ``out`` to write into; on success it replaces ``out``
    (:func:`replace_folder`), on any failure it is removed."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.partial-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        yield tmp
        replace_folder(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@contextmanager
def staged_file(path: str | Path) -> Iterator[Path]:
    """Yield a hidden temporary sibling of ``path`` to write; on success it replaces ``path``
    atomically, on any failure it is removed (an old ``path`` stays)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_tsv(frame: pd.DataFrame, path: str | Path, index: bool = False) -> Path:
    """``frame`` as a tab-separated file (floats to 6 significant digits), atomically."""
    with staged_file(path) as tmp:
        frame.to_csv(tmp, sep="\t", index=index, float_format="%.6g")
    return Path(path)


def check_output_folder(
    out: Path, force: bool, is_previous: Callable[[Path], bool], previous: str
) -> None:
    """Refuse ``-o out`` unless it is new, or ``force`` is set and it is an empty folder or
    ``is_previous(out)``: an earlier output of the same command (named by ``previous``).
    ``--force`` never deletes a folder of the user's own files, nor the current folder."""
    if not out.exists():
        return
    if not out.is_dir():
        raise InputError(f"-o {out} is a file; give a folder")
    here = Path.cwd().resolve()
    if out.resolve() in (here, *here.parents):
        raise InputError(
            f"-o {out} is the current folder or holds it, so it cannot be replaced; "
            "choose another -o"
        )
    if not force:
        raise InputError(f"-o {out} already exists; pass --force to replace it")
    if any(out.iterdir()) and not is_previous(out):
        raise InputError(
            f"-o {out} is a non-empty folder that is not {previous}; refusing to replace it "
            "even with --force — choose another -o"
        )


def check_writable(path: str | Path, option: str = "-o") -> None:
    """Fail early, before any work, when ``path`` could not be created or replaced: the
    nearest existing folder above it (where outputs are staged and renamed into place) is
    read-only or not writable by this user (InputError naming ``option``)."""
    path = Path(path).absolute()
    folder = next(p for p in path.parents if p.exists())
    if folder.is_dir() and not os.access(folder, os.W_OK | os.X_OK):
        raise InputError(
            f"{option} {path}: cannot write in {folder} (read-only or no permission); "
            f"choose another {option}"
        )
