#!/usr/bin/env python
"""Benchmark attribution and motif discovery: windows/s per method and model, and the time of
TF-MoDISco on 2,000 regions.

1. ``gitool attribute``'s methods (:func:`gitool.attribution.attribute.attribute_windows`)
   on random 17,712-bp windows toward one track's summed target bins, for the example widths
   of swin and cnn-maxpool (``workflows/example-*.yaml``, random weights: speed does not
   depend on them): ``saliency``, ``integrated-gradients`` (32 steps) and ``deepliftshap``
   (20 shuffles; CNN only — it is refused for attention models), windows/s after one warm-up
   window; and ``ism`` (through ``gitool variants --ism``, 4 forward passes per base) in bp/s;
2. TF-MoDISco (:func:`gitool.attribution.modisco.find_patterns`, default settings) on
   ``--regions`` windows (default 2,000) of 400 bp with planted REB1 instances carrying the
   contributions (the set-up of ``tests/attribution/test_modisco.py``, scaled up), after a
   warm-up run that compiles numba's kernels.

On a GPU (``--device cuda``) the models run in float32 there, as the command does.

Examples::

    python benchmarks/attribution.py
    python benchmarks/attribution.py --quick
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from gitool.attribution.attribute import attribute_windows  # noqa: E402
from gitool.interpret.windows import AttentionWindow  # noqa: E402
from gitool.models.registry import create_model  # noqa: E402
from gitool.runs import resolve_device  # noqa: E402

from common import cpu_description, parser  # noqa: E402

METHODS = {"saliency": {}, "integrated-gradients": {"steps": 32},
           "deepliftshap": {"shuffles": 20}}  # fmt: skip


def build(name: str) -> torch.nn.Module:
    config = yaml.safe_load((ROOT / "workflows" / f"example-{name}.yaml").read_text())
    torch.manual_seed(0)
    overrides = {**(config.get("model_config") or {}), "heads": {"bench": 3}}
    return create_model(f"{name}-basenji-small", **overrides).eval()


def windows(n: int, length: int, seed: int = 0) -> list[AttentionWindow]:
    rng = np.random.default_rng(seed)
    return [AttentionWindow(f"w{i}", "chr", 0, rng.integers(0, 4, length, dtype=np.uint8))
            for i in range(n)]  # fmt: skip


def time_method(model, method: str, n: int, device) -> float:
    options = dict(method=method, device=device, batch_size=8, **METHODS[method])
    length = model.config.seq_length
    attribute_windows(model, "bench", windows(1, length, 1), [0], ["t0"], **options)
    began = time.perf_counter()
    attribute_windows(model, "bench", windows(n, length), [0], ["t0"], **options)
    return n / (time.perf_counter() - began)


def time_ism(model, bp: int, device) -> float:
    """bp/s of ISM through the variant-scoring path, on a random genome."""
    import tempfile

    from gitool.data.genome import Genome
    from gitool.predict.model import prepare_model
    from gitool.variants.ism import IsmMaps, IsmRegion, ism_variants
    from gitool.variants.scoring import iter_variant_scores

    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as folder:
        fasta = Path(folder) / "g.fa"
        seq = "".join("ACGT"[i] for i in rng.integers(0, 4, 60_000))
        fasta.write_text(">chr\n" + "\n".join(seq[i : i + 60] for i in range(0, len(seq), 60)))
        genome = Genome(fasta)
        rows = [{"index": 0, "identifier": "t0", "strand_pair": 0},
                {"index": 1, "identifier": "t1", "strand_pair": 1},
                {"index": 2, "identifier": "t2", "strand_pair": 2}]  # fmt: skip
        spec = prepare_model(model, "bench", "best", {"tracks": rows})
        region = IsmRegion("chr", 30_000, 30_000 + bp)
        began = time.perf_counter()
        scores = iter_variant_scores(spec, genome, ism_variants(genome, region), tracks=[0],
                                     device=device, show_progress=False)  # fmt: skip
        maps = IsmMaps(region, genome.codes("chr", region.start, region.end), ("sum",), ["t0"])
        for frame in scores:
            maps.add(frame)
        seconds = time.perf_counter() - began
        genome.close()
    return bp / seconds


def planted(n: int, width: int = 400, seed: int = 0):
    """One-hot windows with REB1 instances carrying the contributions (rest small noise)."""
    from gitool.attribution.motif_db import load_builtin_database

    reb1 = next(m for m in load_builtin_database().motifs if m.name.upper() == "REB1")
    ppm = reb1.counts / reb1.counts.sum(1, keepdims=True)
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, 4, (n, width))
    hyp = rng.normal(0, 0.01, (n, width, 4)).astype(np.float32)
    logodds = np.log2((ppm + 0.01) / 0.25)
    for i in range(n):
        at = int(rng.integers(20, width - 20 - len(ppm)))
        for j, row in enumerate(ppm):
            codes[i, at + j] = rng.choice(4, p=row)
        hyp[i, at : at + len(ppm)] = logodds
    return np.eye(4, dtype=np.float32)[codes], hyp


def time_modisco(n: int) -> dict:
    from modiscolite import tfmodisco

    one_hot, hyp = planted(n)
    tfmodisco.TFMoDISco(one_hot=one_hot[:200], hypothetical_contribs=hyp[:200], verbose=False)
    began = time.perf_counter()
    pos, neg = tfmodisco.TFMoDISco(one_hot=one_hot, hypothetical_contribs=hyp, verbose=False)
    return {"regions": n, "width": one_hot.shape[1], "seconds": time.perf_counter() - began,
            "patterns": len(pos or []) + len(neg or [])}  # fmt: skip


def main() -> None:
    ap = parser(__doc__.split("\n\n")[0], quick="few windows, 200 regions", threads=True)
    ap.add_argument("--models", default="swin,cnn-maxpool", help="example workflows")
    ap.add_argument("--windows", type=int, default=16, help="windows per method")
    ap.add_argument("--ism-bp", type=int, default=100, help="bases of the ISM region")
    ap.add_argument("--regions", type=int, default=2000, help="TF-MoDISco windows")
    ap.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.quick:
        args.windows, args.ism_bp, args.regions = 2, 10, 200
    device = resolve_device(args.device)
    results: dict = {"device": torch.cuda.get_device_name() if device.type == "cuda"
                     else cpu_description(), "models": {}}  # fmt: skip
    for name in [m.strip() for m in args.models.split(",") if m.strip()]:
        model = build(name)
        row = {}
        for method in METHODS:
            if method == "deepliftshap" and not name.startswith("cnn"):
                continue
            row[f"{method}_windows_per_s"] = time_method(model, method, args.windows, device)
        row["ism_bp_per_s"] = time_ism(model, args.ism_bp, device)
        results["models"][name] = row
        print(name, {k: round(v, 3) for k, v in row.items()})
    results["modisco"] = time_modisco(args.regions)
    print("TF-MoDISco", results["modisco"])
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
