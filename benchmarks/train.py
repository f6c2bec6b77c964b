#!/usr/bin/env python
"""Benchmark ``gitool train`` end to end: steps/s and samples/s per preset, the data loader
alone, the model alone, and (on a GPU) bf16 FLOP utilisation and the BasenjiSmall budget.

On a store built once from the bundled ``example_data/`` (real yeast genome, 7 tracks,
17,712-bp windows; cached under ``--workdir``) or given with ``--data``:

1. loader alone: ``gitool.data.loader.training_batches(store, "train", 8, num_workers=W,
   shift=3, rc=True)`` (the batches ``gitool train`` reads) for each W in ``--loader-workers``; samples/s over
   ``--loader-samples`` samples after two warm-up batches (worker start-up excluded), and
   per worker (W = 0: the main process). This is what feeds the model;
2. end to end: the real ``gitool train`` (:func:`gitool.train.launch.run_training`) for
   ``--steps`` optimizer steps per ``*-basenji-small`` preset, with the paper workflow
   (``workflows/<preset>.yaml``, full width) on a GPU, or the tiny CPU workflow
   (``workflows/example-<model>.yaml``) on a CPU; evaluation is switched off. steps/s and
   samples/s come from the run's ``metrics.jsonl`` (``samples_per_s`` per ``log_every``
   window), the first window dropped as warm-up. On a CPU the full-width presets in
   ``--full-width`` are also run, at ``--full-batch``, for a handful of steps;
3. model alone: the same model and batch (built by the training loop's own functions) on
   synthetic tensors already on the device, forward + Poisson loss + backward (+ clipping)
   + Adam, as in the loop (bf16 autocast on a GPU); median step time. Data overhead =
   1 − end-to-end / model-alone samples/s; loader/model = the loader's samples/s at the
   run's ``num_workers`` / the model's. The target (a GPU) is loader ≥ 3× model;
4. FLOPs of one training step (forward + backward at the run's batch), counted with
   ``FlopCounterMode`` on the ``meta`` device, grouped-convolution weight gradients
   counted per group (torch's formula multiplies them by ``groups``); the optimizer and
   element-wise work are not counted. MFU = FLOPs × steps/s / the GPU's dense bf16 peak
   (H100/H200 989.4, A100 312 TFLOP/s, or ``--peak-tflops``);
5. on a GPU, full width: one BasenjiSmall epoch (34,021 training windows) at the measured
   end-to-end samples/s, and what Genomic Interpreter's budget (Li et al. 2023: ~30
   GPU-hours per model on A100s) buys on this GPU. Validation passes are not included.

Examples::

    python benchmarks/train.py                       # CPU: tiny + 2 full-width presets
    python benchmarks/train.py --quick               # smoke run (< 1 min on a CPU)
    python benchmarks/train.py --presets swin-basenji-small --steps 100 --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import time
from contextlib import nullcontext
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode, conv_flop_count

from gitool import console
from gitool.config import BuildOptions, TrainConfig
from gitool.data.build import build_store
from gitool.data.loader import training_batches
from gitool.data.store import Store
from gitool.train.launch import resolve_config, run_training
from gitool.train.loop import build_model, model_overrides, open_stores
from gitool.train.losses import poisson_nll

from common import bf16_peak, cpu_description, parser

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = ROOT / "workflows"
EXAMPLE = ROOT / "example_data"
SMALL = (
    "swin-basenji-small",
    "enformer-basenji-small",
    "cnn-maxpool-basenji-small",
    "cnn-attpool-basenji-small",
    "cnn-dilated-basenji-small",
)
CPU_FULL_WIDTH = "swin-basenji-small,cnn-maxpool-basenji-small"
LOADER_BATCH = 8
LOADER_TARGET = 3.0  # loader samples/s / model samples/s, on a GPU
EPOCH_WINDOWS = 34_021  # BasenjiSmall training windows
PAPER_GPU_HOURS = 30.0  # Genomic Interpreter (Li et al. 2023): per model, on A100s
PAPER_EPOCHS = 20  # the workflows' epoch cap
NO_GPU = "needs a GPU (none in this run)"
MIN_MODEL_TIME = 3.0  # model alone: keep timing steps until they add up to this many seconds
MAX_MODEL_STEPS = 200


# --------------------------------------------------------------------------- arguments


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    cli = parser(
        "Benchmark gitool train end to end (data loading included) per preset, "
        "the data loader alone and the model alone; on a GPU also bf16 MFU and the time of "
        "a BasenjiSmall epoch.",
        presets="comma-separated presets, or 'small' (all five)",
        quick="smoke run: few steps, no full width",
        threads=True,
        peak_tflops=True,
        workdir=Path("/tmp/gitool-train-bench"),
    )
    cli.add_argument(
        "--width",
        choices=("auto", "tiny", "full"),
        default="auto",
        help="end-to-end widths: workflows/<preset>.yaml (full) or workflows/example-*.yaml "
        "(tiny); auto: full on a GPU, tiny on a CPU",
    )
    cli.add_argument(
        "--full-width",
        default=None,
        help="on a CPU, also run these presets at full width ('none' to skip; default: "
        f"{CPU_FULL_WIDTH})",
    )
    cli.add_argument("--full-batch", type=int, default=1, help="batch of the CPU full-width runs")
    cli.add_argument("--full-steps", type=int, default=4, help="steps of the CPU full-width runs")
    cli.add_argument("--steps", type=int, help="optimizer steps per run (default 60 GPU, 30 CPU)")
    cli.add_argument("--log-every", type=int, help="steps per timing window (default: steps/6)")
    cli.add_argument("--batch", type=int, help="override the workflows' batch size")
    cli.add_argument("--num-workers", type=int, help="override the workflows' num_workers")
    cli.add_argument(
        "--loader-workers",
        help="DataLoader workers to time the loader with (default 0,1,2; on a GPU also 6)",
    )
    cli.add_argument("--loader-samples", type=int, default=400, help="timed loader samples")
    cli.add_argument("--model-steps", type=int, help="timed model-alone steps (default 20/5)")
    cli.add_argument("--data", type=Path, help="a store made by gitool build-dataset")
    cli.add_argument("--keep-runs", action="store_true", help="keep the run folders")
    return cli.parse_args(argv)


def settings(args: argparse.Namespace) -> dict:
    """Resolved options, device-dependent defaults filled in."""
    gpu = torch.cuda.is_available()
    quick = args.quick
    steps = args.steps or (6 if quick else 60 if gpu else 30)
    loader = args.loader_workers or ("0,1" if quick else "0,1,2,6" if gpu else "0,1,2")
    full = args.full_width if args.full_width is not None else ("none" if quick else CPU_FULL_WIDTH)
    cfg = {
        "gpu": gpu,
        "device": "cuda" if gpu else "cpu",
        "presets": preset_names(args.presets),
        "width": args.width if args.width != "auto" else ("full" if gpu else "tiny"),
        "full_width": [] if gpu or full == "none" else preset_names(full),
        "full_batch": args.full_batch,
        "full_steps": 3 if quick else args.full_steps,
        "steps": steps,
        "log_every": args.log_every or max(1, steps // 6),
        "batch": args.batch,
        "num_workers": args.num_workers,
        "loader_workers": sorted({int(w) for w in loader.split(",")}),
        "loader_samples": 64 if quick else args.loader_samples,
        "model_steps": args.model_steps or (3 if quick else 20 if gpu else 5),
        "threads": torch.get_num_threads(),
        "quick": quick,
    }
    if steps < 2 * cfg["log_every"]:
        sys.exit("--steps must cover at least two --log-every windows (the first is warm-up)")
    return cfg


def preset_names(text: str) -> list[str]:
    names: list[str] = []
    for item in (s.strip() for s in text.split(",") if s.strip()):
        for name in SMALL if item == "small" else (item,):
            if name not in SMALL:
                sys.exit(f"unknown preset {name!r}; choose from {', '.join(SMALL)}")
            if name not in names:
                names.append(name)
    return names


# --------------------------------------------------------------------------- data


def prepare_store(args: argparse.Namespace) -> Path:
    """``--data``, or the example store under ``--workdir`` (built on first use)."""
    if args.data:
        return args.data
    out = args.workdir / "example-store"
    if (out / "manifest.yaml").is_file():
        return out
    print(f"  building {out} from {EXAMPLE} ...", file=sys.stderr, flush=True)
    opts = BuildOptions(
        genome=str(EXAMPLE / "genome.fa.gz"),
        tracks=str(EXAMPLE / "tracks.txt"),
        out=str(out),
        workers=min(4, os.cpu_count() or 1),
    )
    build_store(opts)
    return out


def measure_loader(store: Path, workers: int, samples: int, pin: bool) -> dict:
    """The loader alone (what ``gitool train`` reads: :func:`training_batches`): samples/s
    after two warm-up batches (worker start-up excluded)."""
    batches = training_batches(
        store, "train", LOADER_BATCH, num_workers=workers, seed=0, epoch=0, shift=3, rc=True,
        device="cuda" if pin else "cpu",
    )  # fmt: skip
    try:
        for _ in range(2):
            next(batches)
        began, count = time.perf_counter(), 0
        while count < samples:
            count += len(next(batches).codes)
        rate = count / (time.perf_counter() - began)
    finally:
        batches.close()
    return {"workers": workers, "samples": count, "samples_per_s": rate,
            "per_worker": rate / max(workers, 1)}  # fmt: skip


# --------------------------------------------------------------------------- runs


def run_specs(cfg: dict) -> list[dict]:
    """One run per preset at ``cfg['width']``, plus the CPU full-width runs."""
    specs = [base_spec(cfg, p, cfg["width"]) for p in cfg["presets"]]
    for preset in cfg["full_width"]:
        if cfg["width"] == "full":
            continue
        spec = base_spec(cfg, preset, "full")
        steps = max(cfg["full_steps"], 2)
        spec["flags"].update(batch_size=cfg["full_batch"], max_steps=steps, log_every=1,
                             eval_every=steps + 1, checkpoint_every=steps + 1)  # fmt: skip
        spec["model_steps"] = min(cfg["model_steps"], 3)
        specs.append(spec)
    return specs


def base_spec(cfg: dict, preset: str, width: str) -> dict:
    short = preset.removesuffix("-basenji-small")
    config_file = WORKFLOWS / (f"{preset}.yaml" if width == "full" else f"example-{short}.yaml")
    steps = cfg["steps"]
    flags = {
        "gpus": 1 if cfg["gpu"] else 0,
        "procs": 1,
        "max_steps": steps,
        "epochs": 10**6,
        "log_every": cfg["log_every"],
        "eval_every": steps + 1,  # no validation inside the timed windows
        "patience": None,
        "checkpoint_every": steps + 1,
        "resume": False,
        "batch_size": cfg["batch"],
        "num_workers": cfg["num_workers"],
    }
    if not cfg["gpu"] and cfg["num_workers"] is None and width == "full":
        flags["num_workers"] = 1  # the paper's 6 workers on a small CPU only compete
    return {"preset": preset, "width": width, "config_file": str(config_file), "flags": flags,
            "model_steps": cfg["model_steps"],
            "model_min_time": 0.0 if cfg["quick"] else MIN_MODEL_TIME}  # fmt: skip


def run_one(spec: dict, store: Path, cfg: dict, workdir: Path, keep: bool) -> dict:
    out = workdir / "runs" / f"{spec['preset']}-{spec['width']}-{os.getpid()}"
    shutil.rmtree(out, ignore_errors=True)
    flags = {**spec["flags"], "data": [str(store)], "out": str(out)}
    config = resolve_config(spec["config_file"], flags)
    row = {"preset": spec["preset"], "width": spec["width"], "config": spec["config_file"],
           "batch": config.batch_size, "grad_accum": config.grad_accum,
           "num_workers": config.num_workers, "steps": config.max_steps}  # fmt: skip
    label = f"{spec['preset']} [{spec['width']}, batch {config.batch_size}]"
    try:
        log(f"{label}: model alone ...")
        row.update(model_alone(config, spec["model_steps"], spec["model_min_time"]))
        row["flops_per_step"] = count_flops(config)
        log(f"{label}: gitool train, {config.max_steps} steps ...")
        began = time.perf_counter()
        run_training(spec["config_file"], flags)
        row["train_wall_s"] = time.perf_counter() - began
        row.update(read_metrics(out / "metrics.jsonl", config))
        row["per_epoch_steps"] = Store(store).count("train") // (
            config.batch_size * config.grad_accum
        )
    except Exception as err:  # report and go on with the next preset
        row["error"] = f"{type(err).__name__}: {err}"[:160]
    finally:
        if not keep:
            shutil.rmtree(out, ignore_errors=True)
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    return row


def log(message: str) -> None:
    print(f"  {message}", file=sys.stderr, flush=True)


def read_metrics(path: Path, config: TrainConfig) -> dict:
    """Median steps/s and samples/s over the logged windows (the first, warm-up, dropped),
    and the mean (all timed steps / their time)."""
    records = [json.loads(line) for line in path.read_text().splitlines()]
    records = [r for r in records if "samples_per_s" in r]
    per_step = config.batch_size * config.grad_accum
    steps, seconds, previous = 0, 0.0, records[0]["step"]
    for record in records[1:]:
        n = record["step"] - previous
        steps += n
        seconds += n * per_step / record["samples_per_s"]
        previous = record["step"]
    rates = [r["samples_per_s"] for r in records[1:]]
    median = statistics.median(rates)
    return {
        "timed_steps": steps,
        "steps_per_s": median / per_step,
        "samples_per_s": median,
        "mean_samples_per_s": steps * per_step / seconds,
        "window_rates": rates,
        "warmup_rate": records[0]["samples_per_s"],
        "final_loss": records[-1]["loss"],
    }


# --------------------------------------------------------------------------- model alone


def built_model(config: TrainConfig, device: torch.device | str):
    """The model ``gitool train`` would build for this config, its head and overrides."""
    stores, heads, task = open_stores(config)
    overrides = model_overrides(config, stores, heads, task)
    with torch.device(device):
        model = build_model(config, overrides)
    return model, heads[0], overrides


def synthetic_batch(overrides: dict, batch: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    codes = torch.randint(0, 4, (batch, overrides["seq_length"]), device=device)
    tracks = next(iter(overrides["heads"].values()))
    y = torch.rand(batch, overrides["target_length"], tracks, device=device)
    return F.one_hot(codes, 4).float(), y


def model_alone(config: TrainConfig, timed: int, min_time: float) -> dict:
    """Forward + loss + backward (+ clip) + Adam on synthetic tensors already on the device."""
    device = torch.device("cuda" if torch.cuda.is_available() and config.gpus != 0 else "cpu")
    torch.manual_seed(config.seed)
    model, head, overrides = built_model(config, device)
    model.train()
    x, y = synthetic_batch(overrides, config.batch_size, device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    on_gpu = device.type == "cuda"
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if on_gpu and config.bf16 else None
    sync = torch.cuda.synchronize if on_gpu else (lambda: None)

    def step() -> float:
        began = time.perf_counter()
        for _ in range(config.grad_accum):
            with autocast or nullcontext():
                pred = model(x, head)
            (poisson_nll(pred, y) / config.grad_accum).backward()
        if config.grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        sync()
        return time.perf_counter() - began

    warm = [step() for _ in range(2 if not on_gpu else 5)]
    times: list[float] = []
    while len(times) < MAX_MODEL_STEPS and (len(times) < timed or sum(times) < min_time):
        times.append(step())
    params = sum(p.numel() for p in model.parameters())
    median = statistics.median(times)
    samples = config.batch_size * config.grad_accum
    return {"params": params, "model_step_s": median, "model_first_step_s": warm[0],
            "model_samples_per_s": samples / median,
            "model_step_range_s": [min(times), max(times)]}  # fmt: skip


# --------------------------------------------------------------------------- FLOPs


def _conv_backward_flop(grad_out_shape, x_shape, w_shape, *args, out_shape=None, **kwargs) -> int:
    """Input and weight gradients each cost one forward convolution, per group."""
    transposed, output_mask = args[4], args[7]
    forward = conv_flop_count(list(x_shape), list(w_shape), list(grad_out_shape), transposed)
    return forward * (int(output_mask[0]) + int(output_mask[1]))


def count_flops(config: TrainConfig) -> float:
    """Model FLOPs of one optimizer step (forward + backward of every micro-batch), on meta."""
    model, head, overrides = built_model(config, "meta")
    x, y = synthetic_batch(overrides, config.batch_size, "meta")
    mapping = {torch.ops.aten.convolution_backward: _conv_backward_flop}
    with FlopCounterMode(display=False, custom_mapping=mapping) as counter:
        poisson_nll(model(x, head), y).backward()
    return float(counter.get_total_flops() * config.grad_accum)


# --------------------------------------------------------------------------- derived values


def gpu_peak(args: argparse.Namespace, cfg: dict) -> tuple[float | None, str]:
    if not cfg["gpu"]:
        return None, "no GPU"
    return bf16_peak(torch.cuda.get_device_name(), args.peak_tflops)


def loader_capacity(loaders: list[dict], workers: int) -> tuple[float | None, str]:
    """The loader's samples/s at ``workers``: measured, or per-worker rate × workers."""
    exact = next((r for r in loaders if r["workers"] == workers), None)
    if exact:
        return exact["samples_per_s"], f"{workers} worker(s)"
    pooled = [r for r in loaders if r["workers"] > 0]
    if not pooled or workers == 0:
        return None, "not measured"
    best = max(pooled, key=lambda r: r["workers"])
    return best["per_worker"] * workers, f"est. {workers} × {best['workers']}-worker rate"


