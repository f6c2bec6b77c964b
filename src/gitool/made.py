"""The record of the files gitool made: what ``--force`` may replace.

Each folder into which gitool puts a file output (a bigWig, a TSV, a PNG, an ``.npz``)
holds ``.gitool-made.jsonl``: one JSON line per file put there, with its name, size and
modification time (ns) as they were when it was put in place. A file is gitool's while its
size and time still match its latest line: a file the user wrote, copied in or edited
since has no matching line, and ``--force`` leaves it alone. Copying or moving the whole
folder with its times kept (``cp -a``, ``rsync -a``, ``mv``) keeps the record valid.

Lines are appended, one write per commit (concurrent runs do not interleave lines); the
last line for a name wins; the record is rewritten without stale lines (files gone or
changed, superseded lines) when they outnumber the current ones. A record that cannot be
written or read only makes ``--force`` refuse more: it never makes gitool replace a file
it did not make.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path

RECORD = ".gitool-made.jsonl"

# folder -> ((record's size, mtime_ns), {name: (size, mtime_ns)}, lines read)
_CACHE: dict[Path, tuple[tuple[int, int], dict[str, tuple[int, int]], int]] = {}


def _stamp(path: Path) -> tuple[int, int] | None:
    """(size, modification time in ns) of the file ``path``; None if it is not one."""
    try:
        stat = path.stat()
    except OSError:
        return None
    if not path.is_file():
        return None
    return stat.st_size, stat.st_mtime_ns


def _read(folder: Path) -> tuple[dict[str, tuple[int, int]], int]:
    """The latest (size, mtime_ns) recorded for each name in ``folder``, and the number of
    lines read; cached while the record is unchanged (thousands of claims read it once)."""
    path = folder / RECORD
    stamp = _stamp(path)
    if stamp is None:
        return {}, 0
    cached = _CACHE.get(folder)
    if cached is not None and cached[0] == stamp:
        return cached[1], cached[2]
    entries: dict[str, tuple[int, int]] = {}
    lines = 0
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return {}, 0
    for line in text.splitlines():
        lines += 1
        try:
            entry = json.loads(line)
            entries[str(entry["name"])] = (int(entry["size"]), int(entry["mtime_ns"]))
        except (ValueError, KeyError, TypeError):
            continue  # a damaged line vouches for nothing
    _CACHE[folder] = (stamp, entries, lines)
    return entries, lines


def made_by_gitool(path: str | Path) -> bool:
    """Whether the existing file ``path`` is one gitool put there and nobody changed since."""
    path = Path(path).absolute()
    stamp = _stamp(path)
    if stamp is None or path.name == RECORD:
        return False
    entries, _ = _read(path.parent)
    return entries.get(path.name) == stamp


def record(paths: Iterable[str | Path]) -> None:
    """Add the files ``paths`` (just put in place) to their folders' records."""
    by_folder: dict[Path, list[str]] = {}
    for path in paths:
        path = Path(path).absolute()
        stamp = _stamp(path)
        if stamp is None:
            continue
        line = json.dumps({"name": path.name, "size": stamp[0], "mtime_ns": stamp[1]})
        by_folder.setdefault(path.parent, []).append(line)
    for folder, lines in by_folder.items():
        data = ("\n".join(lines) + "\n").encode("utf-8")
        try:
            handle = os.open(folder / RECORD, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(handle, view) :]
            finally:
                os.close(handle)
            _compact(folder)
        except OSError:
            continue  # unrecorded files are only refused by --force later


def _compact(folder: Path) -> None:
    """Rewrite the record with only its current lines when stale ones outnumber them."""
    entries, lines = _read(folder)
    current = {name: stamp for name, stamp in entries.items() if _stamp(folder / name) == stamp}
    if lines <= 2 * len(current) + 64:
        return
    tmp = folder / f".{RECORD}.tmp-{os.getpid()}"
    try:
        tmp.write_text(
            "".join(
                json.dumps({"name": name, "size": size, "mtime_ns": mtime}) + "\n"
                for name, (size, mtime) in current.items()
            ),
            encoding="utf-8",
        )
        os.replace(tmp, folder / RECORD)  # a line appended meanwhile is lost: refused later
    finally:
        tmp.unlink(missing_ok=True)
