"""A model trained on the bundled REB1 motif-occupancy track scores mutations in strong
REB1 sites as lowering the track, and mutations far from any site as doing almost nothing.

The cnn-maxpool example (``workflows/example-cnn-maxpool.yaml``) trains for 300 steps at
batch 4 on the CPU (about 15 s; its validation Pearson on the track is about 0.58). Strong
sites are runs of at least 5 bp whose per-base occupancy exceeds 0.9; the middle base of
each is changed to each of the three other bases. Far mutations lie 1 kb or more from any
occupancy above 0.01. Measured: mean ``sum`` −1.9 at sites and −0.002 far away.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyBigWig
import pytest

from gitool.data.genome import Genome
from gitool.variants.scoring import score_variants

from helpers import run_cli

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "example_data"


def positions(genome: Genome, track: Path, n: int) -> tuple[list, list]:
    """(chrom, 1-based pos) of the middle bases of strong sites, and of far-away bases."""
    rng = np.random.default_rng(0)
    sites, far = [], []
    with pyBigWig.open(str(track)) as bw:
        for chrom, size in genome.sizes.items():
            if size < 60_000:
                continue
            values = np.nan_to_num(np.array(bw.values(chrom, 0, size), dtype=np.float32))
            strong = np.flatnonzero(values > 0.9)
            for run in np.split(strong, np.flatnonzero(np.diff(strong) > 1) + 1):
                if len(run) >= 5 and 20_000 < run[0] < size - 20_000:
                    sites.append((chrom, int(run[len(run) // 2]) + 1))
            near = np.convolve(values > 0.01, np.ones(2001), mode="same") > 0
            quiet = np.flatnonzero(~near[20_000 : size - 20_000]) + 20_000
            far += [(chrom, int(p) + 1) for p in rng.choice(quiet, min(3, len(quiet)), False)]
    order = rng.permutation(len(sites))[:n]
    return [sites[i] for i in order], far[:n]


def snvs(genome: Genome, where: list) -> list:
    rows = []
    for chrom, pos in where:
        ref = "ACGT"[genome.codes(chrom, pos - 1, pos)[0]]
        rows += [(chrom, pos, ref, alt) for alt in "ACGT" if alt != ref]
    return rows


@pytest.mark.slow
@pytest.mark.usefixtures("all_cores")
def test_mutating_a_strong_motif_site_lowers_the_predicted_track(tmp_path, capsys):
    (tmp_path / "tracks.txt").write_text(
        "index\tidentifier\tfile\tclip\tclip_soft\tscale\tsum_stat\tdescription\n"
        f"0\treb1\t{EXAMPLE / 'reb1_motif.bw'}\t32\t8\t1.0\tsum\tCHIP:REB1 occupancy\n"
    )
    genome_path = EXAMPLE / "genome.fa.gz"
    data, run = tmp_path / "data", tmp_path / "run"
    code, _, err = run_cli(
        ["build-dataset", genome_path, tmp_path / "tracks.txt", "-o", data, "-j", 1], capsys
    )
    assert code == 0, err
    code, _, err = run_cli(
        ["train", "--config", ROOT / "workflows" / "example-cnn-maxpool.yaml", "--data", data,
         "-o", run, "--gpus", 0, "--max-steps", 300, "--epochs", 100, "--eval-every", 300,
         "--valid-windows", 8, "--checkpoint-every", 300, "--num-workers", 0],
        capsys,
    )  # fmt: skip
    assert code == 0, err
    genome = Genome(genome_path)
    sites, far = positions(genome, EXAMPLE / "reb1_motif.bw", 24)
    assert len(sites) == 24 and len(far) >= 6
    at_sites = score_variants(run, genome, snvs(genome, sites), device="cpu")["sum:reb1"]
    away = score_variants(run, genome, snvs(genome, far), device="cpu")["sum:reb1"]
    print({"sites": float(at_sites.mean()), "far": float(away.mean())})
    assert at_sites.mean() < -0.5, at_sites.describe()
    assert (at_sites < 0).mean() > 0.7
    assert abs(away.mean()) < 0.2 and at_sites.mean() < away.mean() - 1.0
