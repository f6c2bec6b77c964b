"""Genomic Interpreter (1D-Swin): shapes, gradients, windows, padding, shift mapping, capture."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from gitool.models.base import capture_attention
from gitool.models.layers import RelativeAttention
from gitool.models.swin import (
    GenomicInterpreter,
    SwinConfig,
    TokenMerge,
    WindowAttention,
    layer_token_counts,
    window_partition,
    window_reverse,
    window_token_index,
)

# 500 bp, 16-bp bins: 5 layers of 500, 250, 125, 63 (odd 125 duplicates), 32 tokens; every
# layer but the last pads its last window (500 % 8, 250 % 8, 125 % 12, 63 % 16).
TINY = dict(
    seq_length=500,
    target_length=24,
    bin_size=16,
    dims=(8, 12, 16, 16, 24),
    windows=(8, 8, 12, 16, 16),
    attention_heads=(2, 2, 2, 2, 4),
    transformer_heads=2,
    transformer_key_dim=8,
    heads={"human": 3, "mouse": 2},
)


def one_hot(batch: int, length: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return F.one_hot(torch.randint(0, 4, (batch, length), generator=g), 4).float()


@pytest.fixture
def tiny() -> GenomicInterpreter:
    torch.manual_seed(0)
    return GenomicInterpreter(SwinConfig(**TINY)).eval()


# --------------------------------------------------------------------------- model contract


def test_shapes_per_head_nonnegative(tiny):
    x = one_hot(2, 500)
    assert tiny(x, "human").shape == (2, 24, 3)
    assert tiny(x, "mouse").shape == (2, 24, 2)
    both = tiny(x)
    assert set(both) == {"human", "mouse"}
    for y in both.values():
        assert torch.isfinite(y).all() and (y >= 0).all()
    assert tiny.trunk(x).shape == (2, 24, 24)


def test_every_parameter_gets_a_gradient():
    torch.manual_seed(1)
    model = GenomicInterpreter(SwinConfig(**TINY)).train()
    with torch.no_grad():  # zero-initialised projections (Enformer's) would block gradients
        for p in model.parameters():
            if not p.any():
                p.normal_(0, 0.02)
    out = model(one_hot(2, 500))
    (out["human"].sum() + out["mouse"].sum()).backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


def test_eval_is_deterministic_and_batch_size_invariant(tiny):
    x = one_hot(3, 500, seed=2)
    y3 = tiny(x, "human")
    assert torch.equal(y3, tiny(x, "human"))
    for i in range(3):
        torch.testing.assert_close(tiny(x[i : i + 1], "human"), y3[i : i + 1], atol=1e-5, rtol=0)


def test_basenji_small_default_geometry():
    config = SwinConfig()
    assert config.n_layers == 8
    assert config.token_counts() == [17712, 8856, 4428, 2214, 1107, 554, 277, 139]
    assert config.windows[5] == 140 and -(-554 // 140) == 4  # Genomic Interpreter Fig. 6
    torch.manual_seed(0)
    model = GenomicInterpreter(config).eval()
    seen = []
    for layer in model.trunk.layers:
        layer.register_forward_pre_hook(lambda _m, args: seen.append(args[0].shape[1]))
    names = ["trunk.layers.5.regular.attn", "trunk.layers.7.shifted.attn"]
    with torch.no_grad(), capture_attention(model, names) as records:
        y = model(one_hot(1, 17712))
    assert y.shape == (1, 80, 5313)
    assert seen == config.token_counts()
    layer6, layer8 = records
    assert layer6.weights.shape == (1, 4, 8, 140, 140)
    assert (layer6.meta["layer"], layer6.meta["token_bp"], layer6.meta["padded"]) == (6, 32, 6)
    assert layer8.weights.shape == (1, 1, 8, 140, 140)
    # One window holds layer 8's 139 tokens: its shifted block does not roll.
    assert (layer8.meta["shift"], layer8.meta["n_tokens"]) == (0, 139)
    assert layer8.meta["token_index"][0, :139].tolist() == list(range(139))
    assert [
        layer.shifted.effective_shift(n) for layer, n in zip(model.trunk.layers, seen, strict=True)
    ] == [
        16,
        16,
        32,
        32,
        64,
        70,
        70,
        0,
    ]


def test_overrides_and_lists_from_yaml():
    config = SwinConfig(**{**TINY, "dims": [8, 12, 16, 16, 24], "rel_features": [24] * 5})
    assert config.dims == (8, 12, 16, 16, 24) and config.layer_rel_features() == (24,) * 5
    model = GenomicInterpreter(config, dropout=0.0)
    assert model.config.dropout == 0.0 and model.config.dims == config.dims
    assert GenomicInterpreter(**TINY).config == SwinConfig(**TINY)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"bin_size": 12}, "power of two"),
        ({"windows": (8, 8, 8, 8)}, "windows needs one entry per layer"),
        ({"attention_heads": (3, 2, 2, 2, 4)}, "not divisible by its 3 heads"),
        ({"rel_features": 10}, "multiples of 6"),
        ({"norm": "batch"}, "norm='layer'"),
        ({"target_length": 40}, "fewer than target_length"),
        ({"embed": False}, "dims\\[0\\] must be 4"),
        ({"windows": (8, 1, 12, 16, 16)}, "windows at least 2"),
    ],
)
def test_config_errors(change, message):
    with pytest.raises(ValueError, match=message):
        SwinConfig(**{**TINY, **change})


# --------------------------------------------------------------------------- windows and merge


def test_window_partition_roundtrip_and_token_index():
    x = torch.randn(2, 12, 3)
    windows = window_partition(x, 4)
    assert windows.shape == (6, 4, 3)
    assert torch.equal(windows[4], x[1, 4:8])  # row b·nW + i is window i of sample b
    assert torch.equal(window_reverse(windows, 2), x)
    with pytest.raises(ValueError, match="multiple of the window"):
        window_partition(x, 5)
    # 10 tokens, w = 4, shift 2: roll the real tokens by -2, then pad 2 slots at the end.
    assert window_token_index(10, 4).tolist() == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, -1, -1]]
    assert window_token_index(10, 4, 2).tolist() == [
        [2, 3, 4, 5],
        [6, 7, 8, 9],
        [0, 1, -1, -1],  # wrapped around
    ]


def test_merge_odd_length_duplicates_last_token():
    x = torch.arange(10.0).view(1, 5, 2)  # tokens [0,1], [2,3], [4,5], [6,7], [8,9]
    assert TokenMerge.pair(x).tolist() == [[[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 8, 9]]]
    assert TokenMerge.pair(x[:, :4]).tolist() == [[[0, 1, 2, 3], [4, 5, 6, 7]]]
    merge = TokenMerge(2, 3)
    out = merge(x)
    assert out.shape == (1, 3, 3)
    torch.testing.assert_close(out[0, 2], merge.reduction(torch.tensor([8.0, 9, 8, 9])))
    assert layer_token_counts(500, 5) == [500, 250, 125, 63, 32]


# --------------------------------------------------------------------------- padding


def _window_attention(window: int = 8, dim: int = 12) -> WindowAttention:
    torch.manual_seed(3)
    return WindowAttention(dim, window, heads=3, key_dim=4, rel_features=24).eval()


def test_padded_tail_content_does_not_matter():
    attn = _window_attention()
    x = torch.randn(2, 21, 12)  # 3 windows of 8, 3 padded slots
    out = attn(x)
    junk = torch.cat([x, 100 * torch.randn(2, 3, 12)], dim=1)
    mask = torch.zeros(3, 8, dtype=torch.bool)
    mask[-1, 5:] = True
    by_hand = RelativeAttention.forward(attn, window_partition(junk, 8), mask.repeat(2, 1))
    torch.testing.assert_close(window_reverse(by_hand, 2)[:, :21], out, atol=1e-5, rtol=0)
    # The junk would change the last window without the mask: the test can fail.
    unmasked = window_reverse(RelativeAttention.forward(attn, window_partition(junk, 8)), 2)
    assert not torch.allclose(unmasked[:, 16:21], out[:, 16:21], atol=1e-3)
    # Windows that hold no padding are exactly what attention on them alone gives.
    torch.testing.assert_close(out[:, :16], attn(x[:, :16]), atol=1e-6, rtol=0)


def test_padded_keys_get_zero_weight(tiny):
    with torch.no_grad(), capture_attention(tiny) as records:
        tiny(one_hot(2, 500))
    padded_layers = 0
    for record in records:
        if record.meta["block"] == "transformer":
            continue
        index = record.meta["token_index"]  # (nW, w)
        w = record.meta["window"]
        assert index.shape == (record.meta["n_windows"], w)
        assert int((index < 0).sum()) == record.meta["padded"]
        padded = (index < 0)[None, :, None, None, :].expand_as(record.weights)
        if record.meta["padded"]:
            padded_layers += 1
            assert (record.weights[padded] == 0).all()  # exactly zero
        real = record.weights.masked_fill(padded, 0).sum(-1)
        torch.testing.assert_close(real, torch.ones_like(real), atol=1e-5, rtol=0)
    assert padded_layers == 8  # both blocks of layers 1-4


# --------------------------------------------------------------------------- capture


def test_manual_path_matches_sdpa_and_records_are_complete(tiny):
    x = one_hot(2, 500, seed=4)
    with torch.no_grad():
        fast = tiny(x)
        with capture_attention(tiny) as records:
            manual = tiny(x)
    for head in fast:
        torch.testing.assert_close(manual[head], fast[head], atol=1e-5, rtol=0)
    assert [r.layer for r in records] == list(tiny.attention_layers())
    assert records[0].layer == "trunk.layers.0.regular.attn"
    assert records[-1].layer == "trunk.transformer.0.attn"
    counts = tiny.config.token_counts()
    for k in range(5):
        for block, record in zip(("regular", "shifted"), records[2 * k : 2 * k + 2], strict=True):
            w = tiny.config.windows[k]
            meta = record.meta
            assert meta["layer"] == k + 1 and meta["block"] == block
            assert meta["window"] == w and meta["shift"] == (w // 2 if block == "shifted" else 0)
            assert meta["token_bp"] == 2**k and meta["n_tokens"] == counts[k]
            assert meta["n_windows"] == -(-counts[k] // w)
            heads = tiny.config.attention_heads[k]
            assert record.weights.shape == (2, meta["n_windows"], heads, w, w)
    final = records[-1]
    # The paper's order (the default): crop to the 24 target tokens, then the transformer.
    assert final.weights.shape == (2, 2, 24, 24)
    assert final.meta == {"layer": 6, "block": "transformer", "token_bp": 16, "token_start": 4}
    torch.testing.assert_close(final.weights.sum(-1), torch.ones(2, 2, 24), atol=1e-5, rtol=0)


def test_crop_order_paper_by_default_enformer_on_request():
    """Genomic Interpreter eqs. 2-3 crop before the transformer block (the default); with
    ``crop_first=False`` the block sees all tokens first (Enformer's order)."""
    torch.manual_seed(0)
    enformer_order = GenomicInterpreter(SwinConfig(**TINY, crop_first=False)).eval()
    assert SwinConfig(**TINY).crop_first
    names = ["trunk.transformer.0.attn"]
    with torch.no_grad(), capture_attention(enformer_order, names) as records:
        y = enformer_order(one_hot(1, 500))
    assert y["human"].shape == (1, 24, 3)
    assert records[0].weights.shape == (1, 2, 32, 32) and records[0].meta["token_start"] == 0


@pytest.mark.parametrize("block", ["regular", "shifted"])
def test_captured_weights_reproduce_the_block_in_original_token_order(tiny, block):
    """Map each window slot back to its unshifted token with ``token_index``, gather the values
    from the block's *unrolled* input, apply the captured weights: the block's attention output
    (rolled back) must come out. This checks the weights, the mapping and the wrap-around."""
    layer = tiny.trunk.layers[0]  # 500 tokens, w = 8, shift 4: the last window wraps
    swin_block = getattr(layer, block)
    grabbed = {}
    hooks = [
        swin_block.register_forward_pre_hook(lambda _m, a: grabbed.update(x=a[0])),
        swin_block.attn.register_forward_hook(lambda _m, _a, out: grabbed.update(out=out)),
    ]
    name = f"trunk.layers.0.{block}.attn"
    with torch.no_grad(), capture_attention(tiny, [name]) as records:
        tiny(one_hot(2, 500, seed=5))
    for hook in hooks:
        hook.remove()
    (record,) = records
    index = record.meta["token_index"]  # (nW, w)
    shift = record.meta["shift"]
    if block == "shifted":
        assert shift == 4
        assert index[0].tolist() == list(range(4, 12))
        assert index[-1].tolist() == [0, 1, 2, 3, -1, -1, -1, -1]  # 496..499 wrapped to 0..3
    attn = swin_block.attn
    with torch.no_grad():
        values = attn.to_v(swin_block.norm(grabbed["x"]))  # (B, L, H·D), original order
        values = torch.cat([values, torch.zeros_like(values[:, :1])], dim=1)  # row -1 = pad
        v = values[:, index]  # (B, nW, w, H·D)
        b, nw, w, _ = v.shape
        v = v.view(b, nw, w, attn.heads, attn.value_dim).transpose(2, 3)  # (B, nW, H, w, D)
        out = (record.weights @ v).transpose(2, 3).reshape(b, nw, w, -1)
        out = attn.to_out(out)  # (B, nW, w, C), slot order
    expected = torch.roll(grabbed["out"], shift, dims=1)  # attention output, original order
    real = index >= 0
    torch.testing.assert_close(out[:, real], expected[:, index[real]], atol=1e-5, rtol=0)
    assert sorted(index[real].tolist()) == list(range(500))  # every token exactly once


@pytest.mark.parametrize(
    ("block", "token", "window"),
    [
        ("regular", 10, range(8, 16)),
        ("shifted", 10, range(4, 12)),
        ("shifted", 1, range(0, 4)),  # the last shifted window: 496..499 wrap to 0..3
        ("regular", 497, range(496, 500)),  # the padded last regular window
    ],
)
def test_block_output_depends_on_exactly_its_window(tiny, block, token, window):
    """With the feed-forward silenced, a token's output depends on the tokens of its window
    only (this pins the roll and the roll back)."""
    swin_block = getattr(tiny.trunk.layers[0], block)
    with torch.no_grad():
        swin_block.ffn.fc2.weight.zero_()
        swin_block.ffn.fc2.bias.zero_()
    x = torch.randn(1, 500, 8, requires_grad=True)
    swin_block(x)[0, token].sum().backward()
    assert torch.nonzero(x.grad[0].abs().sum(-1)).flatten().tolist() == list(window)


def test_shifted_block_does_not_roll_when_one_window_holds_the_layer():
    """As in the original Swin, a shifted block whose tokens all fit in one window does not
    roll: the roll would make the two sequence ends neighbours and put neighbours in the middle
    ``w - 1`` apart in the relative-position basis (swin-basenji-small's layer 8: 139 tokens,
    window 140). The block then computes exactly an unrolled block, and its captured window is
    in genome order."""
    from gitool.interpret.attention import assemble_full

    torch.manual_seed(0)
    model = GenomicInterpreter(SwinConfig(**{**TINY, "windows": (8, 8, 12, 16, 32)})).eval()
    shifted = model.trunk.layers[-1].shifted  # 32 tokens, one window of 32
    assert shifted.shift == 16 and shifted.effective_shift(32) == 0
    assert shifted.effective_shift(33) == 16  # two windows: the shift connects them
    x = torch.randn(2, 32, 24)
    with torch.no_grad():
        h = x + shifted.attn(shifted.norm(x))
        torch.testing.assert_close(shifted(x), h + shifted.ffn(h))
    name = "trunk.layers.4.shifted.attn"
    with torch.no_grad(), capture_attention(model, [name]) as records:
        model(one_hot(1, 500, seed=3))
    (record,) = records
    assert record.meta["shift"] == 0
    assert record.meta["token_index"].tolist() == [list(range(32))]
    full = assemble_full(record.weights[0], record.meta["token_index"], 32)
    torch.testing.assert_close(full, record.weights[0, 0])  # genome order, nothing wrapped


def test_embedding_starts_without_a_shared_bias():
    """The token embedding starts at Xavier weights and a zero bias: with PyTorch's default
    bias every token shares a random offset as large as the differences between the bases,
    and the example model learned nothing in 300 steps."""
    torch.manual_seed(0)
    embed = GenomicInterpreter(SwinConfig(**TINY)).trunk.embed
    assert torch.equal(embed.bias, torch.zeros(8))
    bound = (6 / (4 + 8)) ** 0.5
    assert embed.weight.abs().max() <= bound and embed.weight.std() > 0.3 * bound
