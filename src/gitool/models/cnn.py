"""CNN baselines of Genomic Interpreter (Table 1, appendix B): max-pooling CNN,
attention-pooling CNN and attention-pooling CNN with a Basenji-style dilated residual tower.

All three share Enformer's convolutional front end without the transformer:

    stem:   Conv1d(4 → c_0, 15) → Residual(ConvBlock k=1) → pool(2)
    tower:  (log2(bin_size) - 1) stages of ConvBlock k=5 (c_{i-1} → c_i) →
            Residual(ConvBlock k=1) → pool(2), c_i = exponential_linspace_int(c_0, C, ...)
    [dilated tower, ``cnn-dilated`` only: residual blocks of ConvBlock k=3 (C → C/2,
            dilation 1, 2, 2, 3, 5, 8, ...) → ConvBlock k=1 (C/2 → C) → Dropout]
    crop to target_length → pointwise ConvBlock (C → 2C) → Dropout → GELU → Heads (softplus)

so a token is ``bin_size`` bp after ``log2(bin_size)`` poolings (the stem pools once). Odd
lengths floor at every pooling, as gitool's Enformer does (the original's attention pooling
cannot take odd lengths): 17,712 → 8,856 → … → 553 → 276 → 138 → crop 80.

Default sizes (the basenji-small preset: 17,712 bp → 80 bins of 128 bp): stem 288 channels,
then six tower stages of 288, 352, 416, 512, 640, 768
(``exponential_linspace_int(288, 768, 6, divisible_by=32)``), pointwise 1,536. With one ``{"human": 5313}`` head (8.2 M of it) this is 17.9 M
parameters for ``cnn-maxpool``, 19.6 M for ``cnn-attpool`` (the pooling logits add 1.7 M) and
32.7 M for ``cnn-dilated`` (11 dilated blocks, 1.2 M each). Activations saved for backward are
about 0.4 GB per 17,712-bp sequence in float32 (≈ 3 GB at batch 8). Batch normalisation is the
default, as in Enformer and Basenji (synchronised across GPUs); ``norm="layer"`` is the
Genomic Interpreter paper's choice (appendix D). A convolution tower normalised per position
over channels loses the position signal: nothing centres a channel over positions, so the
positive mean that GELU adds becomes a per-channel offset that grows stage by stage (see
:func:`gitool.models.layers.channel_norm`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from gitool.models.base import SequenceModel
from gitool.models.layers import (
    GELU,
    NORMS,
    AttentionPool,
    ConvBlock,
    Heads,
    Residual,
    center_crop,
    exponential_linspace_int,
)

POOLS = ("max", "attention")


# --------------------------------------------------------------------------- configs


@dataclass
class CNNConfig:
    """Options shared by the three CNN baselines (defaults: the basenji-small preset).

    Attributes:
        seq_length: input length in bp.
        target_length: output bins kept after the centre crop.
        bin_size: bp per output bin; a power of two, one pooling by 2 per doubling.
        stem_channels: width of the stem (first conv, at 1 bp then 2 bp after its pooling).
        channels: width ``C`` at the end of the pooling tower (the stages grow
            geometrically from ``stem_channels`` to ``channels``).
        divisible_by: tower widths are rounded to multiples of this.
        stem_kernel: kernel of the first convolution.
        conv_kernel: kernel of each tower stage's first ConvBlock.
        pointwise_channels: width of the final pointwise ConvBlock; ``None`` means ``2·C``.
        norm: ``"batch"`` (default, Enformer's and Basenji's) or ``"layer"`` (Genomic
            Interpreter appendix D; see :func:`gitool.models.layers.channel_norm`).
        dropout: dropout after the final pointwise ConvBlock.
        heads: output tracks per head, e.g. ``{"human": 5313, "mouse": 1643}``.
    """

    seq_length: int = 17712
    target_length: int = 80
    bin_size: int = 128
    stem_channels: int = 288
    channels: int = 768
    divisible_by: int = 32
    stem_kernel: int = 15
    conv_kernel: int = 5
    pointwise_channels: int | None = None
    norm: str = "batch"
    dropout: float = 0.05
    heads: dict[str, int] = field(default_factory=lambda: {"human": 5313})

    def __post_init__(self) -> None:
        if self.norm not in NORMS:
            raise ValueError(f"unknown norm {self.norm!r}; choose from {NORMS}")
        if self.bin_size < 2 or self.bin_size & (self.bin_size - 1):
            raise ValueError(
                f"bin_size must be a power of two ≥ 2 (one pooling by 2 per doubling); "
                f"got {self.bin_size}"
            )
        for name in ("seq_length", "target_length", "stem_channels", "channels", "divisible_by"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive; got {getattr(self, name)}")
        for name in ("stem_kernel", "conv_kernel"):  # odd: "same" padding keeps the length
            if getattr(self, name) < 1 or getattr(self, name) % 2 == 0:
                raise ValueError(f"{name} must be odd and positive; got {getattr(self, name)}")
        if not self.heads:
            raise ValueError("a model needs at least one head, e.g. heads={'human': 5313}")
        tokens = pooled_length(self.seq_length, self.n_pools)
        if tokens < self.target_length:
            raise ValueError(
                f"seq_length {self.seq_length} pooled to {self.bin_size}-bp tokens gives "
                f"{tokens} < target_length {self.target_length}; use a longer seq_length or "
                f"a smaller target_length"
            )

    @property
    def n_pools(self) -> int:
        """Poolings by 2 from 1 bp to ``bin_size`` bp."""
        return self.bin_size.bit_length() - 1

    def tower_channels(self) -> list[int]:
        """Widths of the tower stages after the stem (``n_pools - 1`` of them)."""
        n = self.n_pools - 1
        if n == 0:
            return []
        if n == 1:
            return [self.channels]
        return exponential_linspace_int(
            self.stem_channels, self.channels, n, divisible_by=self.divisible_by
        )

    @property
    def final_channels(self) -> int:
        """Width ``C`` leaving the pooling tower."""
        widths = self.tower_channels()
        return widths[-1] if widths else self.stem_channels


@dataclass
class MaxPoolCNNConfig(CNNConfig):
    """``cnn-maxpool``: conv tower with max pooling."""


@dataclass
class AttPoolCNNConfig(CNNConfig):
    """``cnn-attpool``: conv tower with attention (softmax) pooling."""


@dataclass
class DilatedCNNConfig(CNNConfig):
    """``cnn-dilated``: attention-pooling tower, then a residual dilated-conv tower (Basenji).

    Attributes:
        dilated_blocks: residual dilated blocks at ``bin_size`` resolution.
        dilation_mult: dilation grows by this factor per block, rounded (Basenji2: 1.5,
            giving 1, 2, 2, 3, 5, 8, 11, 17, 26, 38, 58).
        bottleneck: width of the dilated conv as a fraction of ``C``.
        dilated_dropout: dropout at the end of each dilated block (before the residual sum).
    """

    dilated_blocks: int = 11
    dilation_mult: float = 1.5
    bottleneck: float = 0.5
    dilated_dropout: float = 0.3

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.dilated_blocks < 0:
            raise ValueError(f"dilated_blocks must be ≥ 0; got {self.dilated_blocks}")
        if self.dilation_mult < 1:
            raise ValueError(f"dilation_mult must be ≥ 1; got {self.dilation_mult}")
        if self.bottleneck <= 0:
            raise ValueError(f"bottleneck must be positive; got {self.bottleneck}")


# --------------------------------------------------------------------------- helpers


def pooled_length(length: int, n_pools: int, pool_size: int = 2) -> int:
    """Length after ``n_pools`` floor poolings (an odd length drops its last position)."""
    for _ in range(n_pools):
        length //= pool_size
    return length


def dilation_rates(n: int, mult: float) -> list[int]:
    """Basenji's schedule: rate starts at 1 and is multiplied by ``mult`` per block, rounded."""
    rates, rate = [], 1.0
    for _ in range(n):
        rates.append(int(round(rate)))
        rate *= mult
    return rates


