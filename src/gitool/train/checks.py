"""What ``gitool train`` checks once, before any process starts and before the run folder
is made: the options that depend on each other, the run folder (claimed through
:class:`~gitool.files.Outputs`: never inside or over a store), the stores and the splits
training needs, the augmentation against the stores' windows, the model against the data,
and on ``resume`` the checkpoint and the options the run must keep. The options' ranges
were checked when the :class:`~gitool.config.TrainConfig` was made."""

from __future__ import annotations

import dataclasses
import importlib.util
from pathlib import Path

import torch

from gitool.config import TrainConfig
from gitool.config.train import RESUME_FIXED
from gitool.console import warn
from gitool.data.labels import LabelStore
from gitool.data.store import data_changes, read_manifest
from gitool.errors import InputError, opt
from gitool.files import Outputs
from gitool.models.registry import resolve
from gitool.runs import checkpoint_metadata, load_checkpoint
from gitool.train import distributed
from gitool.train.loop import SCHEDULES, build_model, model_overrides
from gitool.train.losses import TRACK_WEIGHTS
from gitool.train.tasks import open_stores


def check_inputs(cfg: TrainConfig) -> None:
    """Everything that can be wrong with the inputs, checked once before any process starts
    or any file is written (:class:`InputError` naming the option)."""
    check_options(cfg)
    processes = distributed.processes_per_node(cfg)[0] * cfg.nodes
    stores, heads, task = open_stores(cfg)
    if cfg.resume and _has_checkpoint(Path(cfg.out)):
        # first: another store's sizes and heads change the model's too, and the data is
        # what differs
        last = Path(cfg.out) / "checkpoints" / "last.pt"
        _check_same_data(cfg, checkpoint_metadata(last).get("data") or [], last)
    overrides = model_overrides(cfg, stores, heads, task)
    claim_run_folder(cfg)
    check_splits(cfg, stores, processes)
    check_shift(cfg, stores, task)
    if task.kind == "classification" and cfg.batch_size < 2:
        raise InputError(
            f"{cfg.batch_size}: CAN models normalise their dense layer over the batch "
            "(BatchNorm) and need batches of at least 2",
            field="batch_size",
        )
    with torch.device("meta"):
        build_model(cfg, overrides)
    if cfg.resume:
        check_resume(cfg, overrides, processes)


def check_options(cfg: TrainConfig) -> None:
    """The options that no range covers: names, and options that depend on each other."""
    if cfg.schedule not in SCHEDULES:
        raise InputError(f"{cfg.schedule!r}: choose from {', '.join(SCHEDULES)}", field="schedule")
    if cfg.track_weights not in TRACK_WEIGHTS:
        raise InputError(
            f"{cfg.track_weights!r}: choose from {', '.join(TRACK_WEIGHTS)}", field="track_weights"
        )
    # (a run an older gitool saved with both resumes as it ran: without a warm-up)
    if cfg.schedule == "plateau" and cfg.warmup_steps and not cfg.resume:
        raise InputError(
            f"does not apply to {opt('schedule')} plateau, which starts at {opt('lr')} and "
            "decays when the validation score stalls; leave it out, or use the cosine or "
            "constant schedule",
            field="warmup_steps",
        )
    if cfg.node_rank >= cfg.nodes:
        raise InputError(
            f"must be below {opt('nodes')} ({cfg.nodes}), got {cfg.node_rank}", field="node_rank"
        )
    if cfg.nodes > 1 and not cfg.rdzv_endpoint:
        raise InputError(
            f"> 1 needs {opt('rdzv_endpoint')} HOST:PORT (the same on every node)", field="nodes"
        )
    if cfg.tensorboard and importlib.util.find_spec("tensorboard") is None:
        raise InputError(
            "needs the tensorboard package: pip install 'gitool[tensorboard]' "
            "(or pip install tensorboard)",
            field="tensorboard",
        )


def _has_checkpoint(run: Path) -> bool:
    return (run / "checkpoints" / "last.pt").is_file()


def resumed_checkpoint(out: str | Path) -> Path:
    """``out``'s ``checkpoints/last.pt``, which ``resume`` continues from.

    Raises:
        InputError: there is none (field ``resume``).
    """
    last = Path(out) / "checkpoints" / "last.pt"
    if not last.is_file():
        held = "" if Path(out).is_dir() else f" ({out} is not a folder)"
        raise InputError(
            f"{last} does not exist{held}; start the run without {opt('resume')}, or give "
            f"{opt('out')} the run folder to continue",
            field="resume",
        )
    return last


def claim_run_folder(cfg: TrainConfig) -> Path:
    """The run folder: new (or empty), or on ``resume`` one with ``checkpoints/last.pt``;
    never a store given as ``data``, inside one or holding one."""
    out = Path(cfg.out)
    last = out / "checkpoints" / "last.pt"
    if cfg.resume:
        resumed_checkpoint(out)
    if not cfg.resume and out.is_dir() and any(out.iterdir()):
        what = (
            f"continue it with {opt('resume')}, or give"
            if last.is_file()
            else "it holds no checkpoint to resume; give"
        )
        raise InputError(
            f"{out}: the run folder already exists (a run is never written over); {what} a "
            "new one such as runs/NAME",
            field="out",
        )
    # force: an empty folder may be used, a run folder only when resumed (checked above)
    outputs = Outputs(force=True, inputs=cfg.data, force_option=False)
    return outputs.folder(out, _has_checkpoint, "a run folder made by `gitool train`")


def _fix_split(split: str, store) -> str:
    if isinstance(store, LabelStore):
        return "regenerate it with `gitool synth-motifs --split-fractions`"
    return f"rebuild it with `gitool build-dataset` ({split} windows by --{split}-chroms or --split-fractions)"


