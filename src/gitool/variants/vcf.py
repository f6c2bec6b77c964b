"""Variants to score: VCF records read with pysam (htslib), one row per alternate allele.

Each record is split into one :class:`Variant` per ALT allele (a multi-allelic record gives
several rows with the same ID). A variant gets a :data:`STATUSES` entry saying whether it
can be scored; the reasons it cannot are decided here from the VCF and the genome alone
(the model's window decides :data:`TOO_LONG` and :data:`PADDED` later, in
:mod:`gitool.variants.alleles`).

The genome's reference is the truth: the REF of the VCF is compared with the FASTA at its
position and a difference gives :data:`REF_MISMATCH` (scored only when the user allows it,
its REF then put into the genome for the reference input).
"""

from __future__ import annotations

import gzip
import itertools
import re
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from gitool.data.genome import Genome, genome_spelling
from gitool.errors import InputError

OK, PADDED = "ok", "padded"
REF_MISMATCH = "ref_mismatch"
NO_ALT, SYMBOLIC, NON_ACGT = "no_alt", "symbolic", "non_acgt"
UNKNOWN_CHROM, OUTSIDE_CHROM, TOO_LONG = "unknown_chrom", "outside_chrom", "too_long"
STATUSES = {
    OK: "scored",
    PADDED: "scored; the window runs past a chromosome end and was padded with N",
    REF_MISMATCH: "REF differs from the genome; scored only with --allow-ref-mismatch",
    NO_ALT: "no alternate allele (ALT '.')",
    SYMBOLIC: "symbolic or structural allele (<DEL>, breakend, '*'): not a sequence",
    NON_ACGT: "an allele with a base other than A, C, G, T or N",
    UNKNOWN_CHROM: "chromosome not in the genome",
    OUTSIDE_CHROM: "REF runs past the end of its chromosome",
    TOO_LONG: "an allele too long for the model's window, or an indel changing the length "
    "by a bin or more",
}
"""Every status a variant can get, and what it means. The first two are scored."""
SCORED = (OK, PADDED)

_BASES = re.compile(r"^[ACGTN]+$")


@dataclass(frozen=True)
class Variant:
    """One alternate allele. ``pos`` is 1-based (VCF POS), ``start = pos - 1`` 0-based."""

    id: str
    chrom: str
    pos: int
    ref: str
    alt: str
    status: str = OK

    @property
    def start(self) -> int:
        return self.pos - 1


def default_id(chrom: str, pos: int, ref: str, alt: str) -> str:
    """The ID of a variant whose VCF ID is '.': ``chrom:pos:ref:alt``."""
    return f"{chrom}:{pos}:{ref}:{alt}"


def classify(variant: Variant, genome: Genome) -> str:
    """The status of ``variant`` from its alleles and the genome (see :data:`STATUSES`);
    :data:`OK` when nothing stops scoring it."""
    alt = variant.alt
    if alt in ("", "."):
        return NO_ALT
    if alt.startswith("<") or alt == "*" or "[" in alt or "]" in alt or "." in alt:
        return SYMBOLIC
    if not _BASES.match(variant.ref) or not _BASES.match(alt):
        return NON_ACGT
    size = genome.sizes.get(variant.chrom)
    if size is None:
        return UNKNOWN_CHROM
    if variant.pos < 1 or variant.start + len(variant.ref) > size:
        return OUTSIDE_CHROM
    bases = genome.codes(variant.chrom, variant.start, variant.start + len(variant.ref))
    expected = genome_bases(bases)
    if expected != variant.ref:
        return REF_MISMATCH
    return OK


def genome_bases(codes) -> str:
    """Letters of uint8 codes (N for anything not A, C, G, T)."""
    return "".join("ACGTN"[int(c)] for c in codes)


class ChromNames:
    """Checks the VCF's chromosome names against the genome once per name: a name the
    genome lacks but spells differently (``1`` vs ``chr1``, ``Chr1`` vs ``chr1``, ``MT`` vs
    ``chrM``) is an error naming the fix, not thousands of skipped variants."""

    def __init__(self, path: str, sizes: dict[str, int]):
        self.path, self.sizes = path, sizes
        self.seen: set[str] = set()

    def check(self, chrom: str) -> None:
        if chrom in self.seen:
            return
        self.seen.add(chrom)
        if chrom in self.sizes:
            return
        other = genome_spelling(chrom, self.sizes)
        if other is not None:
            example = next(iter(self.sizes))
            raise InputError(
                f"{self.path}: chromosome {chrom!r} is not in the genome, which names it "
                f"{other!r} (its first is {example!r}); rename the VCF's chromosomes to the "
                f"genome's, e.g. `bcftools annotate --rename-chrs MAP` with lines "
                f"'{chrom} {other}'",
                field="variants",
            )


