#!/usr/bin/env python
"""Benchmark ``gitool variants``: variants/s and peak memory, per model size.

On the bundled yeast genome, ``--variants`` SNVs (default 10,000) at random positions, sorted
as a VCF is, with the genome's base as REF, written as a bgzip-compressed VCF. For each model
(default: the example widths of swin and cnn-maxpool, ``workflows/example-*.yaml``, with a
``--tracks``-track head; random weights: speed does not depend on them):

1. end to end: :func:`gitool.variants.scoring.iter_variant_scores` streaming the VCF (reading,
   REF check, building both inputs, batched inference, scores, the TSV rows) in a fresh
   process, after a warm-up of 16 variants; variants/s and the process's peak RSS
   (``VmHWM``);
2. model alone: the same model and batch on random one-hot inputs already on the device,
   median forward time; "outside model" = 1 − (forward passes × median forward) / end to end;
3. memory flat in the VCF: peak RSS for ``--variants`` / 5 against ``--variants`` (cnn-maxpool).

On a GPU (``--device cuda``, the default when one is there) the batch is 32, as the
command's default is, and the models run in float32 as the command does, or under bf16
autocast with ``--bf16`` (both end to end and alone).

Examples::

    python benchmarks/variants.py                  # both models, 10,000 SNVs
    python benchmarks/variants.py --quick          # smoke run (< 1 min)
    python benchmarks/variants.py --models cnn-maxpool --variants 2000 --threads 1
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from gitool.data.genome import Genome  # noqa: E402
from gitool.models.registry import create_model  # noqa: E402
from gitool.predict.model import default_batch_size  # noqa: E402
from gitool.runs import autocast_for, resolve_device  # noqa: E402

from common import cpu_description, parser  # noqa: E402

GENOME = ROOT / "example_data" / "genome.fa.gz"


def write_vcf(path: Path, n: int, seed: int = 0) -> Path:
    """``n`` SNVs at random positions of the example genome (sorted), bgzip-compressed."""
    import pysam

    genome = Genome(GENOME)
    rng = np.random.default_rng(seed)
    names = list(genome.sizes)
    sizes = np.array([genome.sizes[c] for c in names], dtype=np.int64)
    chosen = np.sort(rng.choice(len(names), n, p=sizes / sizes.sum()))
    lines = ["##fileformat=VCFv4.2"]
    lines += [f"##contig=<ID={c},length={genome.sizes[c]}>" for c in names]
    lines.append("#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO")
    for k in np.unique(chosen):
        chrom = names[k]
        positions = np.sort(rng.integers(1, genome.sizes[chrom] + 1, (chosen == k).sum()))
        codes = genome.codes(chrom, 0, genome.sizes[chrom])
        for pos in positions:
            ref = "ACGTN"[codes[pos - 1]]
            if ref == "N":
                continue
            alt = "ACGT"[("ACGT".index(ref) + int(rng.integers(1, 4))) % 4]
            lines.append(f"{chrom}\t{pos}\t.\t{ref}\t{alt}\t.\t.\t.")
    plain = path.with_suffix("")
    plain.write_text("\n".join(lines) + "\n")
    pysam.tabix_compress(str(plain), str(path), force=True)
    plain.unlink()
    genome.close()
    return path


def build(model: str, n_tracks: int) -> torch.nn.Module:
    config = yaml.safe_load((ROOT / "workflows" / f"example-{model}.yaml").read_text())
    torch.manual_seed(0)
    overrides = {**(config.get("model_config") or {}), "heads": {"bench": n_tracks}}
    return create_model(f"{model}-basenji-small", **overrides).eval()


def manifest(n_tracks: int) -> dict:
    return {
        "tracks": [{"index": i, "identifier": f"t{i}", "strand_pair": i} for i in range(n_tracks)]
    }


def peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def child(args) -> None:
    """One end-to-end measurement in this (fresh) process; prints JSON."""
    from gitool.variants.scoring import iter_variant_scores

    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    model = build(args.child, args.tracks).to(device)
    options = dict(manifest=manifest(args.tracks), device=device, bf16=args.bf16,
                   show_progress=False)  # fmt: skip
    warm = Path(args.vcf).with_name("warm.vcf.gz")
    for _ in iter_variant_scores(model, GENOME, warm, **options):
        pass
    began = time.perf_counter()
    scores = iter_variant_scores(model, GENOME, args.vcf, **options)
    rows = sum(len(frame) for frame in scores)
    seconds = time.perf_counter() - began
    print(json.dumps({"variants": rows, "seconds": seconds, "peak_rss_mb": peak_rss_mb(),
                      "batch_size": scores.batch_size, "counts": dict(scores.counts)}))  # fmt: skip


def run_child(model: str, vcf: Path, args) -> dict:
    command = [sys.executable, __file__, "--child", model, "--vcf", str(vcf),
               "--tracks", str(args.tracks), "--device", args.device or ""]  # fmt: skip
    if args.threads:
        command += ["--threads", str(args.threads)]
    if args.bf16:
        command.append("--bf16")
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def model_alone(model_name: str, args, forwards: int) -> float:
    """Median seconds of one forward pass at the command's batch size."""
    device = resolve_device(args.device or None)
    model = build(model_name, args.tracks).to(device)
    batch = default_batch_size(device)
    x = torch.nn.functional.one_hot(
        torch.randint(0, 4, (batch, model.config.seq_length), device=device), 4
    ).float()
    times = []
    with torch.no_grad(), autocast_for(device, args.bf16):
        for _ in range(forwards + 2):
            began = time.perf_counter()
            model(x, "bench")
            if device.type == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - began)
    return statistics.median(times[2:])