def derive(row: dict, loaders: list[dict], peak: float | None) -> None:
    if "samples_per_s" not in row:
        return
    row["data_overhead"] = 1 - row["samples_per_s"] / row["model_samples_per_s"]
    capacity, how = loader_capacity(loaders, row["num_workers"])
    row["loader_capacity"], row["loader_capacity_how"] = capacity, how
    row["loader_over_model"] = capacity / row["model_samples_per_s"] if capacity else None
    row["tflops"] = row["flops_per_step"] * row["steps_per_s"] / 1e12
    row["model_tflops"] = row["flops_per_step"] / row["model_step_s"] / 1e12
    row["mfu"] = row["tflops"] / peak if peak else None
    row["model_mfu"] = row["model_tflops"] / peak if peak else None
    epoch_s = EPOCH_WINDOWS / row["samples_per_s"]
    row["epoch_hours"] = epoch_s / 3600
    row["epochs_in_paper_budget"] = PAPER_GPU_HOURS * 3600 / epoch_s


# --------------------------------------------------------------------------- report


def machine(cfg: dict) -> str:
    versions = f"Python {platform.python_version()}, torch {torch.__version__}"
    if cfg["gpu"]:
        device = f"{torch.cuda.get_device_name()}, CUDA {torch.version.cuda}"
    else:
        device = f"no GPU, {cfg['threads']} torch threads"
    return f"{cpu_description()}; {versions}; {device}"


