"""TF-MoDISco on saved attributions, and each discovered motif matched against JASPAR.

``gitool modisco ATTR.npz -o OUT/`` (:func:`run_modisco`):

1. :func:`load_attributions` reads one track of the ``.npz`` that ``gitool attribute``
   writes (``hypothetical`` ``(N, K, L, 4)``, ``sequence`` ``(N, L)`` codes, ...);
2. :func:`crop` keeps each window's target span (default: the bases whose predictions were
   attributed; the rest is the model's context) or ``window`` bp centred on it;
3. :func:`find_patterns` runs TF-MoDISco (modisco-lite, ``modiscolite.tfmodisco.TFMoDISco``)
   on the hypothetical contributions and the one-hot sequence (observed contributions =
   their product);
4. :func:`match_patterns` trims each pattern where its contribution-weight matrix (CWM)
   reaches ``trim_threshold`` × its peak (as ``modisco report`` does) and compares the
   trimmed position probability matrix with every motif of the database with Tomtom
   (memelite); q-values are Benjamini–Hochberg over all targets of the database, per
   pattern, as MEME's Tomtom computes them;
5. :func:`write_outputs` writes ``modisco.h5`` (``modiscolite.io.save_hdf5``: ``modisco
   report`` and other tools read it), ``motifs.tsv``, ``seqlets.tsv``, ``logos/*.png``
   (logomaker), ``report.html`` and ``run.json`` into a staged folder that appears only
   when complete.

modiscolite, memelite, logomaker and h5py are imported only when used.
"""

from __future__ import annotations

import html
import json
import time
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from gitool.attribution.motif_db import MotifDatabase, load_motif_database
from gitool.config.modisco import ModiscoOptions
from gitool.console import info, warn
from gitool.errors import InputError, opt
from gitool.files import Outputs, staged_folder

__all__ = [
    "Attributions",
    "Cropped",
    "ModiscoSummary",
    "TSV_COLUMNS",
    "crop",
    "find_patterns",
    "is_modisco_output",
    "load_attributions",
    "match_patterns",
    "run_modisco",
    "write_outputs",
]

REQUIRED_KEYS = (
    "hypothetical",
    "sequence",
    "tracks",
    "name",
    "chrom",
    "start",
    "target_start",
    "target_length_bp",
)
TSV_COLUMNS = (
    "pattern",
    "sign",
    "n_seqlets",
    "consensus",
    "width",
    "match_id",
    "match_name",
    "p_value",
    "q_value",
    "offset",
    "orientation",
    "match2_id",
    "match2_name",
    "match2_q_value",
    "match3_id",
    "match3_name",
    "match3_q_value",
    "logo",
)
SEQLET_COLUMNS = ("pattern", "window", "name", "chrom", "start", "end", "strand")
SIGNIFICANT_Q = 0.05
_MATCH_COLUMNS = (
    ("match_id", "match_name", "q_value"),
    ("match2_id", "match2_name", "match2_q_value"),
    ("match3_id", "match3_name", "match3_q_value"),
)
_MIN_TOMTOM_TARGETS = 25  # memelite warns below this many target motifs
_PATTERN_GROUPS = (("pos_patterns", "+"), ("neg_patterns", "-"))


# --------------------------------------------------------------------------------------
# Reading and cropping
# --------------------------------------------------------------------------------------


@dataclass
class Attributions:
    """One track of a ``gitool attribute`` file. ``hypothetical``: float32 ``(N, L, 4)``;
    ``codes``: uint8 ``(N, L)`` (A=0 C=1 G=2 T=3, N=4); ``target_start``: each window's
    first target base (offset from the window start); ``start``: each window's 0-based
    genome start; ``centre``: the middle (offset from the window start) of the bins each
    window's target summed (None for files without ``target_mask``, and for ISM)."""

    path: Path
    track: str
    hypothetical: np.ndarray
    codes: np.ndarray
    names: np.ndarray
    chrom: np.ndarray
    start: np.ndarray
    target_start: np.ndarray
    target_length: int
    method: str = ""
    centre: np.ndarray | None = None

    @property
    def n_windows(self) -> int:
        return int(self.codes.shape[0])

    @property
    def length(self) -> int:
        return int(self.codes.shape[1])


