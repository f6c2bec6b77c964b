"""The training loop of ``gitool train`` (one process, or one of many under torchrun).

Per optimizer step: ``grad_accum`` batches (each from one dataset; datasets alternate, the
first dataset's pass defines the epoch and the others cycle; coverage batches come from
:func:`gitool.data.loader.training_batches` and are augmented on the device), the task's
loss (Poisson NLL for coverage, binary cross-entropy for label stores; see
:mod:`gitool.train.tasks`), gradient clipping, Adam, and the schedule (warm-up + cosine, plateau decay or constant).
Rank 0 alone logs (``metrics.jsonl``, with ``--tensorboard`` also TensorBoard event files in
``tensorboard/``; a progress bar) and writes checkpoints. With the same global batch and
seed, N processes reach the same weights as one (the sampler deals the same permutation out
by rank, and the augmentation is a function of (seed, epoch, index)); a resumed run reaches
the same weights as an uninterrupted one (RNG, optimizer, scheduler and sampler position are
restored; with several processes, ranks other than 0 draw new dropout streams, see
:func:`restore_rng`). :class:`TrainingRun` holds one process's run and its steps.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import shutil
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import yaml

from gitool.background import prefetched
from gitool.config import TrainConfig
from gitool.console import info, progress, warn
from gitool.data.dataset import codes_to_one_hot
from gitool.errors import InputError, opt
from gitool.files import remove_stale_stages, staged_file
from gitool.machine import cpu_count
from gitool.models.registry import create_model, resolve
from gitool.runs import CheckpointWriter, load_checkpoint, pinned_for
from gitool.train import distributed
from gitool.train.tasks import open_stores


@dataclass
class TrainSummary:
    out: Path
    step: int
    epoch: int
    best: float | None
    stopped: str
    score: str = "mean Pearson"  # what ``best`` measures


# --------------------------------------------------------------------------- set-up


def model_overrides(cfg: TrainConfig, stores: list, heads: list[str], task) -> dict:
    """Model config values from the data (sizes, heads, tasks), unless the config sets them;
    values the config sets must agree with the data."""
    try:
        model_name, _ = resolve(cfg.model)
    except ValueError as err:
        raise InputError(f"{cfg.model!r}: {err}", field="model") from None
    task.check_model(model_name, cfg.model)
    derived = task.derived(stores, heads)
    overrides = {**derived, **cfg.model_config}
    given = cfg.model_config.get("heads")
    if given is not None:
        _check_head_names(given, heads)
        for head, store in zip(heads, stores, strict=True):
            if given.get(head) != store.manifest["n_tracks"]:
                raise InputError(
                    f"heads: {head!r} has {given.get(head)} tracks but {store.path} has "
                    f"{store.manifest['n_tracks']}; the heads must match the data",
                    field="model_config",
                )
    for key, value in derived.items():
        if key != "heads" and overrides[key] != value:
            raise InputError(
                f"{key} {overrides[key]} does not match the data's {value} "
                f"({stores[0].path}); leave it out to follow the data",
                field="model_config",
            )
    return overrides


def _check_head_names(given, heads: list[str]) -> None:
    """``model_config: heads`` names exactly the run's heads (a typo said "None tracks")."""
    if not isinstance(given, dict):
        raise InputError(
            f"heads must map each head ({', '.join(heads)}) to its number of tracks, got "
            f"{given!r}; or leave it out to follow the data",
            field="model_config",
        )
    missing = [head for head in heads if head not in given]
    extra = [str(name) for name in given if name not in heads]
    if missing or extra:
        what = "; ".join(
            part
            for part in (
                f"no entry for {', '.join(map(repr, missing))}" if missing else "",
                f"{', '.join(map(repr, extra))} is not a head" if extra else "",
            )
            if part
        )
        raise InputError(
            f"heads: {what}; this run's heads are {', '.join(heads)} (--heads, default: the "
            "store folders' names), or leave heads out to follow the data",
            field="model_config",
        )


def build_model(cfg: TrainConfig, overrides: dict) -> torch.nn.Module:
    try:
        return create_model(cfg.model, **overrides)
    except ValueError as err:
        raise InputError(f"{cfg.model}: {err}", field="model") from None
    except (RuntimeError, MemoryError, ArithmeticError) as err:  # e.g. too large to allocate
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise InputError(
            f"{cfg.model} cannot be built with this configuration ({first}); check its sizes",
            field="model_config",
        ) from None


