"""Losses. Predictions are softplus outputs (≥ 0), targets the store's values."""

from __future__ import annotations

import numpy as np
import torch

from gitool.metrics import EPS

TRACK_WEIGHTS = ("equal", "balanced")
"""How the Poisson loss weighs tracks (``gitool train --track-weights``)."""


def poisson_nll(
    pred: torch.Tensor, target: torch.Tensor, weights: torch.Tensor | None = None
) -> torch.Tensor:
    """Mean Poisson negative log-likelihood without the constant: ``pred − y·log(pred)``
    (Genomic Interpreter §3.5; Enformer). Computed in float32 whatever the autocast dtype.

    ``weights`` ``(n_tracks,)``, mean 1: each track's mean over windows and bins is weighted
    (:func:`balanced_track_weights`); ``None``: every value weighs the same (the papers).
    """
    pred, target = pred.float(), target.float()
    nll = pred - target * torch.log(pred + EPS)
    if weights is None:
        return nll.mean()
    per_track = nll.reshape(-1, nll.shape[-1]).mean(0)
    return (per_track * weights.to(per_track)).mean()


def null_deviance(targets: np.ndarray, chunk: int = 64) -> np.ndarray:
    """Per-track mean Poisson deviance of predicting each track's mean everywhere:
    ``mean(y·log(y/μ) − (y − μ))`` over ``targets`` ``(windows, bins, tracks)`` — what a model
    can gain on that track. Read ``chunk`` windows at a time (float64 sums)."""
    n, bins, n_tracks = targets.shape
    count = max(n * bins, 1)
    total = np.zeros(n_tracks)
    for lo in range(0, n, chunk):
        total += np.asarray(targets[lo : lo + chunk], dtype=np.float64).sum((0, 1))
    mu = np.maximum(total / count, EPS)
    deviance = np.zeros(n_tracks)
    for lo in range(0, n, chunk):
        y = np.asarray(targets[lo : lo + chunk], dtype=np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            term = np.where(y > 0, y * np.log(y / mu), 0.0) - (y - mu)
        deviance += term.sum((0, 1))
    return deviance / count


def balanced_track_weights(targets: np.ndarray) -> np.ndarray:
    """Weights that keep one kind of track from drowning another in the Poisson loss:
    ``1 / sqrt(null deviance)``, scaled to mean 1 over the tracks that vary (a constant
    track, nothing to learn, gets 0).

    A sparse peaky track (motif occupancy, values to ~14, null deviance ~1) otherwise
    outweighs a smooth one (GC fraction, 0.38 ± 0.03, null deviance ~0.001) a thousandfold.
    The square root stops short of full equality (``1 / deviance``), which hands the whole
    loss to the smooth track. Measured on the example cnn-maxpool (300 steps, yeast REB1
    occupancy + GC fraction, test Pearson REB1 / GC): equal weights 0.56 / 0.29,
    ``1 / deviance`` 0.05 / 0.88, ``1 / sqrt(deviance)`` 0.69 / 0.68.
    """
    deviance = null_deviance(targets)
    weights = np.zeros_like(deviance)
    varies = deviance > 1e-12
    weights[varies] = deviance[varies] ** -0.5
    if varies.any():
        weights /= weights[varies].mean()
    return weights
