"""Building blocks shared by the models: normalisation, conv blocks, attention pooling,
the Enformer relative positional basis, relative multi-head attention, crops, heads.

Shapes: ``B`` batch, ``L`` sequence positions, ``C`` channels, ``H`` heads, ``D`` key dim.
Conv blocks take ``(B, C, L)``; attention and transformer blocks take ``(B, L, C)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
import torch.utils.checkpoint
from torch import nn

NORMS = ("layer", "batch")


# --------------------------------------------------------------------------- small pieces


class GELU(nn.Module):
    """Enformer's GELU approximation ``x · sigmoid(1.702 x)`` (what its weights expect)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(1.702 * x) * x


class ChannelLayerNorm(nn.LayerNorm):
    """LayerNorm over the channels of a ``(B, C, L)`` tensor (no batch statistics)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.transpose(1, 2)).transpose(1, 2)


def channel_norm(channels: int, norm: str) -> nn.Module:
    """``layer`` or ``batch`` normalisation of ``(B, C, L)``.

    ``batch`` (Enformer, Basenji; the conv models' default) centres and scales each channel
    over the batch and positions. ``layer`` (the Genomic Interpreter paper's choice, appendix
    D: no batch statistics) normalises each position over its channels, which cannot remove
    an offset shared by all positions: in a ``norm → GELU → conv`` tower the positive mean of
    GELU becomes such an offset at every stage. Measured on a 48-channel Enformer over
    17,712-bp yeast windows, the share of the tower output's variance that varies along the
    sequence is 3 % at initialisation and under 0.1 % after 50 Adam steps at lr 2e-3, and
    the model then predicts each track's mean everywhere; with ``batch`` it learns.
    """
    if norm == "layer":
        return ChannelLayerNorm(channels)
    if norm == "batch":
        return nn.BatchNorm1d(channels)
    raise ValueError(f"unknown norm {norm!r}; choose from {NORMS}")


class Residual(nn.Module):
    def __init__(self, fn: nn.Module):
        super().__init__()
        self.fn = fn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.fn(x)


class ConvBlock(nn.Sequential):
    """Enformer's ConvBlock: norm → GELU → Conv1d (same padding). ``(B, C_in, L) → (B, C_out, L)``."""

    def __init__(
        self,
        c_in: int,
        c_out: int | None = None,
        kernel_size: int = 1,
        norm: str = "layer",
        dilation: int = 1,
    ):
        c_out = c_in if c_out is None else c_out
        padding = dilation * (kernel_size - 1) // 2
        super().__init__(
            channel_norm(c_in, norm),
            GELU(),
            nn.Conv1d(c_in, c_out, kernel_size, padding=padding, dilation=dilation),
        )


class AttentionPool(nn.Module):
    """Softmax pooling of ``pool_size`` neighbours, per channel (Enformer's SoftmaxPooling1D).

    Logits come from a 1×1 convolution initialised to 2·identity (so it starts close to max
    pooling). An odd length drops the last position (floor). The official Enformer reshapes
    ``(L, C)`` to ``(L / pool, pool, C)`` and so fails on a length the pool does not divide;
    the enformer-pytorch port pads and masks instead (ceil). Flooring matches max pooling.
    ``(B, C, L) → (B, C, L // pool_size)``.
    """

    def __init__(self, channels: int, pool_size: int = 2):
        super().__init__()
        self.pool_size = pool_size
        self.to_logits = nn.Conv1d(channels, channels, 1, bias=False)
        with torch.no_grad():
            self.to_logits.weight.copy_(2 * torch.eye(channels)[:, :, None])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, length = x.shape
        n = length // self.pool_size
        x = x[:, :, : n * self.pool_size]
        logits = self.to_logits(x).view(b, c, n, self.pool_size)
        weights = logits.softmax(dim=-1)
        return (x.view(b, c, n, self.pool_size) * weights).sum(dim=-1)


def center_crop(x: torch.Tensor, target_length: int) -> torch.Tensor:
    """Keep the centre ``target_length`` positions of ``(B, L, C)``; odd differences drop the
    extra position on the right (left trim = floor). Always exactly ``target_length``."""
    length = x.shape[1]
    if target_length > length:
        raise ValueError(f"cannot crop {length} positions to {target_length}")
    left = (length - target_length) // 2
    return x[:, left : left + target_length]


def exponential_linspace_int(start: int, end: int, num: int, divisible_by: int = 1) -> list[int]:
    """``num`` integers growing geometrically from ``start`` to ``end``, rounded to multiples."""

    def _round(v: float) -> int:
        return int(round(v / divisible_by) * divisible_by)

    base = math.exp(math.log(end / start) / (num - 1))
    return [_round(start * base**i) for i in range(num)]


class Heads(nn.Module):
    """Per-head ``Linear(C → n_tracks)`` + softplus on a shared trunk's ``(B, T, C)``."""

    def __init__(self, channels: int, heads: dict[str, int]):
        super().__init__()
        if not heads:
            raise ValueError("a model needs at least one head, e.g. {'human': 5313}")
        self.layers = nn.ModuleDict({name: nn.Linear(channels, n) for name, n in heads.items()})

    def forward(
        self, x: torch.Tensor, head: str | None = None
    ) -> torch.Tensor | dict[str, torch.Tensor]:
        if head is None:
            if len(self.layers) == 1:
                return F.softplus(next(iter(self.layers.values()))(x))
            return {name: F.softplus(layer(x)) for name, layer in self.layers.items()}
        if head not in self.layers:
            raise KeyError(f"unknown head {head!r}; this model has {sorted(self.layers)}")
        return F.softplus(self.layers[head](x))

    @torch.no_grad()
    def start_at_means(self, head: str, means) -> None:
        """Start ``head`` at exactly the mean prediction: output biases at the inverse softplus
        of ``means`` per track and weights at zero.

        With random weights the first predictions scatter around the means by far more than a
        smooth track varies (GC fraction: ±0.03 around 0.38), and the first steps go into
        shrinking that noise. From zero weights each head weight grows with the correlation
        of its feature with the track's residual; the trunk gets gradients from the second
        step on (as after a zero-initialised residual branch). Measured on the example
        Genomic Interpreter (300 steps, batch 4, yeast GC-fraction track): test Pearson 0.10
        from random head weights, 0.36 from zero.
        """
        layer = self.layers[head]
        target = torch.as_tensor(means, dtype=torch.float64).clamp(min=1e-4)
        layer.bias.copy_(torch.log(torch.expm1(target)).to(layer.bias.dtype))
        layer.weight.zero_()


# --------------------------------------------------------------------------- relative positions


def _exponential(
    d: torch.Tensor, features: int, n: int, min_half_life: float = 3.0
) -> torch.Tensor:
    max_range = math.log2(n)
    half_life = 2 ** torch.linspace(min_half_life, max_range, features, dtype=torch.float64)
    return torch.exp(-math.log(2.0) / half_life[None] * d.abs()[:, None])


def _central_mask(d: torch.Tensor, features: int) -> torch.Tensor:
    widths = 2 ** torch.arange(1, features + 1, dtype=torch.float64) - 1
    return (widths[None] > d.abs()[:, None]).to(torch.float64)


def _gamma(
    d: torch.Tensor, features: int, n: int, normalise: str, eps: float = 1e-8
) -> torch.Tensor:
    stddev = n / (2 * features)
    mean = torch.linspace(n / features, n, features, dtype=torch.float64)[None]
    concentration = (mean / stddev) ** 2
    rate = mean / stddev**2
    x = d.abs().to(torch.float64)[:, None]
    log_p = torch.xlogy(concentration - 1, x) - rate * x
    log_norm = torch.lgamma(concentration) - concentration * torch.log(rate)
    p = torch.exp(log_p - log_norm) + eps
    if normalise == "position":  # official Enformer: per feature, max over positions
        return p / p.amax(dim=0, keepdim=True)
    if normalise == "feature":  # the enformer-pytorch port: per position, max over features
        return p / p.amax(dim=-1, keepdim=True)
    raise ValueError(f"unknown gamma normalisation {normalise!r}; choose 'position' or 'feature'")


def positional_features(n: int, features: int, gamma_norm: str = "position") -> torch.Tensor:
    """Enformer's relative positional basis for distances ``-(n-1) … n-1``.

    Args:
        n: number of positions ``T``.
        features: output features ``F``. Split evenly over exponential, central mask and
            gamma bases, each also multiplied by ``sign(d)`` (so ``F % 6 == 0``); when
            ``F % 6 != 0`` (1D-Swin reference) the gamma basis is left out (``F % 4 == 0``).
        gamma_norm: ``position`` (official: gamma pdf divided by its max over positions,
            per feature) or ``feature`` (the enformer-pytorch port).

    Returns:
        float32 ``(2n - 1, F)``; row ``k`` is distance ``k - (n - 1)``.
    """
    d = torch.arange(-n + 1, n, dtype=torch.float64)
    if features % 6 == 0:
        per = features // 6
        bases = [_exponential(d, per, n), _central_mask(d, per), _gamma(d, per, n, gamma_norm)]
    elif features % 4 == 0:
        per = features // 4
        bases = [_exponential(d, per, n), _central_mask(d, per)]
    else:
        raise ValueError(
            f"relative position features must be a multiple of 6 (or 4), got {features}"
        )
    emb = torch.cat(bases, dim=-1)
    return torch.cat([emb, torch.sign(d)[:, None] * emb], dim=-1).to(torch.float32)


# The memory-efficient attention kernel reads an additive bias in place only when every
# stride but the last is a multiple of 16 elements (otherwise torch copies the bias into an
# aligned buffer on every call: a window of 140 tokens has rows 140 apart), and only when the
# bias starts at an aligned address (otherwise the kernel refuses it).
ALIGN = 16


def round_up(n: int, to: int = ALIGN) -> int:
    return -(-n // to) * to


def skew_layout(t: int) -> tuple[int, int, int]:
    """``(rows, columns, lead)`` of a logits buffer that :func:`relative_shift` turns into a
    ``(t, t)`` view with aligned strides and start: rows ``t`` rounded up to :data:`ALIGN`;
    ``lead`` zero columns before distance ``-(t-1)``, so that entry ``[0, 0]`` (column
    ``lead + t - 1``) sits at a multiple of it; columns enough for the ``2t - 1`` distances
    after them, with ``columns - 1`` a multiple of it (the view's row stride)."""
    lead = round_up(t - 1) - (t - 1)
    return round_up(t), round_up(max(lead + 2 * t - 2, t)) + 1, lead


def relative_shift(x: torch.Tensor, t: int | None = None, lead: int = 0) -> torch.Tensor:
    """``(..., R, C)`` logits per (query, distance) → ``(..., t, t)`` with ``[i, j]`` the
    entry for distance ``j - i``: column ``lead + j - i + t - 1`` of row ``i``. ``t``
    defaults to ``R``; rows from ``t``, the first ``lead`` columns and those from
    ``lead + 2t - 1`` are padding and never read.

    No copy for a contiguous ``x``: entry ``[i, j]`` is element
    ``lead + t - 1 + i·(C-1) + j`` of each flattened ``(R·C)`` block, so the result is a
    view with strides ``C - 1`` and 1 (and ``x``'s for the leading dimensions) — aligned,
    strides and start, for the attention kernel when ``(R, C, lead)`` is
    :func:`skew_layout` ``(t)``.
    """
    rows, cols = x.shape[-2:]
    t = rows if t is None else t
    first = lead + t - 1
    if rows < t or cols - 1 < max(lead + 2 * t - 2, t) or first + t * (cols - 1) > rows * cols:
        raise ValueError(
            f"relative_shift needs at least ({t}, {lead + 2 * t - 1}) logits, got {x.shape}"
        )
    flat = x.contiguous().flatten(-2)
    return flat[..., first : first + t * (cols - 1)].unflatten(-1, (t, cols - 1))[..., :t]


# Buffers built from a model's config and never changed in training (DDP need not sync them).
CONSTANT_BUFFERS = ("position_basis", "padding", "padding_bias")


def position_basis(n: int, features: int, gamma_norm: str = "position") -> torch.Tensor:
    """The positional basis of ``n`` tokens in the skewed layout: ``(columns, features)`` of
    :func:`skew_layout` ``(n)``, ``lead`` zero rows, distances ``-(n-1) … n-1``, then zero
    rows (their logits are the padding :func:`relative_shift` skips)."""
    _, cols, lead = skew_layout(n)
    basis = positional_features(n, features, gamma_norm)
    return F.pad(basis, (0, 0, lead, cols - lead - basis.shape[0]))


def padding_bias(key_padding_mask: torch.Tensor, relative: bool) -> torch.Tensor:
    """Additive float32 bias, -inf at padded keys and 0 elsewhere, for ``key_padding_mask``
    ``(M, n)`` (True = padded). ``relative``: laid out as the position logits' buffer,
    ``(M, 1, rows, columns)`` of :func:`skew_layout` ``(n)`` (added before
    :func:`relative_shift`, so the sum keeps the aligned layout); otherwise
    ``(M, 1, 1, n)``."""
    m, n = key_padding_mask.shape
    device = key_padding_mask.device
    if not relative:
        pad = torch.zeros(m, 1, 1, n, device=device)
        return pad.masked_fill_(key_padding_mask[:, None, None, :], float("-inf"))
    rows, cols, lead = skew_layout(n)
    # buffer row i, column c holds the logit of key j = c - lead - (n-1) + i
    key = (
        torch.arange(cols, device=device)
        - (lead + n - 1)
        + torch.arange(rows, device=device)[:, None]
    )
    real = (key >= 0) & (key < n)
    padded = real & key_padding_mask[:, key.clamp(0, n - 1)]  # (M, rows, cols)
    pad = torch.zeros(m, 1, rows, cols, device=device)
    return pad.masked_fill_(padded[:, None], float("-inf"))


def build_constant_buffers(model: nn.Module) -> nn.Module:
    """Fill every module's config-derived buffers (:data:`CONSTANT_BUFFERS`) again: a model
    allocated with ``to_empty`` (built on the ``meta`` device) has them uninitialised, and a
    strict ``load_state_dict`` does not write them (they are not saved)."""
    for module in model.modules():
        if hasattr(module, "build_constants"):
            module.build_constants()
    return model


def run_block(block: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``block(x)``; when the block is marked ``checkpointed`` (activation checkpointing,
    :meth:`~gitool.models.base.SequenceModel.checkpoint_activations`) and gradients are
    being taken, its activations are recomputed in the backward pass instead of stored. The
    RNG state is replayed, so dropout draws and the gradients are those of the plain path."""
    if getattr(block, "checkpointed", False) and block.training and torch.is_grad_enabled():
        return torch.utils.checkpoint.checkpoint(block, x, use_reentrant=False)
    return block(x)


class Blocks(nn.Sequential):
    """``nn.Sequential`` whose blocks go through :func:`run_block` (so each may be
    recomputed in the backward pass); the same modules, keys and hooks as a Sequential."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self:
            x = run_block(block, x)
        return x


# --------------------------------------------------------------------------- attention


@dataclass
class AttentionRecord:
    """Weights captured from one attention layer call.

    ``weights``: ``(B, H, Lq, Lk)`` for full attention; for windowed attention
    ``(B, n_windows, H, w, w)``. ``meta`` says how tokens map back to positions (token size
    in bp, window size, shift, number of real tokens, ...).
    """

    layer: str
    weights: torch.Tensor
    meta: dict[str, Any] = field(default_factory=dict)


class RelativeAttention(nn.Module):
    """Multi-head self-attention with Enformer relative positions.

    Logits: content ``(q̃ + u)·kᵀ`` plus position ``shift((q̃ + v)·rᵀ)`` where ``r`` are
    the projected basis features over distances ``-(T-1)…T-1``. With
    ``scale_position=True`` (Enformer) ``q̃ = q/√D`` in both terms; with ``False`` (the 1D-Swin
    reference) the content term is scaled after adding ``u`` and the position term is not.

    The fast path is ``scaled_dot_product_attention`` with the position logits as an additive
    mask. When ``capture`` is a list, the manual path runs instead (same numbers) and appends
    an :class:`AttentionRecord`; ``capture=None`` costs nothing.

    Args:
        dim: model width ``C``.
        heads: ``H``.
        key_dim: ``D`` per head for queries/keys.
        value_dim: per head for values (output ``H * value_dim`` → ``C``).
        rel_features: positional basis features (multiple of 6, or 4 without gamma).
        zero_init_out: zero the output projection (Enformer: each layer starts as identity).
        qkv_bias: biases on the query/key/value projections (CAN's Keras-style attention).
        out_dim: output width (default ``dim``; CAN keeps the ``H * value_dim`` heads' width).

    ``rel_features=0`` turns relative positions off (plain scaled dot-product attention).

    ``tokens``: the length the layer attends over in its model (known from the config). Its
    positional basis is then built once, as a buffer that moves with the module; other
    lengths build theirs on each call. Nothing is cached in ``forward``: a module whose
    forward changes its own state makes ``torch.compile`` recompile, and inside an
    activation-checkpointed block give up on the whole graph.
    """

    def __init__(
        self,
        dim: int,
        heads: int = 8,
        key_dim: int = 64,
        value_dim: int | None = None,
        rel_features: int | None = None,
        attn_dropout: float = 0.0,
        pos_dropout: float = 0.0,
        scale_position: bool = True,
        zero_init_out: bool = True,
        out_bias: bool = True,
        gamma_norm: str = "position",
        qkv_bias: bool = False,
        out_dim: int | None = None,
        tokens: int | None = None,
    ):
        super().__init__()
        value_dim = value_dim or dim // heads
        rel_features = dim // heads if rel_features is None else rel_features
        self.heads, self.key_dim, self.value_dim = heads, key_dim, value_dim
        self.rel_features, self.scale_position, self.gamma_norm = (
            rel_features,
            scale_position,
            gamma_norm,
        )
        self.to_q = nn.Linear(dim, heads * key_dim, bias=qkv_bias)
        self.to_k = nn.Linear(dim, heads * key_dim, bias=qkv_bias)
        self.to_v = nn.Linear(dim, heads * value_dim, bias=qkv_bias)
        if rel_features:
            self.to_rel_k = nn.Linear(rel_features, heads * key_dim, bias=False)
            self.rel_content_bias = nn.Parameter(torch.randn(1, heads, 1, key_dim))
            self.rel_pos_bias = nn.Parameter(torch.randn(1, heads, 1, key_dim))
        self.to_out = nn.Linear(heads * value_dim, out_dim or dim, bias=out_bias)
        if zero_init_out:
            nn.init.zeros_(self.to_out.weight)
            if out_bias:
                nn.init.zeros_(self.to_out.bias)
        self.attn_dropout = attn_dropout
        self.pos_dropout = nn.Dropout(pos_dropout)
        self.tokens = tokens
        self.register_buffer("position_basis", None, persistent=False)
        RelativeAttention.build_constants(self)  # a subclass builds its own after its __init__
        self.capture: list[AttentionRecord] | None = None
        self.capture_name = ""
        self.capture_meta: dict[str, Any] = {}

    def build_constants(self) -> None:
        """(Re)build the buffers derived from the config (:data:`CONSTANT_BUFFERS`) on the
        module's weights' device and dtype, e.g. after ``to_empty``, which allocates them
        without values."""
        if self.rel_features and self.tokens:
            basis = position_basis(self.tokens, self.rel_features, self.gamma_norm)
            weight = self.to_q.weight
            self.position_basis = basis.to(device=weight.device, dtype=weight.dtype)

    def basis(self, n: int, device) -> torch.Tensor:
        """:func:`position_basis` of ``n`` tokens: the buffer built at ``__init__`` for
        ``tokens`` (a host-to-device copy on every forward would stall the GPU's queue),
        otherwise built now."""
        if self.position_basis is not None and n == self.tokens:
            return self.position_basis
        return position_basis(n, self.rel_features, self.gamma_norm).to(device)

    def _split(self, t: torch.Tensor) -> torch.Tensor:
        b, n, _ = t.shape
        return t.view(b, n, self.heads, -1).transpose(1, 2)  # (B, H, L, d)

    def forward(
        self,
        x: torch.Tensor,
        key_padding_mask: torch.Tensor | None = None,
        meta: dict | None = None,
        pad_bias: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``(B, L, C) → (B, L, C)``. ``key_padding_mask`` ``(M, L)`` bool, True = padded
        key (gets zero weight), with ``B`` a multiple of ``M``: batch row ``k`` takes mask
        row ``k mod M`` (1: the same for all; a windowed layer passes one sequence's windows).
        ``pad_bias``: its :func:`padding_bias`, when the caller built it once (otherwise it
        is built here). ``meta`` is added to a captured record."""
        b, n, _ = x.shape
        q, k, v = self._split(self.to_q(x)), self._split(self.to_k(x)), self._split(self.to_v(x))
        # Everything reaching the attention kernel is in the projections' dtype (bf16 under
        # autocast): the float32 bias parameters and masks would otherwise promote it.
        dtype = q.dtype
        scale = self.key_dim**-0.5
        bias = pad = None
        if key_padding_mask is not None and pad_bias is None:
            pad_bias = padding_bias(key_padding_mask, bool(self.rel_features))
        if pad_bias is not None:
            pad = pad_bias.to(dtype)
        if not self.rel_features:
            content_q, sdpa_scale = q, scale
            if pad is not None:  # (M, 1, 1, L) → (B, 1, 1, L) in aligned rows
                bias = x.new_zeros(b, 1, 1, round_up(n), dtype=dtype)[..., :n]
                bias.unflatten(0, (-1, pad.shape[0])).copy_(pad)
        else:
            rows, cols, lead = skew_layout(n)
            basis = self.basis(n, x.device).to(x.dtype)
            r = self.to_rel_k(self.pos_dropout(basis))  # (cols, H*D)
            r = r.view(cols, self.heads, self.key_dim).transpose(0, 1).to(dtype)
            content_bias, position_bias = (
                self.rel_content_bias.to(dtype),
                self.rel_pos_bias.to(dtype),
            )
            if self.scale_position:
                q = q * scale
                sdpa_scale = 1.0
            else:
                sdpa_scale = scale
            content_q, position_q = q + content_bias, q + position_bias
            # Logits into a (rows, cols) buffer per head, read as (L, L) in place: the bias
            # reaches the kernel aligned, with no copy (the padding is added in that layout).
            if rows > n:
                position_q = F.pad(position_q, (0, 0, 0, rows - n))
            logits = position_q @ r.transpose(-1, -2)[None]  # (B, H, rows, cols)
            if pad is not None:  # batch row k takes mask row k mod M
                logits = (logits.unflatten(0, (-1, pad.shape[0])) + pad).flatten(0, 1)
            bias = relative_shift(logits, n, lead)  # (B, H, L, L)
        dropout = self.attn_dropout if self.training else 0.0
        if self.capture is None:
            out = F.scaled_dot_product_attention(
                content_q, k, v, attn_mask=bias, dropout_p=dropout, scale=sdpa_scale
            )
        else:
            logits = (content_q @ k.transpose(-1, -2)) * sdpa_scale
            if bias is not None:
                logits = logits + bias
            weights = logits.softmax(dim=-1)
            self.capture.append(
                AttentionRecord(
                    self.capture_name, weights.detach(), {**self.capture_meta, **(meta or {})}
                )
            )
            out = F.dropout(weights, dropout, self.training) @ v
        out = out.transpose(1, 2).reshape(b, n, self.heads * self.value_dim)
        return self.to_out(out)


class TransformerBlock(nn.Module):
    """Enformer's transformer layer: pre-LN relative attention + dropout, pre-LN MLP ×2
    (ReLU) with dropout, both residual. ``(B, L, C) → (B, L, C)``."""

    def __init__(
        self,
        dim: int,
        heads: int = 8,
        key_dim: int = 64,
        value_dim: int | None = None,
        rel_features: int | None = None,
        dropout: float = 0.4,
        attn_dropout: float = 0.05,
        pos_dropout: float = 0.01,
        gamma_norm: str = "position",
        tokens: int | None = None,
    ):
        super().__init__()
        self.attn_norm = nn.LayerNorm(dim)
        self.attn = RelativeAttention(
            dim,
            heads,
            key_dim,
            value_dim,
            rel_features,
            attn_dropout,
            pos_dropout,
            gamma_norm=gamma_norm,
            tokens=tokens,
        )
        self.attn_drop = nn.Dropout(dropout)
        self.mlp = nn.Sequential(
            nn.LayerNorm(dim),
            nn.Linear(dim, 2 * dim),
            nn.Dropout(dropout),
            nn.ReLU(),
            nn.Linear(2 * dim, dim),
            nn.Dropout(dropout),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn_drop(self.attn(self.attn_norm(x)))
        return x + self.mlp(x)
