"""Tiny genomes, bigWigs and tracks files made in ``tmp_path`` (no network, no GPU)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyBigWig
import pyfaidx
import pytest
import torch

# One intra-op thread: the tests' tensors are small, and OpenMP threads spinning against
# other processes (build workers, DataLoader workers) made the suite several times slower.
torch.set_num_threads(1)


@pytest.fixture
def all_cores():
    """Every core for one test: the few that train a model for hundreds of steps in this
    process, with no other process competing (no loader or build workers)."""
    from gitool.machine import cpu_count

    before = torch.get_num_threads()
    torch.set_num_threads(cpu_count())
    yield
    torch.set_num_threads(before)


def write_fasta(path: Path, seqs: dict[str, str], width: int = 60) -> Path:
    with open(path, "w") as handle:
        for name, seq in seqs.items():
            handle.write(f">{name}\n")
            for i in range(0, len(seq), width):
                handle.write(seq[i : i + width] + "\n")
    return path


def random_seq(rng: np.random.Generator, length: int) -> str:
    return "".join(rng.choice(list("ACGT"), size=length))


def write_bigwig(path: Path, sizes: dict[str, int], values: dict[str, np.ndarray]) -> Path:
    """Base-resolution bigWig; NaN entries are left out (missing data)."""
    bw = pyBigWig.open(str(path), "w")
    bw.addHeader(list(sizes.items()))
    for chrom in sizes:
        if chrom not in values:
            continue
        v = np.asarray(values[chrom], dtype=np.float64)
        if not np.isnan(v).any():  # fixed-step, 1 bp: fast for big dense arrays
            bw.addEntries(chrom, 0, values=v, span=1, step=1)
            continue
        keep = np.flatnonzero(~np.isnan(v))
        if len(keep):
            bw.addEntries(
                [chrom] * len(keep),
                keep.tolist(),
                ends=(keep + 1).tolist(),
                values=v[keep].tolist(),
            )
    bw.close()
    return path


def write_tracks(path: Path, rows: list[dict], columns: list[str] | None = None) -> Path:
    columns = columns or list(rows[0])
    with open(path, "w") as handle:
        handle.write("\t".join(columns) + "\n")
        for row in rows:
            handle.write("\t".join(str(row.get(c, "")) for c in columns) + "\n")
    return path


@pytest.fixture
def tiny(tmp_path: Path):
    """A 3-chromosome genome (with an N run), four bigWigs (a stranded pair), tracks.txt.

    Geometry for tests: seq_length 400, bin_size 8, target_length 25 (200-bp targets).
    """
    rng = np.random.default_rng(7)
    sizes = {"chr1": 6000, "chr2": 4000, "chr3": 3000, "chrM": 500}
    seqs = {c: random_seq(rng, n) for c, n in sizes.items()}
    seqs["chr2"] = seqs["chr2"][:1000] + "N" * 600 + seqs["chr2"][1600:]
    genome = write_fasta(tmp_path / "genome.fa", seqs)
    pyfaidx.Fasta(str(genome)).close()  # index up front, so commands print no index note
    values = {}
    for name in ("plus", "minus", "dense", "sparse"):
        per = {}
        for c, n in sizes.items():
            v = rng.gamma(0.5, 4.0, size=n).astype(np.float32)
            if name == "sparse":
                v[rng.random(n) < 0.7] = np.nan
            per[c] = v
        values[name] = per
        write_bigwig(tmp_path / f"{name}.bw", sizes, per)
    tracks = write_tracks(
        tmp_path / "tracks.txt",
        [
            dict(
                index=0,
                identifier="plus",
                file="plus.bw",
                clip="",
                clip_soft="",
                scale=1,
                sum_stat="sum",
                strand_pair=1,
                description="RNA:plus strand",
            ),
            dict(
                index=1,
                identifier="minus",
                file="minus.bw",
                clip="",
                clip_soft="",
                scale=1,
                sum_stat="sum",
                strand_pair=0,
                description="RNA:minus strand",
            ),
            dict(
                index=2,
                identifier="dense",
                file="dense.bw",
                clip=20,
                clip_soft=10,
                scale=0.5,
                sum_stat="mean",
                strand_pair=2,
                description="DNASE:dense",
            ),
            dict(
                index=3,
                identifier="sparse",
                file="sparse.bw",
                clip="",
                clip_soft=30,
                scale=2,
                sum_stat="max",
                strand_pair=3,
                description="CHIP:sparse",
            ),
        ],
    )
    return {
        "dir": tmp_path,
        "genome": genome,
        "tracks": tracks,
        "sizes": sizes,
        "seqs": seqs,
        "values": values,
    }
