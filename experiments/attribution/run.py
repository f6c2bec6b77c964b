#!/usr/bin/env python
"""Validate attribution and motif discovery on models that learned the bundled motif tracks.

The bundled yeast tracks REB1, ABF1 and RAP1 are motif occupancies made by scanning the genome
with JASPAR 2024 matrices (``example_data/PROVENANCE.md``), so what a model should learn is
known. This script, with the gitool commands a user would run, for each of the three tracks:

1. builds a store of that track and trains the example cnn-maxpool
   (``workflows/example-cnn-maxpool.yaml``, batch 4) on it for ``--steps`` steps on the CPU —
   one model per track: trained on the three together, the same CNN (also at 4× its width,
   2,000-3,000 steps) learns REB1 and RAP1 (test Pearson 0.98) but not ABF1 (0.02), which it
   learns alone (0.70);
2. takes the ``--sites`` strongest sites (runs of at least 5 bp whose per-base occupancy
   exceeds 0.9, at least 20 kb from chromosome ends) and one model window per site with the
   site in target bin 40 (regions of 80 × 128 bp);
3. ``gitool attribute --method deepliftshap --bins 40`` toward the track (``--shuffles``
   references), then ``gitool modisco --window 200`` (200 bp around each site; over the whole
   10-kb target span, nearly all of it without contribution toward bin 40, TF-MoDISco's
   clustering fails on NaN similarities). The check: a discovered pattern matches the
   motif's own JASPAR matrix with Tomtom q < 0.05, and none matches either of the other two;

and then:

4. ``gitool attribute --method integrated-gradients`` on 20 REB1 windows: the largest
   completeness error;
5. ``gitool marginalize --motif REB1`` with each of the three models: REB1's consensus in
   shuffled backgrounds raises the REB1 model's track at the insertion bin (more than 5
   standard errors, and by more than twice what all other bins change together), and moves
   the ABF1 and RAP1 models' tracks by less than a quarter of that.

Results go to ``results/summary.json`` and the recovered logos to ``results/logos/``; the
script exits 1 when a check fails.

Usage::

    python experiments/attribution/run.py [--workdir DIR] [--steps 1000] [--sites 150]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyBigWig

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "example_data"
GENOME = EXAMPLE / "genome.fa.gz"
MOTIFS = {  # track: (JASPAR matrix of the example data, its name)
    "reb1_motif": ("MA0363.3", "REB1"),
    "abf1_motif": ("MA0265.3", "ABF1"),
    "rap1_motif": ("MA0359.3", "RAP1"),
}
BIN, BINS, SITE_BIN = 128, 80, 40


def gitool(*args, log: Path) -> float:
    """Run one gitool command; its stderr is appended to ``log``. Returns seconds."""
    began = time.perf_counter()
    command = [sys.executable, "-m", "gitool", *map(str, args)]
    done = subprocess.run(command, capture_output=True, text=True)
    with open(log, "a") as handle:
        handle.write("$ gitool " + " ".join(map(str, args)) + "\n" + done.stderr + "\n")
    if done.returncode != 0:
        sys.exit(f"gitool {args[0]} failed:\n{done.stderr[-3000:]}")
    return time.perf_counter() - began


def strong_sites(track: Path, sizes: dict[str, int], n: int, seed: int = 0) -> list[tuple]:
    """(chrom, position) of the middle base of the ``n`` strongest occupancy runs."""
    rng = np.random.default_rng(seed)
    sites = []
    with pyBigWig.open(str(track)) as bw:
        for chrom, size in sizes.items():
            values = np.nan_to_num(np.array(bw.values(chrom, 0, size), dtype=np.float32))
            strong = np.flatnonzero(values > 0.9)
            for run in np.split(strong, np.flatnonzero(np.diff(strong) > 1) + 1):
                if len(run) >= 5 and 20_000 < run[0] < size - 20_000:
                    middle = int(run[len(run) // 2])
                    sites.append((float(values[run].sum()), chrom, middle))
    sites.sort(key=lambda s: -s[0])
    chosen = sites[: 3 * n]
    keep = rng.permutation(len(chosen))[:n]
    return sorted((chosen[i][1], chosen[i][2]) for i in keep)


def site_regions(sites: list[tuple], path: Path) -> Path:
    """One model window per site, the site in target bin :data:`SITE_BIN`."""
    lines = []
    for chrom, pos in sites:
        start = (pos // BIN - SITE_BIN) * BIN
        lines.append(f"{chrom}\t{start}\t{start + BINS * BIN}\n")
    path.write_text("".join(sorted(set(lines))))
    return path


def train_one(track: str, work: Path, args, log: Path) -> tuple[Path, float]:
    """A store of one motif track and the example cnn-maxpool trained on it; test Pearson."""
    rows = pd.read_csv(EXAMPLE / "tracks.txt", sep="\t")
    rows = rows[rows["identifier"] == track].copy()
    rows["index"], rows["strand_pair"] = 0, 0
    rows["file"] = [str(EXAMPLE / f) for f in rows["file"]]
    folder = work / track
    folder.mkdir(parents=True, exist_ok=True)
    rows.to_csv(folder / "tracks.txt", sep="\t", index=False)
    data, run = folder / "data", folder / "cnn"
    if not (data / "manifest.yaml").exists():
        gitool("build-dataset", GENOME, folder / "tracks.txt", "-o", data, "-j", 1, log=log)
    if not (run / "checkpoints" / "best.pt").exists():
        gitool(
            "train", "--config", ROOT / "workflows" / "example-cnn-maxpool.yaml", "--data", data,
            "-o", run, "--gpus", 0, "--max-steps", args.steps, "--epochs", 100,
            "--eval-every", args.steps, "--valid-windows", 16, "--checkpoint-every", args.steps,
            "--num-workers", 0, log=log,
        )  # fmt: skip
    gitool("evaluate", "-m", run, "--split", "test", "-o", folder / "test.tsv", "--force", log=log)
    pearson = pd.read_csv(folder / "test.tsv", sep="\t")["pearson"].iloc[0]
    return run, round(float(pearson), 3)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workdir", type=Path, default=Path("attribution-work"))
    ap.add_argument("--steps", type=int, default=1000, help="training steps (batch 4)")
    ap.add_argument("--sites", type=int, default=150, help="windows per motif")
    ap.add_argument("--shuffles", type=int, default=10, help="DeepLIFT/SHAP references")
    ap.add_argument("--window", type=int, default=200, help="bp around each site for TF-MoDISco")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = ap.parse_args()
    work = args.workdir
    work.mkdir(parents=True, exist_ok=True)
    args.out.mkdir(parents=True, exist_ok=True)
    log = args.out / "commands.log"
    log.write_text("")
    summary: dict = {"steps": args.steps, "sites": args.sites, "shuffles": args.shuffles,
                     "window": args.window, "motifs": {}}  # fmt: skip
    failures: list[str] = []

    import pyfaidx

    fasta = pyfaidx.Fasta(str(GENOME))
    sizes = {name: len(fasta[name]) for name in fasta.keys()}  # noqa: SIM118
    fasta.close()
    runs = {}
    for track, (matrix, name) in MOTIFS.items():
        run, pearson = train_one(track, work, args, log)
        runs[track] = run
        sites = strong_sites(EXAMPLE / f"{track}.bw", sizes, args.sites)
        bed = site_regions(sites, work / f"{track}.bed")
        attr = work / f"{track}.npz"
        seconds = gitool(
            "attribute", "-m", run, "--regions", bed, "-g", GENOME, "--tracks", track,
            "--bins", SITE_BIN, "--method", "deepliftshap", "--shuffles", args.shuffles,
            "-o", attr, "--force", log=log,
        )  # fmt: skip
        saved = np.load(attr)
        out = work / f"modisco-{track}"
        modisco_s = gitool("modisco", attr, "--track", track, "--window", args.window, "-o", out,
                           "--force", log=log)  # fmt: skip
        table = pd.read_csv(out / "motifs.tsv", sep="\t")
        summary["motifs"][track] = {
            "test_pearson": pearson,
            "windows": len(saved["name"]),
            "attribute_s": round(seconds, 1),
            "modisco_s": round(modisco_s, 1),
            "max_abs_delta": float(np.nanmax(np.abs(saved["delta"]))),
            "patterns": table[
                ["pattern", "n_seqlets", "consensus", "match_id", "match_name", "q_value"]
            ].to_dict("records"),  # fmt: skip
        }
        right = table[(table["match_id"] == matrix) & (table["q_value"] < 0.05)]
        if right.empty:
            failures.append(f"{name}: no pattern matched {matrix} with q < 0.05")
        others = {m for t, (m, _) in MOTIFS.items() if t != track}
        wrong = table[table["match_id"].isin(others) & (table["q_value"] < 0.05)]
        if not wrong.empty:
            failures.append(f"{name}: a pattern matched {sorted(set(wrong['match_name']))}")
        logos = args.out / "logos"
        logos.mkdir(exist_ok=True)
        for row in right.itertuples():
            shutil.copy(out / row.logo, logos / f"{name}.png")
            break

    # integrated gradients: completeness on the REB1 windows
    ig = work / "ig.npz"
    head = work / "reb1-head.bed"
    head.write_text("".join((work / "reb1_motif.bed").read_text().splitlines(True)[:20]))
    ig_s = gitool(
        "attribute", "-m", runs["reb1_motif"], "--regions", head, "-g", GENOME, "--tracks",
        "reb1_motif", "--bins", SITE_BIN, "--method", "integrated-gradients", "--steps", 64,
        "-o", ig, "--force", log=log,
    )  # fmt: skip
    saved = np.load(ig)
    summary["integrated_gradients"] = {
        "windows": len(saved["name"]),
        "seconds": round(ig_s, 1),
        "max_abs_delta": float(np.abs(saved["delta"]).max()),
        "max_abs_output": float(np.abs(saved["output"]).max()),
    }

    # marginalisation: REB1's consensus into shuffled backgrounds, for each model
    summary["marginalize"] = {}
    for track, run in runs.items():
        margin = work / f"marginalize-reb1-{track}.tsv"
        gitool("marginalize", "-m", run, "-g", GENOME, "--motif", "REB1", "-o", margin,
               "--force", log=log)  # fmt: skip
        row = pd.read_csv(margin, sep="\t").iloc[0]
        summary["marginalize"][track] = {
            "at_insertion_bin": float(row["change"]),
            "se": float(row["se"]),
            "in_other_bins": float(row["change_total"] - row["change"]),
        }
    reb1 = summary["marginalize"]["reb1_motif"]
    if not (reb1["at_insertion_bin"] > 5 * reb1["se"]
            and abs(reb1["in_other_bins"]) < 0.5 * reb1["at_insertion_bin"]):  # fmt: skip
        failures.append(f"marginalize: REB1 model {reb1}")
    for track in ("abf1_motif", "rap1_motif"):
        other = summary["marginalize"][track]
        if abs(other["at_insertion_bin"]) > 0.25 * reb1["at_insertion_bin"]:
            failures.append(f"marginalize: the {track} model moved {other}")

    summary["failures"] = failures
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    print(json.dumps(summary, indent=2, default=str))
    if failures:
        print("FAILED:", *failures, sep="\n  ")
        sys.exit(1)
    print("all checks passed")


if __name__ == "__main__":
    main()