def _missing_header(path: Path, bgzf: bool) -> str | None:
    """Which header line a text VCF htslib refused lacks (its first 64 kB read), or None
    (a BCF, or the header is there: something else is wrong)."""
    opener = gzip.open if bgzf else open
    try:
        with opener(path, "rb") as handle:
            head = handle.read(1 << 16)
    except (OSError, EOFError, zlib.error):  # unreadable or damaged: htslib's error stands
        return None
    if head.startswith(b"BCF"):
        return None
    lines = head.decode("utf-8", errors="replace").lstrip("\ufeff").splitlines()
    if not lines or not lines[0].startswith("##fileformat=VCF"):
        return "no '##fileformat=VCF...' first line"
    whole = len(head) < 1 << 16  # (a longer header may have it further on)
    if whole and not any(line.startswith("#CHROM") for line in lines):
        return "no '#CHROM' line"
    return None


def _is_bgzf(path: Path) -> bool | None:
    """True for BGZF, False for other gzip, None for uncompressed."""
    with open(path, "rb") as handle:
        head = handle.read(18)
    if head[:2] != b"\x1f\x8b":
        return None
    return len(head) >= 16 and bool(head[3] & 4) and head[12:14] == b"BC"


def _bgzip_name(path: Path) -> str:
    """``calls.vcf.gz`` → ``calls.bgz.vcf.gz``: where the recompressed copy may go."""
    base = path.name.removesuffix(".gz").removesuffix(".vcf")
    return str(path.with_name(f"{base}.bgz.vcf.gz"))


def _header_lines(path: Path, compressed: bool) -> int:
    opener = gzip.open if compressed else open
    n = 0
    with opener(path, "rb") as handle:
        for line in handle:
            if not line.startswith(b"#"):
                break
            n += 1
    return n


def _record_problem(path: Path, compressed: bool, number: int) -> str | None:
    """What is wrong with line ``number`` (1-based) of a text VCF htslib could not parse (its
    own message is often "truncated file"), or None when it looks well formed."""
    opener = gzip.open if compressed else open
    try:
        with opener(path, "rb") as handle:
            raw = next(itertools.islice(handle, number - 1, None), None)
    except (OSError, EOFError, zlib.error):
        return None
    if raw is None:
        return None
    text = raw.decode("utf-8", errors="replace").rstrip("\r\n")
    fields = text.split("\t")
    if len(fields) < 8:
        spaces = " (separated by spaces? a VCF uses tabs)" if " " in text.strip() else ""
        return f"{len(fields)} tab-separated field(s), a VCF record has at least 8{spaces}"
    if not fields[1].strip().isdigit():
        return f"POS {fields[1]!r} is not a whole number"
    if not fields[3].strip() or fields[3].strip() == ".":
        return "REF is empty"
    return None


