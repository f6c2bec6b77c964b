"""The record of the files gitool made: what ``--force`` may replace.

Each folder into which gitool puts a file output (a bigWig, a TSV, a PNG, an ``.npz``)
holds ``.gitool-made.jsonl``: one JSON line per file put there, with its name, size and
modification time (ns) as they were when it was put in place. A file is gitool's while its
size and time still match a line recorded for its name: a file the user wrote, copied in or
edited since has no matching line, and ``--force`` leaves it alone. Copying or moving the whole
folder with its times kept (``cp -a``, ``rsync -a``, ``mv``) keeps the record valid, unless
the copy's file system keeps coarser times.

A line is written before its file is renamed into place (so a run stopped part-way through
its renames leaves no file of its own unrecorded; a line whose file never arrives matches
nothing), and a file is gitool's when any line for its name matches (a file a stopped run
did not reach keeps its earlier line). Writers hold an exclusive lock on the record, readers
a shared one, so runs writing into one folder at once neither lose nor interleave lines;
before each write the record is rewritten in place with one line per file there (the one
that matches it) when stale lines outnumber those. A record that cannot be written or read
only makes ``--force`` refuse more: it never makes gitool replace a file it did not make.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

RECORD = ".gitool-made.jsonl"

Stamp = tuple[int, int]  # (size, mtime_ns)
# folder -> ((record's size, mtime_ns), {name: stamps recorded}, lines read)
_CACHE: dict[Path, tuple[Stamp, dict[str, set[Stamp]], int]] = {}
_WARNED: set[Path] = set()


def _stamp(path: Path) -> Stamp | None:
    """(size, modification time in ns) of the file ``path``; None if it is not one."""
    try:
        stat = path.stat()
    except OSError:
        return None
    if not path.is_file():
        return None
    return stat.st_size, stat.st_mtime_ns


@contextlib.contextmanager
def _locked(folder: Path, write: bool) -> Iterator[int | None]:
    """The record's descriptor, locked (exclusive to write, shared to read); None when there
    is no record to read. Created readable and writable by all the umask allows (a shared
    project folder), never through a symbolic link."""
    flags = os.O_NOFOLLOW | (os.O_RDWR | os.O_CREAT if write else os.O_RDONLY)
    try:
        handle = os.open(folder / RECORD, flags, 0o666)
    except FileNotFoundError:
        if write:
            raise
        yield None
        return
    try:
        with contextlib.suppress(OSError):  # a file system without locks: unlocked, as before
            fcntl.flock(handle, fcntl.LOCK_EX if write else fcntl.LOCK_SH)
        yield handle
    finally:
        os.close(handle)  # releases the lock


def _parse(text: str) -> tuple[dict[str, set[Stamp]], int]:
    """Every stamp recorded for each name (a file replaced by a run that was stopped before
    its rename keeps its earlier line valid), and the number of lines."""
    entries: dict[str, set[Stamp]] = {}
    lines = 0
    for line in text.splitlines():
        lines += 1
        try:
            entry = json.loads(line)
            stamp = (int(entry["size"]), int(entry["mtime_ns"]))
            entries.setdefault(str(entry["name"]), set()).add(stamp)
        except (ValueError, KeyError, TypeError):
            continue  # a damaged line vouches for nothing
    return entries, lines


def _read_all(handle: int) -> str:
    os.lseek(handle, 0, os.SEEK_SET)
    chunks = []
    while chunk := os.read(handle, 1 << 20):
        chunks.append(chunk)
    return b"".join(chunks).decode("utf-8", errors="replace")


def _read(folder: Path) -> dict[str, set[Stamp]]:
    """The (size, mtime_ns) stamps recorded for each name in ``folder``; cached while the
    record is unchanged (thousands of claims in one folder read it once)."""
    stamp = _stamp(folder / RECORD)
    if stamp is None:
        return {}
    cached = _CACHE.get(folder)
    if cached is not None and cached[0] == stamp:
        return cached[1]
    try:
        with _locked(folder, write=False) as handle:
            if handle is None:
                return {}
            stat = os.fstat(handle)
            entries, lines = _parse(_read_all(handle))
    except OSError:
        return {}
    _CACHE[folder] = ((stat.st_size, stat.st_mtime_ns), entries, lines)
    return entries


def made_by_gitool(path: str | Path) -> bool:
    """Whether the existing file ``path`` is one gitool put there and nobody changed since."""
    path = Path(path).absolute()
    stamp = _stamp(path)
    if stamp is None or path.name == RECORD:
        return False
    return stamp in _read(path.parent).get(path.name, ())


def record(files: Iterable[tuple[str | Path, str | Path]]) -> None:
    """Record ``(path, finished)`` pairs: ``finished`` (the file itself, or the temporary
    file about to be renamed to ``path``) as gitool's file ``path``."""
    by_folder: dict[Path, list[str]] = {}
    for path, finished in files:
        path = Path(path).absolute()
        stamp = _stamp(Path(finished))
        if stamp is None:
            continue
        line = json.dumps({"name": path.name, "size": stamp[0], "mtime_ns": stamp[1]})
        by_folder.setdefault(path.parent, []).append(line)
    for folder, lines in by_folder.items():
        try:
            with _locked(folder, write=True) as handle:
                assert handle is not None
                _compact(folder, handle)  # first: the lines below are never compacted away
                _append(folder, lines)
        except OSError as err:
            _warn_once(folder, err)


def _append(folder: Path, lines: list[str]) -> None:
    """Append ``lines`` in one write through an ``O_APPEND`` descriptor (no two writers
    overwrite each other, even where the lock is not supported)."""
    handle = os.open(folder / RECORD, os.O_WRONLY | os.O_APPEND | os.O_NOFOLLOW)
    try:
        _write_all(handle, "".join(line + "\n" for line in lines).encode("utf-8"))
    finally:
        os.close(handle)


def _write_all(handle: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(handle, view) :]


def _compact(folder: Path, handle: int) -> None:
    """Under the write lock: rewrite the record in place with only its current lines (for
    each name, the stamp of the file there now) when stale ones outnumber them. The lines
    are written over the start and the rest cut off after, so a run killed part-way leaves
    its lines readable."""
    entries, lines = _parse(_read_all(handle))
    current = {}
    for name, stamps in entries.items():
        stamp = _stamp(folder / name)
        if stamp in stamps:
            current[name] = stamp
    if lines <= 2 * len(current) + 64:
        return
    data = "".join(
        json.dumps({"name": name, "size": size, "mtime_ns": mtime}) + "\n"
        for name, (size, mtime) in current.items()
    ).encode("utf-8")
    os.lseek(handle, 0, os.SEEK_SET)
    _write_all(handle, data)
    os.ftruncate(handle, len(data))


def _warn_once(folder: Path, err: OSError) -> None:
    if folder in _WARNED:
        return
    _WARNED.add(folder)
    from gitool.console import warn  # lazy: writer processes skip the console

    reason = err.strerror or str(err)
    warn(
        f"could not record the files written in {folder} in its {RECORD} ({reason}); "
        "they are in place, but a later --force will refuse to replace them"
    )
