#!/usr/bin/env python
"""Reproduce the GLIFAC paper's comparison of GLIFAC and local attention on a CPU-sized benchmark.

The GLIFAC paper is Ghotra, Lee & Koo (2021), "Uncovering motif interactions from
convolutional-attention networks for genomics". One seed of this study:

1. ``gitool synth-motifs``: ``--sequences`` synthetic 200-bp sequences (the GLIFAC paper
   uses 100,000), the 12 JASPAR 2024 motifs (``--sp1``: SP1 in place of SPI1, as in the
   authors' code; or any ``--motifs``/``--interactions``), split 70/10/20;
2. ``gitool train`` for each CAN variant in ``--variants`` (default pool 4 / 20 × relu /
   exp) with the GLIFAC paper's recipe (``workflows/can-glifac.yaml``: BCE, Adam lr 1e-3,
   batch 100, lr × 0.3 after 5 epochs without a better valid AUPR, best checkpoint by valid
   AUPR) for ``--epochs`` epochs (the GLIFAC paper: 100), optionally stopping after
   ``--patience`` epochs without a better valid AUPR (the authors' code stops after 15); a
   finished run (``trained.json``) is reused, an interrupted one resumed;
3. ``gitool evaluate``: mean per-task test AUPR (classification) and the pooled AUPR (all
   tasks ranked together: Keras' ``AUC(curve='PR')``, the score behind the GLIFAC paper's
   "AUPR 0.95-0.97");
4. ``gitool interactions`` on the test split at each ``--threshold`` (default 0.1, 0.2 and
   0.3 in one pass; the GLIFAC paper uses 0.1, but at pool 20 even attention over 10 tokens
   is already 0.1): interaction AUROC, AUPR and SNR of the GLIFAC and local-attention maps
   against the ground truth, over the 66 motif pairs and over all pairs of differently
   labelled filters;
5. site attention: whether the model's attention links interacting motifs at all — the
   attention between two embedded instances relative to the sequence's mean, averaged per
   motif pair, AUROC of the 4 true pairs against the other 62.

Prints one row per variant and threshold (and writes ``--json``; one file per seed, which
``experiments/motif_interactions/summary.py`` turns into the per-variant mean / median
table). The GLIFAC paper's direction: GLIFAC ahead of local attention on all three scores,
exp ahead of relu; this study's targets for the best variant: GLIFAC AUROC ≥ 0.9 and
SNR ≥ 2.

Examples::

    python experiments/motif_interactions/run.py                # 20,000 sequences, 20 epochs
    python experiments/motif_interactions/run.py --quick        # smoke run (~1 min)
    python experiments/motif_interactions/run.py --sequences 100000 --epochs 100 \\
        --patience 15 --variants can-cnn20-relu can-cnn20-exp --seed 0  # CPU; also --seed 1
    python experiments/motif_interactions/run.py --sequences 100000 --epochs 100 \\
        --patience 15 --min-delta 0.001 --variants can-cnn20-relu --sp1 --seed 0  # SP1 (CPU)
    python experiments/motif_interactions/run.py --sequences 100000 --epochs 100 \\
        --device cuda  # the GLIFAC paper's size
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch

from gitool.data.labels import LabelStore
from gitool.evaluate.labels import evaluate_labels
from gitool.interpret.interactions import find_interactions
from gitool.interpret.motifs import BUILTIN_MOTIF_NAMES, motifs_from_option
from gitool.interpret.synthetic import INTERACTIONS, generate, parse_interactions, save_store
from gitool.runs import load_model
from gitool.train.launch import run_training

ROOT = Path(__file__).resolve().parents[2]
VARIANTS = ("can-cnn4-relu", "can-cnn4-exp", "can-cnn20-relu", "can-cnn20-exp")
# --sp1: the authors' reading of the paper's ninth motif "SPI": SP1 wherever SPI1 stands
SP1_MOTIFS = tuple("SP1" if n == "SPI1" else n for n in BUILTIN_MOTIF_NAMES)
SP1_INTERACTIONS = ",".join(
    "/".join("SP1" if n == "SPI1" else n for n in (i.a, i.b)) + f":{i.kind}" for i in INTERACTIONS
)


def cpu_description() -> str:
    """``'<CPU model>, N cores (M usable)'`` from /proc/cpuinfo and the affinity mask."""
    model = "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{model}, {os.cpu_count()} cores ({usable} usable)"


def site_attention(model, store: LabelStore, n: int = 4_000, batch: int = 500) -> dict:
    """Whether the model's attention links interacting motifs at all (the ceiling of any
    attention-based method): on the first ``n`` test sequences, the head-max attention from
    each embedded instance's token to every other instance's token, relative to the
    sequence's mean attention, averaged per unordered motif pair; AUROC of the 4 true pairs
    against the other 62, and the mean relative attention of each group."""
    import numpy as np
    import pandas as pd

    from gitool.data.dataset import codes_to_one_hot
    from gitool.metrics import auroc
    from gitool.models.base import capture_attention

    codes = torch.from_numpy(np.array(store.sequences("test")[:n]))
    parts = []
    with torch.no_grad():
        for i in range(0, len(codes), batch):
            with capture_attention(model) as records:
                model(codes_to_one_hot(codes[i : i + batch]).float())
            weights = records[0].weights.amax(1)  # (B, T, T)
            parts.append(weights / weights.mean(dim=(1, 2), keepdim=True))
    relative = torch.cat(parts).numpy()
    table = pd.read_csv(store.path / "instances.tsv", sep="\t")
    table = table[(table["split"] == "test") & (table["index"] < len(codes))]
    token = ((table["start"] + table["end"]) // 2 // model.config.pool).to_numpy()
    motif, seq = table["motif"].to_numpy(), table["index"].to_numpy()
    sums: dict[frozenset, list] = {}
    for k in np.unique(seq):
        rows = np.flatnonzero(seq == k)
        for a in rows:
            for b in rows:
                if motif[a] != motif[b] and token[a] != token[b]:
                    sums.setdefault(frozenset((motif[a], motif[b])), []).append(
                        relative[k, token[a], token[b]]
                    )
    truth = {frozenset((i.a, i.b)) for i in store.interactions()}
    pairs = list(sums)
    mean = np.array([np.mean(sums[p]) for p in pairs])
    positive = np.array([p in truth for p in pairs])
    return {
        "site_attention_auroc": auroc(mean, positive),
        "site_attention_true": float(mean[positive].mean()),
        "site_attention_other": float(mean[~positive].mean()),
    }


def train_once(run: Path, flags: dict) -> dict:
    """Train ``run`` unless an earlier invocation finished it; a run folder without the
    ``trained.json`` marker (an interrupted benchmark) is resumed. Returns the marker: epochs,
    steps, best valid AUPR, why training stopped and ``train_s``, the seconds of training in
    the invocation that finished the run."""
    marker = run / "trained.json"
    if not marker.exists():
        start = time.perf_counter()
        resume = (run / "checkpoints" / "last.pt").exists()
        summary = run_training(
            str(ROOT / "workflows" / "can-glifac.yaml"), flags | {"resume": resume}
        )
        record = {"epochs": summary.epoch, "steps": summary.step, "best_valid_aupr": summary.best,
                  "stopped": summary.stopped, "train_s": round(time.perf_counter() - start, 1)}  # fmt: skip
        marker.write_text(json.dumps(record))
    return json.loads(marker.read_text())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sequences", type=int, default=20_000)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--patience", type=int, default=None,
                        help="stop after this many epochs without a better valid AUPR "
                             "(the authors' code: 15); default: train all --epochs")  # fmt: skip
    parser.add_argument("--min-delta", type=float, default=0.0,
                        help="--patience and the lr decay count only valid-AUPR rises above "
                             "this (default 0: any rise)")  # fmt: skip
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS))
    parser.add_argument("--threshold", type=float, nargs="+", default=[0.1, 0.2, 0.3],
                        help="attention thresholds (the GLIFAC paper: 0.1; its appendix D sweeps 0.1-0.9)")  # fmt: skip
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--random-pairs", choices=("sample", "expected", "none"),
                        default="sample", help="GLIFAC's random pairs (gitool interactions)")  # fmt: skip
    parser.add_argument("--motifs", default=None,
                        help="built-in motif names or a JASPAR/MEME file, as synth-motifs "
                             "--motifs (default: the 12 built-in motifs)")  # fmt: skip
    parser.add_argument("--sp1", action="store_true",
                        help="SP1 in place of SPI1 (and IRF1/SP1:xor), as in the GLIFAC "
                             "paper's code, which labels the paper's 'SPI' SP1")  # fmt: skip
    parser.add_argument("--interactions", default=None,
                        help="as synth-motifs --interactions (default: the GLIFAC paper's four)")  # fmt: skip
    parser.add_argument("--device", default="cpu", help="cpu or cuda (training: --gpus 0/1)")
    parser.add_argument("--workdir", type=Path, default=None, help="keep data and runs here")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--quick", action="store_true", help="2,000 sequences, 2 epochs")
    args = parser.parse_args(argv)
    if args.quick:
        args.sequences, args.epochs = 2_000, 2

    work = args.workdir or Path(tempfile.mkdtemp(prefix="gitool-interactions-"))
    work.mkdir(parents=True, exist_ok=True)
    if args.sp1:
        if args.motifs or args.interactions:
            parser.error("--sp1 sets --motifs and --interactions; give one or the other")
        args.motifs = ",".join(SP1_MOTIFS)
        args.interactions = SP1_INTERACTIONS
    tag = "-sp1" if args.sp1 else f"-{Path(args.motifs).stem}" if args.motifs else ""
    data = work / f"motifs{tag}-{args.sequences}-s{args.seed}"
    if not data.exists():
        motifs = motifs_from_option(args.motifs)
        interactions = parse_interactions(args.interactions)
        save_store(data, generate(args.sequences, seed=args.seed, motifs=motifs,
                                  interactions=interactions))  # fmt: skip
    store = LabelStore(data)
    print(f"machine: {cpu_description()}; torch {torch.__version__}; {platform.python_version()}")
    print(
        f"data: {args.sequences:,} sequences (train {store.count('train'):,}, test "
        f"{store.count('test'):,}); {args.epochs} epochs"
        + (
            f", early stop after {args.patience} without a better valid AUPR"
            if args.patience
            else ""
        )  # fmt: skip
    )
    rows = []
    for variant in args.variants:
        stop = f"-p{args.patience}" if args.patience else ""
        stop += f"-d{args.min_delta:g}" if args.min_delta else ""
        run = work / f"{variant}{tag}-{args.sequences}-e{args.epochs}{stop}-s{args.seed}"
        flags = {
            "data": [str(data)], "model": variant, "out": str(run), "epochs": args.epochs,
            "seed": args.seed, "gpus": 1 if args.device.startswith("cuda") else 0,
            "patience": args.patience, "min_delta": args.min_delta,
        }  # fmt: skip
        trained = train_once(run, flags)
        classification = evaluate_labels(run, store, "test", device=args.device)
        model, _ = load_model(run, "best")
        found = find_interactions(
            model, data, run / "interactions", thresholds=args.threshold, device=args.device,
            seed=args.seed, random_pairs=args.random_pairs, force=True,
        )  # fmt: skip
        common = {
            "variant": variant,
            "train_s": float(trained.get("train_s") or "nan"),  # NaN: not recorded
            "epochs": trained["epochs"],
            "test_aupr": classification.mean_aupr,
            "test_auroc": classification.mean_auroc,
            "test_aupr_pooled": classification.pooled_aupr,
            "filters_labelled": int((found.filters["motif"] != "").sum()),
            **site_attention(model, store),
        }
        scores = found.scores
        for threshold in args.threshold:
            row = common | {"threshold": threshold}
            for method in ("glifac", "local"):
                for scoring, level, suffix in (
                    ("gitool", "motif", ""),
                    ("gitool", "filter", "_filters"),
                    ("authors", "filter", "_authors"),
                ):
                    hit = (
                        scores[(scores["method"] == method) & (scores["level"] == level)
                               & (scores["scoring"] == scoring)
                               & (scores["threshold"] == threshold)]
                        if scores is not None else []
                    )  # fmt: skip
                    for key in ("auroc", "aupr", "snr"):
                        value = float(hit[key].iloc[0]) if len(hit) else float("nan")
                        row[f"{method}{suffix}_{key}"] = value
            rows.append(row)
            print(json.dumps(row))

    print(f"\n{'variant':<20}{'site attention AUROC':>21}{'true pairs':>11}{'other':>7}")
    for r in rows:
        if r["threshold"] == args.threshold[0]:
            print(f"{r['variant']:<20}{r['site_attention_auroc']:>21.3f}"
                  f"{r['site_attention_true']:>11.2f}{r['site_attention_other']:>7.2f}")  # fmt: skip
    for level, suffix in (
        ("66 motif pairs", ""),
        ("filter pairs", "_filters"),
        ("filter pairs, the GLIFAC authors' scoring", "_authors"),
    ):
        header = (
            f"{'variant':<20}{'epochs':>7}{'train s':>8}{'cls AUPR':>9}{'pooled':>7}{'filters':>8}"
            f"{'thr':>5} | "
            f"{'GLIFAC AUROC':>12}{'AUPR':>6}{'SNR':>6} | {'local AUROC':>11}{'AUPR':>6}{'SNR':>6}"
        )
        print(f"\nscored over {level}\n" + header + "\n" + "-" * len(header))
        for r in rows:
            g, loc = f"glifac{suffix}", f"local{suffix}"
            print(
                f"{r['variant']:<20}{r['epochs']:>7}{r['train_s']:>8.0f}{r['test_aupr']:>9.3f}"
                f"{r['test_aupr_pooled']:>7.3f}{r['filters_labelled']:>8}{r['threshold']:>5g} | {r[g + '_auroc']:>12.3f}"
                f"{r[g + '_aupr']:>6.3f}{r[g + '_snr']:>6.2f} | {r[loc + '_auroc']:>11.3f}"
                f"{r[loc + '_aupr']:>6.3f}{r[loc + '_snr']:>6.2f}"
            )
    if args.json:
        args.json.write_text(json.dumps({"args": vars(args) | {"workdir": str(work)},
                                         "machine": cpu_description(), "rows": rows},
                                        indent=2, default=str))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
