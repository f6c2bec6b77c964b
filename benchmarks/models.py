#!/usr/bin/env python
"""Benchmark gitool's model presets: parameters, training samples/s, peak memory and MFU.

For each preset, each measurement in a fresh subprocess (so peak memory is its own):

* parameters: exact count of the built model;
* one training step: forward on random one-hot input of the preset's ``seq_length``,
  Poisson NLL (:func:`gitool.train.losses.poisson_nll`, every head) against random targets
  (CAN: BCE on ``model(x, logits=True)`` against random 0/1 labels), backward, Adam step;
  samples/s = batch / median step time over ``--steps`` timed steps after ``--warmup``;
* peak memory: on a GPU ``torch.cuda.max_memory_allocated`` / ``max_memory_reserved`` over
  the timed steps (weights, gradients, Adam state, activations; the CUDA context is not
  counted); on the CPU the subprocess's peak RSS (``VmHWM``) above its RSS after importing
  torch and gitool, i.e. model build plus training;
* model FLOPs per sample: one forward + backward counted with ``FlopCounterMode`` on the
  ``meta`` device, attention as its two matmuls (the manual path; SDPA kernels would be
  counted differently or not at all on the CPU), grouped-convolution weight gradients
  counted per group (torch's formula multiplies them by ``groups``); the optimizer and
  element-wise work are not counted. TFLOP/s = FLOPs × samples/s; MFU = that / the GPU's
  dense bf16 peak (looked up from its name, or ``--peak-tflops``).

Modes: ``fused`` (eager, ``scaled_dot_product_attention``), ``compiled``
(``torch.compile``, ``--compile``) and ``manual`` (``--manual``: every attention layer runs
the manual path that materialises the weights, as inside ``capture_attention``; the records
are dropped as they come, only the latest is kept).

On a GPU the default is bf16 autocast at batch 8, and gitool's performance targets (for an H100)
are judged: enformer-/swin-basenji-small MFU ≥ 35 % (best of fused and compiled), every
basenji-small preset trains at batch 8 in ≤ 40 GB (peak reserved), fused attention ≥ 2× the
manual path's samples/s. On the CPU the default is float32 at batch 1, and presets whose
step is estimated (FLOPs / (0.3 × measured fp32 matmul rate)) to take longer than
``--max-step-seconds`` are skipped. Examples::

    python benchmarks/models.py                              # five basenji-small presets
    python benchmarks/models.py --presets all --compile --manual --json out.json
    python benchmarks/models.py --presets swin-basenji-small --steps 3 --warmup 1
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from contextlib import nullcontext
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode, conv_flop_count

from gitool.models.registry import PRESETS, create_model, resolve
from gitool.train.losses import poisson_nll

from common import bf16_peak, cpu_description, parser

SMALL = (
    "swin-basenji-small",
    "enformer-basenji-small",
    "cnn-maxpool-basenji-small",
    "cnn-attpool-basenji-small",
    "cnn-dilated-basenji-small",
)
CAN_PRESETS = tuple(n for n, p in PRESETS.items() if p.model == "can")
ALL = (*SMALL, "enformer", *CAN_PRESETS)

MFU_TARGET = 0.35
MFU_PRESETS = ("enformer-basenji-small", "swin-basenji-small")
MEMORY_TARGET_GB = 40.0
TARGET_BATCH = 8
MANUAL_TARGET = 2.0  # fused samples/s / manual samples/s
CPU_EFFICIENCY = 0.3  # assumed fraction of the fp32 matmul rate a training step reaches
OOM = "out of memory"
MAX_STEPS = 1000  # timed steps at most, whatever --min-time asks
SPREAD_NOTE = 1.5  # note the range of step times when slowest / fastest exceeds this
FLOP_BATCH = 2  # FLOPs are counted at this batch (BatchNorm needs 2) and divided by it


# --------------------------------------------------------------------------- arguments


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    cli = parser(
        "Benchmark gitool model presets: parameters, forward+backward samples/s, "
        "peak memory and (on a GPU) model FLOP utilisation.",
        presets="comma-separated preset names, or 'small' (the five *-basenji-small presets), "
        "'can' (the CAN presets), 'all' (small + enformer + can)",
        threads=True,
        peak_tflops=True,
    )
    cuda = torch.cuda.is_available()
    cli.add_argument("--device", default="cuda" if cuda else "cpu")
    cli.add_argument(
        "--dtype",
        choices=("bf16", "fp32"),
        help="autocast dtype (default: bf16 on cuda, else fp32)",
    )
    cli.add_argument("--batch", type=int, help="samples per step (default: 8 on cuda, else 1)")
    cli.add_argument("--steps", type=int, help="timed steps (default: 20 on cuda, else 5)")
    cli.add_argument("--warmup", type=int, help="untimed steps (default: 5 on cuda, else 2)")
    cli.add_argument(
        "--min-time",
        type=float,
        default=1.0,
        help="keep timing steps until they add up to this many seconds (small models)",
    )
    cli.add_argument("--compile", action="store_true", help="also time torch.compile(model)")
    cli.add_argument(
        "--manual", action="store_true", help="also time the manual (weight-materialising) path"
    )
    cli.add_argument(
        "--max-step-seconds",
        type=float,
        default=60.0,
        help="on the CPU, skip presets whose estimated step takes longer (0: never skip)",
    )
    cli.add_argument("--measure", help=argparse.SUPPRESS)  # internal: one measurement
    return cli.parse_args(argv)


def settings(args: argparse.Namespace) -> dict:
    """Resolved options (device-dependent defaults filled in)."""
    gpu = torch.device(args.device).type == "cuda"
    if gpu and not torch.cuda.is_available():
        sys.exit(f"--device {args.device}: CUDA is not available here")
    out = {
        "device": args.device,
        "gpu": gpu,
        "dtype": args.dtype or ("bf16" if gpu else "fp32"),
        "batch": args.batch or (TARGET_BATCH if gpu else 1),
        "steps": args.steps or (20 if gpu else 5),
        "warmup": args.warmup if args.warmup is not None else (5 if gpu else 2),
        "min_time": args.min_time,
        "threads": args.threads,
        "presets": preset_names(args.presets),
        "modes": ["fused"] + ["compiled"] * args.compile + ["manual"] * args.manual,
    }
    if out["batch"] < 1 or out["steps"] < 1 or out["warmup"] < 0:
        sys.exit("--batch and --steps must be positive, --warmup not negative")
    return out


def preset_names(text: str) -> list[str]:
    groups = {"small": SMALL, "can": CAN_PRESETS, "all": ALL}
    names: list[str] = []
    for item in (s.strip() for s in text.split(",") if s.strip()):
        for name in groups.get(item, (item,)):
            if name not in PRESETS:
                sys.exit(f"unknown preset {name!r}; choose from {', '.join(PRESETS)}")
            if name not in names:
                names.append(name)
    return names


# --------------------------------------------------------------------------- one step


class KeepLast(list):
    """An attention layer's ``capture`` that makes it take the manual path but keeps only
    the latest record (the windowed layers rewrite ``capture[-1]`` after appending)."""

    def append(self, item) -> None:
        self.clear()
        super().append(item)


def is_can(preset: str) -> bool:
    return PRESETS[preset].model == "can"


def batch_for(preset: str, batch: int) -> int:
    """CAN's BatchNorm1d cannot train on one sample: batch 1 becomes 2."""
    return max(batch, 2) if is_can(preset) else batch