def fmt(x: float | None, unit: str = "") -> str:
    if x is None:
        return ""
    digits = 0 if x >= 100 else 1 if x >= 10 else 2 if x >= 1 else 3
    return f"{x:,.{digits}f}{unit}"


def duration(hours: float) -> str:
    return f"{hours * 60:.0f} min" if hours < 1 else f"{hours:.1f} h"


HEAD = ("row", "width", "batch", "workers", "steps/s", "samples/s", "model alone",
        "overhead", "loader/model", "GFLOP/step", "TFLOP/s", "MFU", "notes")  # fmt: skip


def loader_row(r: dict) -> tuple[str, ...]:
    who = "main process" if r["workers"] == 0 else f"{fmt(r['per_worker'])}/s per worker"
    return ("loader alone (shift 3, rc)", "", str(LOADER_BATCH), str(r["workers"]), "",
            fmt(r["samples_per_s"]), "", "", "", "", "", "", who)  # fmt: skip


def run_row(r: dict, cfg: dict) -> tuple[str, ...]:
    first = (f"train {r['preset']}", r["width"], str(r["batch"]), str(r["num_workers"]))
    if "error" in r:
        return (*first, *[""] * 8, f"error: {r['error']}")
    ratio = r["loader_over_model"]
    mfu = f"{100 * r['mfu']:.1f}%" if r.get("mfu") is not None else ("" if cfg["gpu"] else "n/a")
    return (
        *first,
        fmt(r["steps_per_s"]),
        fmt(r["samples_per_s"]),
        fmt(r["model_samples_per_s"]),
        f"{100 * r['data_overhead']:.0f}%",
        f"{ratio:.1f}x" if ratio else "",
        fmt(r["flops_per_step"] / 1e9),
        fmt(r["tflops"]),
        mfu,
        run_notes(r, cfg),
    )


