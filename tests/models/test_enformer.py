"""Enformer: exact size of the full model, shapes and crops, gradients, batch invariance,
attention capture, and weight conversion from the enformer-pytorch port."""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F

from gitool.models.base import capture_attention
from gitool.models.enformer import Enformer, EnformerConfig, from_enformer_pytorch
from gitool.models.layers import AttentionPool

# A tiny width that satisfies every divisibility rule: C/2 = 24 (multiple of 8), C/H = 12.
TINY = dict(channels=48, attention_heads=4, key_dim=8, divisible_by=8, depth=2)


def tiny_config(**overrides) -> EnformerConfig:
    # 4 downsamplings (16-bp bins); 256 bp → 16 tokens → crop 9 (odd difference on purpose).
    values = dict(
        TINY,
        num_downsamples=4,
        bin_size=16,
        seq_length=256,
        target_length=9,
        heads={"human": 5, "mouse": 3},
    )
    return EnformerConfig(**{**values, **overrides})


def one_hot(batch: int, length: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return F.one_hot(torch.randint(0, 4, (batch, length), generator=g), 4).float()


def randomise_out_projections(model: Enformer) -> None:
    """The zero-initialised attention output makes every layer an identity; undo that so the
    tests see attention's effect (and its gradients)."""
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for attn in model.attention_layers().values():
            attn.to_out.weight.copy_(0.1 * torch.randn(attn.to_out.weight.shape, generator=g))


# --------------------------------------------------------------------------- size and config


@pytest.mark.parametrize("norm", ["batch", "layer"])
def test_full_model_parameter_count(norm):
    # Built on the meta device: no memory for the 251 M parameters.
    with torch.device("meta"):
        model = Enformer(EnformerConfig(norm=norm))
    trunk = sum(p.numel() for p in model.trunk.parameters())
    heads = sum(p.numel() for p in model.heads.parameters())
    assert (trunk, heads) == (229_845_504, 21_375_788)
    assert sum(p.numel() for p in model.parameters()) == 251_221_292
    assert model.config.tower_channels == [768, 768, 896, 1024, 1152, 1280, 1536]
    assert len(model.attention_layers()) == 11
    assert "trunk.transformer.3.attn" in model.attention_layers()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (dict(norm="group"), "unknown norm"),
        (dict(gamma_norm="max"), "unknown gamma_norm"),
        (dict(channels=1537), "must be even"),
        (dict(channels=1600), "multiple of divisible_by"),
        (dict(attention_heads=7), "divisible by attention_heads"),
        (dict(attention_heads=512), "multiple of 6"),
        (dict(bin_size=64), "2 \\*\\* num_downsamples"),
        (dict(seq_length=100_000), "fewer than target_length"),
        (dict(heads={}), "heads must map"),
        (dict(dropout=1.0), "dropout must be in"),
    ],
)
def test_config_rejects_bad_values(overrides, message):
    with pytest.raises(ValueError, match=message):
        EnformerConfig(**overrides)


def test_config_is_a_plain_dataclass():
    cfg = tiny_config()
    assert EnformerConfig(**dataclasses.asdict(cfg)) == cfg  # checkpoints rebuild from asdict


# --------------------------------------------------------------------------- forward


def test_forward_shapes_heads_and_values():
    torch.manual_seed(0)
    model = Enformer(tiny_config()).eval()
    x = one_hot(2, 256)
    with torch.no_grad():
        out = model(x)
        human = model(x, "human")
    assert set(out) == {"human", "mouse"}
    assert out["human"].shape == (2, 9, 5) and out["mouse"].shape == (2, 9, 3)
    assert torch.equal(out["human"], human)
    for y in out.values():
        assert torch.isfinite(y).all() and (y >= 0).all()
    assert model.trunk(x).shape == (2, 9, 96)
    with pytest.raises(KeyError, match="unknown head"):
        model(x, "yeast")