def _pool(kind: str, channels: int) -> nn.Module:
    if kind == "max":
        return nn.MaxPool1d(2)  # floor on odd lengths, like AttentionPool
    if kind == "attention":
        return AttentionPool(channels, 2)
    raise ValueError(f"unknown pooling {kind!r}; choose from {POOLS}")


# --------------------------------------------------------------------------- modules


class DilatedResidualBlock(Residual):
    """Basenji's dilated residual block: ``x + Dropout(ConvBlock k=1(ConvBlock k=3, dilated))``.

    ``(B, C, L) → (B, C, L)``; the bottleneck conv has ``hidden`` channels.
    """

    def __init__(self, channels: int, hidden: int, dilation: int, norm: str, dropout: float):
        super().__init__(
            nn.Sequential(
                ConvBlock(channels, hidden, kernel_size=3, norm=norm, dilation=dilation),
                ConvBlock(hidden, channels, kernel_size=1, norm=norm),
                nn.Dropout(dropout),
            )
        )


class CNNTrunk(nn.Module):
    """Convolutional trunk: one-hot ``(B, L, 4)`` → ``(B, target_length, pointwise_channels)``.

    Args:
        config: a :class:`CNNConfig` (a :class:`DilatedCNNConfig` when ``dilated``).
        pool: ``"max"`` or ``"attention"`` pooling in the stem and tower.
        dilated: append the residual dilated-conv tower at ``bin_size`` resolution.
    """

    def __init__(self, config: CNNConfig, pool: str, dilated: bool = False):
        super().__init__()
        cfg = config
        c0 = cfg.stem_channels
        self.target_length = cfg.target_length
        # Stem as in Enformer: the first conv sees the raw one-hot input (no norm before it).
        self.stem = nn.Sequential(
            nn.Conv1d(4, c0, cfg.stem_kernel, padding=cfg.stem_kernel // 2),
            Residual(ConvBlock(c0, kernel_size=1, norm=cfg.norm)),
            _pool(pool, c0),
        )
        stages, c_in = [], c0
        for c_out in cfg.tower_channels():
            stages.append(
                nn.Sequential(
                    ConvBlock(c_in, c_out, kernel_size=cfg.conv_kernel, norm=cfg.norm),
                    Residual(ConvBlock(c_out, kernel_size=1, norm=cfg.norm)),
                    _pool(pool, c_out),
                )
            )
            c_in = c_out
        self.tower = nn.Sequential(*stages)
        if dilated:
            if not isinstance(cfg, DilatedCNNConfig):
                raise TypeError(f"a dilated trunk needs a DilatedCNNConfig; got {type(cfg)}")
            hidden = max(1, int(round(c_in * cfg.bottleneck)))
            self.dilated = nn.Sequential(
                *(
                    DilatedResidualBlock(c_in, hidden, rate, cfg.norm, cfg.dilated_dropout)
                    for rate in dilation_rates(cfg.dilated_blocks, cfg.dilation_mult)
                )
            )
        else:
            self.dilated = nn.Identity()
        c_point = cfg.pointwise_channels or 2 * c_in
        self.pointwise = nn.Sequential(
            ConvBlock(c_in, c_point, kernel_size=1, norm=cfg.norm),
            nn.Dropout(cfg.dropout),
            GELU(),
        )
        self.out_channels = c_point

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, L, 4)`` → ``(B, target_length, C_out)``."""
        if x.ndim != 3 or x.shape[-1] != 4:
            raise ValueError(f"expected one-hot input of shape (B, L, 4); got {tuple(x.shape)}")
        x = x.transpose(1, 2)  # (B, 4, L)
        x = self.dilated(self.tower(self.stem(x)))  # (B, C, L / bin_size)
        # center_crop works on (B, L, C); the transposes are views.
        x = center_crop(x.transpose(1, 2), self.target_length).transpose(1, 2)  # (B, C, T)
        return self.pointwise(x).transpose(1, 2)  # (B, T, C_out)


class _CNN(SequenceModel):
    """Shared body: ``trunk`` (:class:`CNNTrunk`) + ``heads`` (:class:`Heads`).

    ``model(x, head)``: one-hot ``(B, seq_length, 4)`` → ``(B, target_length, n_tracks)``,
    non-negative; a dict per head when the model has several and ``head`` is None.
    """

    _pool: str = "max"
    _dilated: bool = False

    def __init__(self, config: CNNConfig):
        super().__init__()
        self.config = config
        self.trunk = CNNTrunk(config, self._pool, self._dilated)
        self.heads = Heads(self.trunk.out_channels, config.heads)


class MaxPoolCNN(_CNN):
    """``cnn-maxpool``: conv tower with max pooling, no transformer (Genomic Interpreter
    Fig. 5c)."""

    _pool = "max"

    def __init__(self, config: MaxPoolCNNConfig | None = None):
        super().__init__(config or MaxPoolCNNConfig())


class AttPoolCNN(_CNN):
    """``cnn-attpool``: conv tower with attention pooling (Genomic Interpreter Fig. 5d)."""

    _pool = "attention"

    def __init__(self, config: AttPoolCNNConfig | None = None):
        super().__init__(config or AttPoolCNNConfig())


class DilatedCNN(_CNN):
    """``cnn-dilated``: attention-pooling tower + Basenji dilated residual tower (Fig. 5d)."""

    _pool = "attention"
    _dilated = True

    def __init__(self, config: DilatedCNNConfig | None = None):
        super().__init__(config or DilatedCNNConfig())
