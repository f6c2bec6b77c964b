"""The model registry: model names, named presets, ``create_model`` and ``list_models``.

A *model* name (``swin``, ``enformer``, ``cnn-maxpool``, ``cnn-attpool``, ``cnn-dilated``,
``can``) takes its config dataclass's defaults; a *preset* is a model name plus config
values (``swin-basenji-small``, ``enformer``, ``can-cnn4-relu``, ...). Where a model and a
preset share a name (``enformer``), the preset wins: it *is* that model's reference size.
Checkpoints store ``(name, dataclasses.asdict(config))`` and rebuild with
:func:`create_model`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from gitool.models import can, cnn, enformer, swin


@dataclass(frozen=True)
class ModelEntry:
    """A registered model: its config dataclass and the class built from it."""

    config: type
    build: Callable[[Any], nn.Module]
    summary: str


@dataclass(frozen=True)
class Preset:
    model: str
    config: dict[str, Any]
    summary: str


def _models() -> dict[str, ModelEntry]:
    return {
        "swin": ModelEntry(swin.SwinConfig, swin.GenomicInterpreter, "Genomic Interpreter: hierarchical 1D shifted-window transformer"),
        "enformer": ModelEntry(enformer.EnformerConfig, enformer.Enformer, "Enformer: conv tower + relative-position transformer"),
        "cnn-maxpool": ModelEntry(cnn.MaxPoolCNNConfig, cnn.MaxPoolCNN, "conv blocks + max pooling, no transformer"),
        "cnn-attpool": ModelEntry(cnn.AttPoolCNNConfig, cnn.AttPoolCNN, "conv blocks + attention pooling"),
        "cnn-dilated": ModelEntry(cnn.DilatedCNNConfig, cnn.DilatedCNN, "attention pooling + residual dilated conv tower (Basenji style)"),
        "can": ModelEntry(can.CANConfig, can.CAN, "convolution-attention network for motif interactions (GLIFAC paper)"),
    }  # fmt: skip


BASENJI_SMALL = {"seq_length": 17712, "target_length": 80}

PRESETS: dict[str, Preset] = {
    "swin-basenji-small": Preset("swin", dict(BASENJI_SMALL), "1D-Swin, 17,712 bp → 80 × 128 bp"),
    "enformer-basenji-small": Preset(
        "enformer", {**BASENJI_SMALL, "heads": {"human": 5313}}, "Enformer trunk, 17,712 bp → 80 × 128 bp"
    ),
    "enformer": Preset(
        "enformer",
        {"seq_length": 196_608, "target_length": 896, "heads": {"human": 5313, "mouse": 1643}},
        "full Enformer: 196,608 bp → 896 × 128 bp, human + mouse heads",
    ),
    "cnn-maxpool-basenji-small": Preset("cnn-maxpool", dict(BASENJI_SMALL), "max-pool CNN, 17,712 bp → 80 × 128 bp"),
    "cnn-attpool-basenji-small": Preset("cnn-attpool", dict(BASENJI_SMALL), "attention-pool CNN, 17,712 bp → 80 × 128 bp"),
    "cnn-dilated-basenji-small": Preset("cnn-dilated", dict(BASENJI_SMALL), "attention-pool + dilated CNN, 17,712 bp → 80 × 128 bp"),
}  # fmt: skip
for _pool in (4, 20):
    for _act in ("relu", "exp"):
        for _norm in (False, True):
            _name = f"can-cnn{_pool}-{_act}" + ("-norm" if _norm else "")
            PRESETS[_name] = Preset(
                "can",
                {"pool": _pool, "activation": _act, "norm": _norm},
                f"CAN, pool {_pool}, {_act}"
                + (", batch/layer norm" if _norm else "")
                + " (GLIFAC paper)",
            )


def list_models() -> list[str]:
    """Every name :func:`create_model` accepts: presets, then plain model names."""
    return sorted(PRESETS) + sorted(n for n in _models() if n not in PRESETS)


def resolve(name: str, **overrides: Any) -> tuple[str, Any]:
    """``(model name, config)`` for a model or preset name, with ``overrides`` applied.

    Raises:
        ValueError: unknown name (listing the valid ones) or unknown config field.
    """
    models = _models()
    if name in PRESETS:
        preset = PRESETS[name]
        model, values = preset.model, {**preset.config, **overrides}
    elif name in models:
        model, values = name, dict(overrides)
    else:
        raise ValueError(f"unknown model {name!r}; choose from {', '.join(list_models())}")
    config_cls = models[model].config
    fields = {f.name: f for f in dataclasses.fields(config_cls)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ValueError(
            f"{name}: unknown config option {unknown[0]!r}; {model} takes {', '.join(sorted(fields))}"
        )
    for key, value in overrides.items():
        check_value(key, value, str(fields[key].type))
    return model, config_cls(**values)


def check_value(key: str, value: Any, annotation: str) -> None:
    """A config value (from YAML or code) of the kind its field declares: integers where
    ``int`` (not 2.5, not True), finite numbers, lists of integers, ``{name: tracks >= 1}``
    heads. The config dataclasses check the ranges and how fields fit together.

    Raises:
        ValueError: naming the field, the value and the kind it must be.
    """
    kinds = [k.strip() for k in annotation.replace(" ", "").split("|")]
    if value is None and "None" in kinds:
        return
    if any(_is_kind(value, kind) for kind in kinds):
        return
    wanted = " or ".join(_KIND_NAMES.get(k, k) for k in kinds)
    raise ValueError(f"{key} must be {wanted}, got {value!r}")


_KIND_NAMES = {
    "int": "an integer",
    "float": "a finite number",
    "bool": "true or false",
    "str": "text",
    "tuple[int,...]": "a list of integers",
    "dict[str,int]": "a mapping of head name to a track count >= 1",
    "None": "null",
}


def _is_kind(value: Any, kind: str) -> bool:
    integer = isinstance(value, int) and not isinstance(value, bool)
    if kind == "int":
        return integer
    if kind == "float":
        return (integer or isinstance(value, float)) and math.isfinite(value)
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "str":
        return isinstance(value, str)
    if kind == "tuple[int,...]":
        return isinstance(value, (list, tuple)) and all(_is_kind(v, "int") for v in value)
    if kind == "dict[str,int]":
        return isinstance(value, dict) and all(
            isinstance(k, str) and _is_kind(v, "int") and v >= 1 for k, v in value.items()
        )
    return True  # a kind this check does not know: left to the dataclass


def create_model(name: str, **overrides: Any) -> nn.Module:
    """Build a model by model or preset name; ``overrides`` set config fields.

    Example:
        >>> model = create_model("swin-basenji-small", heads={"yeast": 7})
    """
    model, config = resolve(name, **overrides)
    return _models()[model].build(config)


def build_from_config(model: str, config: dict[str, Any]) -> nn.Module:
    """Rebuild a model saved as ``(model name, asdict(config))`` (checkpoints)."""
    entry = _models().get(model)
    if entry is None:
        raise ValueError(f"unknown model {model!r}; choose from {', '.join(sorted(_models()))}")
    return entry.build(entry.config(**config))


def describe(name: str) -> str:
    """One-line description of a model or preset."""
    if name in PRESETS:
        return PRESETS[name].summary
    return _models()[name].summary


@dataclass(frozen=True)
class Summary:
    name: str
    model: str
    parameters: int
    input: str
    output: str
    description: str


def model_summary(name: str) -> Summary:
    """Parameter count and input/output shapes of a model or preset (built on the ``meta``
    device: no memory is allocated, so even the full Enformer is instant)."""
    model_name, config = resolve(name)
    with torch.device("meta"):
        model = _models()[model_name].build(config)
    parameters = sum(p.numel() for p in model.parameters())
    heads = getattr(config, "heads", None)
    if heads:
        out = ", ".join(f"{config.target_length} × {n:,} ({h})" for h, n in heads.items())
    else:
        out = f"{config.n_tasks} tasks (sigmoid)"
    return Summary(name, model_name, parameters, f"{config.seq_length:,} × 4", out, describe(name))
