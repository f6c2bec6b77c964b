"""Tiling chromosomes into model windows; blacklist/regions filters; train/valid/test splits.

A window is a ``seq_length`` sequence whose centre ``target_length * bin_size`` bp are the
target span. Coordinates are 0-based, half-open. Windows never run off a chromosome and
never cross a split boundary (so no two windows of different splits share sequence).
"""

from __future__ import annotations

import gzip
import math
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gitool.console import warn
from gitool.data.genome import genome_spelling, preview
from gitool.errors import InputError, opt

SPLITS = ("train", "valid", "test")
# Fraction splits deal blocks of max(16 target spans, 4 windows) to splits; a run of
# same-split blocks is tiled as one contig, so only split boundaries cost sequence.
BLOCK_TARGETS = 16
BLOCK_WINDOWS = 4


def locus(chrom: str, start: int, end: int) -> str:
    """The 0-based half-open interval ``[start, end)`` as a genome browser or samtools
    reads it: ``chr1:1,001-1,040`` (1-based, both ends included)."""
    return f"{chrom}:{start + 1:,}-{end:,}"


@dataclass(frozen=True)
class Geometry:
    """Window geometry in bp. ``context_left`` may differ from ``context_right`` by one."""

    seq_length: int
    bin_size: int
    target_length: int

    @property
    def target_span(self) -> int:
        return self.target_length * self.bin_size

    @property
    def context_left(self) -> int:
        return (self.seq_length - self.target_span) // 2

    @property
    def context_right(self) -> int:
        return self.seq_length - self.target_span - self.context_left

    def check(self) -> None:
        """The target span must fit in the window (each length's own range is checked by
        the options dataclass)."""
        if self.target_span > self.seq_length:
            raise InputError(
                f"{self.target_length} × {opt('bin_size')} {self.bin_size} = "
                f"{self.target_span} bp does not fit in {opt('seq_length')} {self.seq_length}",
                field="target_length",
            )


@dataclass(frozen=True)
class Contig:
    """A stretch of one chromosome that belongs to one split."""

    chrom: str
    start: int
    end: int
    split: str


def open_text(path: Path):
    """A text file for reading, gzip-decompressed when it starts with the gzip magic bytes
    (whatever its name: ``.bed.gz`` and bgzip files alike)."""
    with open(path, "rb") as handle:
        gzipped = handle.read(2) == b"\x1f\x8b"
    opener = gzip.open if gzipped else open
    return opener(path, "rt", encoding="utf-8-sig", errors="replace")  # -sig: drops a BOM


# Binary formats a BED argument is likely to be given by mistake: their first bytes.
_BINARY = {
    b"\x26\xfc\x8f\x88": "a bigWig",
    b"\x88\x8f\xfc\x26": "a bigWig",
    b"\xeb\xf2\x89\x87": "a bigBed",
    b"\x87\x89\xf2\xeb": "a bigBed",
    b"BAM\x01": "a BAM file",
    b"BCF\x02": "a BCF file",
}