def _load_npz(path: Path):
    field_ = "attributions"
    if path.is_dir():
        raise InputError(f"{path} is a folder; give the .npz of `gitool attribute`", field=field_)
    if not path.exists():
        raise InputError(f"{path}: no such file", field=field_)
    try:
        with open(path, "rb") as handle:
            magic = handle.read(6)
    except PermissionError:
        raise
    except OSError as err:
        raise InputError(f"{path}: {err.strerror}", field=field_) from None
    if not magic.startswith((b"PK\x03\x04", b"\x93NUMPY")):  # numpy would try pickle next
        raise InputError(
            f"{path} is not an .npz archive (nor a .npy array); give the file `gitool "
            "attribute -o` wrote",
            field=field_,
        )
    try:
        data = np.load(path, allow_pickle=False)
    except PermissionError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as err:
        raise InputError(
            f"{path}: not a readable .npz ({type(err).__name__}: {err}); give the file "
            "`gitool attribute -o` wrote",
            field=field_,
        ) from None
    if not isinstance(data, np.lib.npyio.NpzFile):
        raise InputError(
            f"{path}: a single .npy array, not the .npz of `gitool attribute`", field=field_
        )
    return data


def _array(data, path: Path, key: str) -> np.ndarray:
    try:
        return data[key]
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as err:
        raise InputError(
            f"{path}: cannot read array {key!r} ({type(err).__name__}: {err})",
            field="attributions",
        ) from None


def load_attributions(path: str | Path, track: str | None = None) -> Attributions:
    """Read one track (an identifier, or a 0-based index; None: the only track) of a
    ``gitool attribute`` ``.npz``; every problem is an :class:`InputError`."""
    path = Path(path)
    data = _load_npz(path)
    with data:
        missing = [k for k in REQUIRED_KEYS if k not in data.files]
        if missing:
            raise InputError(
                f"{path} lacks {', '.join(missing)}: not an attribution file of "
                f"`gitool attribute` (it has {', '.join(data.files) or 'no arrays'})",
                field="attributions",
            )
        arrays = {k: _array(data, path, k) for k in REQUIRED_KEYS}
        method = str(_array(data, path, "method")) if "method" in data.files else ""
        mask, bin_size = None, 0
        if "target_mask" in data.files and "bin_size" in data.files:
            mask = _array(data, path, "target_mask")
            bin_size = int(_array(data, path, "bin_size"))
    hyp, codes, tracks = arrays["hypothetical"], arrays["sequence"], arrays["tracks"]
    if hyp.ndim != 4 or hyp.shape[3] != 4:
        raise InputError(
            f"{path}: hypothetical has shape {hyp.shape}, expected (N, K, L, 4)",
            field="attributions",
        )
    n, k, length, _ = hyp.shape
    if codes.shape != (n, length):
        raise InputError(
            f"{path}: sequence has shape {codes.shape}, expected {(n, length)} to match "
            f"hypothetical {hyp.shape}",
            field="attributions",
        )
    tracks = np.atleast_1d(tracks).astype(str)
    if tracks.shape != (k,):
        raise InputError(
            f"{path}: {len(tracks)} track identifiers for {k} tracks of hypothetical",
            field="attributions",
        )
    for key in ("name", "chrom", "start", "target_start"):
        if np.atleast_1d(arrays[key]).shape != (n,):
            raise InputError(
                f"{path}: {key} has shape {arrays[key].shape}, expected ({n},)",
                field="attributions",
            )
    if n == 0:
        raise InputError(f"{path} holds no windows", field="attributions")
    index = _track_index(path, tracks, track)
    hypothetical = np.ascontiguousarray(hyp[:, index], dtype=np.float32)
    if not np.isfinite(hypothetical).all():
        raise InputError(
            f"{path}: track {tracks[index]!r} has NaN or infinite contributions",
            field="attributions",
        )
    if codes.size and (codes.min() < 0 or codes.max() > 4):
        raise InputError(f"{path}: sequence codes must be 0-4 (A C G T N)", field="attributions")
    target_start = np.atleast_1d(arrays["target_start"]).astype(np.int64)
    centre = None
    if mask is not None and bin_size > 0 and mask.ndim == 2 and mask.shape[0] == n:
        chosen = mask.astype(bool)
        if mask.shape[1] and chosen.any(1).all():
            first = chosen.argmax(1)
            last = mask.shape[1] - 1 - chosen[:, ::-1].argmax(1)
            centre = target_start + (first + last + 1) * bin_size // 2
    return Attributions(
        path=path,
        track=str(tracks[index]),
        hypothetical=hypothetical,
        codes=codes.astype(np.uint8),
        names=np.atleast_1d(arrays["name"]).astype(str),
        chrom=np.atleast_1d(arrays["chrom"]).astype(str),
        start=np.atleast_1d(arrays["start"]).astype(np.int64),
        target_start=target_start,
        target_length=int(arrays["target_length_bp"]),
        method=method,
        centre=centre,
    )


