"""Motifs: position frequency matrices, the built-in JASPAR set and JASPAR/MEME files.

The built-in motifs (:func:`load_builtin_motifs`) are the 12 of the GLIFAC synthetic
benchmark (GLIFAC paper appendix A) plus SP1, from JASPAR 2024 (CC BY 4.0; Rauluseviciute et
al., Nucleic Acids Res. 2024), shipped as ``data/motifs_jaspar2024.json``; that file is
written by ``example_data/make_motifs.py``, which pins the matrix IDs and says why each
version was chosen.

:func:`read_motif_file` reads JASPAR (``>ID NAME`` then four ``A [ ... ]`` rows, or four
bare rows in A, C, G, T order) and MEME (``MOTIF ID [NAME]`` + ``letter-probability
matrix``) motif files. Codes are those of :mod:`gitool.data.genome`: A=0 C=1 G=2 T=3.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np

from gitool.data.genome import reverse_complement
from gitool.errors import InputError

__all__ = [
    "BUILTIN_MOTIF_NAMES",
    "EXTRA_MOTIF_NAMES",
    "Motif",
    "best_scan_scores",
    "format_jaspar",
    "information_content",
    "load_builtin_motifs",
    "log_odds",
    "motifs_from_option",
    "ppm",
    "read_motif_file",
    "reverse_complement",
    "sample_instances",
]

BUILTIN_MOTIF_NAMES = (
    "CEBPB",
    "ELF1",
    "ESR1",
    "FOXN3",
    "GATA1",
    "IRF1",
    "NFIB",
    "SIX3",
    "SPI1",
    "TAL1",
    "TEAD1",
    "YY1",
)
EXTRA_MOTIF_NAMES = ("SP1",)  # shipped, not in the default set
_DATA_FILE = "motifs_jaspar2024.json"


@dataclass(frozen=True, eq=False)
class Motif:
    """A motif: ``counts`` is an ``(L, 4)`` float matrix, columns A, C, G, T.

    ``counts`` may hold counts (JASPAR) or probabilities (MEME); :func:`ppm` normalises.
    """

    name: str
    matrix_id: str
    counts: np.ndarray
    collection: str = ""
    source: str = ""

    def __post_init__(self) -> None:
        counts = np.asarray(self.counts, dtype=np.float64)
        if counts.ndim != 2 or counts.shape[1] != 4 or counts.shape[0] == 0:
            raise InputError(
                f"motif {self.name!r}: counts must have shape (L, 4) with L >= 1, "
                f"got {counts.shape}"
            )
        if not np.isfinite(counts).all() or (counts < 0).any():
            raise InputError(f"motif {self.name!r}: counts must be finite and >= 0")
        counts.setflags(write=False)
        object.__setattr__(self, "counts", counts)

    @property
    def length(self) -> int:
        return int(self.counts.shape[0])


@lru_cache(maxsize=1)
def _builtin_table() -> dict[str, Motif]:
    text = resources.files("gitool.interpret").joinpath("data", _DATA_FILE).read_text("utf-8")
    table = {}
    for entry in json.loads(text)["motifs"]:
        table[entry["name"]] = Motif(
            name=entry["name"],
            matrix_id=entry["matrix_id"],
            counts=np.asarray(entry["counts"], dtype=np.float64).T,  # stored (4, L)
            collection=entry["collection"],
            source=entry["source"],
        )
    return table


def load_builtin_motifs(names: list[str] | tuple[str, ...] | None = None) -> list[Motif]:
    """The built-in JASPAR 2024 motifs, in ``names`` order (default: the benchmark's 12,
    alphabetical; the extra SP1 only by name).

    =====  ========  =====  =====  =================================================
    Name   Matrix    Width  Bits   Note
    =====  ========  =====  =====  =================================================
    CEBPB  MA0466.4  10     16.1   human, CAP-SELEX (latest)
    ELF1   MA0473.2  12     16.2   human, HT-SELEX
    ESR1   MA0112.4  15     22.1   human, HT-SELEX (latest)
    FOXN3  MA1489.1  8      14.2   human, PBM (only version)
    GATA1  MA0035.3  11     13.6   mouse Gata1, ChIP-seq
    IRF1   MA0050.1  12     16.0   human, SELEX
    NFIB   MA1643.2  17     18.8   human, ChIP-seq (latest)
    SIX3   MA0631.1  17     15.1   mouse Six3, PBM
    SPI1   MA0080.6  17     14.8   mouse Spi1
    SP1    MA0079.4  15     19.0   human, HT-SELEX (extra: not among the default 12)
    TAL1   MA0091.2  10     13.9   TAL1::TCF3 heterodimer (E-box), SELEX
    TEAD1  MA0090.1  12     15.7   human, compiled
    YY1    MA0095.2  12     14.4   human, ChIP-seq
    =====  ========  =====  =====  =================================================

    Not always the latest version: the GLIFAC paper's models reach classification AUPR
    0.95-0.97, so each motif must stand out from 200 bp of uniform random sequence, and no
    other motif's scan may mistake it for its own (both tested; see
    :func:`gitool.interpret.synthetic.detectability`). SP1: the paper names its ninth motif
    "SPI", read here as SPI1 (the default set), while the authors' analysis code labels it
    SP1 (JASPAR MA0079); SP1 ships as an extra name so both readings can be benchmarked.

    Names are case-insensitive; an unknown name raises :class:`InputError` listing the valid
    ones.
    """
    table = _builtin_table()
    if names is None:
        return [table[n] for n in BUILTIN_MOTIF_NAMES]
    if isinstance(names, str):
        names = [n for n in names.split(",") if n.strip()]
    unknown = [n for n in names if n.strip().upper() not in table]
    if unknown:
        raise InputError(
            f"unknown motif name(s) {', '.join(map(repr, unknown))}; the built-in motifs are "
            f"{', '.join(BUILTIN_MOTIF_NAMES + EXTRA_MOTIF_NAMES)} (or give a JASPAR/MEME "
            "motif file)"
        )
    return [table[n.strip().upper()] for n in names]


def motifs_from_option(text: str | None, field: str = "motifs") -> list[Motif]:
    """Motifs named by an option (``field``): a JASPAR/MEME file, or comma-separated
    built-in names (``None``: the 12 default built-in motifs)."""
    if text is None:
        return load_builtin_motifs()
    path = Path(text)
    if path.is_file():
        try:
            return read_motif_file(path)
        except InputError as err:
            raise InputError(err.template, field=field) from None
    # a folder named like a built-in motif (CEBPB) still means the motif
    folder = f"{text} is a folder; give a JASPAR/MEME motif file or built-in motif names"
    if any(sep in text for sep in "/\\") or path.suffix:
        message = folder if path.is_dir() else f"{text}: no such motif file"
        raise InputError(message, field=field)
    try:
        motifs = load_builtin_motifs(text)
    except InputError as err:
        raise InputError(folder if path.is_dir() else err.template, field=field) from None
    if not motifs:
        raise InputError(
            f"{text!r} names no motifs; give built-in names, e.g. CEBPB,ELF1, or a "
            "JASPAR/MEME motif file",
            field=field,
        )
    return motifs


# --------------------------------------------------------------------------------------
# Motif files
# --------------------------------------------------------------------------------------

_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_JASPAR_ROW = re.compile(r"^\s*([ACGTacgt])?\s*\[?\s*((?:" + _NUMBER + r"\s*)+)\]?\s*$")


def read_motif_file(path: str | Path) -> list[Motif]:
    """Motifs from a JASPAR (``.jaspar``/``.pfm``) or MEME motif file.

    The format is detected from the content: a line starting with ``MOTIF`` makes it MEME,
    a line starting with ``>`` makes it JASPAR. Errors name the file and line.
    """
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as err:
        raise InputError(f"{path}: cannot read motif file ({err.strerror or err})") from err
    if any(line.startswith("MOTIF") for line in lines):
        motifs = _read_meme(path, lines)
    elif any(line.startswith(">") for line in lines):
        motifs = _read_jaspar(path, lines)
    else:
        raise InputError(
            f"{path}: not a JASPAR ('>ID NAME' headers) or MEME ('MOTIF' lines) motif file"
        )
    if not motifs:
        raise InputError(f"{path}: no motifs found")
    return motifs


def format_jaspar(motifs: list[Motif] | tuple[Motif, ...]) -> str:
    """Motifs as JASPAR-format text (``>ID NAME`` and rows ``A [ ... ]``), which
    :func:`read_motif_file` reads back."""
    lines = []
    for motif in motifs:
        lines.append(f">{motif.matrix_id} {motif.name}")
        for j, letter in enumerate("ACGT"):
            values = " ".join(f"{v:g}" for v in motif.counts[:, j])
            lines.append(f"{letter} [ {values} ]")
    return "\n".join(lines) + "\n"


def _read_jaspar(path: Path, lines: list[str]) -> list[Motif]:
    motifs: list[Motif] = []
    header: tuple[int, str, str] | None = None  # (line number, id, name)
    rows: list[tuple[int, str | None, list[float]]] = []

    def finish() -> None:
        if header is None:
            return
        lineno, matrix_id, name = header
        where = f"{path}:{lineno}"
        if len(rows) != 4:
            raise InputError(
                f"{where}: motif {matrix_id!r} has {len(rows)} rows, expected 4 (A C G T)"
            )
        letters = [r[1] for r in rows]
        if all(letter is None for letter in letters):
            order = "ACGT"
        elif all(letter is not None for letter in letters) and sorted(letters) == list("ACGT"):
            order = "".join(letters)
        else:
            raise InputError(
                f"{where}: motif {matrix_id!r} rows must be labelled A, C, G, T once each"
            )
        widths = {len(r[2]) for r in rows}
        if len(widths) != 1:
            raise InputError(
                f"{where}: motif {matrix_id!r} rows have different lengths {sorted(widths)}"
            )
        counts = np.zeros((widths.pop(), 4))
        for (_, _, values), letter in zip(rows, order, strict=True):
            counts[:, "ACGT".index(letter)] = values
        motifs.append(_checked_motif(where, name, matrix_id, counts))

    for lineno, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith(">"):
            finish()
            fields = line[1:].split()
            if not fields:
                raise InputError(f"{path}:{lineno}: empty motif header, expected '>ID NAME'")
            header = (lineno, fields[0], fields[1] if len(fields) > 1 else fields[0])
            rows = []
            continue
        match = _JASPAR_ROW.match(line)
        if header is None or match is None:
            raise InputError(
                f"{path}:{lineno}: expected a '>ID NAME' header or a row like 'A [ 1 2 3 ]', "
                f"got {raw.strip()[:60]!r}"
            )
        letter = match.group(1).upper() if match.group(1) else None
        rows.append((lineno, letter, [float(v) for v in match.group(2).split()]))
    finish()
    return motifs


def _read_meme(path: Path, lines: list[str]) -> list[Motif]:
    motifs: list[Motif] = []
    i = 0
    while i < len(lines):
        line = lines[i].strip()
        if line.startswith("ALPHABET"):
            alphabet = line.split("=", 1)[-1].strip()
            if alphabet.upper() != "ACGT":
                raise InputError(
                    f"{path}:{i + 1}: alphabet {alphabet!r} is not supported (ACGT only)"
                )
        if not line.startswith("MOTIF"):
            i += 1
            continue
        start = i + 1
        fields = line.split()
        if len(fields) < 2:
            raise InputError(f"{path}:{start}: 'MOTIF' needs an identifier")
        matrix_id = fields[1]
        name = fields[2] if len(fields) > 2 else fields[1]
        i += 1
        while i < len(lines) and not lines[i].strip().startswith("letter-probability matrix"):
            if lines[i].startswith("MOTIF"):
                break
            i += 1
        if i >= len(lines) or not lines[i].strip().startswith("letter-probability matrix"):
            raise InputError(
                f"{path}:{start}: motif {matrix_id!r} has no 'letter-probability matrix'"
            )
        spec = dict(re.findall(r"(\w+)\s*=\s*(\S+)", lines[i].split(":", 1)[-1]))
        try:
            width = int(spec["w"]) if "w" in spec else None
            alength = int(spec.get("alength", 4))
            nsites = float(spec["nsites"]) if "nsites" in spec else None
        except ValueError as err:
            raise InputError(
                f"{path}:{i + 1}: bad letter-probability matrix header ({err})"
            ) from err
        if alength != 4:
            raise InputError(f"{path}:{i + 1}: alength={alength}, expected 4 (ACGT)")
        i += 1
        rows = []
        while i < len(lines):
            text = lines[i].strip()
            if not text:
                if rows:
                    break
                i += 1
                continue
            if width is not None and len(rows) == width:
                break
            if text.startswith(("MOTIF", "URL", "letter-")):
                break
            try:
                values = [float(v) for v in text.split()]
            except ValueError as err:
                raise InputError(
                    f"{path}:{i + 1}: expected 4 probabilities, got {text[:60]!r}"
                ) from err
            if len(values) != 4:
                raise InputError(f"{path}:{i + 1}: expected 4 probabilities, got {len(values)}")
            rows.append(values)
            i += 1
        if width is not None and len(rows) != width:
            raise InputError(
                f"{path}:{start}: motif {matrix_id!r} has {len(rows)} rows, header says w={width}"
            )
        counts = np.asarray(rows, dtype=np.float64).reshape(-1, 4)
        if nsites is not None and nsites > 0:
            counts = counts * nsites
        motifs.append(_checked_motif(f"{path}:{start}", name, matrix_id, counts))
    return motifs


def _checked_motif(where: str, name: str, matrix_id: str, counts: np.ndarray) -> Motif:
    if counts.shape[0] == 0:
        raise InputError(f"{where}: motif {matrix_id!r} is empty")
    if (counts < 0).any() or not np.isfinite(counts).all():
        raise InputError(f"{where}: motif {matrix_id!r} has negative or non-finite entries")
    if (counts.sum(axis=1) <= 0).any():
        raise InputError(f"{where}: motif {matrix_id!r} has a position whose entries sum to 0")
    return Motif(name=name, matrix_id=matrix_id, counts=counts)


# --------------------------------------------------------------------------------------
# Probabilities and sampling
# --------------------------------------------------------------------------------------


def ppm(motif: Motif, pseudocount: float = 0.0) -> np.ndarray:
    """Position probability matrix ``(L, 4)``: ``(counts + pseudocount)`` normalised per row."""
    if pseudocount < 0:
        raise InputError(f"pseudocount must be >= 0, got {pseudocount}")
    counts = motif.counts + pseudocount
    totals = counts.sum(axis=1, keepdims=True)
    if (totals <= 0).any():
        raise InputError(f"motif {motif.name!r}: a position has no counts; use a pseudocount > 0")
    return counts / totals


def sample_instances(
    motif: Motif, n: int, rng: np.random.Generator, pseudocount: float = 0.0
) -> np.ndarray:
    """``n`` instances of ``motif``: uint8 codes ``(n, L)``, each base drawn from the PPM."""
    probs = ppm(motif, pseudocount)
    cdf = np.cumsum(probs, axis=1)
    cdf /= cdf[:, -1:]  # exact 1 at the end whatever the rounding
    u = rng.random((n, motif.length))
    # code = number of cumulative thresholds (A, A+C, A+C+G) that u reaches
    return (u[:, :, None] >= cdf[None, :, :3]).sum(axis=2, dtype=np.uint8)


# --------------------------------------------------------------------------------------
# Scanning
# --------------------------------------------------------------------------------------


def information_content(motif: Motif) -> float:
    """Total information content in bits against a uniform background: ``Σ (2 + Σ p log2 p)``."""
    probs = ppm(motif)
    with np.errstate(divide="ignore", invalid="ignore"):
        entropy = -np.where(probs > 0, probs * np.log2(probs), 0.0).sum(axis=1)
    return float((2.0 - entropy).sum())


def log_odds(motif: Motif, pseudocount: float = 0.01) -> np.ndarray:
    """Log2-odds weights ``(L, 4)`` of the motif against a uniform background.

    ``pseudocount`` is a probability mixed into every cell (``(1 - 4c) p + c``) so that a base
    the matrix never saw costs a finite penalty.
    """
    if not 0 < pseudocount < 0.25:
        raise InputError(f"pseudocount must be in (0, 0.25), got {pseudocount}")
    return np.log2(((1 - 4 * pseudocount) * ppm(motif) + pseudocount) / 0.25)


def best_scan_scores(codes: np.ndarray, motif: Motif) -> np.ndarray:
    """The best log-odds score of ``motif`` in each sequence, over all positions and both
    strands: ``codes`` ``(n, length)`` uint8 (A=0 C=1 G=2 T=3; N or other codes score 0 at
    that base) → ``(n,)`` float32. ``-inf`` where the sequence is shorter than the motif."""
    codes = np.asarray(codes)
    weights = log_odds(motif).astype(np.float32)
    # reverse complement of the matrix: positions reversed, A<->T and C<->G (columns reversed)
    zero = np.zeros((motif.length, 1), np.float32)
    tables = [np.hstack([w, zero]) for w in (weights, weights[::-1, ::-1])]  # (L, 4 + 1)
    index = np.where(codes < 4, codes, 4).astype(np.intp)  # code 4: any other base, weight 0
    n, length = index.shape
    positions = length - motif.length + 1
    if positions < 1:
        return np.full(n, -np.inf, dtype=np.float32)
    best = np.full(n, -np.inf, dtype=np.float32)
    for table in tables:  # per strand; one vectorised gather per motif column
        scores = np.zeros((n, positions), dtype=np.float32)
        for j in range(motif.length):
            scores += table[j][index[:, j : j + positions]]
        np.maximum(best, scores.max(axis=1), out=best)
    return best
