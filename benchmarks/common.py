"""Pieces every benchmark script shares: the machine line and GPU peak rates."""

from __future__ import annotations

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
