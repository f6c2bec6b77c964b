"""The tracks table (Basenji ``targets.txt``), bigWig checks, and coverage → targets.

Per track, in this order: float32 base values (NaN → 0) → × ``scale`` → pool each bin
with ``sum_stat`` → soft clip → hard clip → float16 (clamped to the float16 range).
``TRANSFORM_VERSION`` names this recipe in every store's manifest so predictions can be
un-transformed (see :func:`untransform`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from gitool.console import warn
from gitool.errors import InputError

TRANSFORM_VERSION = 1
SUM_STATS = ("sum", "mean", "max", "sum_sqrt", "mean_sqrt")
GROUPS = ("DNASE", "ATAC", "CHIP", "CAGE", "RNA")
COLUMNS = (
    "index",
    "identifier",
    "file",
    "clip",
    "clip_soft",
    "scale",
    "sum_stat",
    "strand_pair",
    "description",
)
# Also read (a Basenji/Enformer release's ``targets.txt`` has it): the organism index,
# e.g. 0 human, 1 mouse. Recorded, not used.
OPTIONAL_COLUMNS = ("genome",)
# Basenji's HDF5 coverage files, which a tracks file for ``build-dataset`` cannot use.
HDF5_SUFFIXES = (".w5", ".h5", ".hdf5")
FLOAT16_MAX = float(np.finfo(np.float16).max)


@dataclass(frozen=True)
class Track:
    """One row of the normalised tracks table. ``clip``/``clip_soft`` None = no clip;
    ``genome`` is the organism index of a Basenji release's ``targets.txt`` (None when the
    tracks file has no ``genome`` column)."""

    index: int
    identifier: str
    file: str
    clip: float | None
    clip_soft: float | None
    scale: float
    sum_stat: str
    strand_pair: int
    description: str
    genome: int | None = None

    @property
    def group(self) -> str:
        """Assay group: the description's prefix before ``:`` (Enformer's convention)."""
        prefix = (
            self.description.split(":", 1)[0].strip().upper() if ":" in self.description else ""
        )
        return prefix if prefix in GROUPS else "other"

    def as_row(self) -> dict:
        return {**asdict(self), "group": self.group}


def read_tracks(path: str | Path, *, check_files: bool = True) -> list[Track]:
    """Parse and check a tracks file; relative ``file`` paths resolve against its folder.

    Two formats: Basenji ``targets.txt`` (tab-separated, header naming some of
    :data:`COLUMNS` and :data:`OPTIONAL_COLUMNS`; ``identifier`` and ``file`` required;
    the index may be an unnamed first column) or two columns ``identifier<TAB>path``
    without header. A Basenji/Enformer release's ``genome`` column (organism index) is
    kept as :attr:`Track.genome`.

    Args:
        path: the tracks file.
        check_files: True (``build-dataset``): every ``file`` must be an existing bigWig
            (resolved to an absolute path; Basenji's HDF5 ``.w5``/``.h5`` coverage is refused
            by name) and ``sum_stat`` one of :data:`SUM_STATS`. False (recording a data
            release's table): the ``file`` column may be missing or empty and is kept as the
            text given (not resolved, not checked), and any ``sum_stat`` is kept as given.
            Identifiers, indices, strand pairs and the clip/scale numbers are checked either way.

    Raises:
        InputError: naming the file and line, for anything malformed.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"tracks file {path}: no such file")
    lines = [
        (n, line.rstrip("\r\n"))
        for n, line in enumerate(_read_text(path).splitlines(), start=1)
        if line.strip() and not line.startswith("#")
    ]
    if not lines:
        raise InputError(f"tracks file {path}: no tracks in it; add one line per bigWig")
    header = [c.strip() for c in lines[0][1].split("\t")]
    if "identifier" in header or "file" in header:
        rows = _parse_with_header(path, header, lines[1:], check_files)
    else:
        rows = _parse_two_columns(path, lines)
    tracks = [_make_track(path, n, i, row, check_files) for i, (n, row) in enumerate(rows)]
    _check_tracks(path, tracks, [n for n, _ in rows])
    if "strand_pair" not in header:
        _warn_unpaired_strands(path, tracks)
    return tracks