def lr_lambda(warmup: int, total: int, anchor: tuple[int, float] | None = None):
    """Linear warm-up to the base rate, then cosine annealing to 0 at ``total`` steps.

    ``anchor`` ``(step, factor)``: from that step on, cosine from that factor to 0 at
    ``total`` — a resumed run whose budget grew goes on from the rate it had, instead of
    jumping back up the longer curve."""

    def factor(step: int) -> float:
        if anchor is not None and step >= anchor[0]:
            start, value = anchor
            progress_ = (step - start) / max(1, total - start)
            return value * 0.5 * (1 + math.cos(math.pi * min(1.0, progress_)))
        if warmup and step < warmup:
            return (step + 1) / warmup
        progress_ = (step - warmup) / max(1, total - warmup)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress_)))

    return factor


SCHEDULES = ("cosine", "plateau", "constant")


class Patience:
    """Counts the evaluations since the validation score last rose by more than ``min_delta``.

    ``ref`` is the score that last counted as such a rise (the first score always does);
    ``bad`` the evaluations since. ``best.pt`` follows any rise; this only decides when to
    stop, so with ``min_delta`` > 0 a run creeping up by less at a tiny learning rate stops.
    A NaN score never counts.
    """

    def __init__(self, min_delta: float = 0.0, ref: float | None = None, bad: int = 0):
        self.min_delta, self.ref, self.bad = float(min_delta), ref, int(bad)

    def update(self, score: float) -> None:
        fresh = self.ref is None or math.isnan(self.ref)
        if not math.isnan(score) and (fresh or score > self.ref + self.min_delta):
            self.ref, self.bad = score, 0
        else:
            self.bad += 1


def make_scheduler(cfg: TrainConfig, optimizer, total: int, anchor=None):
    """``cosine``: warm-up then cosine to 0 at ``total`` steps (stepped per optimizer step).
    ``plateau``: warm-up-free; the rate is multiplied by ``lr_decay`` when the validation
    score has not improved by more than ``min_delta`` for ``lr_patience`` evaluations (the
    GLIFAC paper: ×0.3 after 5 epochs without a better AUPR; stepped per evaluation).
    ``constant``: warm-up then flat."""
    if cfg.schedule == "plateau":
        # torch's patience counts the bad evaluations it tolerates; the paper's (and Keras')
        # counts those after which it decays.
        return torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode="max", factor=cfg.lr_decay, patience=cfg.lr_patience - 1,
            threshold=cfg.min_delta, threshold_mode="abs",
        )  # fmt: skip
    if cfg.schedule == "constant":
        warmup = cfg.warmup_steps
        return torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: (step + 1) / warmup if warmup and step < warmup else 1.0
        )
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(cfg.warmup_steps, total, anchor))


# --------------------------------------------------------------------------- data