def read_vcf(path: str | Path, genome: Genome) -> Iterator[Variant]:
    """Variants of a VCF (plain, or bgzip-compressed ``.vcf.gz``; BCF too), one per ALT
    allele, in file order, streamed (memory does not grow with the file).

    Raises:
        InputError: the file is missing, not a VCF, gzip- but not bgzip-compressed, a record
        is malformed (naming its line), or a chromosome is named differently from the
        genome's (``1`` vs ``chr1``, naming the fix).
    """
    import pysam  # lazy: keeps `gitool --help` light

    path = Path(path)
    where = str(path)
    if not path.is_file():
        raise InputError(f"{where} does not exist; give a VCF file", field="variants")
    bgzf = _is_bgzf(path)
    if bgzf is False:
        raise InputError(
            f"{where} is gzip- but not bgzip-compressed, which htslib cannot read; "
            f"recompress it: `zcat {path} | bgzip > {_bgzip_name(path)}`",
            field="variants",
        )
    pysam.set_verbosity(0)  # htslib's own messages; errors are raised below, one line each
    try:
        handle = pysam.VariantFile(str(path))
    except (ValueError, OSError) as err:
        missing = _missing_header(path, bgzf is True)
        if missing is not None:
            raise InputError(
                f"{where} has no VCF header ({missing}); a VCF starts with a "
                "'##fileformat=VCFv4.2' line and ends its header with "
                "'#CHROM<TAB>POS<TAB>ID<TAB>REF<TAB>ALT<TAB>QUAL<TAB>FILTER<TAB>INFO'; add them",
                field="variants",
            ) from None
        raise InputError(
            f"{where} is not a VCF/BCF file htslib can read ({err}); give a VCF",
            field="variants",
        ) from None
    header = None if path.suffix == ".bcf" else _header_lines(path, bgzf is True)
    names = ChromNames(where, genome.sizes)
    with handle:
        n = 0
        records = iter(handle)
        while True:
            try:
                record = next(records)
            except StopIteration:
                return
            except (ValueError, OSError) as err:
                line = f"line {header + n + 1}" if header is not None else f"record {n + 1}"
                problem = None
                if header is not None:
                    problem = _record_problem(path, bgzf is True, header + n + 1)
                raise InputError(
                    f"{where} {line}: malformed VCF record ({problem or f'htslib: {err}'}); "
                    "fix or remove it",
                    field="variants",
                ) from None
            n += 1
            names.check(record.chrom)
            yield from split_record(
                record.chrom, record.pos, record.id, record.ref, record.alts, genome
            )


def split_record(
    chrom: str, pos: int, vid: str | None, ref: str, alts: Iterable[str] | None, genome: Genome
) -> Iterator[Variant]:
    """One classified :class:`Variant` per ALT allele (``alts`` None: one :data:`NO_ALT`)."""
    ref = (ref or "").upper()
    for alt in alts or (".",):
        if alt.isalpha():  # a sequence; symbolic alleles and breakends stay as written
            alt = alt.upper()
        variant = Variant(vid or default_id(chrom, pos, ref, alt), chrom, int(pos), ref, alt)
        yield Variant(**{**vars(variant), "status": classify(variant, genome)})


def variants_from_table(rows: Iterable, genome: Genome) -> Iterator[Variant]:
    """Variants from ``(chrom, pos, ref, alt[, id])`` rows (1-based ``pos``, as in a VCF) or
    a DataFrame with those columns; ALT may hold several alleles separated by commas. A
    :class:`Variant` row passes through as it is.

    Raises:
        InputError: a row without four fields, or a non-integer position.
    """
    if hasattr(rows, "itertuples"):  # a DataFrame
        missing = {"chrom", "pos", "ref", "alt"} - set(rows.columns)
        if missing:
            raise InputError(
                f"the table lacks column(s) {sorted(missing)}; give chrom, pos, ref, alt "
                "(and optionally id)",
                field="variants",
            )
        ids = rows["id"] if "id" in rows.columns else [None] * len(rows)
        rows = zip(rows["chrom"], rows["pos"], rows["ref"], rows["alt"], ids, strict=True)
    names = ChromNames("variants", genome.sizes)
    for i, row in enumerate(rows):
        if isinstance(row, Variant):  # already classified (in-silico mutagenesis)
            yield row
            continue
        if len(row) not in (4, 5):
            raise InputError(
                f"row {i}: {row!r} is not (chrom, pos, ref, alt[, id])", field="variants"
            )
        if _missing(row[0]) or _missing(row[2]):
            raise InputError(f"row {i}: {row!r} has no chromosome or REF", field="variants")
        chrom, pos, ref = str(row[0]), row[1], str(row[2])
        alt = "." if _missing(row[3]) else str(row[3])
        try:
            pos = int(pos)
        except (TypeError, ValueError):
            raise InputError(
                f"row {i}: position {pos!r} is not an integer", field="variants"
            ) from None
        vid = None if len(row) < 5 or _missing(row[4]) or str(row[4]) in ("", ".") else str(row[4])
        names.check(chrom)
        alts = None if alt in ("", ".") else alt.split(",")
        yield from split_record(chrom, pos, vid, ref, alts, genome)


def _missing(value) -> bool:
    """None, NaN or pandas' NA (an empty cell of a DataFrame)."""
    if value is None:
        return True
    if isinstance(value, str):
        return False
    import pandas as pd

    return bool(pd.isna(value))
