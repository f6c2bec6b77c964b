"""What the GPU path relies on, checked on the CPU: every model is one graph for
``torch.compile`` (no graph breaks), and under bf16 autocast nothing float32 reaches the
attention kernel (a float32 bias or mask would promote the whole attention to float32)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from gitool.models import layers
from gitool.models.cnn import (
    AttPoolCNN,
    AttPoolCNNConfig,
    DilatedCNN,
    DilatedCNNConfig,
    MaxPoolCNN,
    MaxPoolCNNConfig,
)
from gitool.models.enformer import Enformer, EnformerConfig
from gitool.models.layers import relative_shift
from gitool.models.swin import GenomicInterpreter, SwinConfig, WindowAttention

# Small widths with the real layouts: swin with padded last windows at several layers
# (500 bp, 16-bp bins), Enformer with its transformer tower, the three CNNs.
SWIN = dict(seq_length=500, target_length=24, bin_size=16, dims=(8, 12, 16, 16, 24),
            windows=(8, 8, 12, 16, 16), attention_heads=(2, 2, 2, 2, 4), transformer_heads=2,
            transformer_key_dim=8, heads={"human": 3})  # fmt: skip
ENFORMER = dict(channels=48, attention_heads=4, key_dim=8, divisible_by=8, depth=2,
                num_downsamples=4, bin_size=16, seq_length=256, target_length=9,
                heads={"human": 3})  # fmt: skip
CNN = dict(seq_length=1024, target_length=20, bin_size=32, stem_channels=8, channels=16,
           divisible_by=4, heads={"human": 3})  # fmt: skip
MODELS = {
    "swin": lambda: GenomicInterpreter(SwinConfig(**SWIN)),
    "enformer": lambda: Enformer(EnformerConfig(**ENFORMER)),
    "cnn-maxpool": lambda: MaxPoolCNN(MaxPoolCNNConfig(**CNN)),
    "cnn-attpool": lambda: AttPoolCNN(AttPoolCNNConfig(**CNN)),
    "cnn-dilated": lambda: DilatedCNN(DilatedCNNConfig(**CNN, dilated_blocks=3)),
}


def batch(model, n: int = 2) -> torch.Tensor:
    length = model.config.seq_length
    codes = torch.randint(0, 4, (n, length), generator=torch.Generator().manual_seed(0))
    return F.one_hot(codes, 4).float()


@pytest.mark.parametrize("name", list(MODELS))
def test_each_model_is_one_graph_for_torch_compile(name):
    torch.manual_seed(0)
    model = MODELS[name]().train()
    x = batch(model)
    explained = torch._dynamo.explain(model)(x, "human")
    assert explained.graph_break_count == 0, [b.reason for b in explained.break_reasons]
    assert explained.graph_count == 1


@pytest.mark.parametrize("name", ["swin", "enformer"])
def test_checkpointed_models_are_one_graph_too(name):
    """Activation checkpointing wraps each block in a region that may not change module
    state: a cache filled on the first forward there made torch.compile give up on the whole
    trunk (eager while the log said compiled)."""
    torch.manual_seed(0)
    model = MODELS[name]().train()
    assert model.checkpoint_activations() > 0
    explained = torch._dynamo.explain(model)(batch(model), "human")
    assert explained.graph_break_count == 0, [b.reason for b in explained.break_reasons]
    assert explained.graph_count == 1


@pytest.mark.parametrize("name", ["swin", "enformer"])
@pytest.mark.parametrize("checkpointed", [False, True], ids=["plain", "checkpointed"])
def test_a_compiled_model_is_not_recompiled_at_the_next_step(name, checkpointed):
    """Training steps after the first reuse its graph (a cache filled on the first forward
    made every model compile twice); evaluation may add its own."""
    torch._dynamo.reset()
    torch.manual_seed(0)
    model = MODELS[name]().train()
    if checkpointed:
        model.checkpoint_activations()
    compiled = torch.compile(model, backend="eager")  # the guards are dynamo's
    x = batch(model)
    try:
        with torch._dynamo.config.patch(error_on_recompile=True):
            for _ in range(2):
                compiled(x, "human").sum().backward()
    finally:
        torch._dynamo.reset()


@pytest.mark.parametrize("name", ["swin", "enformer"])
def test_under_bf16_autocast_attention_sees_bf16_only(name, monkeypatch):
    seen = []
    real = F.scaled_dot_product_attention

    def spy(q, k, v, attn_mask=None, **kwargs):
        seen.append((q.dtype, k.dtype, v.dtype, None if attn_mask is None else attn_mask.dtype))
        return real(q, k, v, attn_mask=attn_mask, **kwargs)

    monkeypatch.setattr(layers.F, "scaled_dot_product_attention", spy)
    torch.manual_seed(0)
    model = MODELS[name]().train()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(batch(model), "human")
    out.float().sum().backward()
    assert seen, "no attention ran"
    assert all(dtype in (torch.bfloat16, None) for call in seen for dtype in call), seen


def aligned(t: torch.Tensor) -> bool:
    """Whether the memory-efficient kernel reads ``t`` in place: torch copies a bias whose
    strides other than the last are not multiples of 16 elements, and the kernel refuses
    one that does not start at an aligned address ("attn_bias_ptr is not correctly
    aligned")."""
    return (
        t.stride(-1) == 1
        and all(s % layers.ALIGN == 0 for s in t.stride()[:-1])
        and t.storage_offset() % layers.ALIGN == 0
        and t.untyped_storage().data_ptr() % (layers.ALIGN * t.element_size()) == 0
    )


@pytest.mark.parametrize("name", ["swin", "swin-basenji-small", "enformer"])
def test_the_attention_bias_reaches_the_kernel_aligned_without_a_copy(name, monkeypatch):
    """Windows of 12 and 140 tokens, padded last windows, and Enformer's full attention: the
    bias handed to the kernel is a view of the position logits' own buffer, in aligned
    storage, so neither gitool nor torch copies it before the kernel reads it."""
    from gitool.models.registry import create_model

    masks = []
    real = F.scaled_dot_product_attention

    def spy(q, k, v, attn_mask=None, **kwargs):
        masks.append(attn_mask)
        return real(q, k, v, attn_mask=attn_mask, **kwargs)

    monkeypatch.setattr(layers.F, "scaled_dot_product_attention", spy)
    torch.manual_seed(0)
    if name == "swin-basenji-small":  # the preset: layer 8 is 139 tokens in a window of 140
        model = create_model(name, heads={"human": 3}).eval()
        x = batch(model, 1)
    else:
        model = MODELS[name]().train()
        x = batch(model)
    with torch.no_grad():
        model(x, "human")
    biases = [m for m in masks if m is not None]
    assert biases and len(biases) == len(masks)
    assert all(aligned(m) for m in biases), [(tuple(m.shape), m.stride()) for m in biases]
    if name == "swin-basenji-small":
        assert {m.shape[-1] for m in biases} >= {140}


@pytest.mark.parametrize("t", [1, 2, 12, 16, 17, 140])
def test_relative_shift_reads_a_padded_buffer_in_place(t):
    rows, cols, lead = layers.skew_layout(t)
    assert rows % layers.ALIGN == 0 and (cols - 1) % layers.ALIGN == 0
    assert cols >= lead + 2 * t - 1 and (lead + t - 1) % layers.ALIGN == 0
    i = torch.arange(rows)[:, None]
    c = torch.arange(cols)[None]
    # buffer[i, c] = 1000 * i + distance of column c
    buffer = (1000 * i + (c - lead - (t - 1))).float().expand(2, 3, rows, cols).contiguous()
    out = relative_shift(buffer, t, lead)
    j = torch.arange(t)[None]
    torch.testing.assert_close(out, (1000 * i[:t] + (j - i[:t])).float().expand(2, 3, t, t))
    assert out.untyped_storage().data_ptr() == buffer.untyped_storage().data_ptr()  # a view
    assert aligned(out)
    with pytest.raises(ValueError, match="at least"):
        relative_shift(buffer[..., : lead + 2 * t - 2], t, lead)


def test_one_token_attends_to_itself():
    attn = layers.RelativeAttention(16, heads=2, key_dim=8, rel_features=6, zero_init_out=False)
    x = torch.randn(3, 1, 16)
    torch.testing.assert_close(attn(x), attn.to_out(attn.to_v(x)))


def test_masks_and_positions_are_built_once_as_buffers_outside_the_checkpoints():
    """The padding masks, their attention biases and the positional bases are built at
    construction for the lengths the model sees, as buffers: they move with ``.to()``, are
    the same tensors on every step and batch size, and are not saved in checkpoints."""
    torch.manual_seed(0)
    model = MODELS["swin"]().eval()
    windows = [m for m in model.modules() if isinstance(m, WindowAttention)]
    padded = [m for m in windows if m.padding is not None]
    assert padded and all(m.padding_bias is not None for m in padded)
    attentions = [m for m in model.modules() if isinstance(m, layers.RelativeAttention)]
    assert all(m.position_basis is not None for m in attentions)
    built = {id(t) for m in attentions for t in m.buffers(recurse=False)}
    handed = []
    real = layers.RelativeAttention.forward

    def spy(self, x, key_padding_mask=None, meta=None, pad_bias=None):
        handed.append(pad_bias)
        return real(self, x, key_padding_mask, meta, pad_bias)

    with torch.no_grad(), pytest.MonkeyPatch.context() as patch:
        patch.setattr(layers.RelativeAttention, "forward", spy)
        first = model(batch(model), "human")
        again = model(batch(model), "human")
        model(batch(model, 3), "human")  # another batch size: the same bias
    assert {id(b) for b in handed if b is not None} == {id(m.padding_bias) for m in padded}
    torch.testing.assert_close(first, again)
    assert {id(t) for m in attentions for t in m.buffers(recurse=False)} == built
    keys = set(model.state_dict())
    assert not any(k.endswith(("padding", "padding_bias", "position_basis")) for k in keys)
    model.to(torch.float64)
    assert all(m.position_basis.dtype == torch.float64 for m in attentions)
    assert all(m.padding.dtype == torch.bool for m in padded)


@pytest.mark.parametrize("name", ["swin", "enformer"])
def test_a_model_allocated_empty_gets_its_constant_buffers_back(name):
    """The weight converter allocates on the meta device and then ``to_empty`` (no random
    initialisation); the masks and positional bases, which no checkpoint holds, must then be
    built again: with uninitialised memory the model ran with a garbage or zero position
    term, and a strict load did not notice."""
    torch.manual_seed(0)
    built = MODELS[name]()
    with torch.device("meta"):
        empty = MODELS[name]()
    empty = layers.build_constant_buffers(empty.to_empty(device="cpu"))
    empty.load_state_dict(built.state_dict(), strict=True)
    constant = {k: v for k, v in built.named_buffers() if k.endswith(layers.CONSTANT_BUFFERS)}
    assert constant and constant.keys() <= dict(empty.named_buffers()).keys()
    for key, value in empty.named_buffers():
        if key in constant:
            assert torch.equal(value, constant[key]), key
    x = batch(built)
    with torch.no_grad():
        torch.testing.assert_close(empty.eval()(x, "human"), built.eval()(x, "human"))


@pytest.mark.parametrize("name", ["swin", "enformer"])
def test_activation_checkpointing_gives_the_plain_gradients(name):
    grads, calls = [], []
    for checkpointed in (False, True):
        torch.manual_seed(0)
        model = MODELS[name]().train()  # dropout on: the recomputation must replay its draws
        if checkpointed:
            assert model.checkpoint_activations() > 0
        runs = [0]
        model.checkpoint_units()[0].register_forward_pre_hook(
            lambda *_, runs=runs: runs.__setitem__(0, runs[0] + 1)
        )
        torch.manual_seed(1)
        out = model(batch(model), "human")
        (out * torch.linspace(0.5, 1.5, out.shape[1])[None, :, None]).sum().backward()
        grads.append({n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None})
        calls.append(runs[0])
    assert calls == [1, 2]  # checkpointed: the block ran again in the backward pass
    plain, recomputed = grads
    assert plain.keys() == recomputed.keys() and plain
    for key in plain:
        torch.testing.assert_close(recomputed[key], plain[key], rtol=1e-5, atol=1e-6, msg=key)


def test_checkpointing_is_refused_for_batch_norm_blocks_and_off_in_eval():
    torch.manual_seed(0)
    assert MODELS["cnn-maxpool"]().checkpoint_activations() == 0
    model = MODELS["swin"]()
    model.checkpoint_activations()
    model.eval()
    with torch.no_grad():
        out = model(batch(model), "human")  # no recomputation when no gradients are taken
    assert torch.isfinite(out).all()