def _track_index(path: Path, tracks: np.ndarray, track: str | None) -> int:
    listed = ", ".join(tracks[:10]) + (f" and {len(tracks) - 10} more" if len(tracks) > 10 else "")
    if track is None:
        if len(tracks) == 1:
            return 0
        raise InputError(
            f"{path} holds {len(tracks)} tracks; choose one with {opt('track')}: {listed}",
            field="track",
        )
    hits = np.flatnonzero(tracks == track)
    if len(hits):
        return int(hits[0])
    if track.isdigit() and int(track) < len(tracks):
        return int(track)
    raise InputError(
        f"{track!r} is not a track of {path}; its tracks (identifier or 0-based index): {listed}",
        field="track",
    )


@dataclass
class Cropped:
    """The stretch of each window that TF-MoDISco sees: ``offsets[i]`` is where it starts in
    window ``i``; ``one_hot`` and ``hypothetical`` are float32 ``(N, width, 4)``."""

    one_hot: np.ndarray
    hypothetical: np.ndarray
    offsets: np.ndarray
    width: int


def crop(attr: Attributions, window: int | None = None) -> Cropped:
    """Each window's target span (``window`` None) or ``window`` bp centred on the middle of
    the bins its target summed (of its target span in a file without them), shifted inwards
    where it would run past the window's ends."""
    length = attr.length
    if window is None:
        width = attr.target_length
        offsets = attr.target_start
        bad = (offsets < 0) | (offsets + width > length)
        if width < 1 or bad.any():
            raise InputError(
                f"{attr.path}: target span ({width} bp at offset "
                f"{int(offsets[np.argmax(bad)]) if bad.any() else 0}) does not lie in the "
                f"{length}-bp windows; give {opt('window')}",
                field="attributions",
            )
    else:
        if window > length:
            raise InputError(
                f"{window} bp is longer than the {length}-bp windows of {attr.path}; give at "
                f"most {length}",
                field="window",
            )
        width = window
        centre = attr.centre
        if centre is None:
            centre = attr.target_start + attr.target_length // 2
        offsets = np.clip(centre - width // 2, 0, length - width).astype(np.int64)
    positions = offsets[:, None] + np.arange(width)[None, :]
    rows = np.arange(attr.n_windows)[:, None]
    one_hot = np.eye(5, 4, dtype=np.float32)[attr.codes[rows, positions]]  # N: all zeros
    hypothetical = np.ascontiguousarray(attr.hypothetical[rows, positions])
    return Cropped(one_hot=one_hot, hypothetical=hypothetical, offsets=offsets, width=width)


# --------------------------------------------------------------------------------------
# TF-MoDISco
# --------------------------------------------------------------------------------------


def find_patterns(cropped: Cropped, options: ModiscoOptions):
    """``(pos_patterns, neg_patterns)`` of ``modiscolite.tfmodisco.TFMoDISco`` (each a list
    of ``SeqletSet`` or None)."""
    from modiscolite import tfmodisco

    try:
        return _tfmodisco(tfmodisco, cropped, options)
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as err:  # leidenalg raises a bare BaseException
        if "NaN" not in str(err):
            raise
        raise InputError(
            f"TF-MoDISco could not cluster the seqlets ({err}): their contributions are "
            "too weak or too uniform to compare — check that the model learned this track "
            f"(gitool evaluate), or attribute more windows or a narrower {opt('window')}",
            field="attributions",
        ) from None


def _tfmodisco(tfmodisco, cropped: Cropped, options: ModiscoOptions):
    return tfmodisco.TFMoDISco(
        one_hot=cropped.one_hot,
        hypothetical_contribs=cropped.hypothetical,
        sliding_window_size=options.sliding_window,
        flank_size=options.flank,
        target_seqlet_fdr=options.seqlet_fdr,
        max_seqlets_per_metacluster=options.max_seqlets,
        min_metacluster_size=options.min_metacluster_size,
        final_min_cluster_size=options.final_min_cluster_size,
        n_leiden_runs=options.leiden_runs,
        verbose=False,
    )


@dataclass
class Pattern:
    """One TF-MoDISco pattern: ``name`` as in ``modisco.h5`` (``pos_patterns.pattern_0``),
    ``sign`` ``+``/``-``, ``ppm``/``cwm`` ``(width, 4)`` and its seqlets."""

    name: str
    sign: str
    ppm: np.ndarray
    cwm: np.ndarray
    seqlets: list = field(repr=False)

    @property
    def n_seqlets(self) -> int:
        return len(self.seqlets)


def named_patterns(pos_patterns, neg_patterns) -> list[Pattern]:
    """The patterns in ``modisco.h5`` order, with its names."""
    out = []
    for (group, sign), patterns in zip(_PATTERN_GROUPS, (pos_patterns, neg_patterns), strict=True):
        for i, p in enumerate(patterns or ()):
            out.append(
                Pattern(
                    name=f"{group}.pattern_{i}",
                    sign=sign,
                    ppm=np.asarray(p.sequence, dtype=np.float64),
                    cwm=np.asarray(p.contrib_scores, dtype=np.float64),
                    seqlets=list(p.seqlets),
                )
            )
    return out


def trim_bounds(cwm: np.ndarray, threshold: float) -> tuple[int, int]:
    """``[start, end)`` of the stretch from the first to the last position whose summed
    |CWM| reaches ``threshold`` × the peak (``modisco report``'s trimming)."""
    score = np.abs(cwm).sum(axis=1)
    keep = np.flatnonzero(score >= score.max() * threshold)
    if len(keep) == 0:
        return 0, len(score)
    return int(keep[0]), int(keep[-1]) + 1


def consensus(ppm: np.ndarray) -> str:
    """The most likely base per position: upper case where its probability is at least
    0.5, lower case otherwise; N where the position is empty."""
    letters = []
    for row in ppm:
        if row.sum() <= 0:
            letters.append("N")
            continue
        base = "ACGT"[int(np.argmax(row))]
        letters.append(base if row.max() / row.sum() >= 0.5 else base.lower())
    return "".join(letters)


# --------------------------------------------------------------------------------------
# Tomtom
# --------------------------------------------------------------------------------------


def tomtom_matrices(patterns: list[Pattern], database: MotifDatabase, threshold: float):
    """p-values, offsets and strands ``(n_patterns, n_motifs)`` of Tomtom (memelite,
    complete scores, both strands of each target) between each trimmed pattern PPM and
    each motif of ``database``, and the Benjamini–Hochberg q-values over the database per
    pattern."""
    from memelite.tomtom import tomtom
    from scipy.stats import false_discovery_control

    queries = []
    for p in patterns:
        lo, hi = trim_bounds(p.cwm, threshold)
        queries.append(np.ascontiguousarray(p.ppm[lo:hi].T))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the few-targets warning: said once, below
        results = tomtom(queries, database.probability_matrices())
    p_values, _, offsets, _, strands = results
    p_values = np.clip(np.nan_to_num(p_values, nan=1.0), 0.0, 1.0)
    q_values = np.vstack([false_discovery_control(row, method="bh") for row in p_values])
    return p_values, q_values, offsets.astype(np.int64), strands.astype(np.int64)


def match_patterns(
    patterns: list[Pattern], database: MotifDatabase, threshold: float = 0.3
) -> pd.DataFrame:
    """One row per pattern (:data:`TSV_COLUMNS`): its best Tomtom match in ``database``
    (whatever its q-value) and the next two, by p-value."""
    rows = []
    if patterns:
        p_values, q_values, offsets, strands = tomtom_matrices(patterns, database, threshold)
    for i, p in enumerate(patterns):
        lo, hi = trim_bounds(p.cwm, threshold)
        order = np.argsort(p_values[i], kind="stable")[:3]
        best = order[0]
        row = {
            "pattern": p.name,
            "sign": p.sign,
            "n_seqlets": p.n_seqlets,
            "consensus": consensus(p.ppm[lo:hi]),
            "width": hi - lo,
            "match_id": database.motifs[best].matrix_id,
            "match_name": database.motifs[best].name,
            "p_value": float(p_values[i, best]),
            "q_value": float(q_values[i, best]),
            "offset": int(offsets[i, best]),
            "orientation": "-" if strands[i, best] else "+",
        }
        for rank in (2, 3):
            j = order[rank - 1] if len(order) >= rank else None
            row[f"match{rank}_id"] = database.motifs[j].matrix_id if j is not None else ""
            row[f"match{rank}_name"] = database.motifs[j].name if j is not None else ""
            row[f"match{rank}_q_value"] = float(q_values[i, j]) if j is not None else np.nan
        row["logo"] = f"logos/{p.name}.png"
        rows.append(row)
    return pd.DataFrame(rows, columns=list(TSV_COLUMNS))


# --------------------------------------------------------------------------------------
# Outputs
# --------------------------------------------------------------------------------------


# Everything a modisco output folder holds (what ``force`` may replace).
LAYOUT = {
    **dict.fromkeys(("modisco.h5", "motifs.tsv", "seqlets.tsv", "report.html", "run.json")),
    "logos": {"*.png": None},
}


def is_modisco_output(path: Path) -> bool:
    """Whether ``path`` is a folder an earlier ``gitool modisco`` wrote."""
    return (path / "modisco.h5").is_file() and (path / "motifs.tsv").is_file()


def seqlet_table(patterns: list[Pattern], attr: Attributions, cropped: Cropped) -> pd.DataFrame:
    """Every seqlet of every pattern in genome coordinates (0-based, half-open)."""
    rows = []
    for p in patterns:
        for s in p.seqlets:
            i = int(s.example_idx)
            base = int(attr.start[i] + cropped.offsets[i])
            rows.append(
                (p.name, i, attr.names[i], attr.chrom[i], base + int(s.start),
                 base + int(s.end), "-" if s.is_revcomp else "+")
            )  # fmt: skip
    return pd.DataFrame(rows, columns=list(SEQLET_COLUMNS))


def draw_logo(pattern: Pattern, match: pd.Series | None, path: Path, threshold: float) -> None:
    """The pattern's contribution-weighted logo (its CWM, trimmed), logomaker."""
    import logomaker

    from gitool.plots import pyplot

    plt = pyplot()
    lo, hi = trim_bounds(pattern.cwm, threshold)
    frame = pd.DataFrame(pattern.cwm[lo:hi], columns=list("ACGT"))
    fig, ax = plt.subplots(figsize=(max(3.0, 0.35 * len(frame) + 1), 2.2))
    try:
        logomaker.Logo(frame, ax=ax)
        ax.axhline(0, color="black", linewidth=0.5)
        ax.set_xticks([])
        ax.set_ylabel("contribution")
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
        title = f"{pattern.name} ({pattern.n_seqlets} seqlets)"
        if match is not None:
            title += f"  best: {match['match_name']} {match['match_id']} (q={match['q_value']:.2g})"
        ax.set_title(title, fontsize=8)
        fig.savefig(path, format="png", dpi=120, bbox_inches="tight")
    finally:
        plt.close(fig)


def report_html(table: pd.DataFrame, summary: ModiscoSummary) -> str:
    """A page of each pattern's logo and its three best Tomtom matches."""
    e = html.escape
    head = (
        f"<h1>gitool modisco: {e(summary.attributions.name)}, track {e(summary.track)}</h1>\n"
        f"<p>{summary.n_windows} windows × {summary.width} bp; TF-MoDISco "
        f"{summary.modisco_seconds:.1f} s; matched against {e(summary.database)} "
        f"({summary.n_motifs} motifs) with Tomtom (memelite), q-values Benjamini–Hochberg "
        "over the database per pattern.</p>\n"
    )
    rows = []
    for _, r in table.iterrows():
        matches = "<br>".join(
            f"{e(str(r[name]))} {e(str(r[ident]))} (q={r[q]:.2g})"
            for ident, name, q in _MATCH_COLUMNS
            if isinstance(r[ident], str) and r[ident]
        )
        rows.append(
            f"<tr><td>{e(r['pattern'])}</td><td>{e(r['sign'])}</td><td>{r['n_seqlets']}</td>"
            f"<td><code>{e(r['consensus'])}</code></td>"
            f'<td><img src="{e(r["logo"])}" height="80"></td><td>{matches}</td></tr>'
        )
    table_html = (
        "<table border=1 cellpadding=4>\n<tr><th>pattern</th><th>sign</th><th>seqlets</th>"
        "<th>consensus</th><th>logo (CWM)</th><th>best Tomtom matches</th></tr>\n"
        + "\n".join(rows)
        + "\n</table>\n"
    )
    return (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>gitool modisco</title>'
        "</head><body>\n" + head + table_html + "</body></html>\n"
    )


def write_outputs(
    folder: Path, pos_patterns, neg_patterns, patterns: list[Pattern], table: pd.DataFrame,
    seqlets: pd.DataFrame, summary: ModiscoSummary, threshold: float,
) -> None:  # fmt: skip
    """Everything of the output folder, written into ``folder`` (the staging folder)."""
    (folder / "modisco.h5").write_bytes(hdf5_bytes(pos_patterns, neg_patterns, summary.width))
    table.to_csv(folder / "motifs.tsv", sep="\t", index=False, float_format="%.6g")
    seqlets.to_csv(folder / "seqlets.tsv", sep="\t", index=False)
    (folder / "logos").mkdir()
    for pattern, (_, row) in zip(patterns, table.iterrows(), strict=True):
        draw_logo(pattern, row, folder / row["logo"], threshold)
    (folder / "report.html").write_text(report_html(table, summary), encoding="utf-8")
    (folder / "run.json").write_text(json.dumps(summary.record(), indent=1) + "\n", "utf-8")


def hdf5_bytes(pos_patterns, neg_patterns, width: int) -> bytes:
    """``modisco.h5`` (``modiscolite.io.save_hdf5``) built in memory, for Python to write:
    HDF5 writing to disk crashes the process (a segmentation fault after thousands of
    error lines) when the disk fills, where a Python write is one error naming the file."""
    import gc
    import io

    from modiscolite import io as modisco_io

    buffer = io.BytesIO()
    modisco_io.save_hdf5(buffer, pos_patterns, neg_patterns, width)
    gc.collect()  # save_hdf5 leaves its h5py.File to the garbage collector, which closes it
    return buffer.getvalue()


# --------------------------------------------------------------------------------------
# The command
# --------------------------------------------------------------------------------------


@dataclass
class ModiscoSummary:
    """What :func:`run_modisco` did (the CLI prints it)."""

    out: Path
    attributions: Path
    track: str
    method: str
    n_windows: int
    width: int
    window: int | None
    database: str
    n_motifs: int
    modisco_seconds: float = 0.0
    seconds: float = 0.0
    table: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False)

    @property
    def n_patterns(self) -> int:
        return len(self.table)

    @property
    def n_matched(self) -> int:
        """Patterns whose best match has q < 0.05."""
        return int((self.table["q_value"] < SIGNIFICANT_Q).sum()) if len(self.table) else 0

    def record(self) -> dict:
        return {
            "command": "gitool modisco",
            "attributions": str(self.attributions),
            "track": self.track,
            "method": self.method,
            "n_windows": self.n_windows,
            "width_bp": self.width,
            "window": self.window if self.window is not None else "target span",
            "motif_database": self.database,
            "n_motifs": self.n_motifs,
            "modisco_seconds": round(self.modisco_seconds, 3),
            "n_patterns": self.n_patterns,
        }


