"""Choosing the inference device and its autocast."""

from __future__ import annotations

import contextlib

import torch

from gitool.errors import InputError


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``--device`` → a torch device (default: cuda when available, else cpu), checked."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError):
        raise InputError(f"--device {device!r} is not a device; use cpu, cuda or cuda:N") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"--device {device}: no CUDA GPU is available; use --device cpu")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise InputError(
            f"--device {device}: only {torch.cuda.device_count()} CUDA device(s) are visible"
        )
    return dev


def autocast_for(device: torch.device):
    """bf16 autocast on CUDA, nothing elsewhere."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()
