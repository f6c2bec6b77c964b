"""Build the memory-mapped training store (``gitool build-dataset``); its layout and reader
are :mod:`gitool.data.store`.

The build validates every input before reading coverage, reads the genome once, then
reads each track once per merged run of target spans in a process pool. Workers write
track-major slabs to a scratch file with ``pwrite`` (no memory maps, so memory stays flat
whatever the track count); the main process transposes them into ``targets.npy``. All of
it happens in a hidden sibling folder renamed into place at the very end.

Windows come from tiling the kept chromosomes or, with ``--windows``, from a BED (Basenji's
``sequences.bed``). BED windows are read in genome order like tiled ones (same merged runs)
and their rows are written at their places in the BED's order (:class:`_RowFile`).
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import multiprocessing
import os
import signal
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyBigWig
from rich.markup import escape

from gitool import __version__
from gitool.config import BUILD_RUNTIME_ONLY, BuildOptions
from gitool.config.build import max_n_frac_of
from gitool.console import info, progress, warn
from gitool.data.bigwig import check_bigwigs, crashed, negative_error, silence_stderr
from gitool.data.genome import N_CODE, Genome, describe_choice, select_chroms
from gitool.data.npy import NpyWriter, npy_header
from gitool.data.store import FORMAT_NAME, STORE_FORMAT, is_coverage_store, write_manifest
from gitool.data.store import LAYOUT as STORE_LAYOUT
from gitool.data.tracks import (
    FLOAT16_MAX,
    TRANSFORM_VERSION,
    Track,
    pool_bins,
    read_tracks,
    read_values,
    scale_that_fits,
    soft_and_hard_clip,
    store_rows,
    to_float16,
    write_tracks_table,
)
from gitool.data.windows import (
    BLOCK_TARGETS,
    BLOCK_WINDOWS,
    DEFAULT_SPLIT_COLUMN,
    SPLITS,
    Contig,
    Geometry,
    check_split_chroms,
    contigs_by_chrom,
    contigs_by_fraction,
    default_split_chroms,
    merge_intervals,
    overlap_bp,
    parse_fractions,
    read_bed,
    read_windows,
    tile_contig,
)
from gitool.errors import InputError, RunFailure, opt
from gitool.files import Outputs, staged_folder
from gitool.machine import cpu_count

# Longest stretch read by one bigWig ``values`` call: 2 Mbp = 8 MB of float32 per worker
# (``values`` itself runs ~15% faster per bp on 1-2 Mbp calls than on 8 Mbp ones).
MAX_RUN_BP = 1 << 21
_SCRATCH = "targets.by_track.tmp"


@dataclass
class Windows:
    """Windows of one split, in genome order. Arrays are parallel, length N."""

    chrom: np.ndarray  # object (str)
    start: np.ndarray  # int64, sequence window start
    target_start: np.ndarray  # int64
    # With --windows: each window's row in the BED's order of its split (None: genome order)
    row: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.start)


@dataclass(frozen=True)
class Run:
    """Consecutive windows of one split whose target spans touch: read as one stretch."""

    split: str
    chrom: str
    start: int
    end: int
    row0: int
    offsets: np.ndarray  # target starts minus ``start``, int64 (n,)


@dataclass(frozen=True)
class BuildSummary:
    out: Path
    counts: dict[str, int]
    n_tracks: int
    seconds: float
    # Seconds per phase: checks, genome, coverage, finish. With workers > 1 the pool reads
    # coverage during "genome" too; "coverage" is then only what is left after it.
    phases: dict[str, float]


# --------------------------------------------------------------------------- validation


def _check_options(opts: BuildOptions) -> tuple[Geometry, int | None]:
    """Checks across options (each option's own range is checked by :class:`BuildOptions`);
    returns the geometry and the stride (None with ``--windows``)."""
    geometry = Geometry(opts.seq_length, opts.bin_size, opts.target_length)
    geometry.check()
    if opts.windows:
        for name in _CHOOSE_WINDOWS:
            if getattr(opts, name) is not None:
                raise InputError(
                    f"and {opt(name)} exclude each other: {opt('windows')} takes the BED's "
                    f"windows and split labels as they are; drop {opt(name)}",
                    field="windows",
                )
        return geometry, None
    if opts.split_column is not None:
        raise InputError(
            f"names a column of the {opt('windows')} BED; give {opt('windows')} too",
            field="split_column",
        )
    stride = geometry.target_span if opts.stride is None else opts.stride
    if opts.split_fractions and (opts.valid_chroms or opts.test_chroms):
        raise InputError(
            f"and {opt('valid_chroms')}/{opt('test_chroms')} exclude each other; use one",
            field="split_fractions",
        )
    return geometry, stride


# Options that choose windows, which --windows takes from its BED instead.
_CHOOSE_WINDOWS = ("stride", "regions", "valid_chroms", "test_chroms", "split_fractions")


def _claim_output(opts: BuildOptions, tracks: list[Track]) -> Path:
    """Claim ``out`` before any work: never one of the inputs (or a folder holding one);
    with ``force`` only an earlier coverage store or an empty folder is replaced."""
    genome = Path(opts.genome)
    inputs = [genome, f"{genome}.fai", f"{genome}.gzi", opts.tracks, opts.blacklist, opts.regions,
              opts.windows]  # fmt: skip
    outputs = Outputs(opts.force, inputs=[*inputs, *(t.file for t in tracks)])
    out = outputs.folder(
        opts.out,
        is_coverage_store,
        "a coverage store from `gitool build-dataset`",
        field="out",
        layout=STORE_LAYOUT,
    )
    return out


def _plan_contigs(opts: BuildOptions, kept: list[str], sizes: dict[str, int], geometry: Geometry):
    if opts.split_fractions:
        fractions = parse_fractions(opts.split_fractions)
        block = max(BLOCK_TARGETS * geometry.target_span, BLOCK_WINDOWS * geometry.seq_length)
        return contigs_by_fraction(kept, sizes, fractions, block, opts.seed)
    valid, test = _names(opts.valid_chroms), _names(opts.test_chroms)
    check_split_chroms(kept, valid, test)
    given = (bool(valid), bool(test))
    valid, test = default_split_chroms(kept, sizes, valid, test)
    if not all(given):
        parts = [
            f"{label} {escape(','.join(names))}" + ("" if was else f" (default; set {opt(field)})")
            for label, names, field, was in (
                ("validation", valid, "valid_chroms", given[0]),
                ("test", test, "test_chroms", given[1]),
            )
        ]
        info("split chromosomes: " + ", ".join(parts))
    return contigs_by_chrom(kept, sizes, valid, test)


def _names(text: str | None) -> list[str]:
    return [x.strip() for x in text.split(",") if x.strip()] if text else []


def _candidate_windows(
    opts: BuildOptions,
    contigs: list[Contig],
    sizes: dict[str, int],
    geometry: Geometry,
    stride: int,
) -> list[tuple[Contig, np.ndarray]]:
    """Tile contigs; drop windows failing the blacklist / regions filters."""
    blacklist = (
        read_bed(opts.blacklist, sizes, "blacklist", lenient=True) if opts.blacklist else None
    )
    regions = read_bed(opts.regions, sizes, "regions") if opts.regions else None
    span = geometry.target_span
    planned = []
    for contig in contigs:
        starts = tile_contig(contig, geometry, stride)
        if blacklist is not None and len(starts):
            covered = overlap_bp(
                starts, starts + span, blacklist.get(contig.chrom, np.zeros((0, 2), np.int64))
            )
            starts = starts[covered <= most(opts.max_blacklist_frac, span)]
        if regions is not None and len(starts):
            covered = overlap_bp(
                starts, starts + span, regions.get(contig.chrom, np.zeros((0, 2), np.int64))
            )
            starts = starts[covered > 0]
        planned.append((contig, starts))
    if not any(len(s) for _, s in planned):
        raise InputError(
            "no windows to build: every window was filtered out or the chromosomes are shorter "
            f"than {opt('seq_length')} {geometry.seq_length}; check "
            f"{opt('chroms')}/{opt('regions')}/{opt('blacklist')}"
        )
    return planned


@dataclass(frozen=True)
class BedPlan:
    """What ``--windows`` chose: the chromosomes its windows use (genome order), the
    windows as ``planned`` (genome order, like tiled ones), each split's BED row of every
    planned window, and the windows ``--blacklist`` dropped."""

    kept: list[str]
    planned: list[tuple[Contig, np.ndarray]]
    order: dict[str, np.ndarray]
    blacklisted: int


def _plan_bed_windows(opts: BuildOptions, names: list[str], sizes, geometry: Geometry) -> BedPlan:
    """Read the ``--windows`` BED (see :func:`~gitool.data.windows.read_windows`), drop the
    windows an explicit ``--blacklist`` covers, and sort each split into genome order
    (chromosome, then target start, then BED line) for reading."""
    allowed = set(select_chroms(names, opts.chroms)) if opts.chroms else None
    column = opts.split_column or DEFAULT_SPLIT_COLUMN
    bed = read_windows(opts.windows, sizes, geometry.seq_length, column, allowed)
    blacklist = (
        read_bed(opts.blacklist, sizes, "blacklist", lenient=True) if opts.blacklist else None
    )
    rank = {c: i for i, c in enumerate(names)}
    span = geometry.target_span
    used: set[str] = set()
    planned, order, blacklisted = [], {}, 0
    for split in SPLITS:
        chrom, ts = bed[split].chrom, bed[split].start + geometry.context_left
        if blacklist is not None and len(ts):
            good = np.ones(len(ts), dtype=bool)
            for c in set(chrom.tolist()) & set(blacklist):
                on = chrom == c
                covered = overlap_bp(ts[on], ts[on] + span, blacklist[c])
                good[on] = covered <= most(opts.max_blacklist_frac, span)
            blacklisted += int((~good).sum())
            chrom, ts = chrom[good], ts[good]
        index = np.array([rank[c] for c in chrom], dtype=np.int64)
        order[split] = np.lexsort((np.arange(len(ts)), ts, index))
        chrom, ts, index = chrom[order[split]], ts[order[split]], index[order[split]]
        bounds = np.concatenate([[0], np.flatnonzero(np.diff(index)) + 1, [len(ts)]])
        for a, b in zip(bounds[:-1], bounds[1:], strict=True):
            if b > a:
                c = str(chrom[a])
                planned.append((Contig(c, 0, sizes[c], split), ts[a:b]))
                used.add(c)
    _warn_shared_across_splits(planned, geometry, opts.windows)
    if not used:
        raise InputError(
            f"no windows left: every window of {opt('windows')} {opts.windows} overlaps "
            f"{opt('blacklist')} by more than {opt('max_blacklist_frac')} "
            f"{opts.max_blacklist_frac}"
        )
    return BedPlan([c for c in names if c in used], planned, order, blacklisted)


def most(fraction: float, length: int) -> int:
    """The most bp of ``length`` a ``fraction`` allows: 0.29 of 100 is 29 (``floor(0.29 *
    100)`` is 28 in floating point, which made both limits stricter than given)."""
    return math.floor(fraction * length + 1e-6)


def _warn_shared_across_splits(planned, geometry: Geometry, bed) -> None:
    """Warn when ``--windows`` windows of one split share sequence (and target bins) with
    windows of another: resized to ``seq_length``, BED intervals that do not touch may. The
    tiled windows never do; the BED is kept as it is."""
    by_chrom: dict[str, dict[str, np.ndarray]] = {}
    for contig, ts in planned:
        by_chrom.setdefault(contig.chrom, {})[contig.split] = ts
    counts = {"sequence": 0, "target": 0}
    kinds = (("sequence", geometry.context_left, geometry.seq_length),
             ("target", 0, geometry.target_span))  # fmt: skip
    for splits in by_chrom.values():
        for split, ts in splits.items():
            for kind, before, length in kinds:
                others = [np.stack([t - before, t - before + length], 1)
                          for s, t in splits.items() if s != split]  # fmt: skip
                if others:
                    merged = merge_intervals(np.concatenate(others))
                    covered = overlap_bp(ts - before, ts - before + length, merged)
                    counts[kind] += int((covered > 0).sum())
    shared, targets = counts["sequence"], counts["target"]
    if shared:
        warn(
            f"{opt('windows')} {bed}: {shared:,} windows share sequence with a window of "
            f"another split ({targets:,} share target bins), once resized to "
            f"{geometry.seq_length:,} bp; a model may have seen part of a valid or test "
            "window in training. The windows are kept as the BED gives them"
        )


# --------------------------------------------------------------------------- genome pass


def _candidates(planned, geometry: Geometry, order=None) -> dict[str, Windows]:
    """All planned windows of each split, in genome order (before the N filter); with
    ``order`` (``--windows``) each knows its row in the BED's order."""
    parts: dict[str, list] = {s: [] for s in SPLITS}
    for contig, target_starts in planned:
        parts[contig.split].append((contig.chrom, target_starts))
    windows = {}
    for split, items in parts.items():
        ts = np.concatenate([t for _, t in items]) if items else np.zeros(0, np.int64)
        chrom = [np.full(len(t), c, dtype=object) for c, t in items]
        windows[split] = Windows(
            chrom=np.concatenate(chrom) if chrom else np.zeros(0, object),
            start=ts - geometry.context_left,
            target_start=ts,
            row=None if order is None else order[split],
        )
    return windows


def _write_sequences(
    genome: Genome, planned, geometry: Geometry, max_n_frac: float, tmp: Path, on_batch,
    order: dict[str, np.ndarray] | None = None,
) -> dict[str, np.ndarray]:  # fmt: skip
    """Read the genome once (runs of ≤ MAX_RUN_BP), write the rows of windows that are not
    N-rich; returns each split's keep mask over its candidate windows.

    ``on_batch()`` is called after every run (the coverage pool is fed meanwhile). With
    ``order`` (``--windows``: each candidate's row in the BED's order) rows are written at
    their BED rows, and the rows of N-rich windows squeezed out at the end.
    """
    row_shape = (geometry.seq_length,)
    writers: dict = {
        s: NpyWriter(tmp / s / "sequences.npy", np.uint8, row_shape)
        if order is None
        else _RowFile(tmp / s / "sequences.npy", np.uint8, row_shape, len(order[s]))
        for s in SPLITS
    }
    done = dict.fromkeys(SPLITS, 0)  # candidates of each split before the current contig
    masks: dict[str, list] = {s: [] for s in SPLITS}
    max_n = most(max_n_frac, geometry.seq_length)
    total = sum(len(s) for _, s in planned)
    with progress("reading genome", total) as advance:
        for contig, target_starts in planned:
            starts = target_starts - geometry.context_left
            for lo, hi in _read_ranges(starts, MAX_RUN_BP):
                batch = starts[lo:hi]
                first, last = int(batch[0]), int(batch[-1]) + geometry.seq_length
                codes = genome.codes(contig.chrom, first, last)
                n_pos = np.flatnonzero(codes == N_CODE)
                offsets = batch - first
                n_count = np.searchsorted(n_pos, offsets + geometry.seq_length) - np.searchsorted(
                    n_pos, offsets
                )
                good = n_count <= max_n
                view = np.lib.stride_tricks.sliding_window_view(codes, geometry.seq_length)
                rows = offsets[good]
                step = max(1, (1 << 25) // geometry.seq_length)  # ≤ 32 MB copied at a time
                writer = writers[contig.split]
                if order is None:
                    for k in range(0, len(rows), step):
                        writer.append(view[rows[k : k + step]])
                else:
                    first_row = done[contig.split] + lo
                    at = order[contig.split][first_row : first_row + hi - lo][good]
                    for k in range(0, len(rows), step):
                        writer.put(view[rows[k : k + step]], at[k : k + step])
                masks[contig.split].append(good)
                advance(hi - lo)
                on_batch()
            done[contig.split] += len(target_starts)
    keep = {s: np.concatenate(m) if m else np.zeros(0, bool) for s, m in masks.items()}
    for split, writer in writers.items():
        if order is None:
            writer.close()
        else:
            writer.close(_in_bed_order(keep[split], order[split]))
    if not any(k.any() for k in keep.values()):
        raise InputError(
            f"no windows left: every window has more than {opt('max_n_frac')} {max_n_frac} N bases"
        )
    return keep


def _in_bed_order(values: np.ndarray, order: np.ndarray) -> np.ndarray:
    """Per-candidate ``values`` (genome order) rearranged into the BED's order."""
    out = np.empty_like(values)
    out[order] = values
    return out


def _destinations(keep: np.ndarray, order: np.ndarray) -> np.ndarray:
    """Row in the store (BED order, N-rich windows left out) of each kept candidate, in
    genome order."""
    rank = np.cumsum(_in_bed_order(keep, order)) - 1
    return rank[order][keep]


class _RowFile:
    """A new ``.npy`` file of ``n`` rows written in any order (:meth:`put`); ``close(keep)``
    squeezes out the rows not kept (moving the others down, in place).

    ``--windows`` stores rows in the BED's order while reading goes in genome order. Rows
    go out with ``pwrite`` (no memory map: memory stays flat), consecutive rows together.
    """

    def __init__(self, path: Path, dtype, row_shape: tuple[int, ...], n: int):
        self.dtype, self.row_shape = np.dtype(dtype), tuple(row_shape)
        self.row_bytes = self.dtype.itemsize * int(np.prod(row_shape))
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o666)
        header = npy_header(self.dtype, (n, *self.row_shape))
        self._write(header, 0)
        self.offset = len(header)  # the header's length does not depend on the row count
        os.ftruncate(self._fd, self.offset + n * self.row_bytes)

    def _write(self, data, offset: int) -> None:
        view = memoryview(data).cast("B")
        while len(view):
            written = os.pwrite(self._fd, view, offset)
            view, offset = view[written:], offset + written

    def put(self, rows: np.ndarray, at: np.ndarray) -> None:
        """Write ``rows`` (k, *row_shape) at rows ``at`` (k,) of the file."""
        rows = np.ascontiguousarray(rows, dtype=self.dtype)
        bounds = np.concatenate([[0], np.flatnonzero(np.diff(at) != 1) + 1, [len(at)]])
        for a, b in zip(bounds[:-1], bounds[1:], strict=True):
            if b > a:
                self._write(rows[a:b], self.offset + int(at[a]) * self.row_bytes)

    def __enter__(self) -> _RowFile:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self, keep: np.ndarray | None = None) -> None:
        """Finish the file; with ``keep`` (n,) only the kept rows stay, in their order."""
        if self._fd < 0:
            return
        try:
            if keep is not None and not keep.all():
                self._squeeze(np.flatnonzero(keep))
        finally:
            os.close(self._fd)
            self._fd = -1

    def _squeeze(self, kept: np.ndarray) -> None:
        step = max(1, (1 << 25) // self.row_bytes)  # ≤ 32 MB moved at a time
        for to in range(0, len(kept), step):
            source = kept[to : to + step]
            if source[-1] == to + len(source) - 1:  # kept rows ascend: these stay in place
                continue
            data = bytearray()
            bounds = np.concatenate([[0], np.flatnonzero(np.diff(source) != 1) + 1, [len(source)]])
            for a, b in zip(bounds[:-1], bounds[1:], strict=True):
                data += _read_exactly(
                    self._fd, (b - a) * self.row_bytes,
                    self.offset + int(source[a]) * self.row_bytes,
                )  # fmt: skip
            # Rows only move towards the start: what is still to be read lies after ``to``.
            self._write(data, self.offset + to * self.row_bytes)
        self._write(npy_header(self.dtype, (len(kept), *self.row_shape)), 0)
        os.ftruncate(self._fd, self.offset + len(kept) * self.row_bytes)


def _read_exactly(fd: int, size: int, offset: int) -> bytes:
    parts = []
    while size:
        data = os.pread(fd, size, offset)
        if not data:
            raise OSError(f"unexpected end of file reading {size} bytes at {offset}")
        parts.append(data)
        size, offset = size - len(data), offset + len(data)
    return b"".join(parts)


def _read_ranges(starts: np.ndarray, max_bp: int) -> list[tuple[int, int]]:
    """Split sorted positions into consecutive index ranges spanning ≤ ``max_bp`` each."""
    if len(starts) == 0:
        return []
    group = (starts - starts[0]) // max_bp
    edges = np.flatnonzero(np.diff(group)) + 1
    bounds = np.concatenate([[0], edges, [len(starts)]])
    return [(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


# --------------------------------------------------------------------------- coverage pass


def _runs(split: str, windows: Windows, span: int) -> list[Run]:
    """Merge the target spans of consecutive windows into runs of ≤ MAX_RUN_BP.

    Spans merge when the gap between them is at most one span (reading the gap costs less
    than another call), so a stride above the span or a filtered window does not turn the
    reads into one call per window.
    """
    runs: list[Run] = []
    n = len(windows)
    if n == 0:
        return runs
    ts = windows.target_start
    breaks = np.ones(n, dtype=bool)
    breaks[1:] = (windows.chrom[1:] != windows.chrom[:-1]) | (ts[1:] > ts[:-1] + 2 * span)
    bounds = np.concatenate([np.flatnonzero(breaks), [n]])
    for a, b in zip(bounds[:-1], bounds[1:], strict=True):
        for lo, hi in _read_ranges(ts[a:b], MAX_RUN_BP - span):
            lo, hi = lo + a, hi + a
            start = int(ts[lo])
            runs.append(
                Run(
                    split,
                    str(windows.chrom[lo]),
                    start,
                    int(ts[hi - 1]) + span,
                    lo,
                    ts[lo:hi] - start,
                )
            )
    return runs


@dataclass
class Saturation:
    """The windows of one track with bins beyond float16's maximum (stored as 65,504): per
    ``(split, window)``, the number of such bins and the largest value. Only windows the
    store keeps count (:meth:`kept`): a blacklisted or N-rich stretch between windows, or a
    window dropped for its N, is read but never stored."""

    windows: dict = field(default_factory=dict)  # (split, row) -> (bins, peak)

    def add(self, values: np.ndarray, split: str, row0: int) -> None:
        """Record the windows of float32 ``values`` ``(n_windows, target_length)``, window
        ``i`` being row ``row0 + i`` of ``split``, that hold bins beyond the float16 range."""
        over = np.abs(values) > FLOAT16_MAX
        for i in np.flatnonzero(over.any(1)):
            peak = float(np.abs(values[i]).max())
            self.windows[(split, row0 + int(i))] = (int(over[i].sum()), peak)

    def kept(self, keep: dict[str, np.ndarray]) -> tuple[int, float]:
        """Saturated bins and the peak over the windows ``keep`` (split -> mask) keeps."""
        found = [v for (split, row), v in self.windows.items() if keep[split][row]]
        return sum(b for b, _ in found), max((p for _, p in found), default=0.0)


def _run_targets(
    bw, run: Run, track: Track, nonnegative: bool, geometry: Geometry, saturation: Saturation
) -> np.ndarray:
    """float16 ``(n_windows, target_length)`` of one track over one run."""
    bin_size, length = geometry.bin_size, geometry.target_length
    values = read_values(bw, run.chrom, run.start, run.end, nonnegative)
    if not np.any(run.offsets % bin_size):
        # Windows share the run's bin grid: pool and clip each bin once, then gather.
        pooled = pool_bins(values, bin_size, track.sum_stat, track.scale)
        _check_bins(pooled, track, run.chrom, run.start, bin_size)
        bins = soft_and_hard_clip(pooled, track.clip_soft, track.clip)
        index = run.offsets[:, None] // bin_size + np.arange(length)
        saturation.add(bins[index], run.split, run.row0)  # the windows' bins, not the gaps'
        return to_float16(bins)[index]
    # Off-grid stride: pool every window on its own grid (the run is still read once),
    # a bounded number of windows at a time.
    out = np.empty((len(run.offsets), length), np.float16)
    step = max(1, MAX_RUN_BP // geometry.target_span)
    for lo in range(0, len(run.offsets), step):
        offsets = run.offsets[lo : lo + step]
        base = values[offsets[:, None] + np.arange(geometry.target_span)]
        pooled = pool_bins(base.ravel(), bin_size, track.sum_stat, track.scale)
        _check_bins(pooled, track, run.chrom, run.start + int(offsets[0]), bin_size)
        bins = soft_and_hard_clip(pooled, track.clip_soft, track.clip).reshape(-1, length)
        saturation.add(bins, run.split, run.row0 + lo)
        out[lo : lo + step] = to_float16(bins)
    return out


def _check_bins(pooled: np.ndarray, track: Track, chrom: str, start: int, bin_size: int) -> None:
    """Pooled bins must be finite and >= 0 (the header check misses files without a
    summary). ``start`` is the position of the first bin, for the error."""
    bad = ~(pooled >= 0)  # catches NaN too (inf - inf)
    if np.isinf(pooled).any() or np.isnan(pooled).any():
        first = int(np.flatnonzero(~np.isfinite(pooled))[0])
        raise InputError(
            f"track {track.identifier!r}: {track.file} holds infinite values (in the bin at "
            f"{chrom}:{start + first * bin_size + 1:,}); coverage must be finite — remake "
            "the bigWig (NaN is read as 0, infinity is not)"
        )
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise negative_error(
            track, chrom, start + first * bin_size, float(pooled[first]) / track.scale, False
        )


class _TrackReader:
    """Per-process state: open bigWigs (a few, LRU), the scratch files' descriptors and the
    saturation of each track."""

    def __init__(self, tmp: Path, counts: dict[str, int], geometry: Geometry, tracks, nonneg):
        self.tmp, self.counts, self.geometry = tmp, counts, geometry
        self.tracks, self.nonneg = tracks, nonneg
        self._bigwigs: dict[int, object] = {}
        self._fds: dict[str, int] = {}

    def _bigwig(self, position: int):
        if position not in self._bigwigs:
            if len(self._bigwigs) >= 8:
                oldest = next(iter(self._bigwigs))
                self._bigwigs.pop(oldest).close()
            self._bigwigs[position] = pyBigWig.open(self.tracks[position].file)
        return self._bigwigs[position]

    def __call__(self, task: tuple[int, Run]) -> tuple[int, int, Saturation]:
        """Read one (track, run) into the scratch file; returns the windows done, the
        track's position and its saturated bins."""
        position, run = task
        track, saturation = self.tracks[position], Saturation()
        try:
            targets = _run_targets(
                self._bigwig(position), run, track, self.nonneg[position], self.geometry,
                saturation,
            )  # fmt: skip
        except RuntimeError:  # pyBigWig: "An error occurred while fetching values!"
            raise _damaged(track, run) from None
        if run.split not in self._fds:
            self._fds[run.split] = os.open(self.tmp / run.split / _SCRATCH, os.O_WRONLY)
        row = position * self.counts[run.split] + run.row0
        os.pwrite(self._fds[run.split], targets.tobytes(), row * self.geometry.target_length * 2)
        return len(run.offsets), position, saturation

    def close(self) -> None:
        for bw in self._bigwigs.values():
            bw.close()
        for fd in self._fds.values():
            os.close(fd)
        self._bigwigs, self._fds = {}, {}


def _damaged(track: Track, run: Run) -> InputError:
    return InputError(
        f"track {track.identifier!r}: {track.file} is damaged (reading "
        f"{run.chrom}:{run.start + 1:,}-{run.end:,} failed); remake or re-download it"
    )


_reader: _TrackReader | None = None


def _init_worker(*args) -> None:
    global _reader
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    silence_stderr()  # libBigWig's own lines; errors reach the parent as exceptions
    _reader = _TrackReader(*args)


def _work(task):
    return _reader(task)  # type: ignore[misc]


def _probe(file: str, run: Run) -> None:
    """Read ``run`` of one bigWig (in a fresh process, to find the file that crashed one)."""
    silence_stderr()
    bw = pyBigWig.open(file)
    try:
        bw.values(run.chrom, run.start, run.end, numpy=True)
    finally:
        bw.close()


def _crashing_track(tracks: list[Track], tasks: list[tuple[int, Run]]) -> Track | None:
    """The track whose reading kills a reader process, among ``tasks`` (each read again,
    alone, in a fresh process); None when none does (the reader was killed or ran out of
    memory)."""
    context = multiprocessing.get_context("fork" if os.name == "posix" else "spawn")
    for position, run in tasks:
        with ProcessPoolExecutor(1, context) as pool:
            try:
                pool.submit(_probe, tracks[position].file, run).result()
            except BrokenProcessPool:
                return tracks[position]
            except Exception:  # noqa: S112 - a read error, reported when read for real
                continue
    return None


class _Coverage:
    """Reads every (track, run) into the scratch files in a process pool (one process for
    ``workers`` 1: a damaged bigWig that crashes libBigWig kills a reader, not gitool),
    fed a bounded number of tasks at a time (memory stays flat for huge track tables) so
    that the main process can read the genome meanwhile.
    """

    def __init__(self, tmp: Path, windows: dict[str, Windows], geometry, tracks, nonneg, workers):
        counts = {s: len(w) for s, w in windows.items()}
        for split, n in counts.items():
            with open(tmp / split / _SCRATCH, "wb") as handle:
                handle.truncate(n * geometry.target_length * len(tracks) * 2)
        runs = [r for s in SPLITS for r in _runs(s, windows[s], geometry.target_span)]
        self._tasks = ((p, r) for p in range(len(tracks)) for r in runs)  # lazily: may be millions
        self._args = (tmp, counts, geometry, tracks, nonneg)
        self.tracks = tracks
        self.total = sum(counts.values()) * len(tracks)
        self.label = f"reading {len(tracks)} tracks"
        self.workers = max(1, min(workers, len(tracks) * len(runs)))
        self.done = 0
        self.saturation = [Saturation() for _ in tracks]
        self._pool: ProcessPoolExecutor | None = None
        self._pending: dict = {}  # future -> task

    def __enter__(self) -> _Coverage:
        context = multiprocessing.get_context("fork" if os.name == "posix" else "spawn")
        self._pool = ProcessPoolExecutor(
            self.workers, context, initializer=_init_worker, initargs=self._args
        )
        if self.workers > 1:
            self.label += f" ({self.workers} workers)"
        # The first batch starts every worker now, before any progress bar's thread.
        self.poll()
        return self

    def poll(self, block: bool = False) -> int:
        """Collect finished tasks (waiting for one if ``block``), keep the pool fed."""
        assert self._pool is not None
        if block and self._pending:
            finished, _ = wait(self._pending, return_when=FIRST_COMPLETED)
        else:
            finished = {f for f in self._pending if f.done()}
        n = 0
        try:
            for future in finished:
                n += self._collect(future.result())
                del self._pending[future]
        except BrokenProcessPool:
            self._reader_died()
        room = 4 * self.workers - len(self._pending)
        for task in itertools.islice(self._tasks, room):
            self._pending[self._pool.submit(_work, task)] = task
        self.done += n
        return n

    def _collect(self, result: tuple[int, int, Saturation]) -> int:
        n, position, saturation = result
        self.saturation[position].windows.update(saturation.windows)
        return n

    def _reader_died(self) -> None:
        track = _crashing_track(self.tracks, list(self._pending.values()))
        if track is not None:
            raise crashed(track) from None
        raise RunFailure(
            "a bigWig reader process died (out of memory or killed); rerun with fewer workers"
        ) from None

    def finish(self) -> None:
        """Wait for everything left, with a progress bar."""
        with progress(self.label, self.total) as advance:
            advance(self.done)
            while self._pending:
                advance(self.poll(block=True))

    def warn_saturated(self, keep: dict[str, np.ndarray]) -> None:
        """One warning per track with stored bins beyond float16's range (in the windows
        ``keep`` keeps), with a scale that fits."""
        for track, saturation in zip(self.tracks, self.saturation, strict=True):
            bins, peak = saturation.kept(keep)
            if bins:
                warn(
                    f"track {track.identifier!r}: {bins:,} bins exceed float16's "
                    f"maximum {FLOAT16_MAX:,.0f} (up to {peak:,.0f}) and were "
                    f"stored as {FLOAT16_MAX:,.0f}; scale "
                    f"{scale_that_fits(track, peak):.3g} in the tracks file would "
                    "fit them"
                )

    def __exit__(self, *exc) -> None:
        if self._pool is not None:
            for future in self._pending:
                future.cancel()
            self._pool.shutdown(wait=True, cancel_futures=True)


def _transpose_targets(
    tmp: Path, split: str, keep: np.ndarray, geometry: Geometry, n_tracks: int, advance,
    dest: np.ndarray | None = None,
) -> dict:  # fmt: skip
    """Scratch ``(n_tracks, candidates, T)`` → ``targets.npy`` ``(N kept, T, n_tracks)``;
    returns per-track mean and max. ``dest`` (``--windows``): the store row of each kept
    candidate (see :func:`_destinations`); None: rows stay in genome order."""
    n = len(keep)
    length = geometry.target_length
    block = max(1, (1 << 25) // (length * n_tracks * 2))  # ~32 MB per block
    total = np.zeros(n_tracks, np.float64)
    peak = np.full(n_tracks, -np.inf)
    scratch = tmp / split / _SCRATCH
    path, row_shape = tmp / split / "targets.npy", (length, n_tracks)
    if dest is None:
        writer = NpyWriter(path, np.float16, row_shape)
    else:
        writer = _RowFile(path, np.float16, row_shape, len(dest))
    placed = 0  # kept candidates before the block
    with writer:
        fd = os.open(scratch, os.O_RDONLY)
        try:
            for r0 in range(0, n, block):
                rows = min(block, n - r0)
                slab = np.empty((n_tracks, rows, length), np.float16)
                for t in range(n_tracks):
                    offset = (t * n + r0) * length * 2
                    slab[t] = np.frombuffer(
                        os.pread(fd, rows * length * 2, offset), np.float16
                    ).reshape(rows, length)
                slab = slab[:, keep[r0 : r0 + rows]]
                if dest is None:
                    writer.append(slab.transpose(1, 2, 0))
                else:
                    writer.put(slab.transpose(1, 2, 0), dest[placed : placed + slab.shape[1]])
                    placed += slab.shape[1]
                advance(rows)
                if slab.shape[1]:
                    total += slab.sum(axis=(1, 2), dtype=np.float64)
                    peak = np.maximum(peak, slab.max(axis=(1, 2)).astype(np.float64))
        finally:
            os.close(fd)
    scratch.unlink()
    kept = int(keep.sum())
    return {
        "mean": [round(float(x), 6) for x in total / max(kept * length, 1)],
        "max": [round(float(x), 6) if kept else 0.0 for x in peak],
    }


# --------------------------------------------------------------------------- outputs


def _write_windows_bed(path: Path, windows: Windows, geometry: Geometry) -> None:
    with open(path, "w") as handle:
        for chrom, start, ts in zip(
            windows.chrom, windows.start, windows.target_start, strict=True
        ):
            handle.write(
                f"{chrom}\t{start}\t{start + geometry.seq_length}\t{ts}\t{ts + geometry.target_span}\n"
            )


def _manifest(
    opts, genome, kept, windows, geometry, stride, tracks_rows, stats, max_n_frac
) -> dict:
    """The store's manifest. ``stride`` is None with ``--windows`` (the BED's windows);
    ``max_n_frac`` and ``split_column`` are recorded as applied."""
    genome_info = genome.describe()
    options = {k: v for k, v in dataclasses.asdict(opts).items() if k not in BUILD_RUNTIME_ONLY}
    options.update(
        genome=genome_info.path,
        tracks=str(Path(opts.tracks).resolve()),
        blacklist=str(Path(opts.blacklist).resolve()) if opts.blacklist else None,
        regions=str(Path(opts.regions).resolve()) if opts.regions else None,
        stride=stride,
        max_n_frac=max_n_frac,
        windows=str(Path(opts.windows).resolve()) if opts.windows else None,
        split_column=(opts.split_column or DEFAULT_SPLIT_COLUMN) if opts.windows else None,
    )
    return {
        "format": FORMAT_NAME,
        "version": STORE_FORMAT,
        "gitool_version": __version__,
        "genome": {
            "path": genome_info.path,
            "size": genome_info.size,
            "fai_md5": genome_info.fai_md5,
            "chromosomes": {c: genome.sizes[c] for c in kept},
        },
        "seq_length": geometry.seq_length,
        "bin_size": geometry.bin_size,
        "target_length": geometry.target_length,
        "stride": stride,
        "n_tracks": len(tracks_rows),
        "encoding": {"A": 0, "C": 1, "G": 2, "T": 3, "N": 4},
        "transform": {
            "version": TRANSFORM_VERSION,
            "order": [
                "float32 base values, NaN -> 0",
                "x * scale",
                "pool bins by sum_stat (sum, mean, max, sum_sqrt/mean_sqrt = sqrt(1+x)-1)",
                "soft clip: x > clip_soft -> clip_soft + sqrt(x - clip_soft)",
                "hard clip to [-clip, clip]",
                "float16, clamped to +-65504",
            ],
        },
        "splits": {
            s: {
                "windows": len(windows[s]),
                "chromosomes": [c for c in kept if c in set(windows[s].chrom.tolist())],
                "track_mean": stats[s]["mean"],
                "track_max": stats[s]["max"],
            }
            for s in SPLITS
        },
        "tracks": tracks_rows,
        "options": options,
    }


# --------------------------------------------------------------------------- entry point


def build_store(opts: BuildOptions) -> BuildSummary:
    """Build a training store from a genome and a tracks table (``gitool build-dataset``).

    Raises:
        InputError: for any bad input, before any coverage is read and before any output
        folder appears.
    """
    began = time.perf_counter()
    clock = _Clock()
    geometry, stride = _check_options(opts)
    tracks = read_tracks(opts.tracks)
    out = _claim_output(opts, tracks)
    genome = Genome(opts.genome)
    try:
        if opts.windows:
            bed = _plan_bed_windows(opts, genome.names, genome.sizes, geometry)
            kept, planned, order = bed.kept, bed.planned, bed.order
            facts = check_bigwigs(tracks, genome.sizes, kept)
        else:
            kept = select_chroms(genome.names, opts.chroms)
            facts = check_bigwigs(tracks, genome.sizes, kept)
            contigs = _plan_contigs(opts, kept, genome.sizes, geometry)
            planned = _candidate_windows(opts, contigs, genome.sizes, geometry, stride)
            order = None
        if not any(len(starts) for contig, starts in planned if contig.split == "train"):
            raise InputError(_no_train(opts))
        _report_inputs(genome, kept, planned, tracks, facts)
        if opts.windows and bed.blacklisted:
            warn(
                f"{bed.blacklisted:,} {opt('windows')} windows dropped: their target span "
                f"overlaps {opt('blacklist')} by more than {opt('max_blacklist_frac')} "
                f"{opts.max_blacklist_frac}"
            )
        clock.lap("checks")
        windows = _write_store(opts, genome, kept, planned, order, geometry, stride, tracks,
                               facts, out, clock)  # fmt: skip
    finally:
        genome.close()
    counts = {s: len(windows[s]) for s in SPLITS}
    return BuildSummary(out, counts, len(tracks), time.perf_counter() - began, clock.laps)


def _report_inputs(genome: Genome, kept, planned, tracks: list[Track], facts) -> None:
    """Status lines (and warnings) once every input is checked."""
    for track, fact in zip(tracks, facts, strict=True):
        if fact.empty:
            warn(f"track {track.identifier!r}: {track.file} has no data; its targets are all 0")
    info(escape(describe_choice(genome.names, kept)))
    info(
        f"{len(kept)} chromosomes, {sum(len(s) for _, s in planned):,} candidate windows, "
        f"{len(tracks)} tracks"
    )


def _write_store(
    opts, genome, kept, planned, order, geometry, stride, tracks, facts, out: Path, clock,
) -> dict[str, Windows]:  # fmt: skip
    """Build the store in a hidden sibling of ``out`` and rename it into place. ``order``
    (``--windows``): each split's BED row of every planned window; rows are stored in the
    BED's order."""
    nonneg = [f.nonnegative for f in facts]
    max_n_frac = max_n_frac_of(opts)
    with staged_folder(out) as tmp:  # replaces out only if it existed when claimed
        for split in SPLITS:
            (tmp / split).mkdir()
        # Coverage is read for every candidate window while the main process reads the
        # genome; the few N-rich windows are dropped when the targets are transposed.
        candidates = _candidates(planned, geometry, order)
        workers = opts.workers or cpu_count()
        with _Coverage(tmp, candidates, geometry, tracks, nonneg, workers) as coverage:
            keep = _write_sequences(genome, planned, geometry, max_n_frac, tmp, coverage.poll,
                                    order)  # fmt: skip
            clock.lap("genome")
            coverage.finish()
        coverage.warn_saturated(keep)
        clock.lap("coverage")
        windows = {s: _subset(candidates[s], keep[s]) for s in SPLITS}
        dest = None
        if order is not None:
            dest = {s: _destinations(keep[s], order[s]) for s in SPLITS}
            windows = {s: _reordered(windows[s], dest[s]) for s in SPLITS}
            dropped = sum(int((~k).sum()) for k in keep.values())
            if dropped:
                warn(
                    f"{dropped:,} {opt('windows')} windows dropped: their sequence is more "
                    f"than {opt('max_n_frac')} {max_n_frac} N"
                )
        _check_split_sizes(windows, opts)
        with progress("writing targets", sum(len(k) for k in keep.values())) as advance:
            stats = {
                s: _transpose_targets(
                    tmp,
                    s,
                    keep[s],
                    geometry,
                    len(tracks),
                    advance,
                    None if dest is None else dest[s],
                )  # fmt: skip
                for s in SPLITS
            }
        for split in SPLITS:
            _write_windows_bed(tmp / split / "windows.bed", windows[split], geometry)
        rows = store_rows(tracks)
        write_tracks_table(tmp / "tracks.tsv", rows)
        manifest = _manifest(opts, genome, kept, windows, geometry, stride, rows, stats,
                             max_n_frac)  # fmt: skip
        # The manifest is written last: a folder without it is never a complete store.
        write_manifest(manifest, tmp / "manifest.yaml")
    clock.lap("finish")
    return windows


class _Clock:
    def __init__(self):
        self.laps: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.laps[name] = now - self._last
        self._last = now


def _no_train(opts: BuildOptions) -> str:
    if opts.windows:
        column = opts.split_column or DEFAULT_SPLIT_COLUMN
        return (
            f"the train split has no windows: {opt('windows')} {opts.windows} labels none "
            f"train in column {column} (or the filters dropped them all); a store needs "
            "training windows"
        )
    return (
        "the train split has no windows; give training more chromosomes "
        f"({opt('valid_chroms')}/{opt('test_chroms')}/{opt('chroms')}) or a larger train "
        "fraction"
    )


def _check_split_sizes(windows: dict[str, Windows], opts: BuildOptions) -> None:
    """No training windows is an error; an empty valid/test split is worth a warning."""
    if not len(windows["train"]):
        raise InputError(_no_train(opts))
    for split in ("valid", "test"):
        if not len(windows[split]):
            warn(
                f"the {split} split has no windows"
                + (" (too few blocks for the split fractions)" if opts.split_fractions else "")
            )


def _subset(windows: Windows, keep: np.ndarray) -> Windows:
    row = None if windows.row is None else windows.row[keep]
    return Windows(windows.chrom[keep], windows.start[keep], windows.target_start[keep], row)


def _reordered(windows: Windows, dest: np.ndarray) -> Windows:
    """Windows in store order: ``dest`` holds each window's row (a permutation)."""
    at = np.empty(len(dest), dtype=np.int64)
    at[dest] = np.arange(len(dest))
    return Windows(windows.chrom[at], windows.start[at], windows.target_start[at], dest[at])
