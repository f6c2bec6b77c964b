"""Options of ``gitool train``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gitool.config.base import Options, option
from gitool.errors import InputError


@dataclass
class TrainConfig(Options):
    """Everything ``gitool train`` takes; a YAML config may set any of these fields.

    ``data`` is one store or several (each with its own head, batches alternate); ``heads``
    names the head of each store (default: the store folder's name). ``model_config``
    overrides fields of the model's config dataclass; the input length, output bins and
    track counts follow the data unless set there.

    Ranges are checked on construction; :data:`RESUME_FIXED` lists the fields a resumed run
    must keep (they shape the optimisation).
    """

    data: list[str] = field(default_factory=list)
    model: str = "swin-basenji-small"
    model_config: dict[str, Any] = field(default_factory=dict)
    heads: list[str] | None = None
    out: str = "runs/run"
    gpus: int | None = option(None, ge=0)  # None: all visible; 0: CPU
    procs: int = option(1, ge=1)  # CPU processes (gloo), for tests and CPU clusters
    nodes: int = option(1, ge=1)
    node_rank: int = option(0, ge=0)
    rdzv_endpoint: str | None = None
    batch_size: int = option(8, ge=1)  # per process
    grad_accum: int = option(1, ge=1)
    lr: float = option(3e-4, gt=0, le=1)
    weight_decay: float = option(0.0, ge=0)
    warmup_steps: int = option(0, ge=0)
    schedule: str = "cosine"  # cosine | plateau | constant (see train.loop.make_scheduler)
    lr_decay: float = option(0.3, gt=0, lt=1)  # plateau: factor per decay
    lr_patience: int = option(5, ge=1)  # plateau: evaluations without a better score before a decay
    grad_clip: float | None = option(None, gt=0)  # None: no clipping
    track_weights: str = "equal"  # equal | balanced (see train.losses.balanced_track_weights)
    epochs: int = option(10, ge=1)
    max_steps: int | None = option(None, ge=1)
    patience: int | None = option(
        None, ge=1
    )  # evaluations without a better valid score (Pearson / AUPR)
    min_delta: float = option(0.0, ge=0)  # patience and plateau: "better" means by more than this
    eval_every: int | None = option(None, ge=1)  # optimizer steps; None: once per epoch
    valid_windows: int | None = option(None, ge=1)  # cap on validation windows per evaluation
    checkpoint_every: int = option(500, ge=1)
    checkpoint_minutes: float | None = option(None, gt=0)  # also by time (None: by steps only)
    seed: int = option(0, ge=0, le=1e9)
    shift: int = option(3, ge=0)  # at most half the store's window (checked with the store)
    rc: bool = True
    num_workers: int = option(2, ge=0)
    data_on_device: bool = False  # hold the training splits on the GPU (read once)
    bf16: bool = True  # autocast on GPU
    compile: bool | None = None  # None: on with CUDA (one graph per model), off on the CPU
    checkpoint_activations: bool = False  # recompute transformer/swin blocks in the backward
    resume: bool = False
    log_every: int = option(10, ge=1)
    tensorboard: bool = False  # rank 0 also writes TensorBoard event files to OUT/tensorboard/

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.model_config, dict):
            raise InputError(
                f"must be a mapping of model option: value, got {self.model_config!r}",
                field="model_config",
            )


RESUME_FIXED = (
    "model", "batch_size", "grad_accum", "lr", "weight_decay", "warmup_steps", "schedule",
    "lr_decay", "lr_patience", "grad_clip", "min_delta", "seed", "shift", "rc", "track_weights",
    "valid_windows",
)  # fmt: skip
"""Fields a resumed run must keep: they change the optimisation (or, ``valid_windows``, what
the best score means). The budget (``epochs``, ``max_steps``) may grow; the processes,
logging and checkpointing may change."""
