"""One process or many: torchrun re-launch, process-group set-up, rank-0 helpers.

``gitool train --gpus N`` (N ≥ 2), ``--procs N`` or ``--nodes M`` re-launches gitool through
``torch.distributed.run`` (torchrun); each child finds ``RANK``/``WORLD_SIZE``/``LOCAL_RANK``
in its environment and joins the process group: NCCL on GPUs, gloo on CPUs.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass

import torch
import torch.distributed as dist

from gitool.config import TrainConfig
from gitool.errors import InputError, opt


@dataclass(frozen=True)
class Context:
    rank: int
    world: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def inside_torchrun() -> bool:
    return "LOCAL_RANK" in os.environ and "WORLD_SIZE" in os.environ


def processes_per_node(cfg: TrainConfig) -> tuple[int, bool]:
    """``(processes on this node, on GPU?)`` from ``--gpus``/``--procs``; checks the GPUs."""
    available = torch.cuda.device_count()
    gpus = available if cfg.gpus is None else cfg.gpus
    if gpus > available:
        raise InputError(
            f"{gpus}: this machine has {available} visible GPU(s); use {opt('gpus')} 0 (CPU) "
            f"or {opt('procs')} N for several CPU processes",
            field="gpus",
        )
    if gpus and cfg.procs > 1:
        raise InputError(
            f"is for CPU training; with GPUs use {opt('gpus')} N (one process per GPU)",
            field="procs",
        )
    return (gpus, True) if gpus else (cfg.procs, False)


def needs_launch(cfg: TrainConfig) -> bool:
    n, _ = processes_per_node(cfg)
    return not inside_torchrun() and (n > 1 or cfg.nodes > 1)


RELAUNCH_GRACE_S = 60
"""Seconds torchrun gets to stop its workers after the launcher is interrupted."""


def relaunch(cfg: TrainConfig, config_file: str) -> int:
    """Run ``python -m torch.distributed.run ... -m gitool train --config FILE``; its exit code."""
    n, _ = processes_per_node(cfg)
    cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc-per-node={n}"]
    if cfg.nodes > 1:
        if not cfg.rdzv_endpoint:
            raise InputError(
                f"{opt('nodes')} > 1 needs {opt('rdzv_endpoint')} HOST:PORT (the same on every "
                "node)"
            )
        cmd += [f"--nnodes={cfg.nodes}", f"--node-rank={cfg.node_rank}",
                "--rdzv-backend=c10d", f"--rdzv-endpoint={cfg.rdzv_endpoint}"]  # fmt: skip
    else:
        cmd += ["--standalone"]
    cmd += ["-m", "gitool", "train", "--config", config_file]
    proc = subprocess.Popen(cmd)
    try:
        return proc.wait()
    except BaseException:
        # SIGTERM or Ctrl-C here: pass it on as SIGTERM, which torchrun forwards to its
        # workers so each cleans up (a SIGKILL would orphan them), then wait for them.
        proc.terminate()
        try:
            proc.wait(timeout=RELAUNCH_GRACE_S)
        except subprocess.TimeoutExpired:
            proc.kill()
        raise


def setup(cfg: TrainConfig) -> Context:
    """Join the process group when launched by torchrun; pick this process's device."""
    _, on_gpu = processes_per_node(cfg)
    if inside_torchrun() and int(os.environ["WORLD_SIZE"]) > 1:
        local_rank = int(os.environ["LOCAL_RANK"])
        if on_gpu:
            torch.cuda.set_device(local_rank)
        dist.init_process_group(backend="nccl" if on_gpu else "gloo")
        device = torch.device("cuda", local_rank) if on_gpu else torch.device("cpu")
        return Context(dist.get_rank(), dist.get_world_size(), local_rank, device)
    device = torch.device("cuda", 0) if on_gpu else torch.device("cpu")
    return Context(0, 1, 0, device)


def sync_batch_norm(model: torch.nn.Module, ctx: Context) -> torch.nn.Module:
    """BatchNorm layers that pool batch statistics over all ranks, for multi-GPU training.

    Without it each GPU normalises with the statistics of its own ``--batch-size`` windows
    (the batch size is per process), not of the global batch, so training noise and the
    running statistics depend on the GPU count. ``torch.nn.SyncBatchNorm`` runs on GPUs only; on
    CPU (gloo) ranks, and in a single process, the model is returned unchanged. The state
    dict keys do not change, so checkpoints load into the plain model.
    """
    if ctx.world > 1 and ctx.device.type == "cuda":
        return torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    return model


def data_parallel(
    net: torch.nn.Module, ctx: Context, *, find_unused: bool
) -> torch.nn.parallel.DistributedDataParallel:
    """``net`` under DDP, gradients kept in the all-reduce buckets (no copy).

    DDP broadcasts every buffer from rank 0 before each forward (BatchNorm statistics on CPU
    ranks need that). The attention's masks and positional bases are buffers too, built from
    the config and never changed (25 MiB for swin-basenji-small): they are left out.
    """
    from gitool.models.layers import CONSTANT_BUFFERS

    net._ddp_params_and_buffers_to_ignore = [
        name for name, _ in net.named_buffers() if name.rsplit(".", 1)[-1] in CONSTANT_BUFFERS
    ]
    return torch.nn.parallel.DistributedDataParallel(
        net,
        device_ids=[ctx.local_rank] if ctx.device.type == "cuda" else None,
        find_unused_parameters=find_unused,
        gradient_as_bucket_view=True,
    )


def cleanup() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def _joined() -> bool:
    """True in a process group of more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def barrier() -> None:
    if _joined():
        dist.barrier()


def mean_over_ranks(value: torch.Tensor) -> torch.Tensor:
    """The mean of a scalar tensor over all ranks (itself in one process)."""
    if not _joined():
        return value
    total = value.detach().clone().float()
    dist.all_reduce(total)
    return total / dist.get_world_size()


def broadcast_buffers(module: torch.nn.Module) -> None:
    """Rank 0's buffers (BatchNorm running statistics) on every rank, before a validation
    that runs the unwrapped module: on CPU ranks each rank's last batch updated its own, so
    the ranks would validate different models. The constant buffers are left out."""
    if not _joined():
        return
    from gitool.models.layers import CONSTANT_BUFFERS

    for name, buffer in module.named_buffers():
        if name.rsplit(".", 1)[-1] not in CONSTANT_BUFFERS:
            dist.broadcast(buffer, 0)


def broadcast_flag(flag: bool, device: torch.device) -> bool:
    """Rank 0's decision (e.g. early stop) for every rank."""
    if not _joined():
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.broadcast(t, 0)
    return bool(t.item())
