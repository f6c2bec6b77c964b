"""Writing predicted bins of several tracks at once: one bigWig (or bedGraph) per track.

The bigWig format's rules (pyBigWig #142, its README): the header — every chromosome of
the genome with its size, in genome (FASTA) order — is written once, before any entry;
entries come sorted by (chromosome in header order, start) and never overlap. Bins arrive
in that order (regions are predicted in genome order) and are buffered into large
fixed-step ``addEntries(chrom, start, values=array, span=bin_size, step=bin_size)`` calls.
A chromosome's last bin is clipped to the chromosome end and written as its own, shorter
entry; nothing is ever written past a chromosome.

Files are written to temporary siblings (``.NAME.tmp-PID``) and renamed into place only
when every track is complete; on any error (Ctrl-C and SIGTERM included) the temporary
files are removed, and so are the folders the writer created for them, so an output is
either whole or absent. Temporary files of killed runs are removed when a writer opens.

:class:`TrackWriter` holds one open file per track; :mod:`gitool.predict.writer` bounds the
open files for heads of thousands of tracks (groups of tracks, one writer process each).
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import struct
from pathlib import Path

import numpy as np
import pyBigWig

from gitool.errors import InputError, naming_a_full_disk, opt

FLUSH_BINS = 1 << 16
"""Bins buffered per track before one ``addEntries`` call (256 KB of float32 per track)."""
FLUSH_VALUES = 1 << 24
"""At most this many values (64 MiB of float32) buffered across all tracks: with thousands
of tracks, fewer bins per track are buffered between ``addEntries`` calls. The files do not
depend on it: pyBigWig appends a contiguous fixed-step run across calls."""
BIGWIG_SUFFIXES = (".bw", ".bigwig")
BEDGRAPH_SUFFIXES = (".bedgraph", ".bg")


def safe_name(identifier: str) -> str:
    """A track identifier as a file-name part: characters other than ``A-Za-z0-9._-`` → ``_``."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", identifier).strip(".") or "track"


_HEADER = struct.Struct("<IHHQQQHHQQIQ")  # a bigWig's 64-byte header
_ZOOM = struct.Struct("<IIQQ")  # and each zoom level's 24 bytes after it
_INDEX_HEADER = 48  # bytes of an R-tree index's header


def check_complete(path: Path) -> None:
    """Raise when the closed bigWig ``path`` is cut short: its header, index or zoom indexes
    point past the end of the file. libBigWig writes them on close and reports a failed
    write (a full disk, a quota, a file-size limit) only on stderr.

    Raises:
        OSError: ENOSPC, naming the file (the likeliest cause; the size limit is another).
    """
    size = path.stat().st_size
    with open(path, "rb") as handle:
        head = handle.read(_HEADER.size)
        complete = len(head) == _HEADER.size
        if complete:
            magic, _, zooms, _, _, index, *_ = _HEADER.unpack(head)
            ends = [index + _INDEX_HEADER]
            table = handle.read(_ZOOM.size * zooms)
            complete = magic == 0x888FFC26 and len(table) == _ZOOM.size * zooms
            for k in range(zooms if complete else 0):
                ends.append(_ZOOM.unpack_from(table, k * _ZOOM.size)[3] + _INDEX_HEADER)
            complete = complete and index > 0 and max(ends) <= size
    if not complete:
        raise OSError(
            errno.ENOSPC,
            "the bigWig could not be completed (disk full, or a file-size limit)",
            str(path),
        )


def check_format(path: str | Path, bedgraph: bool, field: str = "out") -> None:
    """Refuse a bigWig file name for bedGraph text, and a bedGraph name for a bigWig.

    Raises:
        InputError: (about option ``field``) ``path`` ends ``.bw``/``.bigwig`` with
        ``bedgraph``, or ``.bedgraph``/``.bg`` without it (any case).
    """
    suffix = Path(path).suffix
    if bedgraph and suffix.lower() in BIGWIG_SUFFIXES:
        raise InputError(
            f"{path}: {suffix} names a bigWig but {opt('bedgraph')} writes bedGraph text; "
            f"end {opt(field)} with .bedgraph, or drop {opt('bedgraph')}",
            field=field,
        )
    if not bedgraph and suffix.lower() in BEDGRAPH_SUFFIXES:
        raise InputError(
            f"{path}: {suffix} names a bedGraph but a bigWig is written; "
            f"add {opt('bedgraph')}, or end {opt(field)} with .bw",
            field=field,
        )


