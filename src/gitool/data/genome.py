"""FASTA genomes (plain or bgzip) and the integer/one-hot DNA encoding.

Codes: A=0 C=1 G=2 T=3 N=4 (anything that is not ACGT, any case, is N). One-hot of N
is all zeros. Reverse complement of code ``c < 4`` is ``3 - c``.
"""

from __future__ import annotations

import contextlib
import fnmatch
import hashlib
import os
import re
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyfaidx

from gitool.console import info
from gitool.errors import InputError, opt

N_CODE = 4
_LOOKUP = np.full(256, N_CODE, dtype=np.uint8)
for _code, _bases in enumerate(("Aa", "Cc", "Gg", "Tt")):
    for _b in _bases:
        _LOOKUP[ord(_b)] = _code
_COMPLEMENT = np.array([3, 2, 1, 0, N_CODE], dtype=np.uint8)
_EYE = np.concatenate([np.eye(4, dtype=np.float32), np.zeros((1, 4), np.float32)])

# Names dropped by default: mitochondria, unplaced/unlocalised/alt/fix/hap/decoy contigs,
# EBV, HLA alleles (GRCh38's analysis set: HLA-A*01:01:01:01), and, beside chromosome-style names, accession-named scaffolds (Ensembl's GL000009.2,
# KI270728.1, ...). A genome named by accessions only (GenBank CM000663.2, RefSeq
# NC_000001.11) keeps them: there the accessions are the chromosomes.
_DROPPED_BY_NAME = re.compile(
    r"(^(chr)?(M|MT|Mito|mitochondrion)$)|_random$|^(chr)?Un|_alt$|_fix$|_hap\d*$|^(chr)?EBV$"
    r"|_decoy$|^HLA-",
    re.IGNORECASE,
)
_DROPPED = re.compile(_DROPPED_BY_NAME.pattern + r"|^[A-Z]{1,2}\d+\.\d+$", re.IGNORECASE)
# Chromosome-style names: chr-prefixed, or Ensembl's bare 1-99, X, Y, W, Z, roman numerals.
_CHROMOSOME = re.compile(r"^chr|^(\d{1,2}[A-Z]?|[XYWZ]|[IVX]+)$", re.IGNORECASE)


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
    or ``all``. ``None`` keeps the primary chromosomes: when the names are chromosome-style
    (chr1…chr22, chrX, chrY; chrI…chrXVI; chr2L, chrZ, ... or Ensembl's 1…22, X, Y), all
    but mitochondria, ``_random``, ``chrUn``, ``_alt``/``_fix``/``_hap``/``_decoy`` contigs,
    EBV, HLA alleles (``HLA-A*01:01:01:01``) and
    accession-named scaffolds (GL000009.2, KI270728.1); when they are not (GenBank/RefSeq
    accessions such as CM000663.2 or NC_000001.11 name the chromosomes themselves), every
    sequence but those with a mitochondrial/unplaced/alt/decoy/HLA name. Dropped ones are kept when
    named explicitly.
    """
    if patterns is None:
        return _default_chroms(names)
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
            f"{unknown[0]!r} is not a chromosome of the genome "
            f"(it has {preview(names)}); fix the name or drop it",
            field="chroms",
        )
    if not kept:
        raise InputError(f"{patterns!r} matches no chromosome of the genome", field="chroms")
    return kept


def _default_chroms(names: list[str]) -> list[str]:
    chromosome_style = any(_CHROMOSOME.match(n) for n in names)
    dropped = _DROPPED if chromosome_style else _DROPPED_BY_NAME
    kept = [n for n in names if not dropped.search(n)]
    if not kept:
        raise InputError(
            f"the genome has only mitochondrial/unplaced sequences ({preview(names)}); "
            f"choose chromosomes with {opt('chroms')}"
        )
    return kept


def describe_choice(names: list[str], kept: list[str]) -> str:
    """``kept 3 chromosomes (chr1, chr2, chr3); dropped 1 (chrM)``: the status line."""
    chosen = set(kept)
    dropped = [n for n in names if n not in chosen]
    line = f"kept {len(kept)} chromosome{'s' if len(kept) != 1 else ''} ({preview(kept, 4)})"
    return line + (f"; dropped {len(dropped)} ({preview(dropped, 4)})" if dropped else "")


def preview(names: list[str], n: int = 5) -> str:
    """The first ``n`` names, then how many there are in all."""
    shown = ", ".join(names[:n])
    return shown + (f", ... ({len(names)} in all)" if len(names) > n else "")


def genome_spelling(chrom: str, names: Iterable[str]) -> str | None:
    """The genome's name for ``chrom`` when it spells the same chromosome differently —
    another case (``Chr1``/``chr1``), with or without ``chr`` (``1``/``chr1``), or the
    mitochondrion (``chrM``/``MT``/``chrMT``/``M``) — else None (also when ``chrom`` is
    one of ``names``)."""
    lower = {name.lower(): name for name in names}
    if chrom in lower.values():
        return None
    key = chrom.lower()
    base = key[3:] if key.startswith("chr") else key
    candidates = [key, base, f"chr{base}"]
    if base in ("m", "mt"):
        candidates += ["chrm", "mt", "chrmt", "m"]
    return next((lower[c] for c in candidates if c in lower), None)


def looks_like_fai(path: Path) -> bool:
    """Whether ``path`` reads as a samtools/pyfaidx index: each line a name and four
    non-negative integers, tab-separated (so a stale index may be rebuilt, a user's file
    that happens to share the name may not)."""
    try:
        with open(path, "rb") as handle:
            lines = handle.read(1 << 16).split(b"\n")[:-1]  # whole lines only
    except OSError:
        return False
    return all(
        len(fields := line.rstrip(b"\r").split(b"\t")) in (5, 6)
        and all(f.isdigit() for f in fields[1:5])
        for line in lines
    )


@dataclass(frozen=True)
class GenomeInfo:
    """What the store records about the genome it was built from."""

    path: str
    size: int
    fai_md5: str


class Genome:
    """A FASTA genome opened with pyfaidx; its ``.fai`` index is built when missing and
    rebuilt when it does not describe the FASTA (:func:`index_matches`).

    Args:
        path: FASTA file, plain or bgzip-compressed (``.fa.gz`` written by ``bgzip``).
        label: the option (field name) it came from, named in errors.
    """

    def __init__(self, path: str | Path, label: str = "genome"):
        self.path = Path(path)
        self.label = label
        if not self.path.is_file():
            raise self._error(f"{self.path}: no such file; give the FASTA path")
        self.fai = Path(str(self.path) + ".fai")
        gzi = Path(str(self.path) + ".gzi")
        had_gzi = gzi.exists()
        building = self._refresh_index()
        try:
            self._fasta = self._open()
            self.sizes: dict[str, int] = {
                name: len(record) for name, record in self._fasta.records.items()
            }
            if not self.sizes:
                raise self._error(f"{self.path}: no sequences found; is it a FASTA file?")
        except InputError:
            if building:  # leave no index of a FASTA that could not be read
                self.fai.unlink(missing_ok=True)
                if not had_gzi:
                    gzi.unlink(missing_ok=True)
            raise

    def _error(self, message: str) -> InputError:
        return InputError(message, field=self.label)

    def _refresh_index(self) -> bool:
        """Remove a ``.fai`` (and ``.gzi``) that does not match the FASTA, so pyfaidx builds
        a new one; refuse when the folder cannot take a new one. True when an index is to be
        built."""
        missing = not self.fai.exists()
        stale = not missing and not index_matches(self.path, self.fai)
        if (missing or stale) and not os.access(self.fai.parent, os.W_OK):
            # pyfaidx would fail with advice about its own API; say what the user can do.
            raise self._error(
                f"{self.path}: the FASTA index {self.fai} is "
                f"{'out of date (it does not match the genome) and ' if stale else 'missing and '}"
                "cannot be written next to it (read-only folder); create it once with "
                f"`samtools faidx {self.path}` where the folder is writable, or copy the "
                "genome to a writable folder"
            )
        if missing:
            info(f"building FASTA index {self.fai.name} (first use of this genome)")
        elif stale:
            if not looks_like_fai(self.fai):
                raise self._error(
                    f"{self.path}: {self.fai} is not a FASTA index (lines of name, length, "
                    "offset, line bases, line bytes), so gitool will not replace it; move it "
                    "away and gitool builds the index"
                )
            info(f"rebuilding FASTA index {self.fai.name} (it does not match the FASTA)")
            self.fai.unlink()
            Path(str(self.path) + ".gzi").unlink(missing_ok=True)
        return missing or stale

    def _open(self):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # pyfaidx warns about what we just handled
                # rebuild=False: the index was checked against the FASTA's content above
                return pyfaidx.Fasta(str(self.path), as_raw=True, rebuild=False)
        except Exception as err:  # pyfaidx raises several types for bad files
            hint = (
                "; gzip FASTA must be bgzip-compressed (bgzip genome.fa)"
                if str(self.path).endswith(".gz")
                else ""
            )
            raise self._error(f"{self.path}: cannot read as FASTA ({err}){hint}") from None

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


# --------------------------------------------------------------------------- the .fai index

_MAX_GAP = 1 << 20  # longest header line (plus blank lines) accepted between two records


class _Stale(Exception):
    """The index does not describe the FASTA."""


def index_matches(fasta: Path, fai: Path) -> bool:
    """Whether ``fai`` describes ``fasta`` as it is now (whatever the files' times).

    Every byte of the FASTA outside the sequence lines the index lists must be a header
    line (``>name``, in the index's order) or a line break: so a record the index misses,
    a moved offset or a changed line width is caught. Two small reads per record.
    """
    try:
        records = _read_fai(fai)
        with _open_bytes(fasta) as source:
            _check_records(records, source)
    except (_Stale, OSError, ValueError, EOFError):
        return False
    return True


def _read_fai(fai: Path) -> list[tuple[bytes, int, int, int, int]]:
    records = []
    for line in fai.read_bytes().splitlines():
        fields = line.split(b"\t")
        if len(fields) != 5:
            raise _Stale
        name, (length, offset, bases, width) = fields[0], map(int, fields[1:])
        if length < 0 or offset < 0 or bases < 1 or width - bases not in (1, 2):
            raise _Stale
        records.append((name, length, offset, bases, width))
    if not records:
        raise _Stale
    return records


def _check_records(records, source) -> None:
    end = 0  # where the previous record's sequence ends
    for name, length, offset, bases, width in records:
        if offset < end or offset - end > _MAX_GAP:
            raise _Stale
        header = source.read(end, offset - end).lstrip(b"\r\n")
        if not _is_header(header, name):
            raise _Stale
        lines = -(-length // bases)  # ceil
        if not _first_line_fits(source.read(offset, width), min(length, bases), lines > 1):
            raise _Stale
        end = offset + length + max(lines - 1, 0) * (width - bases)
    if source.size < end or source.size - end > _MAX_GAP:
        raise _Stale
    if source.read(end, source.size - end).strip():
        raise _Stale


def _first_line_fits(line: bytes, bases: int, more: bool) -> bool:
    """The record's first line holds ``bases`` bases, then a line break if more follow."""
    sequence, rest = line[:bases], line[bases:]
    if len(sequence) != bases or any(c in sequence for c in b">\r\n"):
        return False
    return not more or rest in (b"\n", b"\r\n")


def _is_header(text: bytes, name: bytes) -> bool:
    """``>name`` plus an optional description, then one line break, and nothing else."""
    head = b">" + name
    if not text.startswith(head) or not text.endswith(b"\n") or text.count(b"\n") != 1:
        return False
    rest = text[len(head) :]
    return rest in (b"\n", b"\r\n") or rest[:1] in (b" ", b"\t")


class _PlainBytes:
    def __init__(self, path: Path):
        self._handle = open(path, "rb")  # noqa: SIM115 - closed by close()
        self.size = os.fstat(self._handle.fileno()).st_size

    def read(self, offset: int, n: int) -> bytes:
        self._handle.seek(offset)
        return self._handle.read(n)

    def close(self) -> None:
        self._handle.close()


class _BgzfBytes:
    """Uncompressed bytes of a bgzip file, reached through its ``.gzi`` block index."""

    def __init__(self, path: Path):
        from Bio import bgzf  # lazy: Biopython is only needed for bgzip genomes

        gzi = Path(str(path) + ".gzi").read_bytes()
        count = int.from_bytes(gzi[:8], "little")
        pairs = np.frombuffer(gzi, "<u8", count * 2, 8).reshape(-1, 2)
        self._blocks = np.concatenate([[[0, 0]], pairs]).astype(np.int64)
        self._make = bgzf.make_virtual_offset
        self._reader = bgzf.BgzfReader(str(path), "rb")
        tail = self.read(int(self._blocks[-1, 1]), _MAX_GAP + 1)
        if len(tail) > _MAX_GAP:
            raise _Stale
        self.size = int(self._blocks[-1, 1]) + len(tail)

    def read(self, offset: int, n: int) -> bytes:
        i = int(np.searchsorted(self._blocks[:, 1], offset, side="right")) - 1
        within = offset - int(self._blocks[i, 1])
        if within >= 1 << 16:
            raise _Stale
        self._reader.seek(self._make(int(self._blocks[i, 0]), within))
        return self._reader.read(n)

    def close(self) -> None:
        self._reader.close()


@contextlib.contextmanager
def _open_bytes(path: Path):
    with open(path, "rb") as handle:
        gzipped = handle.read(2) == b"\x1f\x8b"
    source = _BgzfBytes(path) if gzipped else _PlainBytes(path)
    try:
        yield source
    finally:
        source.close()
