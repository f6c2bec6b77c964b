"""Convolution-attention network (CAN) of the GLIFAC paper (appendix A) for 200-bp sequences.

    one-hot (B, L, 4) → Conv1d(4 → 32, 19, same, no bias) → [BatchNorm] → ReLU | exp
    → MaxPool(p) → Dropout(0.1) → [LayerNorm] → 8-head self-attention (key 32, no positions,
    no residual; output 8 × 32 = 256 channels per token) → Dropout(0.1) → Flatten →
    Linear(512, no bias) → BatchNorm → ReLU → Dropout(0.5) → Linear(n_tasks) → sigmoid

The attention's output projection keeps the heads' width (256) rather than mapping back to
the 32 filters, as the authors' code does (``d_model = heads × vector size``); mapped back
to 32 channels per token, CNN20-Exp learned more slowly (valid AUPR 0.47 instead of 0.57
after 3 epochs; README "Models").

The eight variants of the paper are ``pool`` 4 / 20 × ``activation`` relu / exp × ``norm``
off / on (``norm=True`` is the "-Norm" variants: BatchNorm before the activation and
LayerNorm before the attention). ``forward`` returns probabilities; ``forward(x,
logits=True)`` the logits that ``BCEWithLogitsLoss`` takes (what ``gitool train`` does).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel

from gitool.models.layers import RelativeAttention

ACTIVATIONS = ("relu", "exp")

# The exponential activation is unbounded: a large pre-activation (strong filters after
# training, or unusual inputs) gives inf and then NaN. Clamping the pre-activation at 20
# bounds it by exp(20) ≈ 4.9e8, finite in float32 and bfloat16 and far above what a filter
# reaches on one-hot input (|pre-activation| ≤ 19·max|w|); gradients stop above the clamp.
EXP_CLAMP = 20.0


@dataclass
class CANConfig:
    """CAN options; defaults are the GLIFAC paper's CNN4-ReLU.

    Attributes:
        seq_length: input length in bp (the dense layer's input size depends on it).
        filters: first-layer convolution filters.
        kernel_size: first-layer filter width (odd: "same" padding is symmetric).
        pool: max-pooling size after the first layer (4 or 20 in the paper).
        activation: ``"relu"`` or ``"exp"`` (exponential, clamped; see ``EXP_CLAMP``).
        norm: BatchNorm before the activation and LayerNorm before the attention.
        attention_heads: attention heads.
        key_dim: query/key (and value) size per head.
        dense: units of the hidden dense layer.
        n_tasks: sigmoid outputs (binary tasks).
        conv_dropout: dropout after the pooling and after the attention.
        dense_dropout: dropout after the hidden dense layer.
    """

    seq_length: int = 200
    filters: int = 32
    kernel_size: int = 19
    pool: int = 4
    activation: str = "relu"
    norm: bool = False
    attention_heads: int = 8
    key_dim: int = 32
    dense: int = 512
    n_tasks: int = 12
    conv_dropout: float = 0.1
    dense_dropout: float = 0.5

    def __post_init__(self) -> None:
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {self.activation!r}; choose from {ACTIVATIONS}")
        if self.kernel_size < 1 or self.kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd and positive; got {self.kernel_size}")
        for name in ("filters", "pool", "attention_heads", "key_dim", "dense", "n_tasks"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive; got {getattr(self, name)}")
        if self.seq_length < self.pool:
            raise ValueError(
                f"seq_length {self.seq_length} is shorter than one pool of {self.pool}"
            )

    @property
    def attention_width(self) -> int:
        """Channels per token out of the attention: ``attention_heads × key_dim`` (256), as in
        the authors' code (its output projection keeps the heads' width, ``d_model``)."""
        return self.attention_heads * self.key_dim

    @property
    def tokens(self) -> int:
        """Positions after the max pooling (``seq_length // pool``, floor)."""
        return self.seq_length // self.pool


class CAN(nn.Module):
    """The GLIFAC paper's convolution-attention network.

    ``forward``: one-hot ``(B, seq_length, 4)`` → probabilities ``(B, n_tasks)``.
    Attention can be recorded with :func:`gitool.models.base.capture_attention` (layer
    ``"attention"``; weights ``(B, heads, L/pool, L/pool)``).
    """

    def __init__(self, config: CANConfig | None = None):
        super().__init__()
        cfg = self.config = config or CANConfig()
        self.conv = nn.Conv1d(4, cfg.filters, cfg.kernel_size, padding="same", bias=False)
        self.conv_norm = nn.BatchNorm1d(cfg.filters) if cfg.norm else nn.Identity()
        self.pool = nn.MaxPool1d(cfg.pool)
        self.conv_dropout = nn.Dropout(cfg.conv_dropout)
        self.attention_norm = nn.LayerNorm(cfg.filters) if cfg.norm else nn.Identity()
        # Keras MultiHeadAttention: biased q/k/v, a biased output projection back to the
        # filters, no positional information and no residual around it.
        self.attention = RelativeAttention(
            dim=cfg.filters,
            heads=cfg.attention_heads,
            key_dim=cfg.key_dim,
            value_dim=cfg.key_dim,
            rel_features=0,
            zero_init_out=False,
            qkv_bias=True,
            out_dim=cfg.attention_width,
        )
        # Captured weights say how tokens map back to bp.
        self.attention.capture_meta = {"token_bp": cfg.pool}
        self.attention_dropout = nn.Dropout(cfg.conv_dropout)
        self.dense = nn.Sequential(
            nn.Flatten(),
            nn.Linear(cfg.tokens * cfg.attention_width, cfg.dense, bias=False),
            nn.BatchNorm1d(cfg.dense),
            nn.ReLU(),
            nn.Dropout(cfg.dense_dropout),
        )
        self.output = nn.Linear(cfg.dense, cfg.n_tasks)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Glorot-uniform weights and zero biases (the GLIFAC paper initialises "according to"
        Glorot & Bengio, Keras' default), instead of PyTorch's He-style defaults."""
        for module in self.modules():
            if isinstance(module, (nn.Conv1d, nn.Linear)):
                nn.init.xavier_uniform_(module.weight)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)

    def _check(self, x: torch.Tensor) -> None:
        expected = (self.config.seq_length, 4)
        if x.ndim != 3 or tuple(x.shape[1:]) != expected:
            raise ValueError(
                f"expected one-hot input of shape (B, {expected[0]}, 4); got {tuple(x.shape)}"
            )

    def _activation(self, x: torch.Tensor) -> torch.Tensor:
        if self.config.activation == "exp":
            return torch.exp(x.clamp(max=EXP_CLAMP))
        return torch.relu(x)

    def conv_activations(self, x: torch.Tensor) -> torch.Tensor:
        """First-layer activations per bp, before the max pooling: ``(B, seq_length, filters)``.

        Position ``p`` sees bases ``p - kernel_size // 2 … p + kernel_size // 2`` ("same"
        padding). Call in eval mode for BatchNorm running stats.
        """
        self._check(x)
        h = self.conv(x.transpose(1, 2))  # (B, F, L)
        return self._activation(self.conv_norm(h)).transpose(1, 2)

    def filter_activations(self, x: torch.Tensor) -> torch.Tensor:
        """First-layer activations after max pooling (before dropout), for GLIFAC.

        Args:
            x: one-hot ``(B, seq_length, 4)``.

        Returns:
            ``(B, seq_length // pool, filters)``. Call in eval mode for BatchNorm running stats.
        """
        return self.pool_activations(self.conv_activations(x))

    def pool_activations(self, conv: torch.Tensor) -> torch.Tensor:
        """:meth:`conv_activations` ``(B, L, F)`` → max-pooled ``(B, L // pool, F)``."""
        return self.pool(conv.transpose(1, 2)).transpose(1, 2)

    def attention_layers(self) -> dict[str, RelativeAttention]:
        """Attention modules by name (what :func:`capture_attention` needs)."""
        return {name: m for name, m in self.named_modules() if isinstance(m, RelativeAttention)}

    def forward(self, x: torch.Tensor, logits: bool = False) -> torch.Tensor:
        """One-hot ``(B, seq_length, 4)`` → probabilities ``(B, n_tasks)`` in [0, 1], or the
        logits with ``logits=True``."""
        h = self.conv_dropout(self.filter_activations(x))  # (B, L', F)
        # Exponential activations without normalisation feed the attention very large q/k;
        # the fused SDPA kernels (flash, memory-efficient) then return NaN gradients (PyTorch
        # issues 121558, 125674), the math kernel does not. With L' ≤ 50 tokens it costs
        # nothing measurable.
        with sdpa_kernel(SDPBackend.MATH):
            h = self.attention(self.attention_norm(h))  # (B, L', F)
        h = self.attention_dropout(h)
        out = self.output(self.dense(h))
        return out if logits else torch.sigmoid(out)