def main() -> None:
    ap = parser(__doc__.split("\n\n")[0], quick="1,000 SNVs, cnn-maxpool only", threads=True)
    ap.add_argument("--models", default="swin,cnn-maxpool", help="example workflows to time")
    ap.add_argument("--variants", type=int, default=10_000, help="SNVs in the VCF")
    ap.add_argument("--tracks", type=int, default=7, help="tracks of the head")
    ap.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    ap.add_argument("--bf16", action="store_true", help="bf16 autocast on a GPU (gitool --bf16)")
    ap.add_argument("--workdir", type=Path, default=Path("bench-variants"), help="VCFs go here")
    ap.add_argument("--child", help=__import__("argparse").SUPPRESS)
    ap.add_argument("--vcf", help=__import__("argparse").SUPPRESS)
    args = ap.parse_args()
    if args.child:
        args.device = args.device or None
        return child(args)
    if args.quick:
        args.variants, args.models = 1000, "cnn-maxpool"
    args.workdir.mkdir(parents=True, exist_ok=True)
    write_vcf(args.workdir / "warm.vcf.gz", 16, seed=1)
    vcf = write_vcf(args.workdir / f"snvs-{args.variants}.vcf.gz", args.variants)
    device = resolve_device(args.device)
    results = {"device": torch.cuda.get_device_name() if device.type == "cuda" else cpu_description(),
               "variants": args.variants, "tracks": args.tracks, "bf16": args.bf16, "models": {}}  # fmt: skip
    for name in [m.strip() for m in args.models.split(",") if m.strip()]:
        measured = run_child(name, vcf, args)
        forward = model_alone(name, args, 10)
        batch = measured["batch_size"]
        passes = 2 * measured["variants"] / batch  # reference and alternate per SNV
        measured.update(
            variants_per_s=measured["variants"] / measured["seconds"],
            forward_s=forward,
            outside_model=1 - passes * forward / measured["seconds"],
        )
        results["models"][name] = measured
        print(f"{name}: {measured['variants_per_s']:,.0f} variants/s "
              f"({measured['variants']:,} in {measured['seconds']:.1f} s, batch {batch}), "
              f"peak RSS {measured['peak_rss_mb']:.0f} MB, forward {forward * 1e3:.1f} ms, "
              f"outside the model {measured['outside_model']:.0%}")  # fmt: skip
    small = write_vcf(args.workdir / f"snvs-{args.variants // 5}.vcf.gz", args.variants // 5)
    low, high = run_child("cnn-maxpool", small, args), run_child("cnn-maxpool", vcf, args)
    results["memory"] = {"variants": [args.variants // 5, args.variants],
                         "peak_rss_mb": [low["peak_rss_mb"], high["peak_rss_mb"]]}  # fmt: skip
    print(f"memory (cnn-maxpool): {low['peak_rss_mb']:.0f} MB for {args.variants // 5:,} SNVs, "
          f"{high['peak_rss_mb']:.0f} MB for {args.variants:,}")  # fmt: skip
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
