"""Metrics: per-track regression metrics over a split (:class:`TrackMetrics`), and ranking
metrics without sklearn: AUROC, average precision (AUPR) and SNR (the GLIFAC paper).

The binary ranking scores evaluate classifiers and interaction maps:

- :func:`auroc` / :func:`auroc_columns`: area under the ROC curve, computed as the
  Mann–Whitney ``U`` statistic over ``n_pos · n_neg`` with tied scores given their average
  rank (a tie between a positive and a negative counts one half).
- :func:`average_precision` / :func:`average_precision_columns`: sklearn's
  ``average_precision_score``, ``Σ_n (R_n − R_{n−1}) · P_n`` over the distinct score
  thresholds (tied scores form one threshold); this is the "AUPR" reported everywhere.
- :func:`snr`: the GLIFAC paper's signal-to-noise ratio, the mean score of the positives
  over the mean score of the negatives.

Undefined values are NaN, never an exception: AUROC with a single class, AP without positives,
SNR without positives or negatives. Scores must be finite; labels must be 0/1 (or bool).
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = [
    "TrackMetrics",
    "auroc",
    "auroc_columns",
    "average_precision",
    "average_precision_columns",
    "snr",
]


def _as_columns(scores: object, labels: object) -> tuple[np.ndarray, np.ndarray]:
    """Validated float64 scores and bool labels, both ``(n, T)``."""
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels)
    if s.ndim != 2 or s.shape != y.shape:
        raise ValueError(
            f"scores and labels must be 2-D arrays of one shape, got {s.shape} and {y.shape}"
        )
    if not np.isfinite(s).all():
        raise ValueError("scores must be finite (found NaN or infinity)")
    if y.dtype != np.bool_:
        if not np.isin(y, (0, 1)).all():
            raise ValueError("labels must be 0 or 1")
        y = y.astype(bool)
    return s, y


def _as_vector(scores: object, labels: object) -> tuple[np.ndarray, np.ndarray]:
    s, y = np.asarray(scores), np.asarray(labels)
    if s.ndim != 1 or y.ndim != 1:
        raise ValueError(f"scores and labels must be 1-D, got shapes {s.shape} and {y.shape}")
    return s[:, None], y[:, None]


def _tie_groups(sorted_scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For scores sorted along axis 0 ``(n, T)``: the first and last index of each element's
    group of equal scores, both ``(n, T)`` int."""
    n = sorted_scores.shape[0]
    idx = np.broadcast_to(np.arange(n)[:, None], sorted_scores.shape)
    differs = sorted_scores[1:] != sorted_scores[:-1]  # (n - 1, T)
    ones = np.ones((1, sorted_scores.shape[1]), dtype=bool)
    is_start = np.concatenate([ones, differs], axis=0)
    is_end = np.concatenate([differs, ones], axis=0)
    start = np.maximum.accumulate(np.where(is_start, idx, 0), axis=0)
    end = np.minimum.accumulate(np.where(is_end, idx, n)[::-1], axis=0)[::-1]
    return start, end


def auroc_columns(scores: object, labels: object) -> np.ndarray:
    """AUROC of every column.

    Args:
        scores: ``(n, T)`` finite scores (higher = more likely positive).
        labels: ``(n, T)`` 0/1 or bool labels.

    Returns:
        ``(T,)`` float64 AUROC per column; NaN where a column has a single class.
    """
    s, y = _as_columns(scores, labels)
    n = s.shape[0]
    n_pos = y.sum(axis=0).astype(np.float64)
    n_neg = n - n_pos
    if n == 0:
        return np.full(s.shape[1], np.nan)
    order = np.argsort(s, axis=0, kind="stable")
    s_sorted = np.take_along_axis(s, order, axis=0)
    y_sorted = np.take_along_axis(y, order, axis=0)
    start, end = _tie_groups(s_sorted)
    ranks = (start + end) / 2.0 + 1.0  # average 1-based rank of the tie group
    rank_sum = (ranks * y_sorted).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        auc = (rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg)
    auc[(n_pos == 0) | (n_neg == 0)] = np.nan
    return auc


