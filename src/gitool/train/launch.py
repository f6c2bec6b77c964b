"""``gitool train``'s entry: resolve options, check inputs once, then train here or relaunch
through torchrun."""

from __future__ import annotations

import dataclasses
import os
import tempfile
from pathlib import Path
from typing import Any

import yaml

from gitool.config import TrainConfig, load_yaml_config
from gitool.errors import InputError, RunFailure
from gitool.train import distributed
from gitool.train.loop import TrainSummary, check_inputs, train


def resolve_config(config_file: str | None, flags: dict[str, Any]) -> TrainConfig:
    """YAML values (if any), overridden by the flags that were given (not None)."""
    values = load_yaml_config(config_file, TrainConfig) if config_file else {}
    values.update({k: v for k, v in flags.items() if v is not None})
    try:
        return TrainConfig(**values)
    except TypeError as err:
        raise InputError(f"--config {config_file}: {err}") from None


def run_training(config_file: str | None, flags: dict[str, Any]) -> TrainSummary | None:
    """Train in this process, or launch N processes through torchrun and wait for them.

    Returns the summary in a single process (rank 0 of torchrun children returns theirs;
    the launcher returns None).
    """
    cfg = resolve_config(config_file, flags)
    if distributed.inside_torchrun():
        return train(cfg)  # the launcher checked the inputs already
    check_inputs(cfg)
    if not distributed.needs_launch(cfg):
        return train(cfg)
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as handle:
        yaml.safe_dump(dataclasses.asdict(cfg), handle, sort_keys=False)
        path = handle.name
    try:
        code = distributed.relaunch(cfg, path)
    finally:
        os.unlink(path)
    if code != 0:
        raise RunFailure(
            f"a training process failed (exit code {code}); see its messages above. "
            f"Resume from {Path(cfg.out) / 'checkpoints' / 'last.pt'} with --resume once fixed"
        )
    return None
