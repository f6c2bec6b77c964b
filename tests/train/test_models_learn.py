"""Each model family, at its example width, learns what a CNN learns.

The data are the bundled yeast genome with two tracks made from it: the GC fraction over
1,001 bp (smooth, around 0.38, standard deviation about 0.03 per bin) and the REB1
motif occupancy that ships with the example data (sparse peaks up to about 14 per bin).
They differ in scale by two orders of magnitude, as real tracks do. Each family trains as
`gitool train --config workflows/example-*.yaml` does, for a fixed number of steps at
batch 4 on the CPU, and `gitool evaluate` scores the test split. The thresholds are ones
the collapsed models failed: before the fix Enformer's example predicted each track's mean
everywhere (test Pearson about 0 on both tracks).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gitool.config import BuildOptions
from gitool.data.build import build_store

from helpers import run_cli

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "example_data"

# family: (workflow, optimizer steps, min test Pearson on GC, on REB1 occupancy)
FAMILIES = {
    "swin": ("example-swin.yaml", 200, 0.3, 0.1),
    "enformer": ("example-enformer.yaml", 200, 0.3, 0.1),
    "cnn": ("example-cnn-maxpool.yaml", 300, 0.3, 0.1),
}


def write_gc_track(path: Path, window: int = 1001, step: int = 32) -> None:
    """GC fraction over ``window`` bp centred on each base, written every ``step`` bp."""
    import pyBigWig
    import pyfaidx

    genome = pyfaidx.Fasta(str(EXAMPLE / "genome.fa.gz"))
    names = list(genome.keys())  # noqa: SIM118 (iterating a Fasta gives records)
    chroms = [(name, len(genome[name])) for name in names]
    out = pyBigWig.open(str(path), "w")
    out.addHeader(chroms)
    for name, length in chroms:
        seq = np.frombuffer(str(genome[name][:]).upper().encode(), dtype=np.uint8)
        gc = np.concatenate([[0], np.cumsum((seq == ord("G")) | (seq == ord("C")))])
        starts = np.arange(0, length, step)
        lo = np.clip(starts - window // 2, 0, length)
        hi = np.clip(starts + window // 2 + 1, 0, length)
        values = (gc[hi] - gc[lo]) / (hi - lo)
        out.addEntries(name, 0, values=values.astype(np.float64).tolist(), span=step, step=step)
    out.close()
    genome.close()


@pytest.fixture(scope="module")
def gc_motif_store(tmp_path_factory):
    folder = tmp_path_factory.mktemp("gc-motif")
    write_gc_track(folder / "gc.bw")
    (folder / "tracks.txt").write_text(
        "index\tidentifier\tfile\tclip\tclip_soft\tscale\tsum_stat\tdescription\n"
        f"0\treb1\t{EXAMPLE / 'reb1_motif.bw'}\t32\t8\t1.0\tsum\tCHIP:REB1 occupancy\n"
        f"1\tgc\t{folder / 'gc.bw'}\t32\t8\t1.0\tmean\tDNASE:GC fraction over 1 kb\n"
    )
    out = folder / "data"
    build_store(BuildOptions(str(EXAMPLE / "genome.fa.gz"), str(folder / "tracks.txt"),
                             out=str(out), workers=1))  # fmt: skip
    return out


@pytest.mark.slow
@pytest.mark.usefixtures("all_cores")
@pytest.mark.parametrize("family", FAMILIES)
def test_family_learns_gc_and_motif_occupancy(family, gc_motif_store, tmp_path, capsys):
    workflow, steps, min_gc, min_motif = FAMILIES[family]
    run = tmp_path / "run"
    code, _, err = run_cli(
        ["train", "--config", ROOT / "workflows" / workflow, "--data", gc_motif_store,
         "-o", run, "--gpus", "0", "--max-steps", steps, "--epochs", 100,
         "--eval-every", steps, "--valid-windows", 8, "--checkpoint-every", steps,
         "--num-workers", 0],
        capsys,
    )  # fmt: skip
    assert code == 0, err
    code, _, err = run_cli(
        ["evaluate", "-m", run, "--split", "test", "-o", tmp_path / "test.tsv"], capsys
    )
    assert code == 0, err
    pearson = pd.read_csv(tmp_path / "test.tsv", sep="\t").set_index("identifier")
    pearson = pearson["pearson"]
    print(family, {k: round(float(v), 3) for k, v in pearson.items()})
    assert pearson["gc"] >= min_gc, pearson.to_dict()
    assert pearson["reb1"] >= min_motif, pearson.to_dict()
