"""Option dataclasses shared by the CLI, the library and YAML configs.

Library functions take these; the CLI fills them from its flags (which override a YAML
config's values).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, TypeVar

import yaml

from gitool.errors import InputError

C = TypeVar("C")


@dataclass
class BuildOptions:
    """Everything ``gitool build-dataset`` takes. Lengths in bp unless named otherwise."""

    genome: str
    tracks: str
    out: str = "data"
    seq_length: int = 17712
    bin_size: int = 128
    target_length: int = 80
    stride: int | None = None  # None: the target span, so targets do not overlap
    chroms: str | None = None  # None: primary chromosomes (see data.genome.select_chroms)
    max_n_frac: float = 0.1
    blacklist: str | None = None
    max_blacklist_frac: float = 0.0
    regions: str | None = None
    valid_chroms: str | None = None
    test_chroms: str | None = None
    split_fractions: str | None = None
    seed: int = 0
    workers: int | None = None  # None: all cores
    force: bool = False


# BuildOptions fields that do not change the store's bytes (left out of the manifest).
BUILD_RUNTIME_ONLY = ("out", "workers", "force")


@dataclass
class TrainConfig:
    """Everything ``gitool train`` takes; a YAML config may set any of these fields.

    ``data`` is one store or several (each with its own head, batches alternate); ``heads``
    names the head of each store (default: the store folder's name). ``model_config``
    overrides fields of the model's config dataclass; the input length, output bins and
    track counts follow the data unless set there.
    """

    data: list[str] = field(default_factory=list)
    model: str = "swin-basenji-small"
    model_config: dict[str, Any] = field(default_factory=dict)
    heads: list[str] | None = None
    out: str = "runs/run"
    gpus: int | None = None  # None: all visible; 0: CPU
    procs: int = 1  # CPU processes (gloo), for tests and CPU clusters
    nodes: int = 1
    node_rank: int = 0
    rdzv_endpoint: str | None = None
    batch_size: int = 8  # per process
    grad_accum: int = 1
    lr: float = 3e-4
    weight_decay: float = 0.0
    warmup_steps: int = 0
    schedule: str = "cosine"  # cosine | plateau | constant (see train.loop.make_scheduler)
    lr_decay: float = 0.3  # plateau: factor per decay
    lr_patience: int = 5  # plateau: evaluations without a better score before a decay
    grad_clip: float | None = None
    epochs: int = 10
    max_steps: int | None = None
    patience: int | None = None  # evaluations without a better valid score (Pearson / AUPR)
    min_delta: float = 0.0  # patience and plateau: "better" means by more than this
    eval_every: int | None = None  # optimizer steps; None: once per epoch
    valid_windows: int | None = None  # cap on validation windows per evaluation
    checkpoint_every: int = 500
    seed: int = 0
    shift: int = 3
    rc: bool = True
    num_workers: int = 2
    bf16: bool = True  # autocast on GPU
    compile: bool = False
    resume: bool = False
    log_every: int = 10
    tensorboard: bool = False  # rank 0 also writes TensorBoard event files to OUT/tensorboard/


def load_yaml_config(path: str | Path, cls: type[C]) -> dict[str, Any]:
    """Options from a YAML mapping; unknown keys are an error naming the valid ones."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError:
        raise InputError(f"--config {path}: no such file") from None
    except yaml.YAMLError as err:
        raise InputError(f"--config {path}: not valid YAML ({str(err).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise InputError(f"--config {path}: expected a mapping of option: value")
    names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - names)
    if unknown:
        raise InputError(
            f"--config {path}: unknown option {unknown[0]!r}; valid options: {', '.join(sorted(names))}"
        )
    return data
