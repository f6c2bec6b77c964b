"""``gitool train``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from gitool.cli.app import app
from gitool.cli.options import ranged
from gitool.config import TrainConfig as T
from gitool.console import info


@app.command("train")
def train_command(
    data: Annotated[
        list[Path] | None,
        typer.Option(
            "--data",
            help="Store folder(s) from `gitool build-dataset` (coverage) or `gitool synth-motifs` (labels, for can-* models). Repeat for several coverage datasets with their own heads (batches alternate). Default: the store data/ in the current folder (what `gitool build-dataset` writes).",
        ),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(
            help=f"Model or preset name (see `gitool models`). Default: {T.model}. Input length, bins and track or task counts follow the data."
        ),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            help="YAML file with any of these options (snake_case keys) plus model_config; flags given here override it."
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "-o",
            "--out",
            help="Run folder: config.yaml, metrics.jsonl, checkpoints/{last,best}.pt. Default: runs/run, or runs/run-2, runs/run-3, ... when taken (a run folder is never written over); with --resume, the newest run under runs/.",
        ),
    ] = None,
    heads: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated head name per --data (default: each store folder's name)."
        ),
    ] = None,
    gpus: Annotated[
        int | None,
        typer.Option(
            help=ranged(
                T,
                "gpus",
                "GPUs on this node (default: all visible; 0 = CPU; more than are visible is an error). 2 or more re-launch gitool through torchrun with DDP/NCCL.",
            )  # fmt: skip
        ),
    ] = None,
    procs: Annotated[
        int | None,
        typer.Option(
            help=ranged(T, "procs", f"CPU processes (gloo DDP) when --gpus 0. Default: {T.procs}.")
        ),
    ] = None,
    nodes: Annotated[
        int | None,
        typer.Option(
            help=ranged(
                T, "nodes", f"Machines in the job (with --rdzv-endpoint). Default: {T.nodes}."
            )
        ),
    ] = None,
    node_rank: Annotated[
        int | None,
        typer.Option(
            help=ranged(
                T,
                "node_rank",
                f"This machine's rank among --nodes (below it). Default: {T.node_rank}.",
            )
        ),
    ] = None,
    rdzv_endpoint: Annotated[
        str | None, typer.Option(help="HOST:PORT every node can reach, for --nodes > 1.")
    ] = None,
    batch_size: Annotated[
        int | None,
        typer.Option(
            help=ranged(
                T,
                "batch_size",
                f"Windows per batch per process (Genomic Interpreter: 8 per GPU). Default: {T.batch_size}.",
            )  # fmt: skip
        ),
    ] = None,
    grad_accum: Annotated[
        int | None,
        typer.Option(
            help=ranged(T, "grad_accum", f"Batches per optimizer step. Default: {T.grad_accum}.")
        ),
    ] = None,
    lr: Annotated[
        float | None,
        typer.Option(
            help=ranged(
                T,
                "lr",
                f"Adam learning rate (Genomic Interpreter: 3e-4; the GLIFAC paper: 1e-3). Default: {T.lr:g}.",
            )  # fmt: skip
        ),
    ] = None,
    schedule: Annotated[
        str | None,
        typer.Option(
            help="Learning-rate schedule: cosine (to 0 over the run; default), plateau (× --lr-decay after --lr-patience evaluations without a better valid score; the GLIFAC paper) or constant."
        ),
    ] = None,
    lr_decay: Annotated[
        float | None,
        typer.Option(
            help=ranged(T, "lr_decay", f"plateau: factor per decay. Default: {T.lr_decay}.")
        ),
    ] = None,
    lr_patience: Annotated[
        int | None,
        typer.Option(
            help=ranged(
                T,
                "lr_patience",
                f"plateau: evaluations without improvement before a decay. Default: {T.lr_patience}.",
            )  # fmt: skip
        ),
    ] = None,
    warmup_steps: Annotated[
        int | None,
        typer.Option(
            help=ranged(
                T,
                "warmup_steps",
                f"Linear warm-up steps before the cosine or constant schedule. Default: {T.warmup_steps}.",
            )  # fmt: skip
        ),
    ] = None,
    grad_clip: Annotated[
        float | None,
        typer.Option(
            help=ranged(T, "grad_clip", "Clip the gradient norm to this. Default: no clipping.")
        ),
    ] = None,
    weight_decay: Annotated[
        float | None,
        typer.Option(
            help=ranged(
                T,
                "weight_decay",
                "Adam's L2 penalty (added to the gradients, as torch.optim.Adam does; not "
                "AdamW's decoupled decay). Default: 0, as in the Genomic Interpreter paper.",
            )
        ),
    ] = None,
    track_weights: Annotated[
        str | None,
        typer.Option(
            help="How the Poisson loss weighs tracks: equal (every value alike, as the papers; default) or balanced (each track by 1 / sqrt(its null deviance), the deviance of predicting its mean, scaled to mean 1: a smooth track such as a GC fraction is no longer drowned by a peaky one; the example workflows use it)."
        ),
    ] = None,
    epochs: Annotated[
        int | None,
        typer.Option(
            help=ranged(T, "epochs", f"Passes over the (first) training set. Default: {T.epochs}.")
        ),
    ] = None,
    max_steps: Annotated[
        int | None,
        typer.Option(
            help=ranged(
                T,
                "max_steps",
                "Stop after this many optimizer steps (sets the schedule's length). Default: --epochs decides.",
            )  # fmt: skip
        ),
    ] = None,
    patience: Annotated[
        int | None,
        typer.Option(
            help=ranged(
                T,
                "patience",
                "Stop after this many evaluations without a better valid score (mean Pearson; mean AUPR for label stores). Default: no early stop.",
            )  # fmt: skip
        ),
    ] = None,
    min_delta: Annotated[
        float | None,
        typer.Option(
            help=ranged(
                T,
                "min_delta",
                f"--patience and the plateau schedule count an evaluation as better only when the valid score rises by more than this (default {T.min_delta:g}: any rise). Set it, e.g. 0.001, so that a run creeping up by 1e-4 at a tiny learning rate stops.",
            )  # fmt: skip
        ),
    ] = None,
    eval_every: Annotated[
        int | None,
        typer.Option(
            help=ranged(T, "eval_every", "Evaluate every N steps. Default: at each epoch's end.")
        ),
    ] = None,
    valid_windows: Annotated[
        int | None,
        typer.Option(
            help=ranged(
                T,
                "valid_windows",
                "Use at most this many validation windows per evaluation. Default: all.",
            )  # fmt: skip
        ),
    ] = None,
    checkpoint_every: Annotated[
        int | None,
        typer.Option(
            help=ranged(
                T,
                "checkpoint_every",
                f"Write checkpoints/last.pt every N steps (and at each epoch's end). Default: {T.checkpoint_every}.",
            )  # fmt: skip
        ),
    ] = None,
    checkpoint_minutes: Annotated[
        float | None,
        typer.Option(
            help=ranged(
                T,
                "checkpoint_minutes",
                "Also write checkpoints/last.pt when this many minutes have passed since the last one (a long step rate or a cluster's time limit). Default: by steps only.",
            )  # fmt: skip
        ),
    ] = None,
    log_every: Annotated[
        int | None,
        typer.Option(
            help=ranged(
                T,
                "log_every",
                f"Append loss, lr and samples/s to metrics.jsonl every N steps. Default: {T.log_every}.",
            )  # fmt: skip
        ),
    ] = None,
    tensorboard: Annotated[
        bool | None,
        typer.Option(
            "--tensorboard",
            help="Also write what goes to metrics.jsonl (loss, lr, samples/s, valid scores) as TensorBoard event files in RUN/tensorboard/ (`tensorboard --logdir RUN/tensorboard`). Needs the tensorboard package: pip install 'gitool\\[tensorboard]'.",
        ),
    ] = None,
    seed: Annotated[
        int | None,
        typer.Option(
            help=ranged(
                T, "seed", f"Seed for weights, data order and augmentation. Default: {T.seed}."
            )
        ),
    ] = None,
    shift: Annotated[
        int | None,
        typer.Option(
            help=ranged(
                T,
                "shift",
                f"Random shift augmentation, ± bp (default {T.shift}; 0 = off), at most half the store's window. Coverage stores only: label stores train on their sequences as stored.",
            )  # fmt: skip
        ),
    ] = None,
    rc: Annotated[
        bool | None,
        typer.Option(
            "--rc/--no-rc",
            help="Reverse-complement augmentation (default on; stranded tracks swap). Coverage stores only.",
        ),
    ] = None,
    num_workers: Annotated[
        int | None,
        typer.Option(
            help=ranged(
                T,
                "num_workers",
                f"DataLoader worker processes per training process. Default: {T.num_workers}.",
            )  # fmt: skip
        ),
    ] = None,
    bf16: Annotated[
        bool | None, typer.Option("--bf16/--no-bf16", help="bf16 autocast on GPU (default on).")
    ] = None,
    compile: Annotated[
        bool | None,
        typer.Option(
            "--compile/--no-compile",
            help="torch.compile the model. Default: on with CUDA GPUs, off on the CPU.",
        ),
    ] = None,
    data_on_device: Annotated[
        bool | None,
        typer.Option(
            "--data-on-device/--no-data-on-device",
            help="Hold the training split(s) on the GPU (read once; each batch gathered there, no loader workers): for stores that fit in half the GPU's free memory (checked). Default: off (batches stream from the store).",
        ),
    ] = None,
    checkpoint_activations: Annotated[
        bool | None,
        typer.Option(
            "--checkpoint-activations/--no-checkpoint-activations",
            help="Recompute the transformer blocks' (and 1D-Swin layers') activations in the backward pass instead of storing them: less GPU memory for about one more forward of those blocks; same gradients.",
        ),
    ] = None,
    resume: Annotated[
        bool | None,
        typer.Option(
            "--resume",
            help="Continue the run in --out (default: the newest run under runs/) from checkpoints/last.pt, with the run's own options for any not given; options that shape the optimisation (batch size, learning rate, schedule, seed, augmentation, ...) must stay as they were, --epochs and --max-steps may grow.",
        ),
    ] = None,
) -> None:
    """Train a model on one or more stores: one process, or many through torchrun.

    With no options, `gitool train` trains swin-basenji-small on the store data/ in the current folder, on all visible GPUs, into runs/run (runs/run-2, ... when taken), printing each default it chooses.

    Defaults follow Genomic Interpreter: Adam, lr 3e-4, cosine annealing, batch 8 per GPU, Poisson loss; shift and reverse-complement augmentation on. A label store (`gitool synth-motifs`) trains a can-* model with binary cross-entropy and picks the best checkpoint by valid mean AUPR; workflows/can-glifac.yaml holds the GLIFAC paper's settings (Adam lr 1e-3, batch 100, 100 epochs, lr × 0.3 after 5 epochs without a better AUPR). Each option may also come from --config (flags win); the resolved options are saved as RUN/config.yaml.
    """
    # lazy: keeps `gitool --help` from importing torch
    from gitool.train.launch import run_training

    flags = dict(
        data=[str(p) for p in data] if data else None, model=model, out=str(out) if out else None,
        heads=[h.strip() for h in heads.split(",")] if heads is not None else None, gpus=gpus, procs=procs, nodes=nodes,
        node_rank=node_rank, rdzv_endpoint=rdzv_endpoint, batch_size=batch_size,
        grad_accum=grad_accum, lr=lr, schedule=schedule, lr_decay=lr_decay,
        lr_patience=lr_patience, warmup_steps=warmup_steps, grad_clip=grad_clip,
        weight_decay=weight_decay, track_weights=track_weights,
        epochs=epochs, max_steps=max_steps, patience=patience, min_delta=min_delta,
        eval_every=eval_every,
        valid_windows=valid_windows, checkpoint_every=checkpoint_every, checkpoint_minutes=checkpoint_minutes,
        log_every=log_every,
        seed=seed, shift=shift,
        rc=rc, num_workers=num_workers, bf16=bf16, compile=compile,
        checkpoint_activations=checkpoint_activations, data_on_device=data_on_device,
        resume=resume,
        tensorboard=tensorboard,
    )  # fmt: skip
    summary = run_training(str(config) if config else None, flags, defaults=True)
    if summary is not None:
        best = "—" if summary.best is None else f"{summary.best:.4f}"
        info(
            f"[green]done[/] {summary.out}: {summary.step} steps, best valid {summary.score} {best} (stopped: {summary.stopped})"
        )
