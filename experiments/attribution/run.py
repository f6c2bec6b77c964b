#!/usr/bin/env python
"""Validate attribution and motif discovery on a model that learned the bundled motif tracks.

The bundled yeast tracks REB1, ABF1 and RAP1 are motif occupancies made by scanning the genome
with JASPAR 2024 matrices (``example_data/PROVENANCE.md``), so what a model should learn is
known. This script, with the gitool commands a user would run:

1. builds a store of the three tracks and trains the example cnn-maxpool
   (``workflows/example-cnn-maxpool.yaml``) widened to ``--stem-channels`` and
   ``--channels`` (at the example's 8 and 32 it learns RAP1 but neither REB1 nor ABF1) for
   ``--steps`` steps on the CPU;
2. per motif, takes the ``--sites`` strongest sites (runs of at least 5 bp whose per-base
   occupancy exceeds 0.9, at least 20 kb from chromosome ends) and one model window per site
   with the site in target bin 40 (regions of 80 × 128 bp);
3. ``gitool attribute --method deepliftshap --bins 40`` toward that motif's track
   (``--shuffles`` references), then ``gitool modisco`` on the attributions: the check is
   that a discovered pattern matches the motif's own JASPAR matrix with Tomtom q < 0.05, and
   that no pattern's best match is the matrix of one of the other two motifs;
4. ``gitool attribute --method integrated-gradients`` on a few of those windows: the largest
   completeness error relative to the change it explains;
5. ``gitool marginalize --motif REB1``: inserting REB1's consensus into shuffled backgrounds
   raises the REB1 track at the insertion bin, and changes it little elsewhere.

Results go to ``results/summary.json`` (and the recovered logos are copied to
``docs/attribution/``); the script exits 1 when a check fails.

Usage::

    python experiments/attribution/run.py [--workdir DIR] [--steps 3000] [--sites 150]
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
import yaml

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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workdir", type=Path, default=Path("attribution-work"))
    ap.add_argument("--steps", type=int, default=3000, help="training steps (batch 4)")
    ap.add_argument("--stem-channels", type=int, default=32, help="the CNN's stem width")
    ap.add_argument("--channels", type=int, default=64, help="the CNN's tower width")
    ap.add_argument("--sites", type=int, default=150, help="windows per motif")
    ap.add_argument("--shuffles", type=int, default=10, help="DeepLIFT/SHAP references")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = ap.parse_args()
    work = args.workdir
    work.mkdir(parents=True, exist_ok=True)
    args.out.mkdir(parents=True, exist_ok=True)
    log = args.out / "commands.log"
    log.write_text("")
    summary: dict = {"steps": args.steps, "sites": args.sites, "shuffles": args.shuffles}
    failures: list[str] = []

    rows = pd.read_csv(EXAMPLE / "tracks.txt", sep="\t")
    rows = rows[rows["identifier"].isin(MOTIFS)].copy()
    rows["index"] = range(len(rows))
    rows["strand_pair"] = range(len(rows))
    rows["file"] = [str(EXAMPLE / f) for f in rows["file"]]
    rows.to_csv(work / "tracks.txt", sep="\t", index=False)
    data, run = work / "data", work / "cnn"
    if not (data / "manifest.yaml").exists():
        gitool("build-dataset", GENOME, work / "tracks.txt", "-o", data, "-j", 1, log=log)
    config = yaml.safe_load((ROOT / "workflows" / "example-cnn-maxpool.yaml").read_text())
    config["model_config"].update(stem_channels=args.stem_channels, channels=args.channels)
    (work / "cnn.yaml").write_text(yaml.safe_dump(config))
    summary["model_config"] = config["model_config"]
    if not (run / "checkpoints" / "best.pt").exists():
        summary["train_s"] = gitool(
            "train", "--config", work / "cnn.yaml", "--data", data,
            "-o", run, "--gpus", 0, "--max-steps", args.steps, "--epochs", 100,
            "--eval-every", args.steps, "--valid-windows", 16, "--checkpoint-every", args.steps,
            "--num-workers", 0, log=log,
        )  # fmt: skip
    gitool("evaluate", "-m", run, "--split", "test", "-o", work / "test.tsv", "--force", log=log)
    pearson = pd.read_csv(work / "test.tsv", sep="\t").set_index("identifier")["pearson"]
    summary["test_pearson"] = {k: round(float(v), 3) for k, v in pearson.items()}

    import pyfaidx

    fasta = pyfaidx.Fasta(str(GENOME))
    sizes = {name: len(fasta[name]) for name in fasta.keys()}  # noqa: SIM118
    fasta.close()
    summary["motifs"] = {}
    for track, (matrix, name) in MOTIFS.items():
        sites = strong_sites(EXAMPLE / f"{track}.bw", sizes, args.sites)
        bed = site_regions(sites, work / f"{track}.bed")
        attr = work / f"{track}.npz"
        seconds = gitool(
            "attribute", "-m", run, "--regions", bed, "-g", GENOME, "--tracks", track,
            "--bins", SITE_BIN, "--method", "deepliftshap", "--shuffles", args.shuffles,
            "-o", attr, "--force", log=log,
        )  # fmt: skip
        saved = np.load(attr)
        n_windows = len(saved["name"])
        out = work / f"modisco-{track}"
        modisco_s = gitool("modisco", attr, "--track", track, "-o", out, "--force", log=log)
        table = pd.read_csv(out / "motifs.tsv", sep="\t")
        entry = {
            "windows": n_windows,
            "attribute_s": round(seconds, 1),
            "windows_per_s": round(n_windows / seconds, 2),
            "modisco_s": round(modisco_s, 1),
            "max_relative_delta": float(
                np.nanmax(np.abs(saved["delta"])) / max(np.nanmax(np.abs(saved["output"])), 1e-9)
            ),
            "patterns": table.to_dict("records"),
        }
        summary["motifs"][track] = entry
        found = table[table["match_id"].astype(str).str.startswith(matrix.split(".")[0])]
        if found.empty or not (found["q_value"] < 0.05).any():
            failures.append(f"{name}: no pattern matched {matrix} with q < 0.05")
        others = {m for t, (m, _) in MOTIFS.items() if t != track}
        wrong = table[table["match_id"].isin(others) & (table["q_value"] < 0.05)]
        if not wrong.empty:
            failures.append(f"{name}: a pattern matched {sorted(set(wrong['match_id']))}")
        logos = args.out / "logos"
        logos.mkdir(exist_ok=True)
        for png in sorted((out / "logos").glob("*.png"))[:3]:
            shutil.copy(png, logos / f"{name}-{png.name}")

    # integrated gradients: completeness on a few windows
    ig = work / "ig.npz"
    ig_s = gitool(
        "attribute", "-m", run, "--regions", work / "reb1_motif.bed", "-g", GENOME,
        "--tracks", "reb1_motif", "--bins", SITE_BIN, "--method", "integrated-gradients",
        "--steps", 64, "-o", ig, "--force", log=log,
    )  # fmt: skip
    saved = np.load(ig)
    summary["integrated_gradients"] = {
        "windows": len(saved["name"]),
        "seconds": round(ig_s, 1),
        "max_abs_delta": float(np.abs(saved["delta"]).max()),
    }

    # marginalisation: REB1's consensus into shuffled backgrounds
    margin = work / "marginalize-reb1.tsv"
    gitool("marginalize", "-m", run, "-g", GENOME, "--motif", "REB1", "-o", margin, "--force",
           log=log)  # fmt: skip
    table = pd.read_csv(margin, sep="\t").set_index("track")
    summary["marginalize"] = table.reset_index().to_dict("records")
    reb1 = table.loc["reb1_motif"]
    elsewhere = float(reb1["change_total"] - reb1["change"])  # the other bins together
    summary["marginalize_check"] = {
        "reb1_at_insertion_bin": float(reb1["change"]),
        "reb1_se": float(reb1["se"]),
        "reb1_in_other_bins": elsewhere,
        "others_at_insertion_bin": {t: float(table.loc[t, "change"]) for t in table.index
                                    if t != "reb1_motif"},
    }  # fmt: skip
    if not (reb1["change"] > 5 * reb1["se"] and abs(elsewhere) < 0.5 * reb1["change"]):
        failures.append(f"marginalize: REB1 at its bin {reb1['change']:.3g} ± {reb1['se']:.3g}, "
                        f"{elsewhere:.3g} in the other bins")  # fmt: skip
    for other in table.index.drop("reb1_motif"):
        if abs(table.loc[other, "change"]) > 0.25 * reb1["change"]:
            failures.append(f"marginalize: {other} moved {table.loc[other, 'change']:.3g}")

    (args.out / "summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    print(json.dumps({k: v for k, v in summary.items() if k != "motifs"}, indent=2, default=str))
    for track, entry in summary["motifs"].items():
        print(track, {k: v for k, v in entry.items() if k != "patterns"})
    if failures:
        print("FAILED:", *failures, sep="\n  ")
        sys.exit(1)
    print("all checks passed")


if __name__ == "__main__":
    main()