def average_precision_columns(scores: object, labels: object) -> np.ndarray:
    """Average precision (sklearn's definition) of every column.

    ``AP = Σ_n (R_n − R_{n−1}) P_n`` over the distinct thresholds, i.e. each positive
    contributes, divided by the number of positives, the precision at the lowest score of its
    tie group.

    Args:
        scores: ``(n, T)`` finite scores (higher = more likely positive).
        labels: ``(n, T)`` 0/1 or bool labels.

    Returns:
        ``(T,)`` float64 AP per column; NaN where a column has no positive.
    """
    s, y = _as_columns(scores, labels)
    n = s.shape[0]
    n_pos = y.sum(axis=0).astype(np.float64)
    if n == 0:
        return np.full(s.shape[1], np.nan)
    order = np.argsort(-s, axis=0, kind="stable")  # descending
    s_sorted = np.take_along_axis(s, order, axis=0)
    y_sorted = np.take_along_axis(y, order, axis=0)
    _, end = _tie_groups(s_sorted)
    true_pos = np.cumsum(y_sorted, axis=0)
    precision_at_end = np.take_along_axis(true_pos, end, axis=0) / (end + 1.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        ap = (precision_at_end * y_sorted).sum(axis=0) / n_pos
    ap[n_pos == 0] = np.nan
    return ap


def auroc(scores: object, labels: object) -> float:
    """Area under the ROC curve of ``(n,)`` scores against ``(n,)`` 0/1 labels.

    Mann–Whitney ``U / (n_pos · n_neg)`` with average ranks for ties; NaN with one class.
    """
    return float(auroc_columns(*_as_vector(scores, labels))[0])


def average_precision(scores: object, labels: object) -> float:
    """Average precision (AUPR) of ``(n,)`` scores against ``(n,)`` 0/1 labels.

    sklearn's ``average_precision_score``: tied scores are one threshold; NaN without
    positives.
    """
    return float(average_precision_columns(*_as_vector(scores, labels))[0])


def snr(scores: object, labels: object) -> float:
    """Signal-to-noise ratio: mean score of the positives / mean score of the negatives.

    GLIFAC paper §4 ("the ratio between the averaged distributions"). ``inf`` when the negative
    mean is 0 and the positive mean is positive; NaN without positives or negatives, or when
    both means are 0.

    Args:
        scores: ``(n,)`` finite scores.
        labels: ``(n,)`` 0/1 or bool labels.
    """
    s, y = _as_columns(*_as_vector(scores, labels))
    s, y = s[:, 0], y[:, 0]
    if not y.any() or y.all():
        return float("nan")
    pos, neg = s[y].mean(), s[~y].mean()
    if neg == 0.0:
        if pos == 0.0:
            return float("nan")
        return float(np.copysign(np.inf, pos))
    return float(pos / neg)


def pr_curve_area(scores: object, labels: object) -> float:
    """Area under the precision-recall curve by the trapezoid rule (sklearn's
    ``auc(recall, precision)`` over ``precision_recall_curve``, the GLIFAC authors' AUPR).

    The curve has one point per distinct score (descending: recall and precision of the
    scores at or above it) and starts at recall 0, precision 1. Trapezoids interpolate
    precision linearly, which :func:`average_precision` does not (it is the step sum), so
    this is the larger of the two on most curves. NaN without positives.
    """
    s, y = _as_columns(*_as_vector(scores, labels))
    s, y = s[:, 0], y[:, 0].astype(bool)
    n_pos = int(y.sum())
    if n_pos == 0:
        return float("nan")
    order = np.argsort(-s, kind="stable")
    s_sorted, y_sorted = s[order], y[order]
    _, end = _tie_groups(s_sorted[:, None])
    last = np.unique(end[:, 0])  # the last index of each tie group
    true_pos = np.cumsum(y_sorted)[last]
    recall = np.concatenate([[0.0], true_pos / n_pos])
    precision = np.concatenate([[1.0], true_pos / (last + 1.0)])
    return float(np.sum(np.diff(recall) * (precision[1:] + precision[:-1]) / 2.0))


def snr_top_negatives(scores: object, labels: object, k: int = 100) -> float:
    """The GLIFAC authors' SNR: mean score of the positives / mean of the ``k`` highest
    negative scores that are above 0 (their code's ``k`` is 100). NaN without positives or
    without a negative above 0."""
    s, y = _as_columns(*_as_vector(scores, labels))
    s, y = s[:, 0], y[:, 0].astype(bool)
    top = np.sort(s[~y])[::-1][:k]
    top = top[top > 0]
    if not y.any() or not top.size:
        return float("nan")
    return float(s[y].mean() / top.mean())


EPS = 1e-8
"""Keeps logs finite in the Poisson loss and metrics."""

# Streaming per-track metrics over all windows and bins of a split.
#
# Genomic Interpreter's metric (Table 1): for each track, the Pearson correlation between
# predicted and observed values over every bin of every window of the split — NOT per window
# and then averaged, and not over tracks (the axis mistake of enformer-pytorch #36).


class TrackMetrics:
    """Accumulates per-track statistics in float64; :meth:`compute` gives Pearson, R²,
    Poisson.

    Means and centred sums of squares and products are merged batch by batch (Chan, Golub &
    LeVeque's pairwise update), not raw sums: ``Σx² − (Σx)²/n`` loses a track's variance to
    cancellation when it is small against its mean, and gave constant predictions a Pearson
    of 0, ±inf or NaN depending on the constant (now always 0). Works across processes:
    :meth:`all_reduce` merges the statistics of every rank.
    """

    FIELDS = ("n", "mean_x", "mean_y", "m2x", "m2y", "cxy", "sse", "poisson")
    # A variance below this share of the mean's square is rounding (float32 predictions
    # resolve about 6e-8 of a value): the predictions (or targets) count as constant.
    CONSTANT = 1e-20

    def __init__(self, n_tracks: int, device: torch.device | str = "cpu"):
        self.stats = torch.zeros(len(self.FIELDS), n_tracks, dtype=torch.float64, device=device)

    def update(self, pred: torch.Tensor, target: torch.Tensor) -> None:
        """``pred``, ``target``: ``(B, T, n_tracks)``."""
        x = pred.detach().to(torch.float64).reshape(-1, pred.shape[-1])
        y = target.detach().to(torch.float64).reshape(-1, target.shape[-1])
        if not len(x):
            return
        mx, my = x.mean(0), y.mean(0)
        dx, dy = x - mx, y - my
        batch = (
            torch.full_like(mx, x.shape[0]),
            mx,
            my,
            (dx * dx).sum(0),
            (dy * dy).sum(0),
            (dx * dy).sum(0),
            ((x - y) ** 2).sum(0),
            (x - y * torch.log(x + EPS)).sum(0),
        )
        self.stats = self._merge(self.stats, torch.stack(batch))

    @staticmethod
    def _merge(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        na, mxa, mya, m2xa, m2ya, ca, ssea, pa = a
        nb, mxb, myb, m2xb, m2yb, cb, sseb, pb = b
        n = na + nb
        share = torch.where(n > 0, nb / n.clamp(min=1), torch.zeros_like(n))
        dx, dy = mxb - mxa, myb - mya
        cross = na * share  # na·nb/n
        return torch.stack((
            n, mxa + dx * share, mya + dy * share, m2xa + m2xb + dx * dx * cross,
            m2ya + m2yb + dy * dy * cross, ca + cb + dx * dy * cross, ssea + sseb, pa + pb,
        ))  # fmt: skip

    def all_reduce(self) -> None:
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            gathered = [
                torch.zeros_like(self.stats) for _ in range(torch.distributed.get_world_size())
            ]
            torch.distributed.all_gather(gathered, self.stats)
            merged = torch.zeros_like(self.stats)
            for stats in gathered:  # in rank order: every rank gets the same numbers
                merged = self._merge(merged, stats)
            self.stats = merged

    def compute(self) -> dict[str, np.ndarray]:
        """Per-track ``pearson``, ``r2`` (1 − SSE/SST) and mean ``poisson`` loss. Pearson is 0
        for a track whose predictions are constant (a collapsed track scores as no
        correlation, not as left out, which would lift a mean over tracks) and NaN for one
        whose targets are constant (nothing to predict)."""
        n, mean_x, mean_y, m2x, m2y, cxy, sse, poisson = self.stats.cpu().numpy()
        flat_x = m2x <= self.CONSTANT * n * mean_x**2
        flat_y = m2y <= self.CONSTANT * n * mean_y**2
        with np.errstate(invalid="ignore", divide="ignore"):
            pearson = np.clip(cxy / np.sqrt(m2x * m2y), -1.0, 1.0)
            pearson[flat_x] = 0.0
            pearson[flat_y] = np.nan
            r2 = 1 - sse / m2y
            r2[flat_y] = np.nan
            return {"pearson": pearson, "r2": r2, "poisson": poisson / n, "n": n}
