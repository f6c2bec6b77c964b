"""What every sequence model shares: ``trunk`` + ``heads``, and attention capture.

Contract: input one-hot ``(B, L, 4)`` float; ``model(x, head)`` returns
``(B, target_length, n_tracks)`` non-negative (softplus) for that head; with several heads
and ``head=None`` a dict of all of them. Several heads share one trunk.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import torch
from torch import nn

from gitool.models.layers import AttentionRecord, Heads, RelativeAttention


class SequenceModel(nn.Module):
    """Base class: subclasses set ``self.config``, ``self.trunk`` and ``self.heads``.

    ``trunk``: ``(B, L, 4) → (B, target_length, C)``; ``heads``: :class:`Heads`.
    """

    config: object
    trunk: nn.Module
    heads: Heads

    def forward(self, x: torch.Tensor, head: str | None = None):
        return self.heads(self.trunk(x), head)

    def checkpoint_units(self) -> list[nn.Module]:
        """The blocks activation checkpointing recomputes (none by default; models with
        transformer blocks name them). Blocks with batch norm are never among them: their
        running statistics would be updated twice."""
        return []

    def checkpoint_activations(self, enabled: bool = True) -> int:
        """Recompute the activations of :meth:`checkpoint_units` in the backward pass instead
        of storing them (less memory, about one more forward of those blocks per step);
        returns how many blocks that covers."""
        units = self.checkpoint_units()
        for unit in units:
            unit.checkpointed = enabled
        return len(units)

    def attention_layers(self) -> dict[str, RelativeAttention]:
        """Attention modules in forward order, by name (``name`` as ``named_modules`` gives)."""
        return {name: m for name, m in self.named_modules() if isinstance(m, RelativeAttention)}


@contextmanager
def capture_attention(
    model: nn.Module, layers: Iterable[str] | None = None
) -> Iterator[list[AttentionRecord]]:
    """Record attention weights of the chosen layers (default: all) during forwards.

    Example:
        >>> with capture_attention(model) as records:
        ...     model(x)
        >>> records[0].weights.shape  # (B, H, L, L) or (B, windows, H, w, w)

    Outputs are unchanged (the manual path computes the same numbers); outside the block
    the fused path runs and nothing is stored.
    """
    available = model.attention_layers()
    names = list(available) if layers is None else list(layers)
    unknown = [n for n in names if n not in available]
    if unknown:
        raise KeyError(f"unknown attention layer {unknown[0]!r}; this model has {list(available)}")
    records: list[AttentionRecord] = []
    for name in names:
        available[name].capture = records
        available[name].capture_name = name
    try:
        yield records
    finally:
        for name in names:
            available[name].capture = None