def flush_bins_for(n_tracks: int) -> int:
    """Bins buffered per track between writes for ``n_tracks`` tracks in all: :data:`FLUSH_BINS`,
    fewer when that would buffer more than :data:`FLUSH_VALUES` values."""
    return max(1, min(FLUSH_BINS, FLUSH_VALUES // max(1, n_tracks)))


def stage_path(path: Path, pid: int | None = None) -> Path:
    """The temporary sibling ``.NAME.tmp-PID`` a file is written to before its rename (the
    PID of the process that renames it, so that it is not stale while that one runs)."""
    return path.with_name(f".{path.name}.tmp-{os.getpid() if pid is None else pid}")


def output_paths(out: str | Path, identifiers: list[str], bedgraph: bool = False) -> list[Path]:
    """Where each selected track goes.

    One track: ``out`` itself. Several: ``OUT.<identifier>.bw`` (``out``'s ``.bw``/``.bigwig``
    suffix, or ``.bedgraph``/``.bg`` with ``bedgraph``, moves after the identifier), or
    ``DIR/<identifier>.bw`` when ``out`` ends with ``/`` or is an existing folder.
    Identifiers are made file-name safe (:func:`safe_name`).

    Raises:
        InputError: an empty ``out``, a bigWig name with ``bedgraph`` or a bedGraph name
        without it (:func:`check_format`), two identifiers giving the same file name, or a
        parent that is a file.
    """
    text = str(out)
    if not text.strip():  # Path("") is the current folder
        raise InputError("is empty; give an output path", field="out")
    path = Path(out)
    suffix = ".bedgraph" if bedgraph else ".bw"
    known = BEDGRAPH_SUFFIXES if bedgraph else BIGWIG_SUFFIXES
    folder = text.endswith(("/", os.sep)) or path.is_dir()
    if not folder:
        check_format(out, bedgraph)
    if folder:
        paths = [path / f"{safe_name(i)}{suffix}" for i in identifiers]
    elif len(identifiers) == 1:
        paths = [path]
    else:
        stem, ext = text, suffix
        if path.suffix.lower() in known:
            stem, ext = text[: -len(path.suffix)], path.suffix
        paths = [Path(f"{stem}.{safe_name(i)}{ext}") for i in identifiers]
    seen: dict[Path, str] = {}
    for identifier, p in zip(identifiers, paths, strict=True):
        if p in seen:
            raise InputError(
                f"{out}: tracks {seen[p]!r} and {identifier!r} would both be written to {p}; "
                f"choose {opt('tracks')} whose identifiers differ in letters, digits, '.', '_' "
                "or '-'",
                field="out",
            )
        seen[p] = identifier
    for p in paths:
        blocker = next((q for q in p.parents if q.exists()), None)
        if blocker is not None and not blocker.is_dir():
            raise InputError(
                f"{out}: {blocker} is a file, not a folder; choose another {opt('out')}",
                field="out",
            )
        if p.is_dir():
            raise InputError(f"{out}: {p} is a folder; choose another {opt('out')}", field="out")
    return paths


_STAGE = re.compile(r"^\.(?P<name>.+)\.(?:partial|old|tmp)-(?P<pid>\d+)$")


def _stale_stages(paths: list[Path]) -> list[Path]:
    """The stages (``.NAME.tmp-PID``) of these paths that killed runs left, and the
    temporary files of other tracks those runs left beside them (same process, gone: a later
    run with fewer tracks removes them too). Each folder is listed once
    (:func:`gitool.files.stale_stages` lists it per path: quadratic in the number of
    tracks)."""
    from gitool.files import process_alive  # lazy: writer processes

    by_folder: dict[Path, set[str]] = {}
    for path in paths:
        by_folder.setdefault(path.parent, set()).add(path.name)
    stale: list[Path] = []
    for folder, names in by_folder.items():
        try:
            entries = os.listdir(folder)
        except OSError:  # not there yet: nothing stale in it
            continue
        stages = [(e, m["name"], int(m["pid"])) for e in entries if (m := _STAGE.match(e))]
        mine = {pid for _, name, pid in stages if name in names}
        killed = {pid for pid in mine if not process_alive(pid)}
        stale += [folder / entry for entry, name, pid in stages if pid in killed and (
            name in names or name.lower().endswith((*BIGWIG_SUFFIXES, *BEDGRAPH_SUFFIXES)))]  # fmt: skip
    return stale


class BinChecker:
    """The bigWig rules for bins handed to a writer: on the chromosome and the bin grid,
    in genome order, never overlapping bins already taken, of the right shape.

    Args:
        sizes: every chromosome with its size, in genome order.
        bin_size: bp per bin.
        n_tracks: columns of ``values``.
    """

    def __init__(self, sizes: dict[str, int], bin_size: int, n_tracks: int):
        self.sizes = dict(sizes)
        self.order = {c: i for i, c in enumerate(self.sizes)}
        self.bin_size, self.n_tracks = bin_size, n_tracks
        self.last: tuple[int, int] = (-1, 0)  # (chromosome order, end) taken so far

    def check(self, chrom: str, start: int, end: int, values: np.ndarray) -> np.ndarray:
        """``values`` as float32, once the bins are checked (and taken).

        Raises:
            ValueError: bins out of genome order, overlapping earlier ones, off the
                chromosome, or of the wrong shape (a caller's bug, not bad input).
        """
        if chrom not in self.order:
            raise ValueError(f"chromosome {chrom!r} is not in the header")
        n_bins = -(-(end - start) // self.bin_size)
        values = np.asarray(values, dtype=np.float32)
        if values.shape != (n_bins, self.n_tracks) or n_bins <= 0:
            raise ValueError(
                f"{chrom}:{start}-{end} needs values of shape ({n_bins}, {self.n_tracks}), "
                f"got {values.shape}"
            )
        if (
            start < 0
            or end > self.sizes[chrom]
            or (end != self.sizes[chrom] and (end - start) % self.bin_size)
        ):
            raise ValueError(f"{chrom}:{start}-{end} is off the chromosome or the bin grid")
        if (self.order[chrom], start) < self.last:
            raise ValueError(
                f"{chrom}:{start}-{end} comes before or overlaps bins already written; "
                "bigWig entries must be sorted and non-overlapping"
            )
        self.last = (self.order[chrom], end)
        return values


class TrackWriter:
    """Write bins of ``n_tracks`` tracks to one bigWig (or bedGraph) file per track.

    Use as a context manager: files appear (renamed from temporary siblings) when the block
    ends normally, and are removed when it raises. It holds one open file per track, in the
    process that uses it (:class:`gitool.predict.writer.TrackSetWriter` bounds that number).

    Args:
        paths: one output file per track (see :func:`output_paths`).
        sizes: every chromosome of the genome with its size, in genome order (the header).
        bin_size: bp per bin.
        bedgraph: write ``chrom<TAB>start<TAB>end<TAB>value`` text instead of bigWig.
        flush_bins: bins buffered per track before each batched write (default
            :func:`flush_bins_for` the number of tracks).
        field: the option (options-dataclass field) the paths came from, named in errors.
        temps: the temporary files to write (default :func:`stage_path` of each path with
            this process's PID).

    Raises:
        InputError: a path whose name says the other format (:func:`check_format`), or
        (on :meth:`open`) one that cannot be created.
    """

    def __init__(
        self,
        paths: list[Path],
        sizes: dict[str, int],
        bin_size: int,
        bedgraph: bool = False,
        flush_bins: int | None = None,
        field: str = "out",
        temps: list[Path] | None = None,
    ):
        self.paths = [Path(p) for p in paths]
        self.field = field
        for p in self.paths:
            check_format(p, bedgraph, field)
        self.sizes = dict(sizes)
        self.bin_size, self.bedgraph = bin_size, bedgraph
        self.flush_bins = flush_bins or flush_bins_for(len(self.paths))
        if temps is None:
            self.temps = [stage_path(p) for p in self.paths]
        else:
            self.temps = [Path(t) for t in temps]
        self.handles: list = []
        self.created: list[Path] = []  # folders prepare() made, removed again by abort()
        self.bins_written = 0
        self.checker = BinChecker(self.sizes, bin_size, len(self.paths))
        # The run being buffered: contiguous bins of one chromosome.
        self._chrom: str | None = None
        self._start = self._end = 0
        self._parts: list[np.ndarray] = []
        self._buffered = 0

    # ------------------------------------------------------------------ lifecycle

    def prepare(self) -> None:
        """Create the folders and the empty temporary files, holding none open (stale ones
        of killed runs are removed first).

        Raises:
            InputError: a file that cannot be created, naming it and the option.
        """
        from gitool.files import make_folders  # lazy: writer processes

        for stage in _stale_stages(self.paths):
            if stage.is_dir() and not stage.is_symlink():
                shutil.rmtree(stage, ignore_errors=True)
            else:
                with contextlib.suppress(OSError):
                    stage.unlink()
        for tmp, path in zip(self.temps, self.paths, strict=True):
            try:
                self.created.extend(make_folders(tmp.parent))
                open(tmp, "wb").close()  # pyBigWig.open crashes on a file it cannot create
            except OSError as err:
                error = InputError(
                    f"{path}: cannot be written ({err.strerror or err}); choose another "
                    f"{opt(self.field)}, in a folder you can write to",
                    field=self.field,
                )
                raise error from None

    def open(self, prepare: bool = True) -> TrackWriter:
        """Create the temporary files (unless ``prepare`` is False: :meth:`prepare` was
        called, maybe in another process) and write the bigWig headers (once)."""
        try:
            if prepare:
                self.prepare()
            for tmp in self.temps:
                if self.bedgraph:
                    self.handles.append(open(tmp, "w", buffering=1 << 20))  # noqa: SIM115
                else:
                    bw = pyBigWig.open(str(tmp), "w")
                    if bw is None:
                        raise OSError(f"cannot create {tmp}")
                    self.handles.append(bw)
                    bw.addHeader(list(self.sizes.items()))
        except BaseException:
            self.abort()
            raise
        return self

    def __enter__(self) -> TrackWriter:
        return self.open()

    def __exit__(self, kind, error, traceback) -> None:
        if kind is None:
            self.commit()
        else:
            self.abort()

    def finish(self) -> None:
        """Flush and close every temporary file (complete, not yet renamed).

        Raises:
            OSError: a bigWig that closing did not complete (libBigWig reports a failed
            write, e.g. a full disk or a file-size limit, only on stderr).
        """
        self._flush()
        handles, self.handles = self.handles, []  # (none when finished already)
        for handle, path in zip(handles, self.paths, strict=False):
            with naming_a_full_disk(path):
                handle.close()  # a bigWig's zoom levels and index; bedGraph's last buffer
        if handles and not self.bedgraph:
            for tmp in self.temps:
                check_complete(tmp)

    def commit(self) -> list[Path]:
        """Flush, close and rename every file into place; returns the final paths."""
        try:
            self.finish()
            from gitool.files import commit_files  # lazy: writer processes skip pandas

            commit_files(zip(self.temps, self.paths, strict=True))
        except BaseException:
            self.abort()
            raise
        return self.paths

    def abort(self) -> None:
        """Close and delete the temporary files (nothing is left behind)."""
        handles, self.handles = self.handles, []
        for handle in handles:
            with contextlib.suppress(Exception):  # cleaning up after an earlier error
                handle.close()
        for tmp in self.temps:
            # OSError: a read-only folder refuses even the unlink of a missing file (EROFS).
            with contextlib.suppress(OSError):
                tmp.unlink()
        created, self.created = self.created, []
        if created:  # (only where prepare() ran: writer processes skip gitool.files' pandas)
            from gitool.files import remove_folders

            remove_folders(created)

    # ------------------------------------------------------------------ data

    def add(self, chrom: str, start: int, end: int, values: np.ndarray) -> None:
        """Buffer the bins of ``chrom:start-end``.

        Args:
            chrom, start, end: ``start`` on the bin grid; ``end`` too, or the chromosome end.
            values: float ``(n_bins, n_tracks)`` with ``n_bins = ceil((end - start) /
                bin_size)``; bin ``j`` is ``[start + j·bin_size, start + (j+1)·bin_size)``
                clipped to ``end``.

        Raises:
            ValueError: bins out of genome order, overlapping earlier ones, off the
                chromosome, or of the wrong shape (a caller's bug, not bad input).
        """
        if not self.handles:
            raise ValueError("TrackWriter.add before open() (or after commit/abort)")
        values = self.checker.check(chrom, start, end, values)
        if chrom != self._chrom or start != self._end:
            self._flush()
            self._chrom, self._start = chrom, start
        self._parts.append(values)
        self._end = end
        self._buffered += len(values)
        if self._buffered >= self.flush_bins:
            self._flush()

    def _flush(self) -> None:
        if not self._parts:
            return
        values = np.concatenate(self._parts) if len(self._parts) > 1 else self._parts[0]
        chrom, start, end = self._chrom, self._start, self._end
        full = (end - start) // self.bin_size  # bins of full width; a clipped last one follows
        columns = np.ascontiguousarray(values.T)  # one track per row
        for handle, column, path in zip(self.handles, columns, self.paths, strict=True):
            if self.bedgraph:
                with naming_a_full_disk(path):
                    self._write_bedgraph(handle, chrom, start, end, column)
                continue
            if full:
                handle.addEntries(
                    chrom, start, values=column[:full], span=self.bin_size, step=self.bin_size
                )
            if full < len(column):  # the chromosome's last bin, shorter than bin_size
                last = start + full * self.bin_size
                handle.addEntries([chrom], [last], ends=[end], values=[float(column[full])])
        self.bins_written += len(values)
        self._parts, self._buffered = [], 0
        # Keep the run going: the next bins may continue it after this flush.
        self._start = end

    def _write_bedgraph(self, handle, chrom: str, start: int, end: int, column) -> None:
        starts = np.arange(start, end, self.bin_size, dtype=np.int64)
        ends = np.minimum(starts + self.bin_size, end)
        # repr of a float32 is the shortest text that reads back to the same float32.
        text = column.astype(str)
        rows = zip(starts.tolist(), ends.tolist(), text.tolist(), strict=True)
        handle.write("".join(f"{chrom}\t{s}\t{e}\t{v}\n" for s, e, v in rows))
