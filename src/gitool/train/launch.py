"""``gitool train``'s entry: resolve options (and, for the command line, the defaults that
depend on the current folder), check inputs once, then train here or relaunch through
torchrun."""

from __future__ import annotations

import dataclasses
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
import yaml

from gitool.config import TrainConfig, load_yaml_config
from gitool.console import info
from gitool.errors import InputError, RunFailure
from gitool.runs import fresh_run_folder, newest_run
from gitool.train import distributed
from gitool.train.loop import TrainSummary, check_inputs, train

DEFAULT_STORE = "data"
"""``--data`` when neither the flags nor ``--config`` give one (and this folder exists)."""

RUNS = "runs"
"""Where default run folders go: ``runs/run``, then ``runs/run-2``, ... (never an old one)."""


def _values(config_file: str | None, flags: dict[str, Any]) -> dict[str, Any]:
    """YAML values (if any), overridden by the flags that were given (not None)."""
    values = load_yaml_config(config_file, TrainConfig) if config_file else {}
    values.update({k: v for k, v in flags.items() if v is not None})
    return values


def _make_config(config_file: str | None, values: dict[str, Any]) -> TrainConfig:
    try:
        return TrainConfig(**values)
    except TypeError as err:
        raise InputError(f"--config {config_file}: {err}") from None


def resolve_config(config_file: str | None, flags: dict[str, Any]) -> TrainConfig:
    """YAML values (if any), overridden by the flags that were given (not None)."""
    return _make_config(config_file, _values(config_file, flags))


def choose_defaults(values: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """``gitool train``'s defaults for what neither a flag nor ``--config`` gave: ``--data``
    the store ``data/`` in this folder, ``--out`` a fresh run folder
    (:func:`gitool.runs.fresh_run_folder`; with ``--resume`` the newest run under ``runs/``),
    ``--model`` and ``--gpus``.

    Returns:
        The completed values and one status line per default chosen.

    Raises:
        InputError: no ``--data`` and no ``data/`` here; ``--resume`` with no run to continue.
    """
    values, notes = dict(values), []
    if not values.get("data"):
        if not Path(DEFAULT_STORE).is_dir():
            raise InputError(
                f"--data: no store given and no {DEFAULT_STORE}/ here; build one with "
                "`gitool build-dataset GENOME TRACKS` or give --data STORE"
            )
        values["data"] = [DEFAULT_STORE]
        notes.append(f"using store {DEFAULT_STORE}/ (default --data)")
    if values.get("out") is None:
        if values.get("resume"):
            run = newest_run(RUNS)
            if run is None:
                raise InputError(
                    f"--resume: no --out given and no run under {RUNS}/ to continue; give --out RUN"
                )
            values["out"] = str(run)
            notes.append(f"resuming {run} (newest under {RUNS}/; give --out RUN to choose)")
        else:
            out = fresh_run_folder(RUNS)
            values["out"] = str(out)
            taken = "" if out == Path(RUNS, "run") else f"; {RUNS}/run is taken"
            notes.append(f"using run folder {out} (default --out{taken})")
    if values.get("model") is None:
        notes.append(f"using model {TrainConfig.model} (default --model; see `gitool models`)")
    if values.get("gpus") is None:
        visible = torch.cuda.device_count()
        notes.append(
            f"training on all {visible} visible GPU(s) (default --gpus; --gpus 0 for the CPU)"
            if visible
            else "training on the CPU: no GPU is visible (default --gpus)"
        )
    return values, notes


def _check_run_folder(cfg: TrainConfig) -> None:
    """A run folder that exists (and is not resumed) is never written over: say how to go on."""
    out = Path(cfg.out)
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out} is a file; give a folder for the run, e.g. --out runs/NAME")
    if not cfg.resume and out.is_dir() and any(out.iterdir()):
        raise InputError(
            f"run folder {out} already exists (a run is never written over); give a new one "
            f"with --out {RUNS}/NAME, or continue it with --resume"
        )


def run_training(
    config_file: str | None, flags: dict[str, Any], *, defaults: bool = False
) -> TrainSummary | None:
    """Train in this process, or launch N processes through torchrun and wait for them.

    ``defaults=True`` (``gitool train``) fills what neither ``flags`` nor the config gave
    with :func:`choose_defaults` and prints a line per default once the inputs are checked;
    library callers give ``data`` themselves.

    Returns the summary in a single process (rank 0 of torchrun children returns theirs;
    the launcher returns None).
    """
    if distributed.inside_torchrun():
        return train(resolve_config(config_file, flags))  # the launcher checked the inputs
    values, notes = _values(config_file, flags), []
    if defaults:
        values, notes = choose_defaults(values)
    cfg = _make_config(config_file, values)
    _check_run_folder(cfg)
    check_inputs(cfg)
    for note in notes:  # once the inputs passed, so that an error stays one line
        info(note)
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