class Batches:
    """Alternating batches from one endless iterator per dataset (the task's
    ``training_batches``), resumable at a batch position.

    The iterators (and their DataLoader workers) live across epochs: :meth:`epoch` continues
    them where the previous call stopped, and opens them afresh only at another position (a
    resumed run). :meth:`close` stops them.
    """

    def __init__(self, cfg: TrainConfig, stores, heads, task, ctx: distributed.Context):
        self.cfg, self.stores, self.heads, self.task, self.ctx = cfg, stores, heads, task, ctx
        self.batch_size = cfg.batch_size
        counts = [s.count("train") for s in stores]
        # DistributedSampler(drop_last=True) deals each rank n // world samples
        self.per_dataset = [n // ctx.world // cfg.batch_size for n in counts]
        if self.per_dataset[0] == 0:
            raise InputError(
                f"{cfg.batch_size} × {ctx.world} process(es) is more than the "
                f"{counts[0]} training samples; use a smaller batch",
                field="batch_size",
            )
        # An epoch: every batch of dataset 0, interleaved with as many of each other dataset.
        self.per_epoch = self.per_dataset[0] * len(stores)
        self._iterators: list = []
        self._at: tuple[int, int] | None = None  # (epoch, batch) the iterators stand at

    def epoch(self, epoch: int, start: int = 0):
        """Yield ``(batch index in epoch, host batch, head)`` from ``start`` on."""
        if self._at != (epoch, start):
            self._open(epoch, start)
        n = len(self.stores)
        for i in range(start, self.per_epoch):
            batch = next(self._iterators[i % n])
            self._at = (epoch, i + 1) if i + 1 < self.per_epoch else (epoch + 1, 0)
            yield i, batch, self.heads[i % n]

    def _open(self, epoch: int, start: int) -> None:
        self.close()
        n = len(self.stores)
        for j, store in enumerate(self.stores):
            done = (start - j + n - 1) // n if start > j else 0  # batches of j already consumed
            if j == 0:
                cycle, offset = epoch, done
            else:
                cycle, offset = divmod(epoch * self.per_dataset[0] + done, self.per_dataset[j])
            self._iterators.append(
                self.task.training_batches(
                    store, self.cfg, self.ctx, cycle, offset * self.batch_size
                )
            )
        self._at = (epoch, start)

    def close(self) -> None:
        """Stop the iterators (and their DataLoader workers)."""
        for iterator in self._iterators:
            close = getattr(iterator, "close", None)
            if close is not None:
                close()
        self._iterators, self._at = [], None


# --------------------------------------------------------------------------- evaluation


@torch.no_grad()
def validate(
    model, stores, heads, task, cfg: TrainConfig, ctx: distributed.Context, autocast,
    spread: bool = True,
) -> dict:  # fmt: skip
    """Valid loss and the task's scores (mean per-track Pearson over all windows and bins, or
    mean per-task AUPR and AUROC), averaged over the stores; with several stores also each
    head's, as ``KEY/HEAD`` (e.g. ``valid_pearson/human``). All ranks take part. The windows
    are read in a background thread, two batches ahead of the model."""
    model.eval()
    scores, losses, evaluated = [], [], []
    for store, head in zip(stores, heads, strict=True):
        n = store.count("valid")
        chosen = np.arange(n)
        if cfg.valid_windows and cfg.valid_windows < n:  # spread over the split (``spread``:
            # runs whose checkpoints predate it keep their first windows, to compare alike)
            chosen = np.unique(np.linspace(0, n - 1, cfg.valid_windows).round().astype(np.int64))
            if not spread:
                chosen = np.arange(cfg.valid_windows)
        if len(chosen) == 0:
            continue
        indices = chosen[ctx.rank :: ctx.world].tolist()
        metrics = task.metrics(store, ctx.device)
        loss_sum = torch.zeros(2, dtype=torch.float64, device=ctx.device)
        # read and pinned in a thread: the next batch is ready while the model runs
        pinned = (
            [pinned_for(t, ctx.device) for t in batch]
            for batch in task.valid_batches(store, indices, cfg.batch_size)
        )
        reading = contextlib.closing(prefetched(pinned, name="gitool-valid-inputs"))
        with reading as batches:
            for codes, targets in batches:
                # targets travel as stored (float16 coverage) and become float32 on the device
                x = codes_to_one_hot(codes.to(ctx.device, non_blocking=True))
                y = targets.to(ctx.device, non_blocking=True).float()
                with autocast:
                    out = task.forward(model, x, head)
                metrics.update(out.float(), y)
                # summed on the device: no host sync per batch
                loss_sum[0] += task.loss(out, y).detach().double() * len(x)
                loss_sum[1] += len(x)
        metrics.all_reduce()
        if torch.distributed.is_initialized():
            torch.distributed.all_reduce(loss_sum)
        scores.append(task.valid_scores(metrics))
        losses.append(float(loss_sum[0] / max(loss_sum[1], 1)))
        evaluated.append(head)
    model.train()
    if not scores:
        return {}
    means = {key: float(np.mean([s[key] for s in scores])) for key in scores[0]}
    result = {"valid_loss": float(np.mean(losses)), **means}
    if len(stores) > 1:
        for head, loss, own in zip(evaluated, losses, scores, strict=True):
            result |= {f"{key}/{head}": value for key, value in {"valid_loss": loss, **own}.items()}
    return result


# --------------------------------------------------------------------------- logging

TENSORBOARD_DIR = "tensorboard"
METRICS = "metrics.jsonl"


def tensorboard_tag(key: str, evaluation: bool) -> str:
    """The TensorBoard tag of a ``metrics.jsonl`` key: ``train/KEY`` in training records,
    ``valid/KEY`` in evaluations (``valid_`` dropped: ``valid_pearson/human`` →
    ``valid/pearson/human``)."""
    if evaluation:
        return "valid/" + key.removeprefix("valid_")
    return "train/" + key


class MetricsLog:
    """Rank 0's record of a run: ``metrics.jsonl`` and, with ``--tensorboard``, TensorBoard
    event files in ``RUN/tensorboard/`` holding the same values at the same steps.

    A record's ``step`` is TensorBoard's global step and its other values are scalars
    (:func:`tensorboard_tag`). Other ranks write nothing. A resumed run appends to both, each
    without what the interrupted run logged after its checkpoint (TensorBoard hides it by
    ``purge_step``; :func:`drop_abandoned_records` drops it from ``metrics.jsonl``).
    """

    def __init__(
        self, out: Path, enabled: bool, tensorboard: bool = False, resumed_at: int | None = None
    ):
        self.path = out / METRICS
        self.enabled = enabled
        self.writer = None
        if enabled and tensorboard:
            # Imported here: torch.utils.tensorboard needs the optional tensorboard package
            # (checked by check_inputs), which only --tensorboard runs need.
            from torch.utils.tensorboard import SummaryWriter

            purge = None if resumed_at is None else resumed_at + 1
            self.writer = SummaryWriter(str(out / TENSORBOARD_DIR), purge_step=purge)

    def write(self, record: dict) -> None:
        if not self.enabled:
            return
        with open(self.path, "a") as handle:
            handle.write(json.dumps(record) + "\n")
        if self.writer is not None:
            evaluation = "loss" not in record  # training records carry the training loss
            for key, value in record.items():
                if key != "step":
                    self.writer.add_scalar(tensorboard_tag(key, evaluation), value, record["step"])
            self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


# --------------------------------------------------------------------------- the loop


def _unwrap(model: torch.nn.Module) -> torch.nn.Module:
    model = getattr(model, "module", model)  # DDP
    return getattr(model, "_orig_mod", model)  # torch.compile


def _rng_state(device: torch.device) -> dict:
    """This process's generators: the CPU's and, training on a GPU, that GPU's (no other
    GPU's: a CPU run on a GPU machine would otherwise initialise CUDA)."""
    state = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def restore_rng(state: dict, device: torch.device, rank: int, seed: int, step: int) -> None:
    """Restore the generators a checkpoint saved, which are rank 0's (only rank 0 writes):
    rank 0 continues exactly where it stopped; any other rank draws a stream of its own,
    a function of (seed, rank, step), so dropout keeps differing by rank after a resume.

    The states are loaded on the CPU (``torch.set_rng_state`` takes CPU byte tensors only).
    A checkpoint of an earlier release holds every visible GPU's state as a list; a resumed
    process takes its own device's entry when there is one."""
    if rank:
        torch.manual_seed(seed + rank + 7919 * (step + 1))
        return
    torch.set_rng_state(state["torch"].cpu())
    cuda = state.get("cuda")
    if cuda is None or device.type != "cuda":
        return
    if isinstance(cuda, (list, tuple)):  # get_rng_state_all() of an earlier release
        index = device.index or 0
        cuda = cuda[index] if index < len(cuda) else None
    if cuda is not None:
        torch.cuda.set_rng_state(cuda.cpu(), device)


def train(cfg: TrainConfig) -> TrainSummary:
    """Train ``cfg.model`` on ``cfg.data`` in this process (one of many under torchrun).

    Call :func:`gitool.train.checks.check_inputs` first (``gitool train`` does, before
    launching processes).
    """
    stores, heads, task = open_stores(cfg)
    overrides = model_overrides(cfg, stores, heads, task)
    ctx = distributed.setup(cfg)
    try:
        return _train(cfg, Path(cfg.out), stores, heads, task, overrides, ctx)
    finally:
        distributed.cleanup()


def _train(cfg, out, stores, heads, task, overrides, ctx) -> TrainSummary:
    existed = out.exists()
    fresh = ctx.is_main and not cfg.resume and not (existed and any(out.iterdir()))
    try:
        run = TrainingRun(cfg, out, stores, heads, task, overrides, ctx)
        try:
            return run.run()
        finally:
            run.batches.close()
            run.log.close()
            with contextlib.suppress(Exception):  # (an error of its own was raised by run())
                run.saver.wait()
    except BaseException:
        if fresh and not (out / "checkpoints" / "last.pt").exists():
            _remove_run(out, keep_folder=existed)
        raise


def _remove_run(out: Path, keep_folder: bool) -> None:
    """Undo a run that stopped before its first checkpoint: with nothing to resume, its
    folder would only block the retry (an empty folder given as ``out`` stays, empty)."""
    if not keep_folder:
        shutil.rmtree(out, ignore_errors=True)
        return
    for child in out.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)


