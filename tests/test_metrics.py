"""Ranking metrics (gitool.metrics): AUROC, average precision, SNR, checked by hand and by brute force."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gitool.metrics import (
    auroc,
    auroc_columns,
    average_precision,
    average_precision_columns,
    pr_curve_area,
    snr,
    snr_top_negatives,
)


def brute_auroc(s: np.ndarray, y: np.ndarray) -> float:
    """P(score_pos > score_neg) + 0.5 P(tie), over all positive/negative pairs."""
    pos, neg = s[y == 1][:, None], s[y == 0][None, :]
    return float(((pos > neg) + 0.5 * (pos == neg)).mean())


def brute_ap(s: np.ndarray, y: np.ndarray) -> float:
    """sklearn's definition, threshold by threshold."""
    ap, prev_recall = 0.0, 0.0
    for t in np.unique(s)[::-1]:
        hit = s >= t
        recall = (y[hit] == 1).sum() / (y == 1).sum()
        precision = (y[hit] == 1).mean()
        ap += (recall - prev_recall) * precision
        prev_recall = recall
    return ap


def test_hand_computed_case():
    s, y = [0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]
    assert auroc(s, y) == pytest.approx(0.75)
    assert average_precision(s, y) == pytest.approx(5 / 6)
    assert snr(s, y) == pytest.approx((0.35 + 0.8) / (0.1 + 0.4))


def test_perfect_and_inverted_rankings():
    s, y = np.array([0.9, 0.8, 0.2, 0.1]), np.array([1, 1, 0, 0])
    assert auroc(s, y) == 1.0
    assert average_precision(s, y) == 1.0
    assert auroc(-s, y) == 0.0
    # positives ranked last: precisions 1/3 and 2/4
    assert average_precision(-s, y) == pytest.approx((1 / 3 + 2 / 4) / 2)


def test_ties_are_one_threshold_and_count_one_half():
    # all scores equal: AUROC 0.5, AP = prevalence (one threshold)
    y = np.array([1, 0, 0, 1, 0])
    assert auroc(np.zeros(5), y) == pytest.approx(0.5)
    assert average_precision(np.zeros(5), y) == pytest.approx(0.4)
    # a positive tied with a negative at the top: that threshold has precision 1/2
    s = np.array([0.9, 0.9, 0.5, 0.1])
    y = np.array([1, 0, 1, 0])
    assert auroc(s, y) == pytest.approx((1 * 0.5 + 1 + 1) / 4)  # pos 0.9: tie + win; pos 0.5: win
    assert average_precision(s, y) == pytest.approx(0.5 * 0.5 + 0.5 * (2 / 3))


def test_random_cases_with_heavy_ties_match_brute_force():
    rng = np.random.default_rng(0)
    for _ in range(20):
        n = int(rng.integers(2, 40))
        s = rng.integers(0, 5, n).astype(float)  # many ties
        y = rng.integers(0, 2, n)
        if y.min() == y.max():
            y[0] = 1 - y[0]
        assert auroc(s, y) == pytest.approx(brute_auroc(s, y))
        assert average_precision(s, y) == pytest.approx(brute_ap(s, y))


def test_columns_match_per_column_calls():
    rng = np.random.default_rng(1)
    s = rng.integers(0, 4, (30, 5)).astype(float)
    y = rng.integers(0, 2, (30, 5))
    y[:, 3] = 0  # no positive: AUROC and AP undefined
    y[:, 4] = 1  # no negative: AUROC undefined, AP = 1
    roc, ap = auroc_columns(s, y), average_precision_columns(s, y)
    assert roc.shape == ap.shape == (5,)
    for t in range(3):
        assert roc[t] == pytest.approx(brute_auroc(s[:, t], y[:, t]))
        assert ap[t] == pytest.approx(brute_ap(s[:, t], y[:, t]))
    assert np.isnan(roc[3]) and np.isnan(ap[3])
    assert np.isnan(roc[4]) and ap[4] == 1.0


def test_undefined_cases_are_nan():
    assert math.isnan(auroc([0.1, 0.2], [1, 1]))
    assert math.isnan(auroc([0.1, 0.2], [0, 0]))
    assert math.isnan(average_precision([0.1, 0.2], [0, 0]))
    assert average_precision([0.1, 0.2], [True, True]) == 1.0
    assert math.isnan(snr([0.1, 0.2], [0, 0]))
    assert math.isnan(snr([0.0, 0.0], [0, 1]))


def test_snr_infinite_when_negatives_average_zero():
    assert snr([0.0, 0.0, 0.5], [0, 0, 1]) == math.inf
    assert snr([1.0, 3.0, 2.0], [0, 0, 1]) == pytest.approx(1.0)


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="labels must be 0 or 1"):
        auroc([0.1, 0.2], [0, 2])
    with pytest.raises(ValueError, match="finite"):
        average_precision([0.1, np.nan], [0, 1])
    with pytest.raises(ValueError, match="1-D"):
        auroc(np.zeros((2, 2)), np.zeros((2, 2)))
    with pytest.raises(ValueError, match="one shape"):
        auroc_columns(np.zeros((3, 2)), np.zeros((3, 1)))


