"""The Poisson loss and the track weights of ``--track-weights balanced``."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gitool.train.losses import balanced_track_weights, null_deviance, poisson_nll


def test_null_deviance_is_the_deviance_of_the_mean_prediction():
    y = np.array([[[0.0, 2.0, 1.0]], [[4.0, 2.0, 1.0]]])  # 2 windows, 1 bin, 3 tracks
    # track 0: mean 2; (0 - (0 - 2)) + (4 log 2 - (4 - 2)) over 2 values
    expected0 = (2.0 + 4 * np.log(2.0) - 2.0) / 2
    np.testing.assert_allclose(null_deviance(y, chunk=1), [expected0, 0.0, 0.0], atol=1e-12)


def test_balanced_weights_favour_the_smooth_track_without_drowning_the_peaky_one():
    rng = np.random.default_rng(0)
    peaky = np.where(rng.random((64, 80)) < 0.05, 12.0, 0.0)
    smooth = 0.38 + 0.03 * rng.standard_normal((64, 80))
    constant = np.full((64, 80), 2.0)
    weights = balanced_track_weights(np.stack([peaky, smooth, constant], -1).astype(np.float16))
    assert weights[2] == 0.0  # nothing to learn
    assert weights[:2].mean() == pytest.approx(1.0)
    deviance = null_deviance(np.stack([peaky, smooth], -1))
    assert weights[1] / weights[0] == pytest.approx(np.sqrt(deviance[0] / deviance[1]), rel=1e-3)
    assert 10 < weights[1] / weights[0] < 1000  # favoured, not absolute


def test_weighted_loss_weighs_each_track_mean():
    torch.manual_seed(0)
    pred = torch.rand(2, 5, 3) + 0.1
    y = torch.rand(2, 5, 3) * 4
    nll = pred - y * torch.log(pred + 1e-8)
    weights = torch.tensor([0.5, 2.0, 0.5])
    expected = (nll.mean((0, 1)) * weights).mean()
    torch.testing.assert_close(poisson_nll(pred, y, weights), expected)
    torch.testing.assert_close(poisson_nll(pred, y), nll.mean())
    torch.testing.assert_close(poisson_nll(pred, y, torch.ones(3)), nll.mean())