def start_run_folder(out: Path, cfg: TrainConfig, overrides: dict) -> None:
    """Rank 0 makes the run folder (or takes it up again), removes what killed runs left
    half-written, and writes ``config.yaml``: every resolved option."""
    out.mkdir(parents=True, exist_ok=True)
    for name in ("checkpoints/last.pt", "checkpoints/best.pt", "config.yaml", METRICS):
        remove_stale_stages(out / name)
    # resume is how this process was started, not an option of the run: the file, given to
    # --config, starts the same run afresh
    resolved = {**dataclasses.asdict(cfg), "resume": False, "model_config": overrides}
    with staged_file(out / "config.yaml") as tmp:
        tmp.write_text(yaml.safe_dump(resolved, sort_keys=False))


def drop_abandoned_records(path: Path, step: int, evaluated_at: int) -> None:
    """Keep the records of ``metrics.jsonl`` up to the checkpoint a run resumes from (at
    ``step``, last evaluated at ``evaluated_at``): what a killed run logged after it is
    logged again by the resumed run."""
    if not path.is_file():
        return
    kept = []
    for line in path.read_text().splitlines(keepends=True):
        try:
            record = json.loads(line)
            at = int(record["step"])
        except (ValueError, KeyError, TypeError):
            continue  # a line cut short by the kill
        evaluation = "loss" not in record
        if at < step or (at == step and (not evaluation or evaluated_at == step)):
            kept.append(line if line.endswith("\n") else line + "\n")
    with staged_file(path) as tmp:
        tmp.write_text("".join(kept))


