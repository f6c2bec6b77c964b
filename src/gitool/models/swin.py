"""Genomic Interpreter (``swin``): a hierarchical 1D shifted-window transformer.

Architecture (Genomic Interpreter §3, appendix A)::

    one-hot (B, L, 4) ─ Linear(4 → dims[0]) ─┐                      tokens of 1 bp
    layer k = 1 … K:                         │
        regular block:  x + Drop(WindowAttn(LN(x)))  then  x + FFN(x)   windows start at 0
        shifted block:  roll(x, −w/2) → the same (own weights) → roll(+w/2)
        merge (k < K):  [x_2j, x_2j+1] → Linear(2·dims[k-1] → dims[k])   halves the length
    crop to target_length ─ TransformerBlock × transformer_depth ─ Heads (Linear + softplus)
    (the paper's order, eqs. 2-3; ``crop_first=False``: transformer, then crop, as Enformer)

``FFN = LN → Linear(C, r·C) → depthwise Conv1d(k=3, same) → Dropout → ReLU → Linear(r·C, C)
→ Dropout`` (r = ``ffn_ratio``). Layer ``k`` (1-based, Genomic Interpreter's numbering) has
tokens of ``2**(k-1)`` bp, so ``K = log2(bin_size) + 1`` and the last layer's tokens are one
output bin. An odd length duplicates its last token before merging (the reference's rule), so
the token counts are ``ceil(L / 2**(k-1))``. Window attention zero-pads the (rolled) sequence
at the end to a multiple of ``w`` and masks the padded keys; padded query rows are dropped.
Relative positions inside a window use the Enformer basis over distances ``-(w-1) … w-1``
with the reference's logits (``RelativeAttention(scale_position=False)``: ``(q+u)·kᵀ/√D``
plus an unscaled ``shift((q+v)·rᵀ)``). The blocks are pre-LayerNorm transformer blocks, with
no batch statistics anywhere (Genomic Interpreter appendix D).

The default sizes (the basenji-small preset) are laid out at :class:`SwinConfig`; what
attention capture records, at :class:`WindowAttention`.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from gitool.models.base import SequenceModel
from gitool.models.layers import (
    Heads,
    RelativeAttention,
    TransformerBlock,
    center_crop,
    padding_bias,
    run_block,
)


def default_rel_features(span: int) -> int:
    """``6·ceil(log2 span)`` positional features (at least 6): each of the three Enformer bases
    gets one feature per doubling of the distance, so the central-mask widths reach ``span``."""
    return 6 * max(1, math.ceil(math.log2(max(span, 2))))


def layer_token_counts(seq_length: int, n_layers: int) -> list[int]:
    """Tokens per layer for an input of ``seq_length`` bp: ``ceil(L / 2**(k-1))`` for layer k
    (each merge halves the length, duplicating the last token of an odd length)."""
    counts = [seq_length]
    for _ in range(n_layers - 1):
        counts.append(-(-counts[-1] // 2))
    return counts


# --------------------------------------------------------------------------- config


@dataclass
class SwinConfig:
    """Genomic Interpreter options.

    The defaults are the basenji-small preset (17,712 bp → 80 bins of 128 bp). The authors
    published no widths or windows except "layer 6: window 140 at 32 bp, 4 windows"
    (appendix C, Fig. 6); the rest is our choice. Windows grow with the level, from 32 bp at
    layer 1 to the whole sequence at layer 8 (139 tokens in one window of 140); widths grow
    ×1.33–2 per merge to the reference's 8 heads × 64 at the top::

        layer  bp/token  tokens  dim  heads × key  window  windows (padded slots)  window span
            1         1  17,712   32       2 × 16      32      554 (16)                    32 bp
            2         2   8,856   64       4 × 16      32      277 (8)                     64 bp
            3         4   4,428   96       4 × 24      64       70 (52)                   256 bp
            4         8   2,214  128       4 × 32      64       35 (26)                   512 bp
            5        16   1,107  192       6 × 32     128        9 (45)                 2,048 bp
            6        32     554  256       8 × 32     140        4 (6)                  4,480 bp
            7        64     277  384       8 × 48     140        2 (3)                  8,960 bp
            8       128     139  512       8 × 64     140        1 (1)                 17,920 bp
        crop → 80 (29 left, 30 right); TransformerBlock(512, 8 heads × key 64) over the 80

    ``rel_features`` per layer are ``6·ceil(log2 w)`` (30, 30, 36, 36, 42, 48, 48, 48; 42 for
    the transformer's 80 tokens). Parameters: 14.52 M with the ``{"human": 5313}`` head
    (2.73 M); trunk 11.80 M = swin layers 9.67 M (layers 6–8: 8.34 M) + transformer block
    2.12 M. Training keeps about 0.58 GB of activations per 17,712-bp sample (float32), so a
    batch of 8 needs roughly 5 GB plus 0.23 GB of weights, gradients and Adam state; most of
    it is the 1- to 4-bp layers (many tokens), most parameters the top three.

    17,712 is not a multiple of 128, so the 139 tokens start at bp 0 and the last one reaches
    past the end (17,792); the crop keeps tokens 29 … 108 = bp 3,712 … 13,952, while the
    targets' 80 bins are centred (bp 3,736 … 13,976): a 24-bp offset shared by every model
    that pools 17,712 bp by 128.

    Attributes:
        seq_length: input length in bp.
        target_length: output bins kept by the centre crop.
        bin_size: bp per output bin; a power of two. The model has ``log2(bin_size) + 1``
            1D-Swin layers, layer ``k`` at ``2**(k-1)`` bp per token.
        dims: token width per layer; the merge after layer ``k`` maps ``2·dims[k-1]`` to
            ``dims[k]`` (Genomic Interpreter's ``2d/α``), the embedding ``4 → dims[0]``.
        windows: window size in tokens per layer (the shifted block rolls by ``w // 2``,
            or not at all where one window holds the layer's tokens, e.g. layer 8 here).
        attention_heads: heads per layer.
        key_dim: query/key (and value) width per head; ``None``: ``dims[k] // heads[k]``
            (the reference uses 64 at every level).
        rel_features: relative positional basis features per layer (an int for all layers, a
            tuple, or ``None`` for ``6·ceil(log2 w)``); multiples of 6 use all three Enformer
            bases, other multiples of 4 exponential + central mask only (the reference).
        ffn_ratio: hidden width of the feed-forward as a multiple of the token width.
        embed: a ``Linear(4 → dims[0])`` token embedding; ``False`` feeds the one-hot
            nucleotides as they are (then ``dims[0]`` must be 4).
        dropout: after attention and in the feed-forward (also the final transformer's).
        attn_dropout: on the attention weights.
        pos_dropout: on the positional basis.
        transformer_depth: Enformer-style transformer blocks after the swin layers.
        transformer_heads: their heads.
        transformer_key_dim: their query/key width per head (values: ``dims[-1] // heads``).
        transformer_rel_features: their positional features; ``None``: ``6·ceil(log2 T)`` over
            the ``T`` tokens they see.
        crop_first: ``True`` (default), the Genomic Interpreter paper's order (eqs. 2-3):
            crop to ``target_length``, then the transformer blocks over the kept tokens;
            ``False``, Enformer's order: the transformer over all tokens (it then sees the
            flanks too), then the crop.
        norm: ``"layer"`` only (the swin blocks are pre-LayerNorm transformer blocks).
        heads: output heads, name → number of tracks.
    """

    seq_length: int = 17_712
    target_length: int = 80
    bin_size: int = 128
    dims: tuple[int, ...] = (32, 64, 96, 128, 192, 256, 384, 512)
    windows: tuple[int, ...] = (32, 32, 64, 64, 128, 140, 140, 140)
    attention_heads: tuple[int, ...] = (2, 4, 4, 4, 6, 8, 8, 8)
    key_dim: int | None = None
    rel_features: int | tuple[int, ...] | None = None
    ffn_ratio: int = 2
    embed: bool = True
    dropout: float = 0.1
    attn_dropout: float = 0.05
    pos_dropout: float = 0.01
    transformer_depth: int = 1
    transformer_heads: int = 8
    transformer_key_dim: int = 64
    transformer_rel_features: int | None = None
    crop_first: bool = True
    norm: str = "layer"
    heads: dict[str, int] = field(default_factory=lambda: {"human": 5313})

    def __post_init__(self) -> None:
        # YAML and JSON give lists; keep tuples so configs compare and hash the same.
        self.dims = tuple(int(d) for d in self.dims)
        self.windows = tuple(int(w) for w in self.windows)
        self.attention_heads = tuple(int(h) for h in self.attention_heads)
        if self.norm != "layer":
            raise ValueError(
                f"swin: norm={self.norm!r} is not supported; the 1D-Swin blocks are pre-LayerNorm "
                "transformer blocks (Genomic Interpreter appendix D: no batch statistics), use norm='layer'"
            )
        if self.bin_size < 1 or self.bin_size & (self.bin_size - 1):
            raise ValueError(f"swin: bin_size must be a power of two, got {self.bin_size}")
        n = self.n_layers
        for name in ("dims", "windows", "attention_heads"):
            value = getattr(self, name)
            if len(value) != n:
                raise ValueError(
                    f"swin: {name} needs one entry per layer: bin_size {self.bin_size} gives "
                    f"log2({self.bin_size}) + 1 = {n} layers, got {len(value)} ({value})"
                )
            if min(value) < (2 if name == "windows" else 1):
                raise ValueError(f"swin: {name} must be positive (windows at least 2), got {value}")
        if isinstance(self.rel_features, (list, tuple)):
            self.rel_features = tuple(int(f) for f in self.rel_features)
        rel = self.layer_rel_features()
        if len(rel) != n:
            raise ValueError(f"swin: rel_features needs {n} entries (one per layer), got {rel}")
        for f in (*rel, self.transformer_rel_features or 0):
            if f < 0 or (f % 6 and f % 4):
                raise ValueError(
                    f"swin: relative position features must be multiples of 6 (or of 4 for "
                    f"exponential + central mask only), got {f}"
                )
        if self.key_dim is None:
            for k, (d, h) in enumerate(zip(self.dims, self.attention_heads, strict=True), start=1):
                if d % h:
                    raise ValueError(
                        f"swin: layer {k} width {d} is not divisible by its {h} heads; "
                        "change dims or attention_heads, or set key_dim"
                    )
        elif self.key_dim < 1:
            raise ValueError(f"swin: key_dim must be positive, got {self.key_dim}")
        if not self.embed and self.dims[0] != 4:
            raise ValueError(
                f"swin: without the embedding the first layer sees the 4 nucleotides, so "
                f"dims[0] must be 4, got {self.dims[0]}"
            )
        if self.transformer_depth < 0:
            raise ValueError(f"swin: transformer_depth must be >= 0, got {self.transformer_depth}")
        for name in ("transformer_heads", "transformer_key_dim"):
            if getattr(self, name) < 1:
                raise ValueError(f"swin: {name} must be >= 1, got {getattr(self, name)}")
        if self.transformer_depth and self.dims[-1] % self.transformer_heads:
            raise ValueError(
                f"swin: the last width {self.dims[-1]} is not divisible by "
                f"transformer_heads={self.transformer_heads}"
            )
        if self.ffn_ratio < 1:
            raise ValueError(f"swin: ffn_ratio must be >= 1, got {self.ffn_ratio}")
        for name in ("dropout", "attn_dropout", "pos_dropout"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"swin: {name} must be in [0, 1), got {getattr(self, name)}")
        if self.seq_length < 1 or self.target_length < 1:
            raise ValueError(
                f"swin: seq_length and target_length must be positive, got "
                f"{self.seq_length} and {self.target_length}"
            )
        tokens = self.token_counts()[-1]
        if tokens < self.target_length:
            raise ValueError(
                f"swin: seq_length {self.seq_length} gives {tokens} tokens of {self.bin_size} bp, "
                f"fewer than target_length {self.target_length}"
            )
        if not self.heads:
            raise ValueError("swin: a model needs at least one head, e.g. {'human': 5313}")

    @property
    def n_layers(self) -> int:
        """``K = log2(bin_size) + 1`` 1D-Swin layers."""
        return self.bin_size.bit_length()

    def layer_rel_features(self) -> tuple[int, ...]:
        """Positional features per layer (the ``rel_features`` rule applied)."""
        if self.rel_features is None:
            return tuple(default_rel_features(w) for w in self.windows)
        if isinstance(self.rel_features, int):
            return (self.rel_features,) * self.n_layers
        return tuple(self.rel_features)

    def token_counts(self, seq_length: int | None = None) -> list[int]:
        """Tokens per layer for ``seq_length`` (default: the config's) bp."""
        return layer_token_counts(seq_length or self.seq_length, self.n_layers)


# --------------------------------------------------------------------------- windows


def window_partition(x: torch.Tensor, window: int) -> torch.Tensor:
    """``(B, L, C) → (B·nW, w, C)`` with ``nW = L / w``; window ``i`` of sample ``b`` is row
    ``b·nW + i``. ``L`` must be a multiple of ``w`` (pad first)."""
    b, length, c = x.shape
    if length % window:
        raise ValueError(f"length {length} is not a multiple of the window {window}; pad first")
    return x.reshape(b * (length // window), window, c)


def window_reverse(windows: torch.Tensor, batch: int) -> torch.Tensor:
    """Inverse of :func:`window_partition`: ``(B·nW, w, C) → (B, nW·w, C)``."""
    n, window, c = windows.shape
    return windows.reshape(batch, (n // batch) * window, c)


def window_token_index(n_tokens: int, window: int, shift: int = 0) -> torch.Tensor:
    """Original token index of every window slot, ``(n_windows, w)`` int64, ``-1`` = padding.

    The sequence of ``n_tokens`` is rolled by ``-shift`` (cyclic over the real tokens), then
    zero-padded at the end to a multiple of ``window``: slot ``s`` of window ``i`` holds token
    ``(i·w + s + shift) mod n_tokens`` while ``i·w + s < n_tokens``.
    """
    n_windows = -(-n_tokens // window)
    index = torch.full((n_windows * window,), -1, dtype=torch.long)
    index[:n_tokens] = torch.roll(torch.arange(n_tokens), -shift)
    return index.view(n_windows, window)


class WindowAttention(RelativeAttention):
    """Relative multi-head attention inside non-overlapping windows. ``(B, L, C) → (B, L, C)``.

    Pads ``L`` at the end to a multiple of ``window``, masks the padded keys, runs one
    :class:`RelativeAttention` over ``(B·nW, w, C)`` and drops the padded rows. The shift is
    done by the enclosing block; ``shift`` here only labels captured records.

    Attention capture (:func:`gitool.models.base.capture_attention`; modules
    ``trunk.layers.{k-1}.regular.attn`` and ``trunk.layers.{k-1}.shifted.attn``) appends one
    :class:`~gitool.models.layers.AttentionRecord` per call with ``weights`` of shape
    ``(B, n_windows, H, w, w)`` and ``meta``: ``layer`` (k, 1-based), ``block``
    (``"regular"`` or ``"shifted"``), ``window``, ``shift`` (the roll actually applied:
    ``w // 2`` in a shifted block, 0 in a regular one or when one window holds all tokens), ``token_bp``,
    ``n_tokens`` (real tokens), ``n_windows``, ``padded`` (padded slots at the end) and
    ``token_index``, an int64 ``(n_windows, w)`` CPU tensor giving the original (unshifted)
    token index of each window slot, ``-1`` for padding. The shifted block rolls the *real*
    tokens (cyclic over ``n_tokens``) and then pads, so slot ``s`` of window ``i`` holds token
    ``(i·w + s + shift) mod n_tokens`` when ``i·w + s < n_tokens``. Padded key columns are
    exactly 0; padded query rows are present (normalised over the real keys) but belong to no
    token. The final transformer blocks (``trunk.transformer.{i}.attn``) give
    ``(B, H, T, T)`` with ``meta`` ``layer`` = K + 1 + i, ``block="transformer"``,
    ``token_bp`` and ``token_start`` (index of their first token among the last swin layer's
    tokens: the crop offset when cropping first).

    Args:
        dim: token width ``C``.
        window: ``w`` in tokens.
        heads: ``H``.
        key_dim: per head (also the value width).
        rel_features: positional basis features (distances ``-(w-1) … w-1``).
        layer: 1-based layer number, ``block``: ``"regular"`` or ``"shifted"``,
            ``shift``: the roll the block applies, ``token_bp``: bp per token (all for
            captured records).
        tokens: the layer's token count in its model: the padding mask of its last window
            and that mask's attention bias are then built once, as buffers (other lengths
            build theirs on each call).
    """

    def __init__(
        self,
        dim: int,
        window: int,
        heads: int,
        key_dim: int,
        rel_features: int,
        attn_dropout: float = 0.0,
        pos_dropout: float = 0.0,
        *,
        layer: int = 1,
        block: str = "regular",
        shift: int = 0,
        token_bp: int = 1,
        tokens: int | None = None,
    ):
        super().__init__(
            dim,
            heads,
            key_dim,
            key_dim,
            rel_features,
            attn_dropout,
            pos_dropout,
            scale_position=False,  # the reference: content term scaled, position term not
            zero_init_out=False,
            tokens=window,
        )
        self.window, self.layer, self.block, self.shift, self.token_bp = (
            window,
            layer,
            block,
            shift,
            token_bp,
        )
        self.layer_tokens = tokens
        self.register_buffer("padding", None, persistent=False)
        self.register_buffer("padding_bias", None, persistent=False)
        self._build_padding()

    def _build_padding(self) -> None:
        if self.layer_tokens is not None and -self.layer_tokens % self.window:
            weight = self.to_q.weight
            self.padding = self.padding_mask(self.layer_tokens, weight.device)
            bias = padding_bias(self.padding, bool(self.rel_features))
            self.padding_bias = bias.to(weight.dtype)

    def build_constants(self) -> None:
        super().build_constants()
        self._build_padding()

    def padding_mask(self, n: int, device=None) -> torch.Tensor:
        """``(nW, w)`` bool for ``n`` tokens, True at the padding (the end of the last window
        only), one sequence's windows: batch row ``b·nW + i`` is window ``i``, and the
        attention takes mask row ``i`` for it, whatever the batch size."""
        n_windows = -(-n // self.window)
        mask = torch.zeros(n_windows, self.window, dtype=torch.bool, device=device)
        mask[-1, n - (n_windows - 1) * self.window :] = True
        return mask

    def forward(self, x: torch.Tensor, shift: int | None = None) -> torch.Tensor:  # type: ignore[override]
        """``shift``: the roll the enclosing block applied to ``x`` (labels captured records;
        default ``self.shift``)."""
        b, n, _ = x.shape
        w = self.window
        shift = self.shift if shift is None else shift
        n_windows = -(-n // w)
        pad = n_windows * w - n
        x = F.pad(x, (0, 0, 0, pad))  # (B, nW·w, C), zeros at the end
        mask = bias = None
        if pad and n == self.layer_tokens:
            mask, bias = self.padding, self.padding_bias
        elif pad:
            mask = self.padding_mask(n, x.device)
        meta = None
        if self.capture is not None:
            meta = {
                "layer": self.layer,
                "block": self.block,
                "window": w,
                "shift": shift,
                "token_bp": self.token_bp,
                "n_tokens": n,
                "n_windows": n_windows,
                "padded": pad,
                "token_index": window_token_index(n, w, shift),
            }
        out = super().forward(
            window_partition(x, w), key_padding_mask=mask, meta=meta, pad_bias=bias
        )
        if meta is not None:  # (B·nW, H, w, w) → (B, nW, H, w, w)
            record = self.capture[-1]
            self.capture[-1] = dataclasses.replace(
                record, weights=record.weights.reshape(b, n_windows, self.heads, w, w)
            )
        return window_reverse(out, b)[:, :n]  # (B, L, C)


# --------------------------------------------------------------------------- blocks


class FeedForward(nn.Module):
    """``LN → Linear(C, rC) → depthwise Conv1d(rC, k=3, same) → Dropout → ReLU → Linear(rC, C)
    → Dropout`` (the reference's order). ``(B, L, C) → (B, L, C)``."""

    def __init__(self, dim: int, ratio: int = 2, dropout: float = 0.0):
        super().__init__()
        hidden = ratio * dim
        self.norm = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, hidden)
        self.dwconv = nn.Conv1d(hidden, hidden, 3, padding=1, groups=hidden)
        self.drop1 = nn.Dropout(dropout)
        self.act = nn.ReLU()
        self.fc2 = nn.Linear(hidden, dim)
        self.drop2 = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.fc1(self.norm(x))  # (B, L, rC)
        h = self.dwconv(h.transpose(1, 2)).transpose(1, 2)  # conv over L
        return self.drop2(self.fc2(self.act(self.drop1(h))))


class SwinBlock(nn.Module):
    """One half of a 1D-Swin layer: ``x + Drop(WindowAttention(LN(x)))``, then ``x + FFN(x)``.

    The shifted block runs on ``roll(x, -shift)`` and rolls its output back by ``+shift``
    (no roll when the layer's tokens fit in one window, :meth:`effective_shift`; cyclic;
    tokens wrapped into a window are not masked, like the reference, whose whole
    block — feed-forward included — runs on the rolled sequence). ``(B, L, C) → (B, L, C)``.
    """

    def __init__(
        self,
        dim: int,
        window: int,
        heads: int,
        key_dim: int,
        rel_features: int,
        shift: int = 0,
        ffn_ratio: int = 2,
        dropout: float = 0.0,
        attn_dropout: float = 0.0,
        pos_dropout: float = 0.0,
        layer: int = 1,
        token_bp: int = 1,
        tokens: int | None = None,
    ):
        super().__init__()
        self.shift = shift
        self.norm = nn.LayerNorm(dim)
        self.attn = WindowAttention(
            dim,
            window,
            heads,
            key_dim,
            rel_features,
            attn_dropout,
            pos_dropout,
            layer=layer,
            block="shifted" if shift else "regular",
            shift=shift,
            token_bp=token_bp,
            tokens=tokens,
        )
        self.drop = nn.Dropout(dropout)
        self.ffn = FeedForward(dim, ffn_ratio, dropout)

    def effective_shift(self, n_tokens: int) -> int:
        """The roll used on ``n_tokens`` tokens: 0 when one window holds them all (as in the
        original Swin, whose shifted block does not roll then; a roll would only make the two
        sequence ends neighbours and split neighbours in the middle)."""
        return self.shift if n_tokens > self.attn.window else 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shift = self.effective_shift(x.shape[1])
        if shift:
            x = torch.roll(x, -shift, dims=1)
        x = x + self.drop(self.attn(self.norm(x), shift=shift))
        x = x + self.ffn(x)
        if shift:
            x = torch.roll(x, shift, dims=1)
        return x


class TokenMerge(nn.Module):
    """Concatenate neighbour pairs ``[x_2j, x_2j+1]`` and project ``2C → C_out`` (an odd length
    duplicates the last token first). ``(B, L, C) → (B, ceil(L/2), C_out)``."""

    def __init__(self, dim: int, out_dim: int):
        super().__init__()
        self.reduction = nn.Linear(2 * dim, out_dim)

    @staticmethod
    def pair(x: torch.Tensor) -> torch.Tensor:
        """``(B, L, C) → (B, ceil(L/2), 2C)``, the concatenation without the projection."""
        if x.shape[1] % 2:
            x = torch.cat([x, x[:, -1:]], dim=1)
        b, n, c = x.shape
        return x.reshape(b, n // 2, 2 * c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.reduction(self.pair(x))


class SwinLayer(nn.Module):
    """A 1D-Swin layer: regular block, shifted block (separate weights), then the merge
    (``Identity`` for the last layer). ``(B, L, C) → (B, ceil(L/2), C_out)``."""

    def __init__(
        self,
        layer: int,
        dim: int,
        out_dim: int | None,
        window: int,
        heads: int,
        key_dim: int,
        rel_features: int,
        ffn_ratio: int = 2,
        dropout: float = 0.0,
        attn_dropout: float = 0.0,
        pos_dropout: float = 0.0,
        tokens: int | None = None,
    ):
        super().__init__()
        self.layer, self.window, self.token_bp = layer, window, 2 ** (layer - 1)
        common = dict(
            tokens=tokens,
            dim=dim,
            window=window,
            heads=heads,
            key_dim=key_dim,
            rel_features=rel_features,
            ffn_ratio=ffn_ratio,
            dropout=dropout,
            attn_dropout=attn_dropout,
            pos_dropout=pos_dropout,
            layer=layer,
            token_bp=self.token_bp,
        )
        self.regular = SwinBlock(shift=0, **common)
        self.shifted = SwinBlock(shift=window // 2, **common)
        self.merge = TokenMerge(dim, out_dim) if out_dim is not None else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.merge(self.shifted(self.regular(x)))


def _init_swin_weights(module: nn.Module) -> None:
    """Truncated-normal (std 0.02) linear weights and zero biases, as in Swin and the reference.
    The learned relative-position biases keep their standard-normal start."""
    if isinstance(module, nn.Linear):
        nn.init.trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)


class SwinTrunk(nn.Module):
    """Embedding → K 1D-Swin layers → crop → transformer blocks (or transformer → crop).
    ``(B, L, 4) → (B, target_length, dims[-1])``."""

    def __init__(self, config: SwinConfig):
        super().__init__()
        c = config
        self.target_length, self.crop_first = c.target_length, c.crop_first
        self.embed = nn.Linear(4, c.dims[0]) if c.embed else nn.Identity()
        rel = c.layer_rel_features()
        self.layers = nn.ModuleList(
            SwinLayer(
                layer=k + 1,
                dim=c.dims[k],
                out_dim=c.dims[k + 1] if k + 1 < c.n_layers else None,
                window=c.windows[k],
                heads=c.attention_heads[k],
                key_dim=c.key_dim or c.dims[k] // c.attention_heads[k],
                rel_features=rel[k],
                ffn_ratio=c.ffn_ratio,
                dropout=c.dropout,
                attn_dropout=c.attn_dropout,
                pos_dropout=c.pos_dropout,
                tokens=c.token_counts()[k],
            )
            for k in range(c.n_layers)
        )
        self.layers.apply(_init_swin_weights)
        if c.embed:
            # PyTorch's default Linear init gives every token the same random bias, as large as
            # the differences between the four bases: a small model then learned nothing of a
            # REB1-occupancy or GC-fraction track in 300 steps (test Pearson 0.02 and 0.00);
            # Xavier with a zero bias keeps the bases apart (0.38 and 0.31).
            nn.init.xavier_uniform_(self.embed.weight)
            nn.init.zeros_(self.embed.bias)
        for layer in self.layers:
            if isinstance(layer.merge, TokenMerge):
                # The merges sit on the residual path, with no norm: at std 0.02 each one would
                # shrink the tokens ~10x, and after a few layers the sequence signal falls below
                # LayerNorm's eps (the model then cannot learn). Xavier keeps their scale.
                nn.init.xavier_uniform_(layer.merge.reduction.weight)
                nn.init.zeros_(layer.merge.reduction.bias)
        span = c.target_length if c.crop_first else c.token_counts()[-1]
        self.transformer = nn.ModuleList(
            TransformerBlock(
                c.dims[-1],
                c.transformer_heads,
                c.transformer_key_dim,
                rel_features=c.transformer_rel_features or default_rel_features(span),
                dropout=c.dropout,
                attn_dropout=c.attn_dropout,
                pos_dropout=c.pos_dropout,
                tokens=span,
            )
            for _ in range(c.transformer_depth)
        )
        for i, block in enumerate(self.transformer):
            block.attn.capture_meta = {
                "layer": c.n_layers + 1 + i,
                "block": "transformer",
                "token_bp": c.bin_size,
            }

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 3 or x.shape[-1] != 4:
            raise ValueError(f"swin expects one-hot (B, L, 4) input, got {tuple(x.shape)}")
        x = self.embed(x)  # (B, L, dims[0]), 1 bp per token
        for layer in self.layers:
            x = run_block(layer, x)  # (B, ceil(L / 2**k), dims[k]) after layer k (no merge after K)
        start = (x.shape[1] - self.target_length) // 2  # center_crop's left trim
        if self.crop_first:
            x = center_crop(x, self.target_length)  # (B, T, C)
        for block in self.transformer:
            if block.attn.capture is not None:
                block.attn.capture_meta["token_start"] = start if self.crop_first else 0
            x = run_block(block, x)
        if not self.crop_first:
            x = center_crop(x, self.target_length)
        return x


class GenomicInterpreter(SequenceModel):
    """Genomic Interpreter: 1D-Swin trunk + linear heads with softplus.

    ``model(x, head)``: one-hot ``(B, seq_length, 4)`` → ``(B, target_length, n_tracks)``
    (a dict per head when ``head`` is ``None`` and there are several).

    Args:
        config: a :class:`SwinConfig`; or leave it out and pass its fields as keywords.
    """

    def __init__(self, config: SwinConfig | None = None, **overrides):
        super().__init__()
        if config is None:
            config = SwinConfig(**overrides)
        elif overrides:
            config = dataclasses.replace(config, **overrides)
        self.config = config
        self.trunk = SwinTrunk(config)
        self.heads = Heads(config.dims[-1], config.heads)

    def checkpoint_units(self) -> list[nn.Module]:
        """Each 1D-Swin layer (its two blocks and the merge) and each transformer block."""
        return [*self.trunk.layers, *self.trunk.transformer]
