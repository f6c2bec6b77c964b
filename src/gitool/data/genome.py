"""FASTA genomes (plain or bgzip) and the integer/one-hot DNA encoding.

Codes: A=0 C=1 G=2 T=3 N=4 (anything that is not ACGT, any case, is N). One-hot of N
is all zeros. Reverse complement of code ``c < 4`` is ``3 - c``.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyfaidx

from gitool.console import info
from gitool.errors import InputError

N_CODE = 4
_LOOKUP = np.full(256, N_CODE, dtype=np.uint8)
for _code, _bases in enumerate(("Aa", "Cc", "Gg", "Tt")):
    for _b in _bases:
        _LOOKUP[ord(_b)] = _code
_COMPLEMENT = np.array([3, 2, 1, 0, N_CODE], dtype=np.uint8)
_EYE = np.concatenate([np.eye(4, dtype=np.float32), np.zeros((1, 4), np.float32)])

# Names dropped by default: mitochondria, unplaced/unlocalised/alt/fix/hap contigs, EBV,
# and accession-named scaffolds (Ensembl's GL000009.2, KI270728.1, ...).
_DROPPED = re.compile(
    r"(^(chr)?(M|MT|Mito|mitochondrion)$)|_random$|^(chr)?Un|_alt$|_fix$|_hap\d*$|^(chr)?EBV$"
    r"|^[A-Z]{1,2}\d+\.\d+$",
    re.IGNORECASE,
)


def encode(seq: str | bytes) -> np.ndarray:
    """DNA text → uint8 codes (A=0 C=1 G=2 T=3, everything else 4). Shape ``(len,)``."""
    raw = seq.encode("ascii", "replace") if isinstance(seq, str) else seq
    return _LOOKUP[np.frombuffer(raw, dtype=np.uint8)]


def reverse_complement(codes: np.ndarray) -> np.ndarray:
    """Reverse complement of codes along the last axis (N stays N)."""
    return _COMPLEMENT[codes[..., ::-1]]


def one_hot(codes: np.ndarray) -> np.ndarray:
    """Codes ``(..., L)`` → float32 one-hot ``(..., L, 4)`` in A, C, G, T order; N → zeros."""
    return _EYE[codes]


def select_chroms(names: list[str], patterns: str | None) -> list[str]:
    """Chromosomes to keep, in genome order.

    ``patterns`` is a comma-separated list of names or shell globs (``chr*``, ``chr1,chr2``),
    or ``all``. ``None`` keeps the primary chromosomes (chr1…chr22, chrX, chrY; chrI…chrXVI;
    chr2L, chrZ, ... or 1…22, X, Y): everything but mitochondria, ``_random``, ``chrUn``,
    ``_alt``/``_fix``/``_hap`` contigs, EBV and accession-named scaffolds. Those are
    dropped unless named explicitly.
    """
    if patterns is None:
        kept = [n for n in names if not _DROPPED.search(n)]
        if not kept:
            raise InputError(
                f"the genome has only mitochondrial/unplaced sequences ({_preview(names)}); "
                "choose chromosomes with --chroms"
            )
        return kept
    if patterns.strip().lower() == "all":
        return list(names)
    wanted = [p.strip() for p in patterns.split(",") if p.strip()]
    kept = []
    for n in names:
        for p in wanted:
            if n == p or (any(ch in p for ch in "*?[") and fnmatch.fnmatchcase(n, p)):
                if n == p or not _DROPPED.search(n):
                    kept.append(n)
                break
    unknown = [p for p in wanted if not any(ch in p for ch in "*?[") and p not in names]
    if unknown:
        raise InputError(
            f"--chroms: {unknown[0]!r} is not a chromosome of the genome "
            f"(it has {_preview(names)}); fix the name or drop it"
        )
    if not kept:
        raise InputError(f"--chroms {patterns!r} matches no chromosome of the genome")
    return kept


def _preview(names: list[str], n: int = 5) -> str:
    shown = ", ".join(names[:n])
    return shown + (f", ... ({len(names)} in all)" if len(names) > n else "")


@dataclass(frozen=True)
class GenomeInfo:
    """What the store records about the genome it was built from."""

    path: str
    size: int
    fai_md5: str


class Genome:
    """A FASTA genome opened with pyfaidx; builds the ``.fai`` index when missing.

    Args:
        path: FASTA file, plain or bgzip-compressed (``.fa.gz`` written by ``bgzip``).
        label: how errors name it (the option it came from).
    """

    def __init__(self, path: str | Path, label: str = "genome"):
        self.path = Path(path)
        if not self.path.is_file():
            raise InputError(f"{label} {self.path}: no such file; give the FASTA path")
        fai = Path(str(self.path) + ".fai")
        stale = fai.exists() and fai.stat().st_mtime < self.path.stat().st_mtime
        if (stale or not fai.exists()) and not os.access(fai.parent, os.W_OK):
            # pyfaidx would fail with advice about its own API; say what the user can do.
            raise InputError(
                f"{label} {self.path}: the FASTA index {fai} is "
                f"{'older than the genome and ' if stale else 'missing and '}"
                "cannot be written next to it (read-only folder); create it once with "
                f"`samtools faidx {self.path}` where the folder is writable, or copy the "
                "genome to a writable folder"
            )
        if not fai.exists():
            info(f"building FASTA index {fai.name} (first use of this genome)")
        elif stale:
            info(f"rebuilding FASTA index {fai.name} (older than the FASTA)")
            fai.unlink()
            Path(str(self.path) + ".gzi").unlink(missing_ok=True)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # pyfaidx warns about what we just handled
                self._fasta = pyfaidx.Fasta(str(self.path), as_raw=True)
        except Exception as err:  # pyfaidx raises several types for bad files
            hint = (
                "; gzip FASTA must be bgzip-compressed (bgzip genome.fa)"
                if str(self.path).endswith(".gz")
                else ""
            )
            raise InputError(f"{label} {self.path}: cannot read as FASTA ({err}){hint}") from None
        self.fai = fai
        self.sizes: dict[str, int] = {
            name: len(record) for name, record in self._fasta.records.items()
        }
        if not self.sizes:
            raise InputError(f"{label} {self.path}: no sequences found; is it a FASTA file?")

    @property
    def names(self) -> list[str]:
        """Chromosome names in genome (FASTA) order."""
        return list(self.sizes)

    def describe(self) -> GenomeInfo:
        """Path, total size and md5 of the ``.fai`` (identifies the assembly)."""
        digest = hashlib.md5(self.fai.read_bytes()).hexdigest()
        return GenomeInfo(str(self.path.resolve()), sum(self.sizes.values()), digest)

    def codes(self, chrom: str, start: int, end: int) -> np.ndarray:
        """uint8 codes of ``chrom:start-end`` (0-based, half-open); N-padded off the ends."""
        size = self.sizes[chrom]
        lo, hi = max(start, 0), min(end, size)
        out = np.full(end - start, N_CODE, dtype=np.uint8)
        if hi > lo:
            out[lo - start : hi - start] = encode(self._fasta[chrom][lo:hi])
        return out

    def close(self) -> None:
        self._fasta.close()