def run_notes(r: dict, cfg: dict) -> str:
    notes = [f"{r['params']:,} params", f"{r['timed_steps']} timed steps"]
    if r["loader_capacity_how"].startswith("est."):
        notes.append(f"loader {r['loader_capacity_how']}")
    rates = r["window_rates"]
    if len(rates) > 1 and max(rates) > 1.5 * min(rates):
        notes.append(f"windows {fmt(min(rates))}-{fmt(max(rates))} samples/s")
    if abs(r["mean_samples_per_s"] / r["samples_per_s"] - 1) > 0.1:
        notes.append(f"mean {fmt(r['mean_samples_per_s'])} samples/s")
    low, high = r["model_step_range_s"]
    if high > 1.5 * low:
        notes.append(f"model-alone steps {fmt(1000 * low)}-{fmt(1000 * high)} ms")
    if r["steps"] > r["per_epoch_steps"]:
        notes.append("crosses an epoch end (checkpoint, worker restart)")
    if r["width"] == "full" and not cfg["gpu"]:
        notes.append(f"one BasenjiSmall epoch on this CPU ~{duration(r['epoch_hours'])}")
    return "; ".join(notes)


def gpu_rows(rows: list[dict], cfg: dict, peak_text: str) -> list[tuple[str, ...]]:
    """The bf16 / epoch / budget rows: per full-width preset on a GPU, else one line each."""
    blank = ("",) * 11
    if not cfg["gpu"]:
        labels = ("GPU bf16 batch 8: samples/s, MFU", f"GPU: one epoch ({EPOCH_WINDOWS:,} windows)",
                  f"GPU-hours vs Genomic Interpreter ({PAPER_GPU_HOURS:g} per model, A100)")  # fmt: skip
        return [(label, *blank, NO_GPU) for label in labels]
    out = []
    for r in (r for r in rows if r["width"] == "full" and "samples_per_s" in r):
        model_mfu = f"model alone MFU {100 * r['model_mfu']:.1f}%; " if r["model_mfu"] else ""
        text = (
            f"{model_mfu}epoch {duration(r['epoch_hours'])} on 1 GPU; {PAPER_EPOCHS} epochs = "
            f"{PAPER_EPOCHS * r['epoch_hours']:.1f} GPU-h; {PAPER_GPU_HOURS:g} GPU-h = "
            f"{r['epochs_in_paper_budget']:.0f} epochs (peak {peak_text})"
        )
        out.append((f"GPU budget {r['preset']}", *blank, text))
    return out


