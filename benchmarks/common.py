"""Pieces every benchmark script shares: the argument parser, the machine line and GPU peak
rates."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

# Dense bf16 tensor-core peaks, TFLOP/s per GPU; first matching substring of the name wins.
BF16_PEAKS = (
    ("H100 PCIe", 756.0),
    ("H100 NVL", 835.0),
    ("H200 NVL", 835.0),
    ("H100", 989.4),
    ("H200", 989.4),
    ("A100", 312.0),
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


def bf16_peak(device_name: str, override: float | None = None) -> tuple[float | None, str]:
    """``(TFLOP/s, how it was chosen)`` for a GPU name; ``override`` (--peak-tflops) wins."""
    if override:
        return override, f"{override:g} TFLOP/s (--peak-tflops)"
    for key, peak in BF16_PEAKS:
        if key in device_name:
            return peak, f"{peak:g} TFLOP/s dense bf16 ({key})"
    return None, f"unknown for {device_name!r}: pass --peak-tflops"


def parser(
    description: str,
    *,
    quick: str | None = None,
    json: bool = True,
    threads: bool = False,
    peak_tflops: bool = False,
    workdir: Path | None = None,
    presets: str | None = None,
) -> argparse.ArgumentParser:
    """The benchmarks' argument parser, which each script extends with its own options:
    ``description`` and every default shown in ``--help``, and the options they share:

    * ``--json PATH``: also write the results here (unless ``json=False``);
    * ``--quick``: a smoke run, when ``quick`` (its help: what it shrinks) is given;
    * ``--threads N``: torch CPU threads (``threads=True``);
    * ``--peak-tflops X``: the GPU's bf16 peak for MFU (``peak_tflops=True``);
    * ``--workdir DIR``: where data are cached, default ``workdir`` (when given);
    * ``--presets LIST``: comma-separated presets, default ``small``, help ``presets`` (when
      given).
    """
    out = argparse.ArgumentParser(
        description=description, formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    if presets is not None:
        out.add_argument("--presets", default="small", help=presets)
    if quick is not None:
        out.add_argument("--quick", action="store_true", help=quick)
    if threads:
        out.add_argument(
            "--threads",
            type=int,
            help="torch CPU threads (default: torch's, the physical cores; 1 is steadier when "
            "other processes share the cores)",
        )
    if peak_tflops:
        out.add_argument(
            "--peak-tflops",
            type=float,
            help="GPU bf16 peak for MFU (default: from the device name)",
        )
    if workdir is not None:
        out.add_argument(
            "--workdir", type=Path, default=workdir, help="cached data and scratch files"
        )
    if json:
        out.add_argument("--json", type=Path, help="also write the results here")
    return out
