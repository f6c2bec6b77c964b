"""Losses. Predictions are softplus outputs (≥ 0), targets the store's values."""

from __future__ import annotations

import torch

from gitool.metrics import EPS


def poisson_nll(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean Poisson negative log-likelihood without the constant: ``pred − y·log(pred)``
    (Genomic Interpreter §3.5; Enformer). Computed in float32 whatever the autocast dtype."""
    pred, target = pred.float(), target.float()
    return (pred - target * torch.log(pred + EPS)).mean()