def test_single_head_returns_a_tensor():
    model = Enformer(tiny_config(heads={"human": 4})).eval()
    with torch.no_grad():
        assert model(one_hot(1, 256)).shape == (1, 9, 4)


def test_trunk_rejects_bad_input():
    model = Enformer(tiny_config()).eval()
    with pytest.raises(ValueError, match=r"\(B, L, 4\)"):
        model(torch.zeros(1, 256, 5))
    with pytest.raises(ValueError, match="at least 144 bp"):
        model(one_hot(1, 128))


@pytest.mark.parametrize("norm", ["batch", "layer"])
def test_every_parameter_gets_a_gradient(norm):
    torch.manual_seed(0)
    model = Enformer(tiny_config(norm=norm)).train()
    randomise_out_projections(model)
    out = model(one_hot(2, 256))
    sum(y.sum() for y in out.values()).backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name


@pytest.mark.parametrize("norm", ["batch", "layer"])
def test_eval_is_deterministic_and_batch_size_invariant(norm):
    torch.manual_seed(0)
    model = Enformer(tiny_config(norm=norm))
    randomise_out_projections(model)
    if norm == "batch":  # non-trivial running statistics
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm1d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
    model.eval()
    x = one_hot(3, 256, seed=3)
    with torch.no_grad():
        full, again = model(x, "human"), model(x, "human")
        single = model(x[1:2], "human")
    assert torch.equal(full, again)
    torch.testing.assert_close(single, full[1:2], atol=1e-5, rtol=0)


# --------------------------------------------------------------------------- pooling and crops


def test_attention_pool_starts_at_twice_identity_and_averages_equal_pairs():
    model = Enformer(tiny_config())
    pools = [m for m in model.modules() if isinstance(m, AttentionPool)]
    assert len(pools) == model.config.num_downsamples
    for pool in pools:
        c = pool.to_logits.weight.shape[0]
        assert torch.equal(pool.to_logits.weight[:, :, 0], 2 * torch.eye(c))
    pool = pools[0]
    pairs = torch.randn(2, pool.to_logits.weight.shape[0], 5)
    x = pairs.repeat_interleave(2, dim=-1)  # (a, a, b, b, ...): equal inputs in each pair
    torch.testing.assert_close(pool(x), pairs)
    with torch.no_grad():
        pool.to_logits.weight.zero_()  # equal logits: the plain mean of each pair
    y = torch.randn(2, pairs.shape[1], 11)  # odd: the last position is dropped (floor)
    torch.testing.assert_close(pool(y), y[..., :10].view(2, -1, 5, 2).mean(-1))


def trunk_tokens(model: Enformer, x: torch.Tensor) -> int:
    """Tokens entering the transformer (its input is (B, T, C))."""
    seen = []
    handle = model.trunk.transformer.register_forward_hook(
        lambda _m, args, _out: seen.append(args[0].shape[1])
    )
    with torch.no_grad():
        model.trunk(x)
    handle.remove()
    return seen[0]


@pytest.mark.parametrize(
    ("seq_length", "target_length", "tokens"),
    [(17_712, 80, 138), (196_608, 896, 1536)],  # basenji-small (553 → 276 floors), full
)
def test_crop_geometry_of_the_presets(seq_length, target_length, tokens):
    cfg = EnformerConfig(
        **dict(TINY, depth=1),
        seq_length=seq_length,
        target_length=target_length,
        heads={"human": 2},
    )
    assert cfg.trunk_length == tokens
    model = Enformer(cfg).eval()
    x = one_hot(1, seq_length)
    assert trunk_tokens(model, x) == tokens
    with torch.no_grad():
        assert model(x).shape == (1, target_length, 2)


# --------------------------------------------------------------------------- attention capture


