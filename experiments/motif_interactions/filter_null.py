#!/usr/bin/env python
"""How well do *untrained* CAN filters match the motifs? The null behind ``--min-similarity``.

``gitool interactions`` labels a filter with its best-matching motif when their similarity
reaches ``--min-similarity``. A random filter also has a best match; this script measures
how high it scores. For each CAN variant (pool 4 / 20 × relu / exp) and ``--inits``
Glorot initialisations, it labels the filters of the untrained model exactly as
``gitool interactions`` does (filter PPMs from the sites above half the maximum activation
on ``--sequences`` synthetic sequences, compared with the motifs) and prints the
distribution of the best similarity and the share of filters at or above each cut-off.

Examples::

    python experiments/motif_interactions/filter_null.py  # 4 variants × 6 inits, 3,000 seqs
    python experiments/motif_interactions/filter_null.py --sp1 --inits 10
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

from gitool import console
from gitool.interpret.interactions import DEFAULT_MIN_SIMILARITY, find_interactions
from gitool.interpret.motifs import BUILTIN_MOTIF_NAMES, load_builtin_motifs
from gitool.interpret.synthetic import generate, save_store
from gitool.models.can import CAN, CANConfig

CUTOFFS = (0.6, 0.65, 0.7, 0.75, 0.8)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inits", type=int, default=6, help="initialisations per variant")
    parser.add_argument("--sequences", type=int, default=3000)
    parser.add_argument("--sp1", action="store_true", help="SP1 in place of SPI1")
    parser.add_argument("--seed", type=int, default=0, help="data seed; inits use 100 + i")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    console.console.quiet = True  # no progress bars, no per-model "no filter matches" warnings
    names = [("SP1" if n == "SPI1" and args.sp1 else n) for n in BUILTIN_MOTIF_NAMES]
    # Labels play no part in the filter labels: no interactions needed.
    data = generate(args.sequences, seed=args.seed, motifs=load_builtin_motifs(names),
                    interactions=())  # fmt: skip
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        # All sequences in "test": the split find_interactions reads.
        store = save_store(Path(tmp) / "motifs", data, fractions=(0.0, 0.0, 1.0))
        for pool in (4, 20):
            for activation in ("relu", "exp"):
                sims = []
                for init in range(args.inits):
                    torch.manual_seed(100 + init)
                    model = CAN(CANConfig(pool=pool, activation=activation)).eval()
                    found = find_interactions(model, store, Path(tmp) / "out", thresholds=[0.5],
                                              plot=False, force=True)  # fmt: skip
                    sims.extend(found.filters["similarity"].tolist())
                rows[f"can-cnn{pool}-{activation}"] = np.array(sims)
    every = np.concatenate(list(rows.values()))
    rows["all"] = every
    print(f"untrained CAN filters vs {len(names)} motifs ({', '.join(names)}); "
          f"{args.inits} inits per variant, {args.sequences:,} sequences")  # fmt: skip
    head = " ".join(f"≥{c:<5g}" for c in CUTOFFS)
    print(
        f"{'variant':15s} {'filters':>7s} {'median':>7s} {'p95':>6s} {'p99':>6s} {'max':>6s}  {head}"
    )
    summary = {}
    for name, sims in rows.items():
        q50, q95, q99 = np.quantile(sims, [0.5, 0.95, 0.99])
        shares = {c: float((sims >= c).mean()) for c in CUTOFFS}
        print(f"{name:15s} {len(sims):7d} {q50:7.3f} {q95:6.3f} {q99:6.3f} {sims.max():6.3f}  "
              + " ".join(f"{100 * s:5.1f}%" for s in shares.values()))  # fmt: skip
        summary[name] = {"filters": len(sims), "median": q50, "p95": q95, "p99": q99,
                         "max": float(sims.max()), "share_at_least": shares}  # fmt: skip
    print(f"default --min-similarity {DEFAULT_MIN_SIMILARITY:g}: "
          f"{100 * (every >= DEFAULT_MIN_SIMILARITY).mean():.1f} % of untrained filters "
          "would take a label")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps({"args": vars(args) | {"json": str(args.json)},
                                         "variants": summary}, indent=2, default=float))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
