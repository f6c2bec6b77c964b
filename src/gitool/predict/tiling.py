"""Regions ↔ model windows ↔ output bins, for tiled prediction.

All coordinates are 0-based, half-open (``[start, end)``), in bp.

1. **Regions.** BED intervals are checked line by line, clipped to their chromosome (with a
   warning), merged when they overlap or touch, then snapped outwards to the genome-wide
   bin grid — bin ``k`` of a chromosome is ``[k·bin_size, (k+1)·bin_size)`` — and merged
   again (two regions in neighbouring or shared bins become one). A snapped region is
   ``[floor(start / bin_size)·bin_size, min(ceil(end / bin_size)·bin_size, size))``: both
   ends lie on the grid except a region's end at the chromosome end, whose last bin is
   clipped (shorter than ``bin_size``). A region shorter than one bin becomes that bin.

2. **Windows.** A region ``[rs, re)`` holds ``ceil((re - rs) / bin_size)`` bins. It is covered
   by windows whose target spans (``span = target_length · bin_size``) start at
   ``ts = rs, rs + span, rs + 2·span, ...`` while ``ts < re``; every ``ts`` is on the grid, so
   output bin ``j`` of a window is genome bin ``[ts + j·bin_size, ts + (j+1)·bin_size)``
   exactly (no half-bin offsets: Basenji #221). The model's input for target start ``ts`` is

       forward:             [ts − context_left + s,  ts + span + context_right + s)
       reverse complement:  [ts − context_right + s, ts + span + context_left + s)

   for a shift of ``s`` bp (the targets stay put). The reverse-complement window swaps the
   two contexts so that, once reversed, its target span again sits ``context_left`` bp in:
   when ``seq_length − span`` is odd the contexts differ by one and reusing the forward
   window would misplace the reversed bins by 1 bp. Sequence beyond a chromosome end is N
   (one-hot zeros). The last window of a region keeps only the bins before ``re``.

Windows are generated lazily, so a whole chromosome costs memory for one window at a time.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gitool.console import warn
from gitool.data.genome import Genome
from gitool.data.windows import Geometry, bed_records, merge_intervals, unknown_chrom_error
from gitool.errors import InputError, opt

READ_CHUNK = 1 << 20
"""bp of sequence read from the FASTA at a time (plus a margin) by :class:`SequenceReader`."""


@dataclass(frozen=True)
class Region:
    """A region ``[start, end)`` of one chromosome, merged and bin-snapped (unless read with
    ``merge=False``).

    ``start`` is a multiple of the bin size; so is ``end``, unless it is the chromosome end.
    """

    chrom: str
    start: int
    end: int

    def n_bins(self, bin_size: int) -> int:
        """Output bins in the region (the last one may be shorter than ``bin_size``)."""
        return -(-(self.end - self.start) // bin_size)


@dataclass(frozen=True)
class Window:
    """One model window of a region.

    Attributes:
        region: index of its :class:`Region` in the list being tiled.
        chrom: chromosome.
        target_start: ``ts``, the first bp of the target span (on the bin grid).
        first_bin: bins of the region before this window's first bin.
        n_bins: output bins kept (``target_length``, fewer in a region's last window).
        end: end (bp) of the kept bins: ``ts + n_bins·bin_size``, clipped to the region end.
    """

    region: int
    chrom: str
    target_start: int
    first_bin: int
    n_bins: int
    end: int


# --------------------------------------------------------------------------- regions


def read_regions(
    path: str | Path, sizes: dict[str, int], bin_size: int, merge: bool = True
) -> list[Region]:
    """Read a BED file of regions to predict; merged, snapped to the bin grid, in genome order.

    Args:
        path: BED file, plain or gzip (3+ columns, tab or space separated; blank, ``#``,
            ``track`` and ``browser`` lines skipped). Extra columns are ignored.
        sizes: chromosome sizes in genome (FASTA) order.
        bin_size: bp per output bin; regions snap outwards to multiples of it.
        merge: False: each line's region as it is (checked and clipped the same way, not
            snapped or merged), in the file's order.

    Returns:
        Non-overlapping regions sorted by genome order, then start (``merge``: True).

    Raises:
        InputError: missing or empty file, malformed line, negative or empty interval,
        unknown chromosome (naming file and line), or no region left after clipping.
    """
    records = bed_records(path, "regions")
    return _build(records, sizes, bin_size, f"{opt('regions')} {path}", merge)


def regions_from_intervals(
    intervals: Iterable[tuple[str, int, int]], sizes: dict[str, int], bin_size: int
) -> list[Region]:
    """:func:`read_regions` for in-memory ``(chrom, start, end)`` intervals."""
    records = [
        (f"regions[{i}]", str(chrom), int(start), int(end))
        for i, (chrom, start, end) in enumerate(intervals)
    ]
    if not records:
        raise InputError("regions: no intervals given; give at least one (chrom, start, end)")
    return _build(records, sizes, bin_size, "regions")


def _build(
    records, sizes: dict[str, int], bin_size: int, source: str, merge: bool = True
) -> list[Region]:
    """Check, clip, merge, snap and merge again (see the module docstring)."""
    raw: dict[str, list[tuple[int, int]]] = {}
    given: list[Region] = []  # merge False: in the file's order
    clipped, dropped = [], []
    for where, chrom, start, end in records:
        if chrom not in sizes:
            raise unknown_chrom_error(where, chrom, sizes)
        if start < 0 or end <= start:
            raise InputError(
                f"{where}: interval {start}-{end} is empty or negative; BED is 0-based, "
                "half-open (end > start ≥ 0)"
            )
        size = sizes[chrom]
        if start >= size:
            dropped.append(f"{where} ({chrom}:{start}-{end}, {chrom} is {size:,} bp)")
            continue
        if end > size:
            clipped.append(f"{where} ({chrom}:{start}-{end} → {start}-{size})")
            end = size
        raw.setdefault(chrom, []).append((start, end))
        given.append(Region(chrom, start, end))
    if clipped:
        warn(
            f"{source}: {len(clipped)} region(s) run past their chromosome's end and were "
            f"clipped to it; first: {clipped[0].removeprefix(source + ' ')}"
        )
    if dropped:
        warn(
            f"{source}: {len(dropped)} region(s) start at or past their chromosome's end and "
            f"were skipped; first: {dropped[0].removeprefix(source + ' ')}"
        )
    if not raw:
        raise InputError(f"{source}: every region lies past its chromosome's end; nothing to do")
    if not merge:
        return given
    regions = []
    for chrom in sizes:  # genome order
        if chrom not in raw:
            continue
        merged = merge_intervals(np.array(raw[chrom], dtype=np.int64))
        snapped = merged.copy()
        snapped[:, 0] = merged[:, 0] // bin_size * bin_size
        snapped[:, 1] = np.minimum(-(-merged[:, 1] // bin_size) * bin_size, sizes[chrom])
        for start, end in merge_intervals(snapped):
            regions.append(Region(chrom, int(start), int(end)))
    return regions


# --------------------------------------------------------------------------- windows


def window_count(regions: Iterable[Region], geometry: Geometry) -> int:
    """Windows :func:`tile_regions` yields for ``regions``."""
    return sum(math.ceil((r.end - r.start) / geometry.target_span) for r in regions)


def tile_regions(regions: Iterable[Region], geometry: Geometry) -> Iterator[Window]:
    """Windows whose target spans cover each region, lazily, in region order.

    Target starts are ``rs, rs + span, ...`` (``span = target_length · bin_size``); see the
    module docstring for the arithmetic.
    """
    span, bin_size = geometry.target_span, geometry.bin_size
    for k, region in enumerate(regions):
        total = region.n_bins(bin_size)
        for ts in range(region.start, region.end, span):
            first = (ts - region.start) // bin_size
            n_bins = min(geometry.target_length, total - first)
            yield Window(k, region.chrom, ts, first, n_bins, min(ts + span, region.end))


def sequence_interval(
    target_start: int, geometry: Geometry, shift: int = 0, rc: bool = False
) -> tuple[int, int]:
    """The model input ``[start, end)`` (``seq_length`` bp) for a target start.

    Args:
        target_start: ``ts``, first bp of the target span.
        shift: move the input by this many bp (positive: downstream); targets stay put.
        rc: the window to reverse-complement; the two contexts swap so that the reversed
            target span lands ``context_left`` bp into the model's input.
    """
    left = geometry.context_right if rc else geometry.context_left
    start = target_start - left + shift
    return start, start + geometry.seq_length


class SequenceReader:
    """Codes of windows read from the FASTA in :data:`READ_CHUNK` pieces (windows overlap, and
    neighbours share a chunk); N beyond chromosome ends.

    Memory: one chunk (about 1 MB) whatever the region size.
    """

    def __init__(self, genome: Genome, chunk: int = READ_CHUNK, margin: int = 4096):
        self.genome = genome
        self.chunk, self.margin = chunk, margin
        self.chrom: str | None = None
        self.start = self.end = 0
        self.buffer = np.zeros(0, dtype=np.uint8)

    def codes(self, chrom: str, start: int, end: int) -> np.ndarray:
        """uint8 codes ``(end - start,)`` of ``chrom:start-end``; may be a view of the buffer."""
        if chrom != self.chrom or start < self.start or end > self.end:
            lo = start - self.margin
            hi = max(end, lo + self.chunk)
            self.buffer = self.genome.codes(chrom, lo, hi)
            self.chrom, self.start, self.end = chrom, lo, hi
        return self.buffer[start - self.start : end - self.start]