def _no_patterns_error(attr: Attributions, cropped: Cropped, options: ModiscoOptions):
    return InputError(
        f"TF-MoDISco found no seqlets or patterns in {attr.n_windows} windows × "
        f"{cropped.width} bp of track {attr.track!r} of {attr.path}: each metacluster needs "
        f"more than {options.min_metacluster_size} seqlets, a pattern at least "
        f"{options.final_min_cluster_size}; try more windows (`gitool attribute` on more "
        f"regions), a wider {opt('window')}, a larger {opt('seqlet_fdr')}, or a smaller "
        f"{opt('min_metacluster_size')}",
        field="attributions",
    )


def run_modisco(options: ModiscoOptions) -> ModiscoSummary:
    """``gitool modisco``: see the module docstring."""
    began = time.perf_counter()
    outputs = Outputs(options.force, inputs=[options.attributions, _motif_path(options.motifs)])
    out = outputs.folder(
        options.out, is_modisco_output, "an earlier gitool modisco output", layout=LAYOUT
    )
    database = load_motif_database(options.motifs)
    attr = load_attributions(options.attributions, options.track)
    cropped = crop(attr, options.window)
    needed = options.sliding_window + 2 * options.flank
    if cropped.width < needed:
        raise InputError(
            f"{cropped.width} bp per window is shorter than TF-MoDISco's sliding window plus "
            f"flanks ({needed} bp); give a wider {opt('window')} or a smaller "
            f"{opt('sliding_window')}",
            field="window",
        )
    if not np.any(cropped.one_hot * cropped.hypothetical):
        raise InputError(
            f"track {attr.track!r} of {attr.path}: every observed contribution (hypothetical "
            "× one-hot) is 0, so TF-MoDISco has nothing to find; attribute with another "
            "method (ISM files hold 0 at the reference bases)",
            field="attributions",
        )
    if len(database) < _MIN_TOMTOM_TARGETS:
        warn(
            f"{database.description} holds {len(database)} motif(s): Tomtom's p-values use "
            "the target motifs as their background, so with fewer than "
            f"{_MIN_TOMTOM_TARGETS} they depend strongly on the targets; give a whole "
            "database"
        )
    info(
        f"TF-MoDISco on {attr.n_windows:,} windows × {cropped.width:,} bp of track "
        f"{attr.track} ({'target span' if options.window is None else 'centred window'})"
    )
    tick = time.perf_counter()
    pos_patterns, neg_patterns = find_patterns(cropped, options)
    modisco_seconds = time.perf_counter() - tick
    patterns = named_patterns(pos_patterns, neg_patterns)
    if not patterns:
        raise _no_patterns_error(attr, cropped, options)
    info(
        f"matching {len(patterns)} pattern(s) against {len(database)} motifs "
        f"({database.description}) with Tomtom"
    )
    table = match_patterns(patterns, database, options.trim_threshold)
    summary = ModiscoSummary(
        out=out, attributions=attr.path, track=attr.track, method=attr.method,
        n_windows=attr.n_windows, width=cropped.width, window=options.window,
        database=database.description, n_motifs=len(database),
        modisco_seconds=modisco_seconds, table=table,
    )  # fmt: skip
    seqlets = seqlet_table(patterns, attr, cropped)
    with staged_folder(out) as folder:  # replaces out only if it existed when claimed
        write_outputs(
            folder, pos_patterns, neg_patterns, patterns, table, seqlets, summary,
            options.trim_threshold,
        )  # fmt: skip
    summary.seconds = time.perf_counter() - began
    return summary


def _motif_path(text: str | None) -> str | None:
    """The motif file among the inputs (None for the built-in collection)."""
    from gitool.attribution.motif_db import BUILTIN

    return None if text in (None, BUILTIN) else text