def force_manual(model: torch.nn.Module) -> int:
    layers = model.attention_layers().values()
    for layer in layers:
        layer.capture = KeepLast()
    return len(layers)


def random_batch(preset: str, batch: int, device) -> tuple[torch.Tensor, object]:
    """One-hot input ``(B, seq_length, 4)`` and targets: a dict per head of ``(B, T, tracks)``
    non-negative values, or CAN's ``(B, n_tasks)`` 0/1 labels."""
    _, cfg = resolve(preset)
    x = F.one_hot(torch.randint(0, 4, (batch, cfg.seq_length), device=device), 4).float()
    if is_can(preset):
        return x, torch.randint(0, 2, (batch, cfg.n_tasks), device=device).float()
    shape = (batch, cfg.target_length)
    return x, {h: 4 * torch.rand(*shape, n, device=device) for h, n in cfg.heads.items()}


def loss_of(out, target) -> torch.Tensor:
    if not isinstance(target, dict):  # CAN logits
        return F.binary_cross_entropy_with_logits(out.float(), target)
    if not isinstance(out, dict):  # one head
        out = {next(iter(target)): out}
    return sum(poisson_nll(out[h], y) for h, y in target.items())


def forward_fn(model: torch.nn.Module, preset: str):
    return functools.partial(model, logits=True) if is_can(preset) else model