def binary_kind(path: Path) -> str | None:
    """What a file that should be text is instead (``"a bigWig"``, ``"binary data"``), read
    from its first 4 kB (decompressed when gzipped); None for text."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(4096)
        if head[:2] == b"\x1f\x8b":
            with gzip.open(path, "rb") as handle:
                head = handle.read(4096)
    except (OSError, EOFError, zlib.error):
        return None  # unreadable or damaged: the reader's own error says so
    kind = _BINARY.get(head[:4])
    if kind is None and b"\x00" in head:
        kind = "binary data"
    return kind


def bed_records(path: str | Path, option: str) -> list[tuple[str, str, int, int]]:
    """The intervals of a BED file as ``(where, chrom, start, end)``; ``where`` names the
    option (``option``: its field name), file and line for later errors.

    Plain or gzip-compressed (detected by content, not name). Blank, ``#``, ``track`` and
    ``browser`` lines are skipped; columns beyond the third are ignored; fields may be tab
    or space separated.

    Raises:
        InputError: missing file, a line without three fields or with non-integer
        coordinates (naming file and line), a damaged gzip file, or no interval at all.
    """
    return [
        (where, fields[0], start, end) for where, fields, start, end in _bed_lines(path, option)
    ]


def _bed_lines(path: str | Path, option: str) -> list[tuple[str, list[str], int, int]]:
    """:func:`bed_records` with every field of each line: ``(where, fields, start, end)``."""
    path = Path(path)
    name = opt(option)
    if path.is_dir():
        raise InputError(f"{name} {path}: a folder; give a BED file")
    if not path.is_file():
        raise InputError(f"{name} {path}: no such file")
    kind = binary_kind(path)
    if kind is not None:
        raise InputError(
            f"{name} {path}: {kind}, not a BED text file (chrom<TAB>start<TAB>end per line)"
        )
    records = []
    try:
        with open_text(path) as handle:
            for n, line in enumerate(handle, start=1):
                if not line.strip() or line.startswith(("#", "track", "browser")):
                    continue
                fields = line.split()
                where = f"{name} {path} line {n}"
                if len(fields) < 3:
                    raise InputError(
                        f"{where}: expected 'chrom<TAB>start<TAB>end', got {line.strip()!r}"
                    )
                try:
                    start, end = int(fields[1]), int(fields[2])
                except ValueError:
                    raise InputError(
                        f"{where}: start/end must be integers, got {line.strip()!r}"
                    ) from None
                records.append((where, fields, start, end))
    except (EOFError, zlib.error, gzip.BadGzipFile) as err:  # a truncated or damaged .gz
        raise InputError(
            f"{name} {path}: damaged gzip file ({err}); re-download or re-compress it "
            "(check with gzip -t), or give the BED uncompressed"
        ) from None
    if not records:
        raise InputError(f"{name} {path}: no intervals in it; give a BED with at least one")
    return records


def unknown_chrom_error(where: str, chrom: str, sizes: dict[str, int]) -> InputError:
    """``chrom`` is not in the genome: the error, with the fix when the genome spells it
    differently (:func:`gitool.data.genome.genome_spelling`)."""
    alt = genome_spelling(chrom, sizes)
    hint = f" (the genome names it {alt!r}: rename it in the file)" if alt else ""
    return InputError(f"{where}: chromosome {chrom!r} is not in the genome{hint}")


def read_bed(
    path: str | Path, sizes: dict[str, int], option: str, lenient: bool = False
) -> dict[str, np.ndarray]:
    """Read a BED file into merged, sorted intervals per chromosome.

    Args:
        path: BED (see :func:`bed_records`).
        sizes: genome chromosome sizes, to check names and coordinates.
        option: the option (field name) the file came from, named in errors.
        lenient: for a published list made for a whole assembly (a blacklist): intervals on
            chromosomes the genome lacks are skipped and ones running off a chromosome's end
            clipped, with one warning each; a chromosome the genome spells differently is
            still an error, and so is a file with nothing on the genome.

    Returns:
        ``{chrom: int64 array (n, 2)}`` of merged ``[start, end)`` intervals.

    Raises:
        InputError: naming file and line for malformed lines, unknown chromosomes (with the
        fix when the genome spells them differently), coordinates off the chromosome, or an
        empty file.
    """
    raw: dict[str, list[tuple[int, int]]] = {}
    skipped: dict[str, int] = {}
    clipped: list[str] = []
    for where, chrom, start, end in bed_records(path, option):
        if chrom not in sizes:
            if not lenient or genome_spelling(chrom, sizes) is not None:
                raise unknown_chrom_error(where, chrom, sizes)
            skipped[chrom] = skipped.get(chrom, 0) + 1
            continue
        if lenient and 0 <= start < sizes[chrom] < end:
            clipped.append(f"{where.rsplit(' ', 1)[-1]} ({chrom}:{start}-{end})")
            end = sizes[chrom]
        if not 0 <= start < end <= sizes[chrom]:
            raise InputError(
                f"{where}: interval {start}-{end} is empty or off {chrom} "
                f"(0-{sizes[chrom]}); BED is 0-based, half-open"
            )
        raw.setdefault(chrom, []).append((start, end))
    name = f"{opt(option)} {path}"
    if skipped:
        if not raw:
            raise InputError(
                f"{name}: none of its chromosomes ({preview(list(skipped), 3)}) is in the genome; "
                "give the file made for this assembly"
            )
        warn(
            f"{name}: skipped {sum(skipped.values()):,} interval(s) on {len(skipped):,} "
            f"chromosome(s) the genome does not have ({preview(list(skipped), 3)})"
        )
    if clipped:
        warn(
            f"{name}: clipped {len(clipped):,} interval(s) running off a chromosome's end to "
            f"it (line {preview(clipped, 3)})"
        )
    return {chrom: merge_intervals(np.array(iv, dtype=np.int64)) for chrom, iv in raw.items()}


def merge_intervals(intervals: np.ndarray, gap: int = 0) -> np.ndarray:
    """Merge ``(n, 2)`` intervals that overlap or lie within ``gap`` bp; sorted output."""
    if len(intervals) == 0:
        return intervals.reshape(0, 2)
    iv = intervals[np.argsort(intervals[:, 0], kind="stable")]
    ends = np.maximum.accumulate(iv[:, 1])
    new = np.ones(len(iv), dtype=bool)
    new[1:] = iv[1:, 0] > ends[:-1] + gap
    group = np.cumsum(new) - 1
    starts = iv[new, 0]
    merged_ends = np.zeros(len(starts), dtype=np.int64)
    np.maximum.at(merged_ends, group, iv[:, 1])
    return np.stack([starts, merged_ends], axis=1)


def overlap_bp(starts: np.ndarray, ends: np.ndarray, merged: np.ndarray) -> np.ndarray:
    """Base pairs of each query ``[starts, ends)`` covered by sorted merged intervals."""
    if len(merged) == 0:
        return np.zeros(len(starts), dtype=np.int64)
    lengths = merged[:, 1] - merged[:, 0]
    before = np.concatenate([[0], np.cumsum(lengths)])  # bp covered before interval k

    def covered_until(x: np.ndarray) -> np.ndarray:
        k = np.searchsorted(merged[:, 0], x, side="right") - 1
        inside = np.clip(x - merged[np.maximum(k, 0), 0], 0, lengths[np.maximum(k, 0)])
        return np.where(k >= 0, before[np.maximum(k, 0)] + inside, 0)

    return covered_until(ends) - covered_until(starts)


def default_split_chroms(
    kept: list[str], sizes: dict[str, int], valid: list[str], test: list[str]
) -> tuple[list[str], list[str]]:
    """Fill in whichever of ``valid``/``test`` is empty.

    ``chr8`` valid / ``chr9`` test (or ``8``/``9``) when present and free; otherwise the
    free chromosome whose size is nearest 5% of the kept genome (test first), always
    leaving at least one chromosome for training.
    """
    free = [c for c in kept if c not in valid and c not in test]
    for name, chosen, preferred in (("test", test, ("chr9", "9")), ("valid", valid, ("chr8", "8"))):
        if chosen:
            continue
        pick = next((c for c in preferred if c in free), None)
        if pick is None:
            if len(free) < 2:
                raise InputError(
                    f"{len(kept)} chromosome(s) kept: too few to also choose a {name} chromosome "
                    f"and keep one for training; pass {opt('split_fractions')} 0.9,0.05,0.05 "
                    f"(or name {opt('valid_chroms')} and {opt('test_chroms')} yourself)"
                )
            target = 0.05 * sum(sizes[c] for c in kept)
            order = {c: i for i, c in enumerate(free)}
            pick = min(free, key=lambda c: (abs(sizes[c] - target), order[c]))
        chosen.append(pick)
        free.remove(pick)
    return valid, test


def parse_fractions(text: str) -> tuple[float, float, float]:
    """``"0.9,0.05,0.05"`` → (train, valid, test); must be three numbers ≥ 0 summing to 1."""
    try:
        values = tuple(float(x) for x in text.split(","))
    except ValueError:
        values = ()
    if (
        len(values) != 3
        or not all(math.isfinite(v) and v >= 0 for v in values)
        or abs(sum(values) - 1) > 1e-6
        or values[0] == 0
    ):
        raise InputError(
            f"{text!r}: give three fractions for train,valid,test that "
            "sum to 1 (train > 0), e.g. 0.9,0.05,0.05",
            field="split_fractions",
        )
    return values  # type: ignore[return-value]


def check_split_chroms(kept: list[str], valid: list[str], test: list[str]) -> None:
    """Named validation/test chromosomes must be kept ones, and in one split only."""
    for field, names in (("valid_chroms", valid), ("test_chroms", test)):
        for name in names:
            if name not in kept:
                raise InputError(
                    f"{name!r} is not among the kept chromosomes "
                    f"({', '.join(kept[:6])}{'...' if len(kept) > 6 else ''})",
                    field=field,
                )
    both = sorted(set(valid) & set(test))
    if both:
        raise InputError(
            f"{both[0]!r} is in both {opt('valid_chroms')} and {opt('test_chroms')}; pick one"
        )


def contigs_by_chrom(
    kept: list[str], sizes: dict[str, int], valid: list[str], test: list[str]
) -> list[Contig]:
    """Whole chromosomes as contigs, each in the split its name puts it in."""
    check_split_chroms(kept, valid, test)
    split = {**{c: "valid" for c in valid}, **{c: "test" for c in test}}
    return [Contig(c, 0, sizes[c], split.get(c, "train")) for c in kept]


def contigs_by_fraction(
    kept: list[str],
    sizes: dict[str, int],
    fractions: tuple[float, float, float],
    block_bp: int,
    seed: int,
) -> list[Contig]:
    """Cut chromosomes into ``block_bp`` blocks, deal blocks to splits by a seeded shuffle.

    Exactly ``round(f * n_blocks)`` blocks go to valid and test; adjacent blocks of the
    same split merge into one contig.
    """
    blocks = [
        (c, s, min(s + block_bp, sizes[c])) for c in kept for s in range(0, sizes[c], block_bp)
    ]
    n = len(blocks)
    n_valid, n_test = round(fractions[1] * n), round(fractions[2] * n)
    order = np.random.default_rng(seed).permutation(n)
    label = np.array(["train"] * n, dtype=object)
    label[order[:n_valid]] = "valid"
    label[order[n_valid : n_valid + n_test]] = "test"
    contigs: list[Contig] = []
    for (chrom, start, end), split in zip(blocks, label, strict=True):
        last = contigs[-1] if contigs else None
        if last and last.chrom == chrom and last.split == split and last.end == start:
            contigs[-1] = Contig(chrom, last.start, end, split)
        else:
            contigs.append(Contig(chrom, start, end, str(split)))
    return contigs


def tile_contig(contig: Contig, geometry: Geometry, stride: int) -> np.ndarray:
    """Target starts of the windows tiling ``contig``; int64 ``(n,)``.

    The first target span starts ``context_left`` bp into the contig, so the window starts
    at the contig start; windows continue while the whole window fits.
    """
    first = contig.start + geometry.context_left
    last = contig.end - geometry.context_right - geometry.target_span
    if last < first:
        return np.zeros(0, dtype=np.int64)
    return np.arange(first, last + 1, stride, dtype=np.int64)


# Basenji's sequences.bed: chrom, start, end, split label.
DEFAULT_SPLIT_COLUMN = 4


@dataclass(frozen=True)
class BedWindows:
    """Windows of one split taken from a ``--windows`` BED, in the BED's order, resized to
    the store geometry. Arrays are parallel, length N."""

    chrom: np.ndarray  # object (str)
    start: np.ndarray  # int64, sequence window start after resizing


def resized_start(start: int, end: int, seq_length: int) -> int:
    """Start of the ``seq_length`` window centred on ``[start, end)``:
    ``floor((start + end - seq_length) / 2)``. When ``start + end - seq_length`` is odd the
    centre falls on half a base and the window is placed half a base towards the
    chromosome start (as the target span's odd context puts the extra base on the right).
    """
    return (start + end - seq_length) // 2


def read_windows(
    path: str | Path,
    sizes: dict[str, int],
    seq_length: int,
    split_column: int = DEFAULT_SPLIT_COLUMN,
    chroms: set[str] | None = None,
) -> dict[str, BedWindows]:
    """The windows of a BED with a split label per line (Basenji's ``sequences.bed``),
    each resized around its centre to ``seq_length`` (:func:`resized_start`).

    Args:
        path: BED file (plain or gzip; see :func:`bed_records`): chrom, start, end, and the
            split label (``train``, ``valid`` or ``test``) in column ``split_column``
            (1-based).
        sizes: genome chromosome sizes.
        seq_length: the store's window length.
        chroms: the chromosomes ``--chroms`` allows (None: any chromosome of the genome).

    Returns:
        ``{split: BedWindows}`` for every split, each in the BED's line order.

    Raises:
        InputError: one line naming the file and line: a malformed line, a missing or
        unknown split label, a chromosome not in the genome (with the ``chr``-prefix fix
        when that is it) or not allowed by ``--chroms``, an empty interval, or a resized
        window that runs off its chromosome.
    """
    option = "windows"
    parts: dict[str, tuple[list[str], list[int]]] = {s: ([], []) for s in SPLITS}
    for where, fields, start, end in _bed_lines(path, option):
        chrom = fields[0]
        if len(fields) < split_column:
            raise InputError(
                f"{where}: no split label in column {split_column} (the line has "
                f"{len(fields)} columns); give each window's split ({', '.join(SPLITS)}) in "
                f"column {DEFAULT_SPLIT_COLUMN} as Basenji's sequences.bed does, or name its "
                f"column with {opt('split_column')}"
            )
        label = fields[split_column - 1]
        if label not in SPLITS:
            raise InputError(
                f"{where}: unknown split label {label!r} in column {split_column}; the labels "
                f"are {', '.join(SPLITS)} (another column holds them? name it with "
                f"{opt('split_column')})"
            )
        if chrom not in sizes:
            raise unknown_chrom_error(where, chrom, sizes)
        if chroms is not None and chrom not in chroms:
            raise InputError(
                f"{where}: chromosome {chrom!r} is not among the chromosomes {opt('chroms')} "
                f"keeps; add it to {opt('chroms')} or drop the line"
            )
        if not 0 <= start < end:
            raise InputError(
                f"{where}: interval {start}-{end} is empty or negative; BED is 0-based, half-open"
            )
        first = resized_start(start, end, seq_length)
        if first < 0 or first + seq_length > sizes[chrom]:
            raise InputError(
                f"{where}: {chrom}:{start}-{end} resized to {seq_length:,} bp "
                f"({opt('seq_length')}) around its centre is {chrom}:{first}-"
                f"{first + seq_length}, which runs off {chrom} (0-{sizes[chrom]}); drop the "
                f"line or give a smaller {opt('seq_length')}"
            )
        names, starts = parts[label]
        names.append(chrom)
        starts.append(first)
    return {
        split: BedWindows(np.array(names, dtype=object), np.array(starts, dtype=np.int64))
        for split, (names, starts) in parts.items()
    }
