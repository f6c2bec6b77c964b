"""Streaming per-track metrics over all windows and bins of a split.

The paper's metric (seed 000 Table 1): for each track, the Pearson correlation between
predicted and observed values over every bin of every window of the split — NOT per window
and then averaged, and not over tracks (the axis mistake of enformer-pytorch #36).
"""

from __future__ import annotations

import numpy as np
import torch

from gitool.train.losses import EPS


class TrackMetrics:
    """Accumulates sums per track in float64; :meth:`compute` gives Pearson, R², Poisson.

    Works across processes: :meth:`all_reduce` sums the accumulators over ranks.
    """

    FIELDS = ("n", "sx", "sy", "sxx", "syy", "sxy", "sse", "poisson")

    def __init__(self, n_tracks: int, device: torch.device | str = "cpu"):
        self.sums = torch.zeros(len(self.FIELDS), n_tracks, dtype=torch.float64, device=device)

    def update(self, pred: torch.Tensor, target: torch.Tensor) -> None:
        """``pred``, ``target``: ``(B, T, n_tracks)``."""
        x = pred.detach().to(torch.float64).reshape(-1, pred.shape[-1])
        y = target.detach().to(torch.float64).reshape(-1, target.shape[-1])
        n = torch.full_like(x[0], x.shape[0])
        parts = (
            n,
            x.sum(0),
            y.sum(0),
            (x * x).sum(0),
            (y * y).sum(0),
            (x * y).sum(0),
            ((x - y) ** 2).sum(0),
            (x - y * torch.log(x + EPS)).sum(0),
        )
        self.sums += torch.stack(parts)

    def all_reduce(self) -> None:
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.all_reduce(self.sums)

    def compute(self) -> dict[str, np.ndarray]:
        """Per-track ``pearson``, ``r2`` (1 − SSE/SST) and mean ``poisson`` loss."""
        n, sx, sy, sxx, syy, sxy, sse, poisson = self.sums.cpu().numpy()
        with np.errstate(invalid="ignore", divide="ignore"):
            cov = sxy - sx * sy / n
            var_x = sxx - sx * sx / n
            var_y = syy - sy * sy / n
            pearson = cov / np.sqrt(var_x * var_y)
            r2 = 1 - sse / var_y
        return {"pearson": pearson, "r2": r2, "poisson": poisson / n, "n": n}
