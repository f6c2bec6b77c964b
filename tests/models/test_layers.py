"""Shared layers: the relative positional basis by hand, the relative shift, crops, attention."""

from __future__ import annotations

import math

import pytest
import torch

from gitool.models.layers import (
    AttentionPool,
    RelativeAttention,
    center_crop,
    exponential_linspace_int,
    positional_features,
    relative_shift,
)


def test_exponential_and_central_mask_by_hand():
    n, f = 8, 12  # 2 features per basis and sign half
    p = positional_features(n, f)
    assert p.shape == (2 * n - 1, f)
    d = 3
    row = p[d + n - 1]
    # exponential: half-lives 2**linspace(3, log2 8 = 3, 2) = [8, 8]
    assert row[0].item() == pytest.approx(math.exp(-math.log(2) / 8 * 3))
    assert row[1].item() == pytest.approx(math.exp(-math.log(2) / 8 * 3))
    # central mask: widths 2**k - 1 = [1, 3] > |d| = 3 → [0, 0]; at d = 2 → [0, 1]
    assert row[2:4].tolist() == [0.0, 0.0]
    assert p[2 + n - 1, 2:4].tolist() == [0.0, 1.0]
    # the second half is sign(d) × the first: +d equal, -d negated, d = 0 zero
    torch.testing.assert_close(p[n - 1 + d, 6:], p[n - 1 + d, :6])
    torch.testing.assert_close(p[n - 1 - d, 6:], -p[n - 1 - d, :6])
    assert p[n - 1, 6:].abs().sum() == 0


def test_gamma_basis_by_hand_and_both_normalisations():
    n, per = 16, 2
    p = positional_features(n, 6 * per, gamma_norm="position")
    d = torch.arange(-n + 1, n).abs().double()
    sigma = n / (2 * per)
    raw = []
    for mu in (n / per, n):  # linspace(T/F_b, T, F_b)
        k, theta = (mu / sigma) ** 2, sigma**2 / mu  # concentration, scale = 1/rate
        pdf = d ** (k - 1) * torch.exp(-d / theta) / (math.gamma(k) * theta**k) + 1e-8
        raw.append(pdf)
    raw = torch.stack(raw, -1)
    expect_position = raw / raw.max(dim=0).values  # official: per feature over positions
    torch.testing.assert_close(
        p[:, 2 * per : 3 * per].double(), expect_position, rtol=1e-5, atol=1e-6
    )
    assert (p[:, 2 * per : 3 * per].max(dim=0).values == 1).all()
    q = positional_features(n, 6 * per, gamma_norm="feature")
    expect_feature = raw / raw.max(dim=-1, keepdim=True).values  # the port: over features
    torch.testing.assert_close(
        q[:, 2 * per : 3 * per].double(), expect_feature, rtol=1e-5, atol=1e-6
    )
    with pytest.raises(ValueError, match="multiple of 6"):
        positional_features(n, 10)


def test_relative_shift_puts_distance_j_minus_i_at_i_j():
    t = 6
    # logits[i, c] = 100 * i + (c - (t - 1)): query i, distance c - (t - 1)
    i = torch.arange(t)[:, None]
    c = torch.arange(2 * t - 1)[None]
    logits = (100 * i + (c - (t - 1))).float()[None, None]
    out = relative_shift(logits)[0, 0]
    j = torch.arange(t)[None]
    torch.testing.assert_close(out, (100 * i + (j - i)).float())


@pytest.mark.parametrize(
    "length,target,left", [(138, 80, 29), (139, 80, 29), (1536, 896, 320), (81, 80, 0)]
)
def test_center_crop_is_exact(length, target, left):
    x = torch.arange(length).float()[None, :, None]
    out = center_crop(x, target)
    assert out.shape[1] == target and out[0, 0, 0].item() == left


def test_exponential_linspace_int_enformer_channels():
    assert exponential_linspace_int(768, 1536, 6, divisible_by=128) == [
        768,
        896,
        1024,
        1152,
        1280,
        1536,
    ]


def test_attention_pool_floors_odd_lengths():
    pool = AttentionPool(3)
    assert pool(torch.randn(2, 3, 9)).shape == (2, 3, 4)


@pytest.mark.parametrize("scale_position", [True, False])
@pytest.mark.parametrize("rel_features", [0, 12, 8])
def test_sdpa_and_manual_paths_agree_and_weights_reproduce_output(scale_position, rel_features):
    torch.manual_seed(0)
    attn = RelativeAttention(
        32,
        heads=4,
        key_dim=8,
        rel_features=rel_features,
        zero_init_out=False,
        scale_position=scale_position,
    ).eval()
    x = torch.randn(3, 10, 32)
    mask = torch.zeros(3, 10, dtype=torch.bool)
    mask[1, 7:] = True
    fast = attn(x, key_padding_mask=mask)
    attn.capture = []
    manual = attn(x, key_padding_mask=mask)
    (record,) = attn.capture
    torch.testing.assert_close(manual, fast, atol=1e-5, rtol=1e-5)
    w = record.weights
    assert w.shape == (3, 4, 10, 10)
    torch.testing.assert_close(w.sum(-1), torch.ones(3, 4, 10))
    assert w[1, :, :, 7:].abs().max() == 0
    v = attn.to_v(x).view(3, 10, 4, -1).transpose(1, 2)
    by_hand = attn.to_out((w @ v).transpose(1, 2).reshape(3, 10, -1))
    torch.testing.assert_close(by_hand, fast, atol=1e-5, rtol=1e-5)
