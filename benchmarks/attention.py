#!/usr/bin/env python
"""Benchmark ``gitool attention`` (:func:`gitool.interpret.extract_attention`).

For the ``swin-basenji-small`` preset (random weights; 17,712 bp, 8 swin layers + 1
transformer block) it exports every layer and head of generated windows and measures, each
in a fresh subprocess so that peak RSS is per measurement:

1. windows/s for the whole export (forward with capture + npz compression + writing), and the
   output size per window (compressed ``.npz``; uncompressed bytes too);
2. the same with ``--rollout`` (1-bp columns) added;
3. peak RSS for ``N`` and ``2N`` windows: streaming to disk keeps it flat (target ≤ 1.1×).

Examples::

    python benchmarks/attention.py                       # 8 / 16 windows, CPU or the GPU
    python benchmarks/attention.py --windows 2 --quick   # a smoke run
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import cpu_description, parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    cli = parser(__doc__.split("\n\n")[0], quick="skip the rollout and 2N runs")
    cli.add_argument("--windows", type=int, default=8, help="windows per measurement (N)")
    cli.add_argument("--batch-size", type=int, default=1)
    cli.add_argument("--device", default=None, help="cpu, cuda, ... (default: best)")
    cli.add_argument("--full-max-tokens", type=int, default=1024)
    cli.add_argument("--dtype", default="float32", choices=["float32", "float16"])
    cli.add_argument("--child", type=int, help=argparse.SUPPRESS)  # internal: N windows
    cli.add_argument("--rollout", action="store_true", help=argparse.SUPPRESS)  # internal
    return cli.parse_args(argv)


def child(args: argparse.Namespace) -> None:
    """One measurement: export ``args.child`` windows, print a JSON line."""
    import numpy as np
    import torch

    from gitool.interpret.attention import extract_attention
    from gitool.interpret.windows import AttentionWindow
    from gitool.models.registry import create_model

    torch.manual_seed(0)
    model = create_model("swin-basenji-small", heads={"human": 16}).eval()
    length = model.config.seq_length
    rng = np.random.default_rng(0)

    def windows():
        for i in range(args.child):
            codes = rng.integers(0, 4, length).astype(np.uint8)
            yield AttentionWindow(f"w{i}", "chr1", i * length, codes)

    warm = [AttentionWindow("warm", "chr1", 0, np.zeros(length, dtype=np.uint8))]
    with tempfile.TemporaryDirectory() as tmp:
        extract_attention(model, warm, Path(tmp) / "warm", device=args.device)
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        start = time.perf_counter()
        summary = extract_attention(
            model,
            windows(),
            Path(tmp) / "out",
            device=args.device,
            batch_size=args.batch_size,
            full_max_tokens=args.full_max_tokens,
            dtype=args.dtype,
            rollout=args.rollout,
            rollout_bp=1 if args.rollout else None,
        )
        seconds = time.perf_counter() - start
        raw = 0
        with np.load(summary.files[0]) as data:
            raw = sum(data[k].nbytes for k in data.files)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps(
            {
                "windows": summary.windows,
                "seconds": seconds,
                "windows_per_s": summary.windows / seconds,
                "mib_per_window": summary.bytes_written / summary.windows / 2**20,
                "raw_mib_per_window": raw / 2**20,
                "base_rss_mib": base,
                "peak_rss_mib": peak,
            }
        )
    )


def measure(args: argparse.Namespace, n: int, rollout: bool = False) -> dict:
    command = [sys.executable, __file__, "--child", str(n), "--batch-size", str(args.batch_size)]
    command += ["--full-max-tokens", str(args.full_max_tokens), "--dtype", args.dtype]
    if args.device:
        command += ["--device", args.device]
    if rollout:
        command.append("--rollout")
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.child is not None:
        child(args)
        return
    import torch

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    where = torch.cuda.get_device_name() if device.startswith("cuda") else cpu_description()
    print(f"machine: {platform.node()}, {where}, torch {torch.__version__}")
    results = {"device": where, "plain": measure(args, args.windows)}
    plain = results["plain"]
    print(
        f"export, all layers and heads: {plain['windows_per_s']:.2f} windows/s, "
        f"{plain['mib_per_window']:.1f} MiB/window compressed "
        f"({plain['raw_mib_per_window']:.1f} MiB raw), peak RSS {plain['peak_rss_mib']:.0f} MiB"
    )
    if not args.quick:
        results["rollout"] = measure(args, args.windows, rollout=True)
        r = results["rollout"]
        print(f"with 1-bp rollout: {r['windows_per_s']:.2f} windows/s")
        results["double"] = measure(args, 2 * args.windows)
        d = results["double"]
        ratio = d["peak_rss_mib"] / plain["peak_rss_mib"]
        verdict = "flat" if ratio <= 1.1 else "GROWS"
        print(
            f"peak RSS {args.windows} → {2 * args.windows} windows: "
            f"{plain['peak_rss_mib']:.0f} → {d['peak_rss_mib']:.0f} MiB ({ratio:.2f}×, {verdict})"
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