def test_capture_attention_records_and_reproduces_outputs():
    torch.manual_seed(0)
    model = Enformer(tiny_config())
    randomise_out_projections(model)
    model.eval()
    x = one_hot(2, 256)
    name = "trunk.transformer.1.attn"
    layer = model.attention_layers()[name]
    grabbed = {}
    handle = layer.register_forward_hook(lambda _m, args, out: grabbed.update(x=args[0], out=out))
    with torch.no_grad():
        plain = model(x)
        with capture_attention(model) as records:
            captured = model(x)
    handle.remove()

    for head in plain:
        torch.testing.assert_close(captured[head], plain[head], atol=1e-6, rtol=0)
    assert [r.layer for r in records] == ["trunk.transformer.0.attn", name]
    for r in records:
        assert r.weights.shape == (2, 4, 16, 16)  # (B, H, T, T)
        torch.testing.assert_close(r.weights.sum(-1), torch.ones(2, 4, 16))

    # The captured weights applied by hand to the layer's values give its output.
    b, t, _ = grabbed["x"].shape
    v = layer.to_v(grabbed["x"]).view(b, t, layer.heads, -1).transpose(1, 2)  # (B, H, T, d)
    mixed = (records[1].weights @ v).transpose(1, 2).reshape(b, t, -1)
    torch.testing.assert_close(layer.to_out(mixed), grabbed["out"], atol=1e-5, rtol=1e-5)


# --------------------------------------------------------------------------- conversion


def test_from_enformer_pytorch_matches_the_port():
    port_module = pytest.importorskip("enformer_pytorch")
    torch.manual_seed(0)
    port = port_module.Enformer.from_hparams(
        dim=96,
        depth=2,
        heads=8,
        output_heads=dict(human=5, mouse=3),
        target_length=4,
        dim_divisible_by=16,
    )
    # Random everything (the zero-initialised attention output included) and non-trivial
    # BatchNorm statistics, so every converted tensor matters.
    with torch.no_grad():
        for name, p in port.named_parameters():
            p.normal_(0.0, 0.3 if name.endswith("weight") else 0.1)
        for m in port.modules():
            if isinstance(m, torch.nn.BatchNorm1d):
                m.running_mean.normal_(0.0, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.num_batches_tracked.fill_(7)
    port.eval()

    # 1,024 bp → 8 tokens → crop 4: even pooled lengths and an even crop difference.
    state = port.state_dict()
    model = from_enformer_pytorch(state, seq_length=1024, target_length=4, gamma_norm="feature")
    model.eval()
    cfg = model.config
    assert (cfg.channels, cfg.depth, cfg.attention_heads, cfg.key_dim) == (96, 2, 8, 64)
    assert (cfg.num_downsamples, cfg.divisible_by, cfg.norm) == (7, 16, "batch")
    assert cfg.heads == {"human": 5, "mouse": 3}
    bn = model.trunk.conv_tower[2][1].fn[0]
    assert torch.equal(bn.running_var, state["conv_tower.2.1.fn.0.running_var"])
    assert int(bn.num_batches_tracked) == 7

    x = one_hot(2, 1024)
    with torch.no_grad():
        expected, got = port(x), model(x)
        official = from_enformer_pytorch(state, seq_length=1024, target_length=4).eval()(x)
    for head in ("human", "mouse"):
        assert got[head].shape == expected[head].shape == (2, 4, {"human": 5, "mouse": 3}[head])
        torch.testing.assert_close(got[head], expected[head], atol=1e-4, rtol=1e-4)
    # The gamma normalisation matters: the official basis gives different outputs.
    assert not torch.allclose(official["human"], expected["human"], atol=1e-4)

    with pytest.raises(ValueError, match="contradicts the state dict"):
        from_enformer_pytorch(state, channels=128, seq_length=1024, target_length=4)
    with pytest.raises(ValueError, match="unexpected enformer-pytorch key"):
        from_enformer_pytorch({**state, "extra.weight": torch.zeros(1)}, target_length=4)


def test_from_enformer_pytorch_rejects_other_state_dicts():
    with pytest.raises(ValueError, match="not an enformer-pytorch state dict"):
        from_enformer_pytorch(Enformer(tiny_config()).state_dict())
    with pytest.raises(ValueError, match="unknown Enformer config option"):
        from_enformer_pytorch({}, channel=3)
