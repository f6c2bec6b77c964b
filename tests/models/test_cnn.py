"""CNN baselines: output contract, gradients, eval invariances, pooling, basenji-small geometry."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from gitool.models.cnn import (
    AttPoolCNN,
    AttPoolCNNConfig,
    CNNConfig,
    DilatedCNN,
    DilatedCNNConfig,
    MaxPoolCNN,
    MaxPoolCNNConfig,
    dilation_rates,
    pooled_length,
)
from gitool.models.layers import AttentionPool

MODELS = {
    "cnn-maxpool": (MaxPoolCNN, MaxPoolCNNConfig),
    "cnn-attpool": (AttPoolCNN, AttPoolCNNConfig),
    "cnn-dilated": (DilatedCNN, DilatedCNNConfig),
}
# 1024 bp → 32-bp tokens (5 poolings) → 32 tokens → crop 20; narrow channels keep it fast.
TINY = dict(
    seq_length=1024,
    target_length=20,
    bin_size=32,
    stem_channels=8,
    channels=16,
    divisible_by=4,
    heads={"human": 3},
)
NARROW = dict(stem_channels=4, channels=8, divisible_by=4, heads={"human": 2})


def one_hot(batch: int, length: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    idx = torch.randint(0, 4, (batch, length), generator=g)
    return nn.functional.one_hot(idx, 4).float()


def make(name: str, seed: int = 0, **overrides) -> nn.Module:
    cls, config_cls = MODELS[name]
    options = {**TINY, **overrides}
    if config_cls is DilatedCNNConfig:
        options.setdefault("dilated_blocks", 3)
    torch.manual_seed(seed)
    return cls(config_cls(**options))


@pytest.mark.parametrize("norm", ["layer", "batch"])
@pytest.mark.parametrize("name", list(MODELS))
def test_output_is_nonnegative_finite_tracks_per_bin(name, norm):
    model = make(name, norm=norm)
    y = model(one_hot(2, 1024))
    assert y.shape == (2, 20, 3)
    assert torch.isfinite(y).all() and (y >= 0).all()
    trunk = model.trunk(one_hot(2, 1024))
    assert trunk.shape == (2, 20, 2 * model.config.final_channels)


@pytest.mark.parametrize("name", list(MODELS))
def test_several_heads_share_the_trunk(name):
    model = make(name, heads={"human": 3, "mouse": 2}).eval()
    x = one_hot(2, 1024)
    out = model(x)
    assert isinstance(out, dict) and set(out) == {"human", "mouse"}
    assert out["human"].shape == (2, 20, 3) and out["mouse"].shape == (2, 20, 2)
    torch.testing.assert_close(model(x, "mouse"), out["mouse"])
    with pytest.raises(KeyError, match="mouse"):
        model(x, "dog")


@pytest.mark.parametrize("norm", ["layer", "batch"])
@pytest.mark.parametrize("name", list(MODELS))
def test_every_parameter_gets_a_gradient(name, norm):
    model = make(name, norm=norm, heads={"human": 3, "mouse": 2}).train()
    out = model(one_hot(3, 1024))
    sum(y.square().mean() for y in out.values()).backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.any()]
    assert not missing, missing


@pytest.mark.parametrize("norm", ["layer", "batch"])
@pytest.mark.parametrize("name", list(MODELS))
def test_eval_is_deterministic_and_batch_size_invariant(name, norm):
    model = make(name, norm=norm)
    if norm == "batch":  # give the running statistics something other than their init
        with torch.no_grad():
            model.train()(one_hot(4, 1024, seed=5))
    model.eval()
    x = one_hot(3, 1024, seed=1)
    with torch.no_grad():
        y3 = model(x)
        torch.testing.assert_close(model(x), y3, rtol=0, atol=0)
        torch.testing.assert_close(model(x[:1]), y3[:1], rtol=0, atol=1e-5)
    assert not model.training  # inference left the mode alone


@pytest.mark.parametrize("name", list(MODELS))
def test_basenji_small_geometry_gives_80_bins(name):
    cls, config_cls = MODELS[name]
    extra = {"dilated_blocks": 2} if config_cls is DilatedCNNConfig else {}
    config = config_cls(**NARROW, **extra)  # default geometry, narrow channels
    assert (config.seq_length, config.bin_size, config.target_length) == (17712, 128, 80)
    assert config.n_pools == 7
    model = cls(config).eval()
    lengths = []
    model.trunk.tower.register_forward_hook(lambda m, i, o: lengths.append(o.shape[-1]))
    with torch.no_grad():
        y = model(one_hot(1, 17712))
    assert lengths == [138]  # 17712 → 8856 → 4428 → 2214 → 1107 → 553 → 276 → 138
    assert y.shape == (1, 80, 2)
    assert pooled_length(17712, 7) == 138


def test_default_channel_schedule():
    for config_cls in (MaxPoolCNNConfig, AttPoolCNNConfig, DilatedCNNConfig):
        config = config_cls()
        assert config.stem_channels == 288
        assert config.tower_channels() == [288, 352, 416, 512, 640, 768]
        assert config.heads == {"human": 5313}
        assert config.norm == "batch"  # as Enformer and Basenji; "layer" collapses narrow towers
    assert MaxPoolCNNConfig().heads is not MaxPoolCNNConfig().heads  # no shared default dict


def test_max_and_attention_pooling_really_differ():
    maxpool, attpool = make("cnn-maxpool"), make("cnn-attpool")
    assert not any(isinstance(m, AttentionPool) for m in maxpool.modules())
    pools = [m for m in attpool.modules() if isinstance(m, AttentionPool)]
    assert len(pools) == 5 and not any(isinstance(m, nn.MaxPool1d) for m in attpool.modules())
    for pool in pools:  # starts near max pooling: logits 2·identity
        c = pool.to_logits.weight.shape[0]
        torch.testing.assert_close(pool.to_logits.weight[:, :, 0], 2 * torch.eye(c))
    # Same weights everywhere else: the only difference is the pooling.
    result = attpool.load_state_dict(maxpool.state_dict(), strict=False)
    assert not result.unexpected_keys
    assert result.missing_keys and all(k.endswith("to_logits.weight") for k in result.missing_keys)
    maxpool.eval(), attpool.eval()
    x = one_hot(2, 1024)
    with torch.no_grad():
        assert not torch.allclose(maxpool(x), attpool(x), atol=1e-4)
    # A softmax-weighted mean of each pair lies between its min and max, below the max.
    h = torch.randn(2, 6, 10)
    soft, hard = AttentionPool(6)(h), nn.MaxPool1d(2)(h)
    low = -nn.MaxPool1d(2)(-h)
    assert (soft <= hard + 1e-6).all() and (soft >= low - 1e-6).all()
    assert not torch.allclose(soft, hard, atol=1e-3)


def test_odd_lengths_floor_at_pooling():
    # 1050 → 525 → 262 → 131 → 65 → 32 tokens, cropped to 20.
    config = MaxPoolCNNConfig(**{**TINY, "seq_length": 1050})
    assert pooled_length(1050, config.n_pools) == 32
    assert MaxPoolCNN(config)(one_hot(1, 1050)).shape == (1, 20, 3)


def test_dilated_tower_schedule():
    assert dilation_rates(11, 1.5) == [1, 2, 2, 3, 5, 8, 11, 17, 26, 38, 58]
    assert dilation_rates(4, 2.0) == [1, 2, 4, 8]
    model = make("cnn-dilated", dilated_blocks=4, dilation_mult=2.0)
    convs = [m for m in model.trunk.dilated.modules() if isinstance(m, nn.Conv1d)]
    assert [c.dilation[0] for c in convs if c.kernel_size[0] == 3] == [1, 2, 4, 8]
    assert all(c.out_channels == 8 for c in convs if c.kernel_size[0] == 3)  # bottleneck C/2
    assert isinstance(make("cnn-attpool").trunk.dilated, nn.Identity)


@pytest.mark.parametrize(
    "options, needle",
    [
        ({"bin_size": 48}, "power of two"),
        ({"norm": "group"}, "group"),
        ({"seq_length": 500}, "target_length"),
        ({"heads": {}}, "head"),
        ({"conv_kernel": 4}, "odd"),
    ],
)
def test_config_says_what_is_wrong(options, needle):
    with pytest.raises(ValueError, match=needle):
        CNNConfig(**{**TINY, **options})


def test_input_shape_is_checked():
    with pytest.raises(ValueError, match=r"\(B, L, 4\)"):
        make("cnn-maxpool")(torch.zeros(1, 1024, 5))