def test_pr_curve_area_is_the_trapezoid_rule_over_distinct_thresholds():
    # (0, 1) → (.5, 1) → (.5, .5) → (1, 2/3) → (1, .5): trapezoids .5 + 0 + .5·(.5 + 2/3)/2
    scores, labels = [0.9, 0.8, 0.7, 0.6], [1, 0, 1, 0]
    assert pr_curve_area(scores, labels) == pytest.approx(0.5 + 0.25 * (0.5 + 2 / 3))
    assert average_precision(scores, labels) == pytest.approx(0.5 + 0.5 * 2 / 3)  # steps
    assert pr_curve_area([1.0, 1.0], [1, 0]) == pytest.approx(0.75)  # a tie is one point
    assert pr_curve_area([3.0, 2.0, 1.0], [1, 1, 0]) == pytest.approx(1.0)
    assert math.isnan(pr_curve_area([1.0, 2.0], [0, 0]))


def test_snr_top_negatives_uses_the_highest_positive_negatives():
    scores, labels = [0.5, 0.3, 0.2, -0.1, 0.1], [1, 1, 0, 0, 0]
    assert snr_top_negatives(scores, labels) == pytest.approx(0.4 / 0.15)
    assert snr_top_negatives(scores, labels, k=1) == pytest.approx(0.4 / 0.2)
    assert math.isnan(snr_top_negatives([0.5, -0.2], [1, 0]))  # no negative above 0


# --------------------------------------------------------------------------- TrackMetrics


def _track_metrics(batches) -> dict:
    import torch

    from gitool.metrics import TrackMetrics

    metrics = TrackMetrics(batches[0][0].shape[-1])
    for x, y in batches:
        metrics.update(torch.as_tensor(x), torch.as_tensor(y))
    return metrics.compute()


def test_track_pearson_matches_numpy_over_batches_even_far_from_zero():
    """Every bin of every window, batch by batch; a track whose spread is small against its
    mean (offset 1e5, sd 0.01) lost its variance to Σx² − (Σx)²/n."""
    rng = np.random.default_rng(0)
    y = rng.gamma(2.0, 1.0, (40, 8, 3))
    x = y + rng.normal(0, 1, y.shape)
    x[..., 2] = 1e5 + 0.01 * (y[..., 2] + rng.normal(0, 1, y[..., 2].shape))
    batches = [(x[a:b], y[a:b]) for a, b in ((0, 1), (1, 17), (17, 40))]
    got = _track_metrics(batches)
    for k in range(3):
        want = np.corrcoef(x[..., k].ravel(), y[..., k].ravel())[0, 1]
        assert abs(got["pearson"][k] - want) < 1e-9, (k, got["pearson"][k], want)
        sst = ((y[..., k] - y[..., k].mean()) ** 2).sum()
        assert abs(got["r2"][k] - (1 - ((x[..., k] - y[..., k]) ** 2).sum() / sst)) < 1e-9
    assert got["n"].tolist() == [320, 320, 320]


def test_a_constant_prediction_scores_zero_and_constant_targets_none():
    """A collapsed track is 0 (left out, it would lift a mean over tracks), never ±inf or a
    value that depends on the constant; a track with nothing to predict is NaN."""
    rng = np.random.default_rng(1)
    y = rng.gamma(2.0, 1.0, (30, 8, 6))
    x = np.empty_like(y)
    for k, value in enumerate((0.6931, 17.77, 0.01, 2.0, 0.1, 3.3)):
        x[..., k] = np.float32(value)
    got = _track_metrics([(x[:7], y[:7]), (x[7:], y[7:])])
    assert (got["pearson"] == 0).all(), got["pearson"]
    flat = _track_metrics([(y, np.zeros_like(y))])  # constant targets: no Pearson, no R²
    assert np.isnan(flat["pearson"]).all() and np.isnan(flat["r2"]).all()


def test_statistics_of_two_ranks_merge_into_those_of_one():
    """What all_reduce does with every rank's statistics."""
    import torch

    from gitool.metrics import TrackMetrics

    rng = np.random.default_rng(2)
    y = torch.as_tensor(rng.gamma(2.0, 1.0, (20, 8, 2)))
    x = (y + torch.as_tensor(rng.normal(0, 1, y.shape))).abs()
    whole, a, b = TrackMetrics(2), TrackMetrics(2), TrackMetrics(2)
    whole.update(x, y)
    a.update(x[:5], y[:5])
    b.update(x[5:], y[5:])
    merged = TrackMetrics._merge(TrackMetrics._merge(torch.zeros_like(a.stats), a.stats), b.stats)
    torch.testing.assert_close(merged, whole.stats, rtol=1e-12, atol=1e-9)