def _limit_cpu_threads(cfg: TrainConfig) -> None:
    """Leave a core to each DataLoader worker: oversubscribed OpenMP threads spin against each
    other and slowed CPU training (and data loading) many times over."""
    cores = cpu_count() // max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
    torch.set_num_threads(min(torch.get_num_threads(), max(1, cores - cfg.num_workers)))


class LossWindow:
    """Training loss and throughput since the last log record."""

    def __init__(self) -> None:
        self.loss, self.batches, self.samples = 0.0, 0, 0
        self.began = time.perf_counter()

    def add(self, loss: torch.Tensor, samples: int) -> None:
        self.loss += loss.detach()  # no .item(): do not wait for the GPU
        self.batches += 1
        self.samples += samples

    def leave_out(self, seconds: float) -> None:
        """Time spent on something else (an evaluation): not counted in the rate."""
        self.began += seconds

    def mean_and_rate(self) -> tuple[float, float]:
        """(mean loss per batch over every rank's batches, samples per second of the whole
        run: :meth:`add` counts every rank's)."""
        elapsed = time.perf_counter() - self.began
        loss = torch.as_tensor(self.loss / self.batches, dtype=torch.float32)
        return float(distributed.mean_over_ranks(loss)), self.samples / max(elapsed, 1e-9)