# --------------------------------------------------------------------------- FLOPs (meta)


def _conv_backward_flop(grad_out_shape, x_shape, w_shape, *args, out_shape=None, **kwargs) -> int:
    """Input and weight gradients each cost one forward convolution (per group)."""
    transposed, output_mask = args[4], args[7]
    forward = conv_flop_count(list(x_shape), list(w_shape), list(grad_out_shape), transposed)
    return forward * (int(output_mask[0]) + int(output_mask[1]))


def count_flops(preset: str) -> dict:
    """Forward + backward FLOPs per sample, attention layers and parameters, on ``meta``."""
    with torch.device("meta"):
        model = create_model(preset)
    n_attention = force_manual(model)
    x, target = random_batch(preset, FLOP_BATCH, "meta")
    mapping = {torch.ops.aten.convolution_backward: _conv_backward_flop}
    with FlopCounterMode(display=False, custom_mapping=mapping) as counter:
        loss_of(forward_fn(model, preset)(x), target).backward()
    flops = counter.get_total_flops() / FLOP_BATCH
    params = sum(p.numel() for p in model.parameters())
    return {"flops": flops, "attention": n_attention, "params": params}


def cpu_matmul_gflops() -> float:
    """fp32 1024² matmul rate, best of five (other processes may share the cores)."""
    a = torch.randn(1024, 1024)
    a @ a
    best = float("inf")
    for _ in range(5):
        began = time.perf_counter()
        for _ in range(4):
            a @ a
        best = min(best, time.perf_counter() - began)
    return 4 * 2 * 1024**3 / best / 1e9


# --------------------------------------------------------------------------- measurement
# Runs in a fresh interpreter (``--measure``) and prints one JSON line.


def build_step(spec: dict):
    """(step function, parameter count, [last loss]) for one preset and mode."""
    preset, device = spec["preset"], torch.device(spec["device"])
    if spec.get("threads"):
        torch.set_num_threads(spec["threads"])
    torch.manual_seed(0)
    torch.backends.cudnn.benchmark = True  # fixed shapes: let cuDNN pick its kernels
    with device:
        model = create_model(preset)
    params = sum(p.numel() for p in model.parameters())
    if spec["mode"] == "manual":
        force_manual(model)
    fn = forward_fn(model, preset)
    if spec["mode"] == "compiled":
        fn = torch.compile(fn)
    x, target = random_batch(preset, spec["batch"], device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4, fused=device.type == "cuda")
    bf16 = spec["dtype"] == "bf16"
    autocast = torch.autocast(device.type, dtype=torch.bfloat16) if bf16 else nullcontext()
    losses: list[torch.Tensor] = []

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with autocast:
            loss = loss_of(fn(x), target)
        loss.backward()
        optimizer.step()
        losses[:] = [loss.detach()]

    return step, params, losses


def timed_step(step, sync) -> float:
    began = time.perf_counter()
    step()
    sync()
    return time.perf_counter() - began


def measure(spec: dict) -> dict:
    step, params, losses = build_step(spec)
    device = torch.device(spec["device"])
    gpu = device.type == "cuda"
    sync = (lambda: torch.cuda.synchronize(device)) if gpu else (lambda: None)
    warm = [timed_step(step, sync) for _ in range(spec["warmup"])]
    if gpu:
        torch.cuda.reset_peak_memory_stats(device)
    timed: list[float] = []
    while len(timed) < MAX_STEPS and (len(timed) < spec["steps"] or sum(timed) < spec["min_time"]):
        timed.append(timed_step(step, sync))
    out = {
        "params": params,
        "step_s": statistics.median(timed),
        "step_times_s": timed,
        "first_step_s": (warm + timed)[0],
        "loss": float(losses[0]),
    }
    if gpu:
        out["peak_alloc_gb"] = torch.cuda.max_memory_allocated(device) / 1e9
        out["peak_reserved_gb"] = torch.cuda.max_memory_reserved(device) / 1e9
    return out