def verdicts(rows: list[dict], cfg: dict) -> list[str]:
    lines = []
    for r in (r for r in rows if r.get("loader_over_model")):
        ratio = r["loader_over_model"]
        what = (f"{r['preset']} [{r['width']}]: loader {fmt(r['loader_capacity'])} samples/s "
                f"({r['loader_capacity_how']}) / model {fmt(r['model_samples_per_s'])} = "
                f"{ratio:.1f}x (target >= {LOADER_TARGET:g}x on a GPU)")  # fmt: skip
        if cfg["gpu"]:
            lines.append(f"{what}: {'PASS' if ratio >= LOADER_TARGET else 'FAIL'}")
        else:
            lines.append(f"{what}: not judged on a CPU; the model is the bottleneck here")
    return lines


def print_report(cfg: dict, loaders: list[dict], rows: list[dict], header: list[str]) -> None:
    peak_text = cfg["peak_text"]
    body = [HEAD, *(loader_row(r) for r in loaders), *(run_row(r, cfg) for r in rows)]
    body += gpu_rows(rows, cfg, peak_text)
    widths = [max(len(r[i]) for r in body) for i in range(len(HEAD) - 1)]
    rule = "-" * min(sum(widths) + 2 * len(widths) + 40, 180)
    print("\n".join(header))
    print(rule)
    for i, row in enumerate(body):
        cells = [c.rjust(w) if 2 <= j <= 11 else c.ljust(w)
                 for j, (c, w) in enumerate(zip(row[:-1], widths, strict=True))]  # fmt: skip
        print("  ".join([*cells, row[-1]]).rstrip())
        if i == 0:
            print(rule)
    print(rule)
    print("\n".join(verdicts(rows, cfg)))
    print(rule)