def _warn_unpaired_strands(path: Path, tracks: list[Track]) -> None:
    """Without a ``strand_pair`` column every track is unstranded (as in Basenji); warn
    when identifiers nonetheless come in ``X+``/``X-`` pairs, which reverse-complement
    augmentation and averaging would then not swap."""
    names = {t.identifier for t in tracks}
    pairs = sorted(n[:-1] for n in names if n.endswith("+") and n[:-1] + "-" in names)
    if pairs:
        warn(
            f"tracks file {path} has no strand_pair column, so every track is unstranded, "
            f"yet {len(pairs):,} identifier(s) come in +/- pairs (e.g. {pairs[0]}+ and "
            f"{pairs[0]}-); add a strand_pair column (each track's partner index) if they "
            "are the two strands, so that reverse complements swap them"
        )


def _read_text(path: Path) -> str:
    """UTF-8 (a byte-order mark is dropped), or Latin-1 when that fails (descriptions
    written by spreadsheet tools)."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _parse_with_header(
    path: Path, header: list[str], lines, check_files: bool
) -> list[tuple[int, dict]]:
    while len(header) > 1 and header[-1] == "":  # a trailing tab (spreadsheet exports)
        header.pop()
    if header and header[0] in ("", "Unnamed: 0"):
        header[0] = "index"
    if "" in header:
        raise InputError(
            f"tracks file {path} line 1: column {header.index('') + 1} has no name; name it "
            f"(columns are {', '.join(COLUMNS + OPTIONAL_COLUMNS)}) or remove it"
        )
    unknown = [c for c in header if c not in COLUMNS + OPTIONAL_COLUMNS]
    if unknown:
        raise InputError(
            f"tracks file {path} line 1: unknown column {unknown[0]!r}; "
            f"columns are {', '.join(COLUMNS + OPTIONAL_COLUMNS)}"
        )
    for needed in ("identifier", "file") if check_files else ("identifier",):
        if needed not in header:
            raise InputError(f"tracks file {path} line 1: the header needs a {needed!r} column")
    if len(set(header)) != len(header):
        raise InputError(f"tracks file {path} line 1: a column name is repeated")
    if not lines:
        raise InputError(f"tracks file {path}: header only, no tracks; add one line per bigWig")
    rows = []
    for n, line in lines:
        fields = [f.strip() for f in line.split("\t")]
        while len(fields) > len(header) and fields[-1] == "":  # trailing tabs
            fields.pop()
        if len(fields) != len(header):
            raise InputError(
                f"tracks file {path} line {n}: {len(fields)} tab-separated fields, the header "
                f"has {len(header)}; separate columns with single tabs"
            )
        rows.append((n, dict(zip(header, fields, strict=True))))
    return rows


def _parse_two_columns(path: Path, lines) -> list[tuple[int, dict]]:
    rows = []
    for n, line in lines:
        fields = [f.strip() for f in line.split("\t")]
        if len(fields) != 2:
            raise InputError(
                f"tracks file {path} line {n}: expected 'identifier<TAB>path' (2 fields) or a "
                f"header line naming the columns; got {len(fields)} field(s)"
            )
        rows.append((n, {"identifier": fields[0], "file": fields[1]}))
    return rows


def _number(path: Path, n: int, column: str, text: str, default: float | None) -> float | None:
    if text == "" or text.lower() in ("none", "na"):
        return default
    try:
        value = float(text)
    except ValueError:
        raise InputError(
            f"tracks file {path} line {n}: {column} {text!r} is not a number"
        ) from None
    if not math.isfinite(value):  # nan too: a typo'd value must not become the default
        raise InputError(
            f"tracks file {path} line {n}: {column} must be finite, got {text!r}; "
            "leave it empty for the default"
        )
    return value


def _integer(path: Path, n: int, column: str, text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise InputError(
            f"tracks file {path} line {n}: {column} {text!r} is not an integer"
        ) from None


def _make_track(path: Path, n: int, position: int, row: dict, check_files: bool) -> Track:
    identifier, file = row.get("identifier", ""), row.get("file", "")
    if not identifier:
        raise InputError(f"tracks file {path} line {n}: empty identifier")
    if check_files and not file:
        raise InputError(f"tracks file {path} line {n}: empty file path")
    if check_files and file.lower().endswith(HDF5_SUFFIXES):
        raise InputError(
            f"tracks file {path} line {n}: {file} is Basenji HDF5 coverage, not a bigWig; "
            "give bigWigs in the file column, or import the released data with "
            "`gitool import-basenji DIR -o data/`"
        )
    index = _integer(path, n, "index", row["index"]) if row.get("index") else position
    genome = _integer(path, n, "genome", row["genome"]) if row.get("genome") else None
    sum_stat = row.get("sum_stat") or "sum"
    if check_files and sum_stat not in SUM_STATS:
        raise InputError(
            f"tracks file {path} line {n}: unknown sum_stat {sum_stat!r}; "
            f"choose from {', '.join(SUM_STATS)}"
        )
    clip = _number(path, n, "clip", row.get("clip", ""), None)
    clip_soft = _number(path, n, "clip_soft", row.get("clip_soft", ""), None)
    for name, value in (("clip", clip), ("clip_soft", clip_soft)):
        if value is not None and value <= 0:
            raise InputError(
                f"tracks file {path} line {n}: {name} must be > 0 (leave it empty for no clip)"
            )
    scale = _number(path, n, "scale", row.get("scale", ""), 1.0)
    if scale == 0:
        raise InputError(f"tracks file {path} line {n}: scale 0 would zero the track")
    strand_pair = (
        _integer(path, n, "strand_pair", row["strand_pair"]) if row.get("strand_pair") else index
    )
    if check_files:
        file = _bigwig_path(path, n, file)
    return Track(
        index=index,
        identifier=identifier,
        file=file,
        clip=clip,
        clip_soft=clip_soft,
        scale=float(scale),
        sum_stat=sum_stat,
        strand_pair=strand_pair,
        description=row.get("description") or identifier,
        genome=genome,
    )


def _bigwig_path(path: Path, n: int, given: str) -> str:
    """Line ``n``'s ``file``: ``~`` expanded, a relative path taken from the tracks file's
    folder, made absolute; it must be an existing file."""
    where = f"tracks file {path} line {n}"
    try:
        expanded = Path(given).expanduser()
    except RuntimeError:  # ~user of no such user, or ~ without a home folder
        raise InputError(f"{where}: {given!r}: cannot tell which home folder ~ is") from None
    relative = not expanded.is_absolute()
    resolved = (path.parent / expanded if relative else expanded).resolve()
    if resolved.is_dir():
        raise InputError(
            f"{where}: {resolved} is a folder, not a bigWig file; give the path of the .bw file"
        )
    if not resolved.is_file():
        origin = f" ({given!r} taken from the tracks file's folder)" if relative else ""
        raise InputError(f"{where}: bigWig {resolved} does not exist{origin}")
    return str(resolved)


def _check_tracks(path: Path, tracks: list[Track], line_numbers: list[int]) -> None:
    seen: dict[str, int] = {}
    positions: dict[int, int] = {}
    for track, n in zip(tracks, line_numbers, strict=True):
        if track.identifier in seen:
            raise InputError(
                f"tracks file {path} line {n}: duplicate identifier {track.identifier!r} "
                f"(first on line {seen[track.identifier]}); identifiers must be unique"
            )
        seen[track.identifier] = n
        if track.index in positions:
            raise InputError(f"tracks file {path} line {n}: duplicate index {track.index}")
        positions[track.index] = n
    by_index = {t.index: t for t in tracks}
    for track, n in zip(tracks, line_numbers, strict=True):
        partner = by_index.get(track.strand_pair)
        if partner is None:
            raise InputError(
                f"tracks file {path} line {n}: strand_pair {track.strand_pair} is not the index "
                f"of any track; use the partner's index (or its own index if unstranded)"
            )
        if partner.strand_pair != track.index:
            raise InputError(
                f"tracks file {path} line {n}: strand_pair {track.strand_pair} points at "
                f"{partner.identifier!r}, whose strand_pair is {partner.strand_pair}, not "
                f"{track.index}; the two tracks of a stranded pair must name each other"
            )


def store_rows(tracks: list[Track]) -> list[dict]:
    """Tracks as a store's manifest holds them: ``index`` is the targets column, ``strand_pair`` a column too;
    ``genome`` (a Basenji release's organism index) only when the tracks file gave one."""
    position = {t.index: i for i, t in enumerate(tracks)}
    rows = []
    for i, t in enumerate(tracks):
        row = t.as_row()
        row.update(index=i, strand_pair=position[t.strand_pair], source_index=t.index)
        if row["genome"] is None:
            del row["genome"]
        rows.append(row)
    return rows


def write_tracks_table(path: Path, rows: list[dict]) -> None:
    columns = ["index", "identifier", "group", *COLUMNS[2:]]
    if any("genome" in row for row in rows):
        columns.append("genome")
    with open(path, "w") as handle:
        handle.write("\t".join(columns) + "\n")
        for row in rows:
            cells = ("" if row.get(c) is None else str(row[c]) for c in columns)
            handle.write("\t".join(cells) + "\n")


def strand_pair_permutation(tracks: list[Track]) -> np.ndarray:
    """Column permutation that swaps each stranded pair: ``y[..., perm]`` is the RC track set."""
    position = {t.index: i for i, t in enumerate(tracks)}
    return np.array([position[t.strand_pair] for t in tracks], dtype=np.int64)


def pool_bins(values: np.ndarray, bin_size: int, sum_stat: str, scale: float) -> np.ndarray:
    """Base values → per-bin float32, ``scale`` applied before the sum_stat's square root.

    Args:
        values: float32 ``(n_bins * bin_size,)`` base-resolution coverage, NaN already 0.
            Modified in place only by reshaping (no copy).
        bin_size: bases per bin.
        sum_stat: one of :data:`SUM_STATS`; ``*_sqrt`` is Basenji's ``sqrt(1 + x) - 1``
            (sign-preserving for negative coverage).
        scale: multiplies the base values. Pooling is linear (or max, which commutes with a
            positive factor), so the factor is applied to the pooled bins: same result up
            to float rounding, 128× less work.

    Returns:
        float32 ``(n_bins,)``.
    """
    blocks = values.reshape(-1, bin_size)
    if sum_stat == "max":
        pooled = blocks.max(axis=1) if scale > 0 else blocks.min(axis=1)
    else:
        pooled = np.einsum("ij->i", blocks)  # 3× faster than .sum(axis=1) on short rows
        if sum_stat.startswith("mean"):
            pooled /= np.float32(bin_size)
    if scale != 1.0:
        pooled *= np.float32(scale)
    if sum_stat.endswith("_sqrt"):
        pooled = np.sign(pooled) * (np.sqrt(1 + np.abs(pooled)) - 1)
    return pooled.astype(np.float32, copy=False)


def clip_bins(pooled: np.ndarray, clip_soft: float | None, clip: float | None) -> np.ndarray:
    """Soft clip (``x > c: c + sqrt(x - c)``), hard clip to ``[-clip, clip]``, float16.

    Values beyond the float16 range are clamped to ±65504 (never inf).
    """
    return to_float16(soft_and_hard_clip(pooled, clip_soft, clip))


def soft_and_hard_clip(
    pooled: np.ndarray, clip_soft: float | None, clip: float | None
) -> np.ndarray:
    """The clips of :func:`clip_bins`, in float32 (a new array)."""
    out = pooled.astype(np.float32, copy=True)
    if clip_soft is not None:
        above = out > clip_soft
        out[above] = np.float32(clip_soft) + np.sqrt(out[above] - np.float32(clip_soft))
    if clip is not None:
        np.clip(out, -clip, clip, out=out)
    return out


def to_float16(values: np.ndarray) -> np.ndarray:
    """float32 → float16, clamped to ±65504 (in place before the cast)."""
    np.clip(values, -FLOAT16_MAX, FLOAT16_MAX, out=values)
    return values.astype(np.float16)


def scale_that_fits(track: Track, peak: float) -> float:
    """The largest scale (3 significant digits, rounded down) at which the track's largest
    transformed bin ``peak`` (its magnitude, at its own scale) would stay within float16's
    65,504 (a negative scale gives a negative one, rounded towards zero too)."""
    unit = replace(track, scale=1.0)
    raw = float(untransform(np.array([peak], np.float32), [unit])[0]) / track.scale
    limit = float(untransform(np.array([FLOAT16_MAX], np.float32), [unit])[0])
    fits = limit / raw
    digits = 10 ** (math.floor(math.log10(abs(fits))) - 2)
    return math.copysign(math.floor(abs(fits) / digits) * digits, fits)  # towards zero


def untransform(targets: np.ndarray, tracks: list[Track]) -> np.ndarray:
    """Undo soft clip and scale of :data:`TRANSFORM_VERSION` 1 (hard clip is lossy).

    Args:
        targets: ``(..., n_tracks)`` values in the store's (transformed) units.
    Returns:
        float32 values in the bigWig's units, pooled by each track's ``sum_stat`` (a bin sum
        for ``sum`` tracks: :func:`per_base` makes it per-base coverage).
    """
    out = np.asarray(targets, dtype=np.float32).copy()
    for i, track in enumerate(tracks):
        col = out[..., i]
        if track.clip_soft is not None:
            c = np.float32(track.clip_soft)
            above = col > c
            col[above] = c + (col[above] - c) ** 2
        if track.sum_stat.endswith("_sqrt"):
            col[...] = np.sign(col) * ((np.abs(col) + 1) ** 2 - 1)
        col /= np.float32(track.scale)
    return out


def per_base(
    values: np.ndarray, tracks: list[Track], bin_size: int, last_bin: int | None = None
) -> np.ndarray:
    """Untransformed bins (``(..., n_bins, n_tracks)``, :func:`untransform`) as per-base
    coverage, the unit of a bigWig: a ``sum``/``sum_sqrt`` track's bin sum divided by the
    bases it covers (the other pooling statistics are per base already): the bin size, or
    ``last_bin`` bp for the last bin where a chromosome end clips it. In place; returns
    ``values``."""
    for i, track in enumerate(tracks):
        if track.sum_stat in ("sum", "sum_sqrt"):
            if last_bin is not None and 0 < last_bin < bin_size:
                values[..., :-1, i] /= np.float32(bin_size)
                values[..., -1, i] /= np.float32(last_bin)
            else:
                values[..., i] /= np.float32(bin_size)
    return values


_ZEROS = np.zeros(0, dtype=np.float32)


def read_values(bw, chrom: str, start: int, end: int, nonnegative: bool) -> np.ndarray:
    """One bigWig ``values`` call over ``chrom:start-end``; float32 ``(end - start,)``, NaN → 0.

    ``nonnegative`` (from the bigWig header's minimum) allows a faster NaN → 0: ``fmax``
    against an array of zeros (numpy vectorises the array form, not the scalar one: 0.1 vs
    0.33 ns/bp), exact for coverage that is never negative.
    """
    global _ZEROS
    values = bw.values(chrom, start, end, numpy=True)
    if len(values) != end - start:  # a bigWig with no data at all returns an empty array
        return np.zeros(end - start, dtype=np.float32)
    if values.dtype != np.float32:
        values = values.astype(np.float32)
    if nonnegative:
        if len(_ZEROS) < len(values):
            _ZEROS = np.zeros(len(values), dtype=np.float32)  # calloc: no memory until read
        np.fmax(values, _ZEROS[: len(values)], out=values)
    else:
        np.copyto(values, 0, where=np.isnan(values))
    return values


def select_tracks(
    rows: Sequence[dict],
    tracks: Sequence[str | int] | str | None,
    *,
    field: str = "tracks",
    of: str = "the head",
    default: int | None = None,
) -> list[int]:
    """Columns of the selected tracks, by identifier or 0-based index, in the order given
    (repeats dropped); none given: all tracks, or the first ``default``.

    Args:
        rows: the track rows (each with an ``identifier``).
        tracks: identifiers or indices, or one comma-separated string.
        field, of: the option (field name) the tracks came from, and where the tracks are,
            for errors.

    Raises:
        InputError: a name that is neither an identifier nor an index in range.
    """
    n = len(rows)
    if tracks is None or (isinstance(tracks, str) and not tracks.strip()) or not len(tracks):
        return list(range(n if default is None else min(n, default)))
    if isinstance(tracks, str):
        tracks = [t for t in tracks.split(",") if t.strip()]
    by_id = {str(r["identifier"]): i for i, r in enumerate(rows)}
    chosen = []
    for item in tracks:
        text = str(item).strip()
        if text in by_id:
            chosen.append(by_id[text])
        elif re.fullmatch(r"\d+", text) and int(text) < n:
            chosen.append(int(text))
        else:
            shown = ", ".join(list(by_id)[:6]) + (" ..." if n > 6 else "")
            message = (
                f"{text!r} is neither a track identifier of {of} ({shown}) nor an index 0–{n - 1}"
            )
            raise InputError(message, field=field)
    return list(dict.fromkeys(chosen))
