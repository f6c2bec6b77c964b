"""CAN (the GLIFAC paper): the eight variants, filter activations, attention capture, exp
overflow."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from torch import nn

from gitool.models.base import capture_attention
from gitool.models.can import CAN, EXP_CLAMP, CANConfig

VARIANTS = list(itertools.product([4, 20], ["relu", "exp"], [False, True]))


def one_hot(batch: int, length: int = 200, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    idx = torch.randint(0, 4, (batch, length), generator=g)
    return nn.functional.one_hot(idx, 4).float()


def make(pool=4, activation="relu", norm=False, seed=0, **options) -> CAN:
    torch.manual_seed(seed)
    return CAN(CANConfig(pool=pool, activation=activation, norm=norm, **options))


@pytest.mark.parametrize("pool, activation, norm", VARIANTS)
def test_variant_gives_probabilities_and_pooled_filter_activations(pool, activation, norm):
    model = make(pool, activation, norm)
    x = one_hot(3)
    for mode in (True, False):
        model.train(mode)
        y = model(x)
        assert y.shape == (3, 12)
        assert torch.isfinite(y).all() and (y >= 0).all() and (y <= 1).all()
    torch.testing.assert_close(model(x), torch.sigmoid(model(x, logits=True)))
    acts = model.filter_activations(x)
    assert acts.shape == (3, 200 // pool, 32)
    assert (acts >= 0).all()  # relu and exp are both non-negative
    assert isinstance(model.conv_norm, nn.BatchNorm1d) == norm
    assert isinstance(model.attention_norm, nn.LayerNorm) == norm


@pytest.mark.parametrize("pool, activation, norm", VARIANTS)
def test_every_parameter_gets_a_gradient(pool, activation, norm):
    model = make(pool, activation, norm).train()
    x = one_hot(4)
    target = torch.randint(0, 2, (4, 12)).float()
    nn.functional.binary_cross_entropy_with_logits(model(x, logits=True), target).backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.any()]
    assert not missing, missing


def test_keras_sized_layers():
    model = make()
    assert model.conv.bias is None and model.conv.kernel_size == (19,)
    attention = model.attention
    assert attention.rel_features == 0 and attention.to_q.bias is not None
    assert attention.to_out.weight.abs().sum() > 0  # not zero-initialised: no residual here
    # The authors' Keras model's trainable parameters (pool 4, 50 tokens): conv 2,432 + MHA
    # (q, k, v 3 × 8,448 + output 65,792 = 256 × 256 + 256) 91,136 + dense 50 × 256 × 512 (no
    # bias) 6,553,600 + BatchNorm 1,024 + output 6,156.
    assert attention.to_out.out_features == 256 and model.dense[1].bias is None
    assert sum(p.numel() for p in model.parameters()) == 6_654_348


@pytest.mark.parametrize("norm", [False, True])
def test_eval_is_deterministic_and_batch_size_invariant(norm):
    model = make(norm=norm)
    with torch.no_grad():
        model.train()(one_hot(8, seed=3))  # move the BatchNorm running statistics
    model.eval()
    x = one_hot(3, seed=1)
    with torch.no_grad():
        y3 = model(x)
        torch.testing.assert_close(model(x), y3, rtol=0, atol=0)
        torch.testing.assert_close(model(x[:1]), y3[:1], rtol=0, atol=1e-5)
        torch.testing.assert_close(model.filter_activations(x[:1]), model.filter_activations(x)[:1])


@pytest.mark.parametrize("pool", [4, 20])
def test_captured_attention_rows_sum_to_one_and_outputs_unchanged(pool):
    model = make(pool, "exp", True).eval()
    assert list(model.attention_layers()) == ["attention"]
    x = one_hot(2)
    with torch.no_grad():
        plain = model(x)
        with capture_attention(model) as records:
            captured = model(x)
    assert len(records) == 1 and records[0].layer == "attention"
    weights = records[0].weights
    tokens = 200 // pool
    assert weights.shape == (2, 8, tokens, tokens)
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, 8, tokens))
    assert records[0].meta["token_bp"] == pool
    torch.testing.assert_close(captured, plain, rtol=0, atol=1e-6)
    assert model.attention.capture is None  # the fast path is back after the block


@pytest.mark.parametrize("norm", [False, True])
def test_exp_activation_stays_finite_for_large_inputs(norm):
    model = make(activation="exp", norm=norm)
    x = 1e3 * one_hot(4)
    assert torch.isinf(torch.exp(model.conv(x.transpose(1, 2)))).any()  # unclamped overflows
    acts = model.filter_activations(x)
    assert torch.isfinite(acts).all() and acts.max() <= math.exp(EXP_CLAMP) * (1 + 1e-6)
    for mode in (True, False):
        model.train(mode)
        model.zero_grad()
        y = model(x)
        assert torch.isfinite(y).all()
    y.sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


@pytest.mark.parametrize(
    "options, needle",
    [
        ({"activation": "gelu"}, "gelu"),
        ({"kernel_size": 18}, "odd"),
        ({"pool": 0}, "pool"),
        ({"seq_length": 3, "pool": 4}, "shorter"),
    ],
)
def test_config_says_what_is_wrong(options, needle):
    with pytest.raises(ValueError, match=needle):
        CANConfig(**options)


def test_input_length_is_checked():
    with pytest.raises(ValueError, match=r"\(B, 200, 4\)"):
        make()(one_hot(1, 150))
