"""The attention layers of a model, numbered as in the Genomic Interpreter paper: layer ``k``
has tokens of ``2**(k-1)`` bp (see :func:`attention_layout`)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from torch import nn

from gitool.errors import InputError


@dataclass
class LayerInfo:
    """One attention module: its name, layer number, block, heads and token size."""

    module: str
    layer: int
    block: str
    heads: int
    token_bp: int

    @property
    def key(self) -> str:
        return f"L{self.layer}.{self.block}"


def model_seq_length(model: nn.Module) -> int:
    return int(model.config.seq_length)


def attention_layout(model: nn.Module, label: str = "") -> list[LayerInfo]:
    """The model's attention modules in forward order with Genomic Interpreter layer numbers.

    Raises:
        InputError: the model (named ``label``, e.g. its run) has no attention (e.g.
            ``cnn-maxpool``).
    """
    modules = model.attention_layers() if hasattr(model, "attention_layers") else {}
    if not modules:
        raise InputError(
            f"{label + ' ' if label else ''}is a {type(model).__name__} model, which has no "
            "attention layers; attention takes swin, enformer and can runs",
            field="model",
        )
    config = model.config
    bin_size = getattr(config, "bin_size", None)
    top = int(bin_size).bit_length() if bin_size else 0  # K: the layer of bin_size tokens
    out, transformer = [], 0
    for name, module in modules.items():
        if hasattr(module, "window"):  # swin WindowAttention
            out.append(LayerInfo(name, module.layer, module.block, module.heads, module.token_bp))
        elif bin_size:  # transformer blocks after the hierarchy (swin, enformer)
            out.append(LayerInfo(name, top + 1 + transformer, "transformer", module.heads,
                                 int(bin_size)))  # fmt: skip
            transformer += 1
        else:  # CAN
            bp = int(module.capture_meta.get("token_bp", getattr(config, "pool", 1)))
            out.append(LayerInfo(name, 1, "attention", module.heads, bp))
    return out


def _range_text(numbers: Iterable[int]) -> str:
    numbers = sorted(set(numbers))
    return f"{numbers[0]}" if len(numbers) == 1 else f"{numbers[0]}-{numbers[-1]}"


def _token_sizes(layout: list[LayerInfo]) -> str:
    """``layer 1: 1-bp tokens … layers 8-9: 128-bp tokens``: the layers grouped by token
    size (the first and last group when there are more than three)."""
    size = {info.layer: info.token_bp for info in layout}
    groups: list[list[int]] = []
    for layer in sorted(size):
        if groups and size[groups[-1][-1]] == size[layer]:
            groups[-1].append(layer)
        else:
            groups.append([layer])
    texts = [
        f"layer {g[0]}: {size[g[0]]:,}-bp tokens" if len(g) == 1
        else f"layers {g[0]}-{g[-1]}: {size[g[0]]:,}-bp tokens"
        for g in groups
    ]  # fmt: skip
    return ", ".join(texts) if len(texts) <= 3 else f"{texts[0]} … {texts[-1]}"


def select_layers(
    layout: list[LayerInfo], layers: Sequence[int] | None, heads: Sequence[int] | None
) -> list[LayerInfo]:
    """The modules of the chosen layers (default: all), checking the heads exist in each."""
    available = sorted({info.layer for info in layout})
    chosen = layout
    if layers:
        bad = [k for k in layers if k not in available]
        if bad:
            raise InputError(
                f"{bad[0]} is out of range; this model has attention layers "
                f"{_range_text(available)} ({_token_sizes(layout)})",
                field="layer",
            )
        chosen = [info for info in layout if info.layer in set(layers)]
    for h in heads or ():
        for info in chosen:
            if not 0 <= h < info.heads:
                raise InputError(
                    f"{h} is out of range; layer {info.layer} has {info.heads} heads "
                    f"(0-{info.heads - 1})",
                    field="head",
                )
    return chosen
