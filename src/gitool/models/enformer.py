"""Enformer (Avsec et al. 2021): conv stem → conv tower → relative-position transformer →
centre crop → pointwise expansion → per-species softplus heads.

Shapes for the full model (``C = 1536``)::

    (B, 196608, 4) one-hot
    stem        (B, 768, 98304)     Conv1d(4→C/2, 15) + residual ConvBlock(k=1) + pool 2
    conv tower  (B, 1536, 1536)     6 × [ConvBlock(k=5) + residual ConvBlock(k=1) + pool 2]
    transformer (B, 1536, 1536)     11 × pre-LN relative attention + MLP, as (B, T, C)
    crop        (B, 896, 1536)
    pointwise   (B, 896, 3072)      ConvBlock(C→2C, k=1) + dropout + GELU
    heads       (B, 896, 5313) human, (B, 896, 1643) mouse

:func:`from_enformer_pytorch` converts weights of the public ``enformer-pytorch`` port.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, fields
from itertools import pairwise

import torch
from torch import nn

from gitool.models.base import SequenceModel
from gitool.models.layers import (
    GELU,
    NORMS,
    AttentionPool,
    Blocks,
    ConvBlock,
    Heads,
    Residual,
    TransformerBlock,
    build_constant_buffers,
    center_crop,
    exponential_linspace_int,
)

GAMMA_NORMS = ("position", "feature")


@dataclass
class EnformerConfig:
    """Sizes of an :class:`Enformer`; the defaults are the full published Enformer.

    Attributes:
        seq_length: input length in bp.
        target_length: output bins kept by the centre crop.
        bin_size: bp per output bin; must equal ``2 ** num_downsamples`` (informational).
        channels: transformer width ``C``; the stem has ``C/2``, the pointwise layer ``2C``.
        depth: number of transformer layers.
        attention_heads: attention heads ``H`` (value dim and positional features ``C/H``).
        key_dim: query/key dim per head.
        dropout: transformer dropout; the pointwise layer uses ``dropout / 8``.
        attn_dropout: dropout on the attention weights.
        pos_dropout: dropout on the relative positional basis.
        num_downsamples: halvings of the length (stem pool + ``num_downsamples - 1`` stages).
        divisible_by: conv tower widths are rounded to multiples of this (128 in Enformer;
            smaller for tiny test models). ``C/2`` must be a multiple of it.
        norm: ``batch`` (default: the original's BatchNorm, synchronised across GPUs) or
            ``layer`` (no batch statistics; Genomic Interpreter appendix D) in every
            ConvBlock; see :func:`gitool.models.layers.channel_norm` for why batch is the
            default.
        gamma_norm: gamma positional basis normalised over ``position`` (official Enformer)
            or ``feature`` (the enformer-pytorch port); see :func:`from_enformer_pytorch`.
        heads: output head name → number of tracks.
    """

    seq_length: int = 196_608
    target_length: int = 896
    bin_size: int = 128
    channels: int = 1536
    depth: int = 11
    attention_heads: int = 8
    key_dim: int = 64
    dropout: float = 0.4
    attn_dropout: float = 0.05
    pos_dropout: float = 0.01
    num_downsamples: int = 7
    divisible_by: int = 128
    norm: str = "batch"
    gamma_norm: str = "position"
    heads: dict[str, int] = field(default_factory=lambda: {"human": 5313, "mouse": 1643})

    def __post_init__(self) -> None:
        for name in (
            "seq_length",
            "target_length",
            "channels",
            "attention_heads",
            "key_dim",
            "divisible_by",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"enformer: {name} must be >= 1, got {getattr(self, name)}")
        if self.depth < 0:
            raise ValueError(f"enformer: depth must be >= 0, got {self.depth}")
        for name in ("dropout", "attn_dropout", "pos_dropout"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"enformer: {name} must be in [0, 1), got {getattr(self, name)}")
        if self.norm not in NORMS:
            raise ValueError(f"enformer: unknown norm {self.norm!r}; choose from {NORMS}")
        if self.gamma_norm not in GAMMA_NORMS:
            raise ValueError(
                f"enformer: unknown gamma_norm {self.gamma_norm!r}; choose from {GAMMA_NORMS}"
            )
        if self.num_downsamples < 2:
            raise ValueError(
                f"enformer: num_downsamples must be >= 2 (stem pool + at least one conv tower "
                f"stage), got {self.num_downsamples}"
            )
        if self.bin_size != 2**self.num_downsamples:
            raise ValueError(
                f"enformer: bin_size {self.bin_size} must equal 2 ** num_downsamples "
                f"= {2**self.num_downsamples}; change one of them"
            )
        if self.channels % 2:
            raise ValueError(f"enformer: channels must be even (stem has C/2), got {self.channels}")
        if (self.channels // 2) % self.divisible_by:
            raise ValueError(
                f"enformer: channels / 2 = {self.channels // 2} must be a multiple of "
                f"divisible_by = {self.divisible_by} (the conv tower widths are rounded to it)"
            )
        if self.channels % self.attention_heads:
            raise ValueError(
                f"enformer: channels {self.channels} must be divisible by attention_heads "
                f"{self.attention_heads}"
            )
        if (self.channels // self.attention_heads) % 6:
            raise ValueError(
                f"enformer: channels / attention_heads = {self.channels // self.attention_heads} "
                f"(value dim and relative position features) must be a multiple of 6, one "
                f"share per exponential/central-mask/gamma basis × sign"
            )
        if not self.heads or any(int(n) < 1 for n in self.heads.values()):
            raise ValueError(
                f"enformer: heads must map names to track counts >= 1, got {self.heads}"
            )
        if self.trunk_length < self.target_length:
            raise ValueError(
                f"enformer: seq_length {self.seq_length} gives {self.trunk_length} tokens of "
                f"{self.bin_size} bp, fewer than target_length {self.target_length}; need "
                f"seq_length >= {self.target_length * self.bin_size}"
            )

    @property
    def trunk_length(self) -> int:
        """Tokens after the stem and tower: every pool floors, so ``seq_length // 2**n``."""
        return self.seq_length // 2**self.num_downsamples

    @property
    def tower_channels(self) -> list[int]:
        """Widths from the stem output to the last tower stage (``num_downsamples`` entries)."""
        half, full, stages = self.channels // 2, self.channels, self.num_downsamples - 1
        if stages == 1:  # exponential_linspace_int needs num >= 2
            return [half, full]
        return [half, *exponential_linspace_int(half, full, stages, self.divisible_by)]


class EnformerTrunk(nn.Module):
    """Stem, conv tower, transformer, crop and pointwise layer.

    ``(B, L, 4)`` one-hot → ``(B, target_length, 2C)``. The submodule names
    (``stem``, ``conv_tower``, ``transformer.{i}.attn``, ``final_pointwise``) are stable: the
    weight converter and attention capture refer to them.
    """

    def __init__(self, config: EnformerConfig):
        super().__init__()
        c, half, norm = config.channels, config.channels // 2, config.norm
        self.num_downsamples = config.num_downsamples
        self.target_length = config.target_length
        self.stem = nn.Sequential(
            nn.Conv1d(4, half, 15, padding=7),
            Residual(ConvBlock(half, kernel_size=1, norm=norm)),
            AttentionPool(half, 2),
        )
        self.conv_tower = nn.Sequential(
            *(
                nn.Sequential(
                    # No residual on the k=5 conv: widths change between stages.
                    ConvBlock(c_in, c_out, kernel_size=5, norm=norm),
                    Residual(ConvBlock(c_out, kernel_size=1, norm=norm)),
                    AttentionPool(c_out, 2),
                )
                for c_in, c_out in pairwise(config.tower_channels)
            )
        )
        self.transformer = Blocks(
            *(
                TransformerBlock(
                    c,
                    heads=config.attention_heads,
                    key_dim=config.key_dim,
                    value_dim=c // config.attention_heads,
                    rel_features=c // config.attention_heads,
                    dropout=config.dropout,
                    attn_dropout=config.attn_dropout,
                    pos_dropout=config.pos_dropout,
                    gamma_norm=config.gamma_norm,
                    tokens=config.trunk_length,
                )
                for _ in range(config.depth)
            )
        )
        for block in self.transformer:  # captured attention: one token per output bin
            block.attn.capture_meta = {"token_bp": config.bin_size}
        self.final_pointwise = nn.Sequential(
            ConvBlock(c, 2 * c, kernel_size=1, norm=norm),
            nn.Dropout(config.dropout / 8),
            GELU(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, L, 4)`` → ``(B, target_length, 2C)``."""
        if x.ndim != 3 or x.shape[-1] != 4:
            raise ValueError(f"enformer expects one-hot (B, L, 4), got {tuple(x.shape)}")
        tokens = x.shape[1] // 2**self.num_downsamples
        if tokens < self.target_length:
            raise ValueError(
                f"enformer: an input of {x.shape[1]} bp gives {tokens} tokens, fewer than "
                f"target_length {self.target_length}; use at least "
                f"{self.target_length * 2**self.num_downsamples} bp"
            )
        x = self.conv_tower(self.stem(x.transpose(1, 2)))  # (B, C, T)
        x = self.transformer(x.transpose(1, 2))  # (B, T, C)
        x = center_crop(x, self.target_length)  # (B, target_length, C)
        return self.final_pointwise(x.transpose(1, 2)).transpose(1, 2)  # (B, target_length, 2C)


class Enformer(SequenceModel):
    """Enformer: ``model(x, head)`` maps one-hot ``(B, L, 4)`` to ``(B, target_length,
    n_tracks)`` non-negative predictions (a dict of all heads when ``head=None`` and there
    are several).

    Example:
        >>> model = Enformer(EnformerConfig(seq_length=17_712, target_length=80))
        >>> model(torch.zeros(2, 17_712, 4), "human").shape
        torch.Size([2, 80, 5313])
    """

    def __init__(self, config: EnformerConfig | None = None):
        super().__init__()
        self.config = EnformerConfig() if config is None else config
        self.trunk = EnformerTrunk(self.config)
        self.heads = Heads(2 * self.config.channels, self.config.heads)

    def checkpoint_units(self) -> list[nn.Module]:
        """The transformer blocks (layer norm only; the convolution tower's batch norm would
        update its running statistics twice)."""
        return list(self.trunk.transformer)


# --------------------------------------------------------------------------- weight conversion

# Fields fixed by the tensors of a state dict; the rest of EnformerConfig may be overridden.
_INFERRED = ("channels", "depth", "attention_heads", "key_dim", "num_downsamples", "heads", "norm")

# enformer-pytorch's `_trunk` is an nn.Sequential over the same modules as its named
# attributes, so its state dict holds every tensor twice; this maps the `_trunk` copy.
_TRUNK_ALIASES = {"1": "stem", "2": "conv_tower", "4": "transformer", "6": "final_pointwise"}

_RENAMES = [
    # (pattern on the port's name, replacement in gitool's Enformer)
    (r"^stem\.(.*)$", r"trunk.stem.\1"),
    (r"^conv_tower\.(.*)$", r"trunk.conv_tower.\1"),
    (r"^transformer\.(\d+)\.0\.fn\.0\.(.*)$", r"trunk.transformer.\1.attn_norm.\2"),
    (r"^transformer\.(\d+)\.0\.fn\.1\.(.*)$", r"trunk.transformer.\1.attn.\2"),
    (r"^transformer\.(\d+)\.1\.fn\.(\d+)\.(.*)$", r"trunk.transformer.\1.mlp.\2.\3"),
    (r"^final_pointwise\.1\.(.*)$", r"trunk.final_pointwise.0.\1"),
    (r"^_heads\.([^.]+)\.0\.(.*)$", r"heads.layers.\1.\2"),
]


def _port_names(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Strip wrapper prefixes and resolve the port's duplicated ``_trunk.*`` entries."""
    sd = dict(state_dict)
    for prefix in ("module.", "_orig_mod.", "enformer."):  # DDP, torch.compile, HF wrappers
        if sd and all(k.startswith(prefix) for k in sd):
            sd = {k[len(prefix) :]: v for k, v in sd.items()}
    out: dict[str, torch.Tensor] = {}
    for key, value in sd.items():
        if key.startswith("_trunk."):
            index, _, rest = key[len("_trunk.") :].partition(".")
            if index not in _TRUNK_ALIASES:
                raise ValueError(f"unexpected enformer-pytorch key {key!r}")
            out.setdefault(f"{_TRUNK_ALIASES[index]}.{rest}", value)
        else:
            out[key] = value  # the named copy wins over the `_trunk` alias
    return out


def _infer_config(sd: dict[str, torch.Tensor]) -> dict:
    """Architecture sizes from the port's tensor shapes."""
    for key in ("stem.0.weight", "final_pointwise.1.2.weight"):
        if key not in sd:
            raise ValueError(
                f"not an enformer-pytorch state dict: missing {key!r} (found e.g. {sorted(sd)[:3]})"
            )
    channels = sd["final_pointwise.1.2.weight"].shape[1]
    if tuple(sd["stem.0.weight"].shape) != (channels // 2, 4, 15):
        raise ValueError(
            f"enformer-pytorch stem conv has shape {tuple(sd['stem.0.weight'].shape)}; "
            f"expected ({channels // 2}, 4, 15) for channels {channels}"
        )

    def indices(prefix: str) -> list[int]:
        found = {int(m.group(1)) for k in sd if (m := re.match(rf"^{prefix}\.(\d+)\.", k))}
        return sorted(found)

    stages = indices("conv_tower")
    tower = [channels // 2] + [sd[f"conv_tower.{i}.0.2.weight"].shape[0] for i in stages]
    depth = len(indices("transformer"))
    attention_heads, key_dim = EnformerConfig.attention_heads, EnformerConfig.key_dim
    if depth:
        _, attention_heads, _, key_dim = sd["transformer.0.0.fn.1.rel_content_bias"].shape
    heads = {
        m.group(1): sd[k].shape[0]
        for k in sd
        if (m := re.match(r"^_heads\.([^.]+)\.0\.weight$", k))
    }
    if not heads:
        raise ValueError(
            "enformer-pytorch state dict has no output heads ('_heads.<name>.0.weight')"
        )
    inferred = {
        "channels": channels,
        "depth": depth,
        "attention_heads": attention_heads,
        "key_dim": key_dim,
        "num_downsamples": len(stages) + 1,
        "heads": heads,
        "norm": "batch" if any(k.endswith(".running_mean") for k in sd) else "layer",
    }
    # The port rounds tower widths with `dim_divisible_by`, which the tensors do not store:
    # take the largest rounding that reproduces the observed widths.
    common = math.gcd(*tower)
    for d in sorted((d for d in range(1, common + 1) if common % d == 0), reverse=True):
        try:
            candidate = EnformerConfig(**inferred, divisible_by=d, **_geometry(inferred))
        except ValueError:
            continue
        if candidate.tower_channels == tower:
            return {**inferred, "divisible_by": d}
    raise ValueError(f"enformer-pytorch conv tower widths {tower} fit no divisible_by rounding")


def _geometry(inferred: dict, target_length: int = 896) -> dict:
    """Default seq_length/bin_size for a model with ``num_downsamples`` pools: Enformer's
    1,536 tokens (196,608 bp at 128 bp per token)."""
    bin_size = 2 ** inferred["num_downsamples"]
    return {
        "bin_size": bin_size,
        "seq_length": max(1536, target_length) * bin_size,
        "target_length": target_length,
    }


def from_enformer_pytorch(state_dict: dict[str, torch.Tensor], **config) -> Enformer:
    """Build a gitool :class:`Enformer` from a state dict of the ``enformer-pytorch`` package.

    Sizes are read from the tensors: ``channels`` (pointwise conv input), ``depth``
    (transformer layers), ``attention_heads``/``key_dim`` (``rel_content_bias``),
    ``num_downsamples`` (tower stages + 1), ``divisible_by`` (the tower rounding that
    reproduces the widths), ``heads`` (head names and track counts) and ``norm``
    (``batch`` when BatchNorm running statistics are present). Everything else comes from
    ``config`` or :class:`EnformerConfig` defaults, with ``bin_size = 2**num_downsamples``,
    ``target_length = 896`` and ``seq_length = max(1536, target_length) · bin_size``. The
    renamed tensors are loaded with ``strict=True`` (BatchNorm running statistics
    included), so nothing is dropped silently.

    Gamma basis: the port (without ``use_tf_gamma``) divides the gamma pdf by its max over
    *features*; the official model by its max over *positions* per feature. Pass
    ``gamma_norm="feature"`` to reproduce the port's outputs exactly; keep the default
    ``"position"`` for the official behaviour, which is what the TF-converted published
    weights were trained with (the port restores it for those with ``use_tf_gamma``).

    Other differences from the port, irrelevant when every pooled length is even and
    ``trunk_length - target_length`` is even (e.g. 196,608 bp → 896 bins): the port pads and
    masks odd lengths in attention pooling (ceil) where gitool floors (the original's reshape
    fails on them), and
    its crop returns one bin short for an odd difference where gitool's is exact.

    Args:
        state_dict: ``enformer_pytorch.Enformer(...).state_dict()`` (prefixes ``module.``,
            ``_orig_mod.`` or ``enformer.`` are stripped; the duplicated ``_trunk.*``
            entries are accepted).
        **config: :class:`EnformerConfig` fields to set, e.g. ``seq_length``,
            ``target_length``, ``gamma_norm``, dropouts. Sizes fixed by the tensors may be
            given only if they agree.

    Returns:
        The model on CPU in float32, in training mode like any new module (call ``eval()``).

    Raises:
        ValueError: not a port state dict, an unknown key, or an override that contradicts
            the tensors.
    """
    known = {f.name for f in fields(EnformerConfig)}
    unknown = sorted(set(config) - known)
    if unknown:
        raise ValueError(
            f"unknown Enformer config option {unknown[0]!r}; choose from {sorted(known)}"
        )
    sd = _port_names(state_dict)
    inferred = _infer_config(sd)
    for name in (*_INFERRED, "divisible_by"):
        if name in config and config[name] != inferred[name]:
            raise ValueError(
                f"{name}={config[name]!r} contradicts the state dict, which has {inferred[name]!r}"
            )
    values = {**_geometry(inferred, config.get("target_length", 896)), **inferred, **config}
    cfg = EnformerConfig(**values)

    renamed: dict[str, torch.Tensor] = {}
    for key, value in sd.items():
        for pattern, repl in _RENAMES:
            new, n = re.subn(pattern, repl, key)
            if n:
                break
        else:
            raise ValueError(f"unexpected enformer-pytorch key {key!r}")
        if new.endswith("to_attn_logits.weight"):
            # The port's pooling logits are a Conv2d(C, C, 1) over (B, C, n, 2); ours a
            # Conv1d(C, C, 1) over (B, C, L): the same matrix without the trailing 1×1.
            new = new.replace("to_attn_logits", "to_logits")
            value = value.reshape(value.shape[0], value.shape[1], 1)
        renamed[new] = value

    # Allocate without random initialisation (it costs seconds at full size): the strict
    # load below overwrites every parameter and saved buffer or fails; the positional bases
    # (not saved) are built again.
    with torch.device("meta"):
        model = Enformer(cfg)
    model = build_constant_buffers(model.to_empty(device="cpu"))
    model.load_state_dict(renamed, strict=True)
    return model