class TrainingRun:
    """One process's share of a run: set-up (model, data, optimizer, resumed state) in the
    constructor, then :meth:`run`: batches (:meth:`accumulate`), optimizer steps
    (:meth:`optimizer_step`), log records (:meth:`log_step`), evaluations (:meth:`evaluate`)
    and checkpoints (:meth:`checkpoint`) until the budget or patience runs out."""

    def __init__(self, cfg: TrainConfig, out: Path, stores, heads, task, overrides, ctx):
        self.cfg, self.out, self.ctx = cfg, out, ctx
        self.stores, self.heads, self.task = stores, heads, task
        if ctx.device.type == "cpu":
            _limit_cpu_threads(cfg)
        torch.manual_seed(cfg.seed)  # identical initial weights on every rank
        model = build_model(cfg, overrides)
        if cfg.checkpoint_activations:
            blocks = model.checkpoint_activations() if hasattr(model, "checkpoint_units") else 0
            if blocks:
                info(f"activation checkpointing: {blocks} blocks recomputed in the backward pass")
            else:
                warn(
                    f"{opt('checkpoint_activations')}: {cfg.model} has no blocks to "
                    "recompute (convolutions with batch norm only); training as usual"
                )
        task.initialise(model, stores, heads)  # identical on every rank (replaced by --resume)
        self.track_weights = {
            head: w.to(ctx.device) for head, w in task.track_weights(cfg, stores, heads).items()
        }
        self.strand_pairs = task.strand_pairs(stores, heads, ctx.device)
        self.model = distributed.sync_batch_norm(model.to(ctx.device), ctx)
        self.model_name, self.model_config = resolve(cfg.model, **overrides)
        task.check_resident(stores, cfg, ctx.device)
        self.batches = Batches(cfg, stores, heads, task, ctx)
        self.steps_per_epoch = self.batches.per_epoch // cfg.grad_accum
        if self.steps_per_epoch == 0:
            raise InputError(
                f"{cfg.grad_accum} is more than the {self.batches.per_epoch} batches of an "
                f"epoch, so no step would be taken; lower {opt('grad_accum')} or "
                f"{opt('batch_size')}",
                field="grad_accum",
            )
        # the budget: whichever of --epochs and --max-steps ends first; the schedule ends there
        by_epochs = cfg.epochs * self.steps_per_epoch
        self.total = min(cfg.max_steps, by_epochs) if cfg.max_steps else by_epochs
        cosine = cfg.schedule == "cosine"
        if cfg.warmup_steps and (
            cfg.warmup_steps > self.total or (cosine and cfg.warmup_steps == self.total)
        ):
            top = min(1.0, self.total / cfg.warmup_steps) * cfg.lr
            warn(
                f"{opt('warmup_steps')} {cfg.warmup_steps:,} is not shorter than the run's "
                f"{self.total:,} steps: the rate rises for the whole run, to {top:.3g} at its "
                f"last step ({opt('lr')} {cfg.lr:g})"
                + (", and the cosine decay never starts" if cosine else "")
                + f"; lower {opt('warmup_steps')} or train longer"
            )
        cuda = ctx.device.type == "cuda"
        if cuda:  # the convolutions' fastest kernels for the (fixed) window shapes
            torch.backends.cudnn.benchmark = True
        # fused: one kernel for all parameters on the GPU instead of several per tensor
        self.optimizer = torch.optim.Adam(
            self.model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, fused=cuda or None
        )
        self.scheduler = make_scheduler(cfg, self.optimizer, self.total)
        self.anchor: tuple[int, float] | None = None  # the schedule's (see lr_lambda)
        self.valid_spread = True  # --valid-windows spread over the split (see validate)
        self.step, self.epoch, self.position = 0, 0, 0
        self.saver = CheckpointWriter()
        self.last_checkpoint = time.monotonic()
        self.best: float | None = None
        self.evaluated_at = -1
        self.patience = Patience(cfg.min_delta)
        self.stopped = "budget"
        if cfg.resume:
            self._resume()
        else:
            torch.manual_seed(cfg.seed + ctx.rank)  # dropout differs by rank, as batches do
        if ctx.is_main:
            start_run_folder(out, cfg, overrides)
            if cfg.resume:
                drop_abandoned_records(out / METRICS, self.step, self.evaluated_at)
        self.net = self._wrap(self.model)
        on_gpu = ctx.device.type == "cuda"
        self.autocast = (
            torch.autocast("cuda", dtype=torch.bfloat16) if on_gpu and cfg.bf16 else nullcontext()
        )
        self.data_info = [
            {"path": str(s.path.resolve()), "head": h, "manifest": s.manifest}
            for s, h in zip(stores, heads, strict=True)
        ]
        self.log = MetricsLog(
            out, ctx.is_main, cfg.tensorboard, resumed_at=self.step if cfg.resume else None
        )

    # ----------------------------------------------------------------------- set-up

    def _resume(self) -> None:
        out, cfg = self.out, self.cfg
        # On the CPU: the RNG states must stay there, and load_state_dict copies the rest to
        # the parameters' device (the optimizer's state too).
        state = load_checkpoint(out / "checkpoints" / "last.pt", map_location="cpu")
        self.model.load_state_dict(state["model"], strict=True)
        self.step, self.epoch, self.position = state["step"], state["epoch"], state["batch"]
        self._continue_schedule(state.get("schedule") or self._old_schedule(state))
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self._next_rate()
        self.best = state["best"]
        self.patience = Patience(
            cfg.min_delta, state.get("patience_ref", self.best), state["bad_evals"]
        )
        self.evaluated_at = state.get("evaluated_at", -1)
        # a checkpoint from before spread validation subsets keeps its run's first windows
        self.valid_spread = state.get("valid_selection", "first") == "spread"
        restore_rng(state["rng"], self.ctx.device, self.ctx.rank, cfg.seed, self.step)
        info(f"resuming {out} at step {self.step} (epoch {self.epoch}, batch {self.position})")

    def _next_rate(self) -> None:
        """Set the rate of the next step from the schedule (a warm-up/cosine or constant
        one): the optimizer's saved state holds the rate of the old schedule, 0 for a run
        that had finished its budget, which the first resumed step would otherwise take."""
        scheduler = self.scheduler
        if not isinstance(scheduler, torch.optim.lr_scheduler.LambdaLR):
            return  # plateau: the saved rate is the schedule's
        for group, base, factor in zip(
            self.optimizer.param_groups, scheduler.base_lrs, scheduler.lr_lambdas, strict=True
        ):
            group["lr"] = base * factor(scheduler.last_epoch)

    def _old_schedule(self, state: dict) -> dict:
        """The schedule of a checkpoint written before checkpoints recorded it."""
        saved = state.get("train_config") or {}
        epochs = saved.get("epochs", self.cfg.epochs) * self.steps_per_epoch
        return {"total": saved.get("max_steps") or epochs, "anchor": None}

    def _continue_schedule(self, saved: dict | None) -> None:
        """Rebuild the cosine schedule of a resumed run whose budget changed so that it goes
        on from the rate it had (the checkpoint's ``schedule``: its total and anchor)."""
        cfg = self.cfg
        self.anchor = None
        if cfg.schedule != "cosine" or not saved:
            return
        anchor = tuple(saved["anchor"]) if saved.get("anchor") else None
        if saved["total"] != self.total and self.step >= cfg.warmup_steps:
            if self.step < saved["total"]:  # interrupted: go on from its rate
                before = lr_lambda(cfg.warmup_steps, saved["total"], anchor)
                anchor = (self.step, before(self.step))
            else:  # it had finished its budget (rate 0): the longer curve restarts here
                anchor = None
                rate = lr_lambda(cfg.warmup_steps, self.total)(self.step) * cfg.lr
                info(
                    f"the run had finished its {saved['total']:,} steps; the cosine over "
                    f"{self.total:,} steps restarts at rate {rate:.3g}"
                )
        self.anchor = anchor
        self.scheduler = make_scheduler(cfg, self.optimizer, self.total, anchor)

    def _wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        """The module the loop runs: compiled (``--compile``; by default on CUDA only) and
        DDP-wrapped (> 1 process)."""
        compile_model = self.cfg.compile
        if compile_model is None:
            compile_model = self.ctx.device.type == "cuda"
            if compile_model:
                info(
                    "compiling the model with torch.compile (the default on GPUs; --no-compile to skip)"
                )
        if compile_model:
            # One graph per head, mode (training, validation) and a short last batch: many
            # heads would pass dynamo's default of 8 and silently run the rest eagerly.
            # (cache_size_limit: the name on every supported torch; later ones alias it.)
            limit = torch._dynamo.config.cache_size_limit
            torch._dynamo.config.cache_size_limit = max(limit, 4 * len(self.heads))
        # Compiled inside DDP, as PyTorch's "Where to apply torch.compile?" advises (dynamo
        # does not trace DDP's wrapper well).
        net = torch.compile(model) if compile_model else model
        if self.ctx.world > 1:
            # each step uses one head: with several, the others' parameters are unused
            net = distributed.data_parallel(net, self.ctx, find_unused=len(self.heads) > 1)
        return net

    # ----------------------------------------------------------------------- the steps

    def checkpoint(self, name: str) -> None:
        """Rank 0 writes ``checkpoints/{name}.pt``: everything a resumed run needs. The state
        is copied to the host now and written in the background (:class:`CheckpointWriter`),
        so the next steps run meanwhile."""
        if not self.ctx.is_main:
            return
        self.last_checkpoint = time.monotonic()
        self.saver.save(
            self.out / "checkpoints" / f"{name}.pt",
            {
                "model_name": self.model_name,
                "preset": self.cfg.model,
                "model_config": dataclasses.asdict(self.model_config),
                "model": _unwrap(self.model).state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(),
                "scaler": None,
                "step": self.step,
                "epoch": self.epoch,
                "batch": self.position,
                "rng": _rng_state(self.ctx.device),
                "train_config": dataclasses.asdict(self.cfg),
                "processes": self.ctx.world,
                "data": self.data_info,
                "best": self.best,
                "bad_evals": self.patience.bad,
                "patience_ref": self.patience.ref,
                "evaluated_at": self.evaluated_at,
                "schedule": {"total": self.total, "anchor": self.anchor},
                "valid_selection": "spread" if self.valid_spread else "first",
            },
        )

    def evaluate(self) -> bool:
        """Score the valid split, log it, keep ``best.pt``; True when patience says stop."""
        cfg = self.cfg
        self.evaluated_at = self.step
        # Validate the module DDP wraps: no collectives of DDP's own (CAN's BatchNorm buffers
        # would be broadcast, and a rank without validation batches would never join).
        net = self.net
        module = net.module if isinstance(net, torch.nn.parallel.DistributedDataParallel) else net
        distributed.broadcast_buffers(module)  # every rank validates rank 0's model
        scores = validate(
            module, self.stores, self.heads, self.task, cfg, self.ctx, self.autocast,
            self.valid_spread,
        )  # fmt: skip
        if not scores:
            return False
        score = scores[self.task.score]
        best = self.best
        improved = not math.isnan(score) and (best is None or math.isnan(best) or score > best)
        if improved:
            self.best = score
        self.patience.update(score)
        if cfg.schedule == "plateau":
            self.scheduler.step(score)
            scores["lr"] = self.optimizer.param_groups[0]["lr"]
        self.log.write({"step": self.step, "epoch": self.epoch, **scores})
        if improved:
            self.checkpoint("best")
        return cfg.patience is not None and self.patience.bad >= cfg.patience

    def accumulate(self, i: int, batch, head: str, window: LossWindow) -> bool:
        """Forward and backward one host batch (batch ``i`` of the epoch); True when it
        completes an optimizer step's ``grad_accum`` batches.

        The batch goes to the device as it is (non-blocking), and there it is augmented and
        expanded to one-hot (the task's ``device_batch``: for coverage stores
        :func:`~gitool.data.loader.augment_batch`, then
        :func:`~gitool.data.dataset.codes_to_one_hot`)."""
        cfg, ctx = self.cfg, self.ctx
        x, y = self.task.device_batch(batch, ctx.device, self.strand_pairs.get(head))
        last_of_step = (i + 1) % cfg.grad_accum == 0
        sync = self.net.no_sync() if ctx.world > 1 and not last_of_step else nullcontext()
        with sync:
            with self.autocast:
                out = self.task.forward(self.net, x, head)
            loss = self.task.loss(out, y, self.track_weights.get(head))
            (loss / cfg.grad_accum).backward()
        window.add(loss, len(x) * ctx.world)
        self.position = i + 1
        return last_of_step

    def optimizer_step(self) -> None:
        self.step_lr = self.optimizer.param_groups[0]["lr"]  # the rate this step runs at
        if self.cfg.grad_clip:
            torch.nn.utils.clip_grad_norm_(self.net.parameters(), self.cfg.grad_clip)
        self.optimizer.step()
        if self.cfg.schedule != "plateau":
            self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.step += 1

    def log_step(self, window: LossWindow, advance) -> None:
        """Log the loss, learning rate and throughput since the last record."""
        mean, rate = window.mean_and_rate()
        self.log.write(
            {
                "step": self.step,
                "epoch": self.epoch,
                "loss": mean,
                "lr": self.step_lr,
                "samples_per_s": rate,
            }
        )
        advance(0, description=f"training {self.cfg.model}: loss {mean:.4f}, {rate:.1f} samples/s")

    def after_step(self, window: LossWindow, advance) -> LossWindow:
        """Log, evaluate and checkpoint as due after an optimizer step; the loss window to
        go on with (a fresh one after a log record)."""
        cfg, step = self.cfg, self.step
        if step % cfg.log_every == 0 or step == self.total:
            self.log_step(window, advance)
            window = LossWindow()
        advance(1)
        if cfg.eval_every and step % cfg.eval_every == 0:
            began = time.perf_counter()
            if self.evaluate():
                self.stopped = "patience"
            window.leave_out(time.perf_counter() - began)  # samples/s: training alone
        minutes = cfg.checkpoint_minutes
        if step % cfg.checkpoint_every == 0 or (
            minutes and time.monotonic() - self.last_checkpoint >= 60 * minutes
        ):
            self.checkpoint("last")
        return window

    def end_epoch(self) -> None:
        # scored as the epoch just finished (each epoch's end without --eval-every, and the
        # run's last one in any case; a run resumed after its budget ended has scored this
        # step already); the checkpoint then stands at the next epoch's start
        last = self.epoch + 1 >= self.cfg.epochs or self.step >= self.total
        due = not self.cfg.eval_every or last
        if due and self.evaluated_at != self.step and self.evaluate():
            self.stopped = "patience"
        self.epoch, self.position = self.epoch + 1, 0
        self.checkpoint("last")

    def done(self) -> bool:
        return self.stopped == "patience" or self.step >= self.total

    # ----------------------------------------------------------------------- the loop

    def run(self) -> TrainSummary:
        self.net.train()
        window = LossWindow()
        with progress(f"training {self.cfg.model}", self.total) as advance:
            advance(self.step)
            while self.epoch < self.cfg.epochs and self.step < self.total:
                for i, batch, head in self.batches.epoch(self.epoch, self.position):
                    if i >= self.steps_per_epoch * self.cfg.grad_accum:
                        continue  # a partial accumulation would spill into the next epoch
                    if not self.accumulate(i, batch, head, window):
                        continue
                    self.optimizer_step()
                    window = self.after_step(window, advance)
                    if self.done():
                        break
                else:
                    began = time.perf_counter()
                    self.end_epoch()
                    window.leave_out(time.perf_counter() - began)
                if self.done():
                    break
        if self.evaluated_at != self.step:  # the budget ended between evaluations: score the
            self.evaluate()  # final weights
        if self.position >= self.steps_per_epoch * self.cfg.grad_accum:  # the budget ended
            self.epoch, self.position = self.epoch + 1, 0  # on an epoch's last step
        self.checkpoint("last")
        self.saver.wait()  # the run's files are complete when train() returns
        distributed.barrier()
        score = "mean AUPR" if self.task.kind == "classification" else "mean Pearson"
        return TrainSummary(self.out, self.step, self.epoch, self.best, self.stopped, score)