def check_splits(cfg: TrainConfig, stores: list, processes: int) -> None:
    """Every store has train windows for a batch on each process and valid windows to score
    (and choose ``best.pt``) by, and their arrays open."""
    for store in stores:
        for split in ("train", "valid"):
            n = store.count(split)
            if n == 0:
                raise InputError(
                    f"{store.path}: the {split} split has no windows, and training needs it; "
                    f"{_fix_split(split, store)}",
                    field="data",
                )
            _check_arrays(store, split, n)
        per_process = store.count("train") // processes
        if per_process < cfg.batch_size:
            raise InputError(
                f"{cfg.batch_size} × {processes} process(es) is more than the "
                f"{store.count('train')} training windows of {store.path}; use a smaller batch",
                field="batch_size",
            )


def _check_arrays(store, split: str, n: int) -> None:
    """The split's arrays open and hold the ``n`` windows its manifest counts."""
    values = store.labels(split) if isinstance(store, LabelStore) else store.targets(split)
    for array in (store.sequences(split), values):
        if len(array) != n:
            raise InputError(
                f"{store.path}: the {split} split holds {len(array)} windows, its manifest "
                f"says {n}; the store is damaged, rebuild it",
                field="data",
            )


def check_shift(cfg: TrainConfig, stores: list, task) -> None:
    """The shift augmentation moves a window by at most half its length."""
    if task.kind != "coverage":
        return
    seq_length = int(stores[0].manifest["seq_length"])
    limit = seq_length // 2
    if cfg.shift > limit:
        raise InputError(
            f"must be at most {limit} bp (half the {seq_length}-bp window of {stores[0].path}), "
            f"got {cfg.shift}",
            field="shift",
        )
    bin_size = int(stores[0].manifest["bin_size"])
    if cfg.shift > max(3, bin_size // 2):  # 3: the default, Basenji's and Enformer's
        warn(
            f"{opt('shift')} {cfg.shift} moves the input by more than half a {bin_size}-bp "
            f"bin while the targets stay where they are (as in Basenji), so targets sit up "
            f"to {cfg.shift / bin_size:.1f} bins off the sequence that made them; Basenji "
            "and Enformer shift by at most 3 bp"
        )


def changed_options(cfg: TrainConfig, saved: dict) -> list[str]:
    """The :data:`~gitool.config.train.RESUME_FIXED` fields whose value differs from the
    run's (``saved``: its training options)."""
    return [k for k in RESUME_FIXED if k in saved and saved[k] != getattr(cfg, k)]


def _check_same_data(cfg: TrainConfig, trained: list, last: Path) -> None:
    """Each store of a resumed run must hold the data the run trained on (its checkpoint
    keeps each store's manifest): a store rebuilt with other tracks, in another order, or
    with other windows — or another store at the same path — would change what each output
    learns, silently."""
    for path, entry in zip(cfg.data or [], trained, strict=False):
        saved = entry.get("manifest") if isinstance(entry, dict) else None
        if not isinstance(saved, dict) or not Path(path, "manifest.yaml").is_file():
            continue  # (a missing store is named when it is opened)
        changed = data_changes(saved, read_manifest(Path(path, "manifest.yaml")))
        if changed:
            raise InputError(
                f"{path} is not the store {last} was trained on (its {', '.join(changed)} "
                f"differ from {entry.get('path') or 'the recorded store'}'s); resume with the "
                f"run's own data ({opt('data')} that store), or start a new run",
                field="data",
            )


def check_resume(cfg: TrainConfig, overrides: dict, processes: int) -> None:
    """The checkpoint reads, holds this model, and was trained with the options that shape
    the optimisation as this run asks for them, by as many processes (the global batch and
    where each process's sampler resumes depend on it)."""
    out = Path(cfg.out)
    last = out / "checkpoints" / "last.pt"
    state = load_checkpoint(last)
    before = state.get("processes")  # None: a checkpoint from before it was recorded
    if before is not None and before != processes:
        raise InputError(
            f"{last} was trained by {before} process(es) but this run has {processes}; the "
            f"global batch and the sampler's position depend on it — resume with "
            f"{opt('gpus')}/{opt('procs')}/{opt('nodes')} giving {before}",
            field="resume",
        )
    _, config = resolve(cfg.model, **overrides)
    now = dataclasses.asdict(config)
    if state["model_config"] != now:
        was = state["model_config"] if isinstance(state["model_config"], dict) else {}
        keys = [k for k in dict.fromkeys([*was, *now]) if was.get(k) != now.get(k)]
        shown = "; ".join(f"{k} {was.get(k)!r} there, {now.get(k)!r} here" for k in keys[:3])
        more = f" (and {len(keys) - 3} more)" if len(keys) > 3 else ""
        model = state.get("preset") or state.get("model_name")
        raise InputError(
            f"{last} holds a different model configuration than this run's ({shown}{more}); "
            f"resume with the run's own model, {model}, and model_config: leave them out",
            field="resume",
        )
    saved = state.get("train_config") or {}
    changed = changed_options(cfg, saved)
    if changed:
        was = ", ".join(f"{opt(k)} {saved[k]!r}" for k in changed)
        now = ", ".join(f"{opt(k)} {getattr(cfg, k)!r}" for k in changed)
        raise InputError(
            f"{last} was trained with {was}; this run asks for {now}. A resumed run keeps "
            f"the options that shape its optimisation: leave them out (the run's own are "
            f"used) or pass {opt('config')} {out / 'config.yaml'}",
            field="resume",
        )