def measure_main(spec_json: str) -> None:
    spec = json.loads(spec_json)
    baseline = _proc_status_gb("VmRSS")
    try:
        result = measure(spec)
    except torch.OutOfMemoryError:
        result = {"error": OOM}
    result["rss_baseline_gb"] = baseline
    result["rss_peak_gb"] = _proc_status_gb("VmHWM")
    print(json.dumps(result))


def _proc_status_gb(key: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1]) * 1024 / 1e9
    return float("nan")


def run_child(spec: dict) -> dict:
    command = [sys.executable, str(Path(__file__).resolve()), "--measure", json.dumps(spec)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        tail = done.stderr.strip().splitlines()[-1:] or [f"exit status {done.returncode}"]
        return {"error": tail[0][:120]}
    return json.loads(done.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------- plan and run


def plan(cfg: dict) -> list[dict]:
    """One entry per preset: FLOPs, attention layers, the batch, and a skip reason or None."""
    rate = None if cfg["gpu"] else cpu_matmul_gflops()
    cfg["cpu_matmul_gflops"] = rate
    entries = []
    for preset in cfg["presets"]:
        batch = batch_for(preset, cfg["batch"])
        entry = {"preset": preset, "batch": batch, **count_flops(preset)}
        entry["raised_batch"] = batch != cfg["batch"]
        entry["skip"] = cpu_skip(entry["flops"] * batch, rate, cfg["max_step_seconds"])
        entries.append(entry)
    return entries


def cpu_skip(flops: float, rate: float | None, limit: float) -> str | None:
    if rate is None or not limit:
        return None
    estimate = flops / (CPU_EFFICIENCY * rate * 1e9)
    if estimate <= limit:
        return None
    return f"skipped: ~{estimate:,.0f} s/step estimated on this CPU (> {limit:g} s)"


def run_all(cfg: dict, entries: list[dict]) -> list[dict]:
    rows = []
    for entry in entries:
        modes = [m for m in cfg["modes"] if m != "manual" or entry["attention"]]
        for mode in modes if not entry["skip"] else ["fused"]:
            row = {**entry, "mode": mode}
            if not entry["skip"]:
                print(f"  {entry['preset']} [{mode}] ...", file=sys.stderr, flush=True)
                began = time.perf_counter()
                row.update(run_child(child_spec(cfg, entry, mode)))
                row["wall_s"] = time.perf_counter() - began
            rows.append(row)
    return rows


def child_spec(cfg: dict, entry: dict, mode: str) -> dict:
    spec = {k: cfg[k] for k in ("device", "dtype", "steps", "warmup", "min_time", "threads")}
    return {**spec, "preset": entry["preset"], "batch": entry["batch"], "mode": mode}


def add_rates(rows: list[dict], peak_tflops: float | None) -> None:
    for row in rows:
        if "step_s" not in row:
            continue
        row["samples_per_s"] = row["batch"] / row["step_s"]
        row["tflops"] = row["flops"] * row["samples_per_s"] / 1e12
        row["mfu"] = row["tflops"] / peak_tflops if peak_tflops else None


# --------------------------------------------------------------------------- report


def gpu_peak(args: argparse.Namespace, cfg: dict) -> tuple[float | None, str]:
    if not cfg["gpu"]:
        return None, "no GPU"
    return bf16_peak(torch.cuda.get_device_name(torch.device(cfg["device"])), args.peak_tflops)


def machine(cfg: dict) -> str:
    versions = f"Python {platform.python_version()}, torch {torch.__version__}"
    if cfg["gpu"]:
        device = (
            f"{torch.cuda.get_device_name(torch.device(cfg['device']))}, CUDA {torch.version.cuda}"
        )
    else:
        device = f"no GPU; torch threads: {torch.get_num_threads()}"
    return f"{cpu_description()}; {versions}; {device}"


def fmt_rate(x: float) -> str:
    return f"{x:.1f}" if x >= 10 else f"{x:.2f}" if x >= 1 else f"{x:.3f}"


def memory_cell(row: dict, gpu: bool) -> str:
    if gpu:
        return f"{row['peak_alloc_gb']:.1f} / {row['peak_reserved_gb']:.1f}"
    return f"{row['rss_peak_gb'] - row['rss_baseline_gb']:.2f}"


def note(row: dict, rows: list[dict]) -> str:
    if row.get("skip"):
        return row["skip"]
    if "error" in row:
        return f"error: {row['error']}"
    notes = [] if row["loss"] == row["loss"] else ["loss is NaN"]
    if row["raised_batch"]:
        notes.append("batch 2: BatchNorm")
    fused = find(rows, row["preset"], "fused")
    if row["mode"] != "fused" and fused and "samples_per_s" in fused:
        notes.append(f"{row['samples_per_s'] / fused['samples_per_s']:.2f}x fused")
    if row["mode"] == "compiled":
        notes.append(f"first step {row['first_step_s']:.1f} s")
    fast, slow = min(row["step_times_s"]), max(row["step_times_s"])
    if slow > SPREAD_NOTE * fast:
        notes.append(f"steps {1000 * fast:,.0f}-{1000 * slow:,.0f} ms")
    return "; ".join(notes)


def find(rows: list[dict], preset: str, mode: str) -> dict | None:
    return next((r for r in rows if r["preset"] == preset and r["mode"] == mode), None)


def table_row(row: dict, rows: list[dict], gpu: bool) -> tuple[str, ...]:
    first = (row["preset"], row["mode"], str(row["batch"]), f"{row['params']:,}")
    gflops = row["flops"] / 1e9
    flops = f"{gflops:,.1f}" if gflops >= 1 else f"{gflops:.3f}"
    if "samples_per_s" not in row:
        return (*first, flops, "", "", "", "", "", note(row, rows))
    mfu = f"{100 * row['mfu']:.1f}%" if row.get("mfu") is not None else ""
    return (
        *first,
        flops,
        fmt_rate(row["samples_per_s"]),
        f"{1000 * row['step_s']:,.0f}",
        fmt_rate(row["tflops"]),
        mfu,
        memory_cell(row, gpu),
        note(row, rows),
    )


def target_rows(rows: list[dict], cfg: dict) -> list[tuple[str, str, str, str]]:
    if not cfg["gpu"]:
        out = [("targets are for an H100 GPU (none here)", "", "", "")]
        return out + [r[:3] + ("info",) for r in manual_rows(rows)]
    name = torch.cuda.get_device_name(torch.device(cfg["device"]))
    out = [] if "H100" in name else [(f"targets are for an H100 GPU (this is {name})", "", "", "")]
    for preset in (p for p in MFU_PRESETS if find(rows, p, "fused")):
        out.append(mfu_target(rows, preset))
    for preset in (p for p in SMALL if find(rows, p, "fused")):
        out.append(memory_target(find(rows, preset, "fused"), cfg["batch"]))
    return out + manual_rows(rows)


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def mfu_target(rows: list[dict], preset: str) -> tuple[str, str, str, str]:
    label = f"{preset}: MFU, best of fused/compiled"
    mfus = [
        r["mfu"]
        for r in rows
        if r["preset"] == preset and r["mode"] != "manual" and r.get("mfu") is not None
    ]
    if not mfus:
        return (label, "n/a", f">= {MFU_TARGET:.0%}", "no MFU (peak unknown or failed)")
    best = max(mfus)
    return (label, f"{best:.1%}", f">= {MFU_TARGET:.0%}", verdict(best >= MFU_TARGET))


def memory_target(row: dict, batch: int) -> tuple[str, str, str, str]:
    label = f"{row['preset']}: peak reserved, fused, batch {batch}"
    limit = f"<= {MEMORY_TARGET_GB:g} GB at batch {TARGET_BATCH}"
    if batch != TARGET_BATCH:
        result = f"n/a (batch {batch})"
    elif row.get("error") == OOM:
        result = "FAIL"
    elif "peak_reserved_gb" not in row:
        result = row.get("error", "not measured")
    else:
        result = verdict(row["peak_reserved_gb"] <= MEMORY_TARGET_GB)
    value = f"{row['peak_reserved_gb']:.1f} GB" if "peak_reserved_gb" in row else "n/a"
    return (label, value, limit, result)


def manual_rows(rows: list[dict]) -> list[tuple[str, str, str, str]]:
    out = []
    for manual in (r for r in rows if r["mode"] == "manual" and "samples_per_s" in r):
        fused = find(rows, manual["preset"], "fused")
        if not fused or "samples_per_s" not in fused:
            continue
        ratio = fused["samples_per_s"] / manual["samples_per_s"]
        judged = manual["preset"] in SMALL
        result = verdict(ratio >= MANUAL_TARGET) if judged else "info"
        label = f"{manual['preset']}: fused / manual samples/s"
        out.append((label, f"{ratio:.2f}x", f">= {MANUAL_TARGET:g}x", result))
    return out


HEAD = (
    "preset",
    "mode",
    "batch",
    "parameters",
    "GFLOP/sample",
    "samples/s",
    "step ms",
    "TFLOP/s",
    "MFU",
    "",
    "notes",
)


def format_row(row: tuple[str, ...], widths: list[int]) -> str:
    """Numbers (columns 2-9) right-aligned, text left-aligned."""
    cells = (
        c.rjust(w) if 2 <= j <= 9 else c.ljust(w)
        for j, (c, w) in enumerate(zip(row, widths, strict=True))
    )
    return "  ".join(cells).rstrip()


def print_table(lines: list[str], rows: list[tuple[str, ...]], targets: list[tuple]) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    rule = "-" * min(sum(widths) + 2 * len(widths), 160)
    print("\n".join(lines))
    print(rule)
    for i, row in enumerate(rows):
        print(format_row(row, widths))
        if i == 0:
            print(rule)
    print(rule)
    twidths = [max(len(t[i]) for t in targets) for i in range(4)]
    for t in targets:
        print("  ".join(c.ljust(w) for c, w in zip(t, twidths, strict=True)).rstrip())
    print(rule)


def header_lines(cfg: dict, peak_text: str, seconds: float) -> list[str]:
    memory = (
        "GPU peak allocated / reserved GB (timed steps)"
        if cfg["gpu"]
        else "CPU: peak RSS of the measuring subprocess above its post-import RSS, GB"
    )
    precision = "bf16 autocast" if cfg["dtype"] == "bf16" else "float32"
    if cfg["gpu"]:
        precision += ", cudnn.benchmark"
    rate = cfg.get("cpu_matmul_gflops")
    cpu = f"; fp32 1024² matmul {rate:.0f} GFLOP/s" if rate else ""
    return [
        "gitool model benchmark: one training step = forward + loss + backward + Adam",
        f"machine:  {machine(cfg)}{cpu}",
        f"settings: device {cfg['device']}, {precision}, batch {cfg['batch']}, "
        f"{cfg['warmup']} warm-up + >= {cfg['steps']} timed steps and >= {cfg['min_time']:g} s "
        f"(median), one subprocess per row; total {seconds:.0f} s",
        f"load:     1-min load average {cfg['load'][0]:.2f} before, {os.getloadavg()[0]:.2f} "
        f"after (other processes share the {os.cpu_count()} cores)",
        "FLOPs:    model FLOPs of forward + backward per sample, counted on meta (attention "
        "as matmuls, grouped-conv weight gradients per group)",
        f"memory:   {memory}",
        f"MFU peak: {peak_text}",
    ]


def report(cfg: dict, rows: list[dict], peak_text: str, seconds: float) -> list[tuple]:
    head = list(HEAD)
    head[9] = "peak GB alloc/res" if cfg["gpu"] else "peak RSS GB"
    body = [tuple(head)] + [table_row(r, rows, cfg["gpu"]) for r in rows]
    targets = target_rows(rows, cfg)
    print_table(header_lines(cfg, peak_text, seconds), body, targets)
    return targets


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.measure:
        measure_main(args.measure)
        return
    began = time.perf_counter()
    cfg = {**settings(args), "max_step_seconds": args.max_step_seconds}
    cfg["load"] = os.getloadavg()
    if args.threads:
        torch.set_num_threads(args.threads)
    entries = plan(cfg)
    rows = run_all(cfg, entries)
    peak, peak_text = gpu_peak(args, cfg)
    add_rates(rows, peak)
    targets = report(cfg, rows, peak_text, time.perf_counter() - began)
    if args.json:
        out = {"machine": machine(cfg), "settings": cfg, "peak_tflops": peak, "rows": rows}
        out["targets"] = [
            dict(zip(("target", "value", "limit", "result"), t, strict=True)) for t in targets
        ]
        args.json.write_text(json.dumps(out, indent=2, default=str) + "\n")


if __name__ == "__main__":
    main()