def header_lines(cfg: dict, store: Path, seconds: float) -> list[str]:
    manifest = Store(store).manifest
    train = Store(store).count("train")
    precision = "bf16 autocast (the configs' default)" if cfg["gpu"] else "float32 (CPU)"
    full = ", ".join(cfg["full_width"]) or "none"
    cores = os.cpu_count() or 1
    busy = cfg["threads"] > 1 and cfg["load"][0] + cfg["threads"] > cores and not cfg["gpu"]
    hint = "; cores oversubscribed: torch's parallel regions stall, try --threads 1" if busy else ""
    return [
        "gitool train benchmark: loader alone, gitool train end to end, model alone",
        f"machine:  {machine(cfg)}",
        f"load:     1-min load average {cfg['load'][0]:.2f} before, {os.getloadavg()[0]:.2f} "
        f"after (other processes share the {os.cpu_count()} cores){hint}; total {seconds:.0f} s",
        f"data:     {store}: {train:,} train windows of {manifest['seq_length']:,} bp, "
        f"{manifest['target_length']} x {manifest['bin_size']}-bp bins, "
        f"{manifest['n_tracks']} tracks",
        f"runs:     device {cfg['device']}, {precision}; width {cfg['width']} for "
        f"{', '.join(cfg['presets'])} ({cfg['steps']} steps, windows of {cfg['log_every']}); "
        f"CPU full width: {full} (batch {cfg['full_batch']}, {cfg['full_steps']} steps, "
        "windows of 1); evaluation off; first window dropped",
        "columns:  steps/s, samples/s = gitool train end to end (metrics.jsonl, median "
        "window); model alone = samples/s on synthetic tensors on the device (median step, "
        f">= {MIN_MODEL_TIME:g} s of steps); overhead = 1 - end to "
        "end / model alone; loader/model = loader alone at the run's workers / model alone",
        "FLOPs:    forward + backward of one step on meta (grouped-conv weight gradients per "
        f"group; optimizer not counted); TFLOP/s end to end; MFU peak: {cfg['peak_text']}",
    ]


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    began = time.perf_counter()
    cfg = settings(args)
    cfg["load"] = os.getloadavg()
    peak, cfg["peak_text"] = gpu_peak(args, cfg)
    console.state.quiet = True
    args.workdir.mkdir(parents=True, exist_ok=True)
    store = prepare_store(args)
    loaders = []
    for workers in cfg["loader_workers"]:
        log(f"loader alone, {workers} worker(s) ...")
        loaders.append(measure_loader(store, workers, cfg["loader_samples"], cfg["gpu"]))
    rows = [run_one(s, store, cfg, args.workdir, args.keep_runs) for s in run_specs(cfg)]
    for row in rows:
        derive(row, loaders, peak)
    header = header_lines(cfg, store, time.perf_counter() - began)
    print_report(cfg, loaders, rows, header)
    if args.json:
        out = {"machine": machine(cfg), "settings": cfg, "store": str(store), "loader": loaders,
               "runs": rows, "verdicts": verdicts(rows, cfg)}  # fmt: skip
        args.json.write_text(json.dumps(out, indent=2, default=str) + "\n")


if __name__ == "__main__":
    main()
