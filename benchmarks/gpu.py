#!/usr/bin/env python
"""The first thing to run on a lent GPU: one command that measures what gitool's GPU targets
need, most important first, and leaves its JSON after every section.

Sections (each in its own subprocess under its own timeout; one that fails or runs out of
time is recorded as such, with what it measured so far, and the next one starts; the whole
run stops starting sections after ``--budget`` seconds):

1. ``environment``: torch, CUDA and cuDNN versions, the device, its dense bf16 peak
   (:func:`common.bf16_peak`), and which ``scaled_dot_product_attention`` kernel runs for
   each real attention call of swin-basenji-small at batch 8 in training (bf16 autocast,
   dropout on): the calls are recorded from one forward pass (query, key, value and the
   float bias mask — relative positions plus the padding's -inf — as the model makes them),
   then replayed in the layout the model hands over (the bias in aligned storage; timed
   again as a contiguous, unaligned copy, which torch copies into aligned storage on every
   call): the kernel the dispatcher picks (the aten op the profiler sees), and each
   backend forced with ``torch.nn.attention.sdpa_kernel`` (flash, memory-efficient, cuDNN,
   math): whether it runs (else the reason torch gives) and its forward + backward time;
2. ``swin``: swin-basenji-small training steps (forward + Poisson loss + backward + fused
   Adam, bf16 autocast, random data already on the GPU, 5,313-track head) at batch 8, 16
   and 32, eager and ``torch.compile``: median step time, samples/s, peak memory, model
   FLOPs as ``benchmarks/models.py`` counts them (:func:`models.count_flops`) and MFU
   against the card's bf16 peak; a compiled batch starts only if the section has time left
   for its compilation;
3. ``loader``: the host data path alone (:func:`gitool.data.loader.training_batches`,
   batch 8, shift 3 + reverse complement, 0-8 workers) on a generated 5,313-track store
   (17,712 bp → 80 × 128 bp, float16 targets), the same with each batch moved to the GPU and
   augmented there (:func:`gitool.data.loader.device_batch`), and the split held on the GPU
   (``resident``); each against the model's samples/s from section 2: does the loader keep
   up?;
4. ``train``: ``gitool train`` end to end (the CLI in a subprocess, ``--gpus 1 --max-steps
   150``, a YAML ``--config``: swin-basenji-small, batch 8, the paper workflow's 6 loader
   workers, validation passes over 256 windows at step 80 and at the end, checkpoints every
   50 steps) on the same store: steps/s from ``metrics.jsonl`` (log windows of 10 steps,
   the first — start-up and compilation — and those after a validation or checkpoint left
   out), start-up (launch to the first record), each validation pass (its record's arrival
   after its step's training record; the first also compiles the evaluation graph) and a
   checkpoint (the extra time of the window after it);
5. ``predict``: ``gitool predict`` (the CLI in a subprocess, default batch) with the run from
   section 4 on a generated genome (random ACGT), 50 tracks and all 5,313, each at two region
   sizes so that the per-bp rate is the difference between them (start-up, model load and
   opening the bigWigs left out): windows/s, bins/s written, and a whole human genome
   (3.1 Gbp) extrapolated;
6. ``enformer``: the full Enformer (``enformer`` preset, 196,608 bp, human + mouse heads)
   bf16 forward + backward + fused Adam at batch 1 and 2, step time and peak memory, plain and
   with ``model.checkpoint_activations()`` (what ``--checkpoint-activations`` does).

Targets printed against (for an H100): swin-basenji-small ≥ 35 % bf16 MFU at batch 8; one
BasenjiSmall epoch (34,021 windows) ≤ 30 s; a whole human genome predicted (50 tracks)
< 30 min; the loader at least as fast as the model.

The JSON (``--json``, default ``$OUT/gpu.json`` when ``$OUT`` is set, else ``gpu.json``) is
rewritten after every measurement: a killed run leaves everything measured until then.
``--smoke`` runs every section on the CPU at tiny sizes (small widths, 2,048-bp windows, 8
tracks, a few steps) in well under a minute: a check of the script, not a measurement.

Examples::

    python benchmarks/gpu.py --json $OUT/gpu.json        # on a lent GPU (no section starts after 470 s)
    python benchmarks/gpu.py --smoke --json /tmp/s.json  # CPU check of the script
    python benchmarks/gpu.py --sections environment,swin
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import inspect
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
import warnings
from collections import deque
from contextlib import nullcontext
from pathlib import Path

import numpy as np

from common import bf16_peak, cpu_description, parser

ROOT = Path(__file__).resolve().parents[1]
SECTIONS = ("environment", "swin", "loader", "train", "predict", "enformer")
NEEDS_GPU = ("swin", "loader", "train", "predict", "enformer")  # without --smoke
TIMEOUTS = {  # seconds per section on a GPU (caps; the expected times are about half)
    "environment": 60,
    "swin": 200,
    "loader": 60,
    "train": 180,
    "predict": 110,
    "enformer": 90,
}
SMOKE_TIMEOUT = 60
BUDGET = 470  # seconds: no section starts later; each gets at most what is left
MIN_SECTION = 20  # seconds: a section with less left is skipped

MFU_TARGET = 0.35
EPOCH_WINDOWS = 34_021  # BasenjiSmall training windows
VALID_WINDOWS = 2_213  # BasenjiSmall validation windows
EPOCH_TARGET_S = 30.0
GENOME_BP = 3.1e9
GENOME_TARGET_S = 30 * 60.0
NO_GPU = "skipped: no GPU (a CPU run of every section: --smoke)"

FULL = {
    "swin": "swin-basenji-small",
    "swin_overrides": {},
    "batches": (8, 16, 32),
    "tracks": 5_313,
    "seq_length": 17_712,
    "target_length": 80,
    "bin_size": 128,
    "train_windows": 1_280,  # > 150 steps × 8: the run stays in its first epoch
    "valid_windows": 256,
    "loader_workers": (0, 1, 2, 4, 8),
    "loader_windows": 800,
    "train_steps": 150,
    "log_every": 10,
    "eval_every": 80,  # then the final one at 150: the first compiles the eval graph
    "checkpoint_every": 50,
    "train_workers": 6,  # workflows/swin-basenji-small.yaml
    "predict_tracks": (50, 5_313),
    "predict_bp": {50: 2_000_000, 5_313: 100_000},  # the first of the two sizes; then × 4
    "predict_second_s": 6.0,  # aim the second size at about this many more seconds
    "genome_bp": 64_000_000,
    "enformer": "enformer",
    "enformer_overrides": {},
    "enformer_batches": (1, 2),
    "warmup": 3,
    "steps": 10,
    "min_time": 1.0,
}
TINY_SWIN = {
    "seq_length": 2_048,
    "target_length": 8,
    "dims": [8, 8, 8, 8, 16, 16, 16, 16],
    "windows": [16, 16, 16, 16, 16, 16, 16, 16],
    "attention_heads": [1, 1, 1, 1, 2, 2, 2, 2],
    "transformer_heads": 2,
    "transformer_key_dim": 8,
    "heads": {"human": 8},
}
SMOKE = {
    **FULL,
    "swin_overrides": TINY_SWIN,
    "batches": (1, 2),
    "tracks": 8,
    "seq_length": 2_048,
    "target_length": 8,
    "train_windows": 64,
    "valid_windows": 16,
    "loader_workers": (0, 1),
    "loader_windows": 32,
    "train_steps": 12,
    "log_every": 2,
    "eval_every": 8,
    "checkpoint_every": 4,
    "train_workers": 0,
    "predict_tracks": (4, 8),
    "predict_bp": {4: 20_000, 8: 20_000},
    "predict_second_s": 0.0,
    "genome_bp": 200_000,
    "enformer_overrides": {
        "seq_length": 2_048,
        "target_length": 8,
        "channels": 48,
        "attention_heads": 4,
        "key_dim": 8,
        "divisible_by": 8,
        "depth": 1,
        "heads": {"human": 8, "mouse": 4},
    },
    "warmup": 1,
    "steps": 2,
    "min_time": 0.0,
}


# --------------------------------------------------------------------------- arguments


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    cli = parser(
        "The first run on a lent GPU: SDPA kernels, swin-basenji-small training MFU, the "
        "data path, gitool train and predict end to end, the full Enformer; JSON after every "
        "section.",
        peak_tflops=True,
        workdir=Path("/tmp/gitool-gpu-bench"),
    )
    cli.add_argument(
        "--smoke",
        action="store_true",
        help="every section on the CPU at tiny sizes (well under a minute): checks the script",
    )
    cli.add_argument(
        "--sections",
        default="all",
        help=f"comma-separated sections (names or 1-6) or 'all': {', '.join(SECTIONS)}",
    )
    cli.add_argument(
        "--budget",
        type=float,
        default=BUDGET,
        help="seconds: no section starts after this, and none runs past it",
    )
    cli.add_argument("--section", help=argparse.SUPPRESS)  # internal: run one section
    cli.add_argument("--section-seconds", type=float, help=argparse.SUPPRESS)
    return cli.parse_args(argv)


def json_path(args: argparse.Namespace) -> Path:
    if args.json:
        return args.json
    out = os.environ.get("OUT")
    return Path(out) / "gpu.json" if out else Path("gpu.json")


def section_names(text: str) -> list[str]:
    if text.strip() == "all":
        return list(SECTIONS)
    names = []
    for item in (s.strip() for s in text.split(",") if s.strip()):
        name = SECTIONS[int(item) - 1] if item.isdigit() and 1 <= int(item) <= 6 else item
        if name not in SECTIONS:
            sys.exit(f"unknown section {item!r}; choose from {', '.join(SECTIONS)} (or 1-6)")
        if name not in names:
            names.append(name)
    return [n for n in SECTIONS if n in names]  # always in order: later ones use earlier ones


# --------------------------------------------------------------------------- the JSON file


def read_json(path: Path) -> dict:
    return json.loads(path.read_text())


def write_json(path: Path, record: dict) -> None:
    """Write atomically (a reader never sees half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(record, indent=2, default=str) + "\n")
    os.replace(tmp, path)


class Section:
    """A section's view of the JSON file: ``set`` stores results and rewrites the file."""

    def __init__(
        self,
        path: Path,
        name: str,
        seconds: float,
        smoke: bool,
        workdir: Path,
        peak_tflops: float | None = None,
    ):
        self.path, self.name, self.smoke = path, name, smoke
        self.workdir, self.peak_tflops = workdir, peak_tflops
        self.began = time.perf_counter()
        self.deadline = self.began + seconds

    def left(self) -> float:
        return self.deadline - time.perf_counter()

    def earlier(self, name: str) -> dict:
        return read_json(self.path)["sections"].get(name, {}).get("results", {})

    def set(self, **values) -> None:
        record = read_json(self.path)
        entry = record["sections"].setdefault(self.name, {})
        entry.setdefault("results", {}).update(values)
        entry["status"] = "running"
        write_json(self.path, record)


def log(message: str) -> None:
    print(f"  {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- helpers


def sizes(smoke: bool) -> dict:
    return SMOKE if smoke else FULL


def device_name() -> str:
    import torch

    return torch.cuda.get_device_name() if torch.cuda.is_available() else "CPU"


def machine(gpu_name: bool = True) -> str:
    """The machine line; ``gpu_name=False`` names no GPU model (that needs a CUDA context,
    which the parent process does not create: it would hold GPU memory all run)."""
    import torch

    versions = f"Python {platform.python_version()}, torch {torch.__version__}"
    if torch.cuda.is_available():
        name = torch.cuda.get_device_name() if gpu_name else f"{torch.cuda.device_count()} GPU(s)"
        gpu = f"{name}, CUDA {torch.version.cuda}"
    else:
        gpu = f"no GPU; torch threads: {torch.get_num_threads()}"
    return f"{cpu_description()}; {versions}; {gpu}"


def sync() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def free_memory() -> None:
    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def error_text(err: BaseException) -> str:
    import torch

    if isinstance(err, torch.OutOfMemoryError):
        return "out of memory"
    text = f"{type(err).__name__}: {err}".strip().splitlines()
    return text[0][:300] if text else type(err).__name__


def gitool_env(smoke: bool = False) -> dict:
    """The environment of subprocesses: this interpreter's, with ``src/`` importable; one
    OpenMP thread in a smoke run (tiny tensors on a shared CPU: more threads only spin)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT / "src"), env.get("PYTHONPATH")) if p)
    if smoke:
        env["OMP_NUM_THREADS"] = "1"
    return env


def run_command(
    command: list[str],
    log_file: Path,
    timeout: float,
    on_line=None,
    smoke: bool = False,
    env: dict | None = None,
) -> dict:
    """Run ``command`` (output to ``log_file``), stopped after ``timeout`` s; ``on_line`` is
    called every 50 ms while it runs. Returns wall seconds, exit status and, on failure,
    why (the log's last lines)."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    began = time.perf_counter()
    with open(log_file, "w") as handle:
        proc = subprocess.Popen(
            command,
            stdout=handle,
            stderr=subprocess.STDOUT,
            env=gitool_env(smoke) | (env or {}),
            cwd=ROOT,
        )
        try:
            while proc.poll() is None:
                if on_line is not None:
                    on_line()
                if time.perf_counter() - began > timeout:
                    break
                time.sleep(0.05)
        finally:
            if proc.poll() is None:  # SIGTERM: gitool stops its loader workers and cleans up
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
    if on_line is not None:
        on_line()
    out = {"wall_s": time.perf_counter() - began, "returncode": proc.returncode}
    if proc.returncode and out["wall_s"] > timeout:
        out["error"] = f"{' '.join(command[2:4])} ran past {timeout:.0f} s: stopped"
    elif proc.returncode:
        tail = [line for line in log_file.read_text(errors="replace").splitlines() if line.strip()]
        out["error"] = " | ".join(tail[-3:])[-400:]
    return out


# --------------------------------------------------------------------------- models


def random_batch(preset: str, overrides: dict, batch: int, device):
    """One-hot input and random non-negative targets per head, as ``models.random_batch``
    makes them, for a preset with ``overrides``."""
    import torch
    import torch.nn.functional as F

    from gitool.models.registry import resolve

    _, cfg = resolve(preset, **overrides)
    x = F.one_hot(torch.randint(0, 4, (batch, cfg.seq_length), device=device), 4).float()
    shape = (batch, cfg.target_length)
    return x, {h: 4 * torch.rand(*shape, n, device=device) for h, n in cfg.heads.items()}


def flops_per_sample(preset: str, overrides: dict) -> float:
    """Model FLOPs of one forward + backward per sample, counted as ``benchmarks/models.py``
    counts them (its :func:`models.count_flops` for a plain preset; the same pieces for a
    preset with ``overrides``, the smoke run's tiny widths)."""
    import models
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from gitool.models.registry import create_model

    if not overrides:
        return float(models.count_flops(preset)["flops"])
    with torch.device("meta"):
        model = create_model(preset, **overrides)
    models.force_manual(model)
    x, target = random_batch(preset, overrides, models.FLOP_BATCH, "meta")
    mapping = {torch.ops.aten.convolution_backward: models._conv_backward_flop}
    with FlopCounterMode(display=False, custom_mapping=mapping) as counter:
        models.loss_of(model(x), target).backward()
    return counter.get_total_flops() / models.FLOP_BATCH


def time_training(preset: str, overrides: dict, batch: int, plan: dict, **options) -> dict:
    """:func:`_time_training`, then its model, optimizer and compiled graphs freed."""
    import torch

    try:
        return _time_training(preset, overrides, batch, plan, **options)
    finally:
        if options.get("compiled"):
            torch._dynamo.reset()
        free_memory()


def _time_training(
    preset: str,
    overrides: dict,
    batch: int,
    plan: dict,
    *,
    compiled: bool = False,
    checkpoint: bool = False,
) -> dict:
    """Forward + loss + backward + Adam (fused on a GPU) on random data already on the
    device, bf16 autocast on a GPU; median step time over ``plan['steps']`` (and at least
    ``plan['min_time']`` s) after ``plan['warmup']`` steps. Peak memory over the timed steps."""
    import models
    import torch

    from gitool.models.registry import create_model

    cuda = torch.cuda.is_available()
    device = torch.device("cuda" if cuda else "cpu")
    free_memory()
    torch.manual_seed(0)
    torch.backends.cudnn.benchmark = True
    with device:
        model = create_model(preset, **overrides)
    out: dict = {"batch": batch, "mode": "compiled" if compiled else "eager"}
    if checkpoint:
        out["checkpointed_blocks"] = model.checkpoint_activations()
    fn = torch.compile(model) if compiled else model
    x, target = random_batch(preset, overrides, batch, device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4, fused=cuda or None)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if cuda else nullcontext()
    last: list = []

    def step() -> float:
        began = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        with autocast:
            loss = models.loss_of(fn(x), target)
        loss.backward()
        optimizer.step()
        sync()
        last[:] = [loss.detach()]
        return time.perf_counter() - began

    warm = [step() for _ in range(plan["warmup"])]
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    times: list[float] = []
    while len(times) < 200 and (len(times) < plan["steps"] or sum(times) < plan["min_time"]):
        times.append(step())
    out.update(
        step_s=statistics.median(times),
        step_range_s=[min(times), max(times)],
        first_step_s=(warm or times)[0],
        samples_per_s=batch / statistics.median(times),
        loss=float(last[0]),
    )
    if cuda:
        out["peak_alloc_gb"] = torch.cuda.max_memory_allocated() / 1e9
        out["peak_reserved_gb"] = torch.cuda.max_memory_reserved() / 1e9
    return out


def add_mfu(row: dict, flops: float, peak: float | None) -> None:
    if "samples_per_s" in row:
        row["tflops"] = flops * row["samples_per_s"] / 1e12
        row["mfu"] = row["tflops"] / peak if peak else None


# --------------------------------------------------------------------------- 1. environment


BACKENDS = ("FLASH_ATTENTION", "EFFICIENT_ATTENTION", "CUDNN_ATTENTION", "MATH")
KERNEL_OPS = (  # aten op → kernel, most specific first
    ("_scaled_dot_product_flash_attention_for_cpu", "flash (CPU)"),
    ("_scaled_dot_product_flash_attention", "flash"),
    ("_scaled_dot_product_efficient_attention", "memory-efficient"),
    ("_scaled_dot_product_cudnn_attention", "cudnn"),
    ("_scaled_dot_product_fused_attention_overrideable", "overrideable"),
    ("_scaled_dot_product_attention_math", "math"),
)


def record_sdpa_calls(model, x) -> list[dict]:
    """Every ``scaled_dot_product_attention`` call of one training-mode forward: the layer
    it came from and its arguments (detached copies)."""
    import torch
    import torch.nn.functional as F
    from torch.overrides import TorchFunctionMode

    calls: list[dict] = []
    current = {"layer": "?"}

    class Record(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            if func is F.scaled_dot_product_attention:
                q, k, v = args[:3]
                mask = kwargs.get("attn_mask")
                calls.append(
                    {
                        "layer": current["layer"],
                        "q": q.detach().clone(),
                        "k": k.detach().clone(),
                        "v": v.detach().clone(),
                        "mask": None if mask is None else layout_copy(mask.detach()),
                        "dropout_p": float(kwargs.get("dropout_p", 0.0)),
                        "scale": kwargs.get("scale"),
                    }
                )
            return func(*args, **kwargs)

    handles = []
    for name, layer in model.attention_layers().items():

        def pre(module, inputs, name=name):
            current["layer"] = name

        handles.append(layer.register_forward_pre_hook(pre))
    cuda = x.device.type == "cuda"
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if cuda else nullcontext()
    try:
        with torch.no_grad(), autocast, Record():
            model(x)
    finally:
        for handle in handles:
            handle.remove()
    return calls


def layout_copy(t, aligned: bool | None = None):
    """A copy of ``t`` with its values, in aligned storage (every stride but the last, and
    the start, a multiple of 16 elements, as the model hands its bias to the kernel) or
    contiguous; by default the layout ``t`` has. ``clone()`` would make a strided view contiguous, and the
    replay would time the copy torch makes of an unaligned bias instead of the model's."""
    import torch

    from gitool.models.layers import round_up

    if aligned is None:
        aligned = is_aligned(t)
    if not aligned:
        return t.contiguous().clone()
    out = torch.empty(*t.shape[:-1], round_up(t.shape[-1]), dtype=t.dtype, device=t.device)
    out = out[..., : t.shape[-1]]
    out.copy_(t)
    return out


def is_aligned(t) -> bool:
    """Every stride but the last, and the start, a multiple of 16 elements."""
    from gitool.models.layers import ALIGN

    return (
        t.stride(-1) == 1
        and all(s % ALIGN == 0 for s in t.stride()[:-1])
        and t.storage_offset() % ALIGN == 0
    )


def sdpa_kernel_of(call: dict) -> str:
    """The kernel the dispatcher picks for this call (the aten op the profiler records)."""
    import torch.nn.functional as F
    from torch.profiler import ProfilerActivity, profile

    args = sdpa_args(call, grad=True)
    with quiet_stderr(), profile(activities=[ProfilerActivity.CPU]) as prof:
        F.scaled_dot_product_attention(*args[:3], **args[3])
    names = {event.key for event in prof.key_averages()}
    for op, kernel in KERNEL_OPS:
        if f"aten::{op}" in names:
            return kernel
    return "unknown: " + ", ".join(sorted(n for n in names if "attention" in n))[:200]


@contextlib.contextmanager
def quiet_stderr():
    """File descriptor 2 to /dev/null (the profiler's C++ start/stop lines)."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def sdpa_args(call: dict, grad: bool):
    """Fresh leaf copies of a call's tensors (gradients to the bias too, as in training)."""
    q, k, v = (call[n].clone().requires_grad_(grad) for n in ("q", "k", "v"))
    mask = call["mask"]
    if mask is not None:
        mask = layout_copy(mask).requires_grad_(grad and mask.is_floating_point())
    kwargs = {"attn_mask": mask, "dropout_p": call["dropout_p"], "scale": call["scale"]}
    return q, k, v, kwargs


def time_sdpa(call: dict, backend, reps: int) -> dict:
    """Forward + backward time of a call with one backend forced (or ``None``: the
    dispatcher's choice); the reasons torch gives when the backend cannot run it."""
    import torch
    import torch.nn.functional as F
    from torch.nn.attention import sdpa_kernel

    q, k, v, kwargs = sdpa_args(call, grad=True)
    leaves = [t for t in (q, k, v, kwargs["attn_mask"]) if t is not None and t.requires_grad]
    chooser = sdpa_kernel(backend) if backend is not None else nullcontext()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            with chooser:

                def once() -> tuple[float, float]:
                    began = time.perf_counter()
                    out = F.scaled_dot_product_attention(q, k, v, **kwargs)
                    sync()
                    middle = time.perf_counter()
                    grads = torch.autograd.grad(out.float().sum(), leaves)
                    sync()
                    del grads
                    return middle - began, time.perf_counter() - began

                once()  # warm-up
                times = [once() for _ in range(reps)]
        except Exception as err:  # noqa: BLE001 - the reason is the result
            reasons = [str(w.message).strip() for w in caught if "attention" in str(w.message)]
            reason = " | ".join(dict.fromkeys(reasons)) or str(err).splitlines()[0]
            return {"ok": False, "reason": reason[:400]}
    return {
        "ok": True,
        "forward_ms": 1000 * statistics.median(t[0] for t in times),
        "forward_backward_ms": 1000 * statistics.median(t[1] for t in times),
    }


def section_environment(sec: Section) -> None:
    import torch
    from torch.nn.attention import SDPBackend

    import gitool
    from gitool.models.registry import create_model

    cfg = sizes(sec.smoke)
    cuda = torch.cuda.is_available() and not sec.smoke
    env = {
        "machine": machine(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "gitool": gitool.__version__,
        "cpu": cpu_description(),
        "device": device_name() if cuda else "CPU",
        "smoke": sec.smoke,
    }
    if cuda:
        props = torch.cuda.get_device_properties(0)
        peak, how = bf16_peak(props.name, sec.peak_tflops)
        env.update(
            capability=f"{props.major}.{props.minor}",
            memory_gb=props.total_memory / 1e9,
            multiprocessors=props.multi_processor_count,
            bf16_peak_tflops=peak,
            bf16_peak=how,
            sdp_enabled={
                name: getattr(torch.backends.cuda, f"{name}_sdp_enabled", lambda: None)()
                for name in ("flash", "mem_efficient", "cudnn", "math")
            },
        )
    else:
        env.update(bf16_peak_tflops=None, bf16_peak="no GPU")
    sec.set(**env)
    device = torch.device("cuda" if cuda else "cpu")
    batch = 8 if cuda else 2
    torch.manual_seed(0)
    with device:
        model = create_model(cfg["swin"], **cfg["swin_overrides"])
    model.train()  # dropout on the attention weights, as in training
    x, _ = random_batch(cfg["swin"], cfg["swin_overrides"], batch, device)
    calls = record_sdpa_calls(model, x)
    del model
    rows, seen = [], {}
    for call in calls:
        mask = call["mask"]
        key = (
            tuple(call["q"].shape),
            tuple(call["v"].shape),
            None if mask is None else tuple(mask.shape),
        )
        if key in seen:  # the shifted block repeats the regular block's shapes
            seen[key]["layers"].append(call["layer"])
            continue
        row = {
            "layers": [call["layer"]],
            "q_shape": list(call["q"].shape),
            "v_shape": list(call["v"].shape),
            "mask_shape": None if mask is None else list(mask.shape),
            "dtype": str(call["q"].dtype).removeprefix("torch."),
            "mask_dtype": None if mask is None else str(mask.dtype).removeprefix("torch."),
            "mask_aligned": None if mask is None else is_aligned(mask),
            "dropout_p": call["dropout_p"],
        }
        row["default_kernel"] = sdpa_kernel_of(call)
        if hasattr(torch, "_fused_sdp_choice"):
            with contextlib.suppress(Exception):
                q, k, v, kw = sdpa_args(call, grad=True)
                choice = torch._fused_sdp_choice(
                    q, k, v, kw["attn_mask"], kw["dropout_p"], False, scale=kw["scale"]
                )
                row["fused_sdp_choice"] = SDPBackend(choice).name
        row["default"] = time_sdpa(call, None, reps=3 if cuda else 1)
        if mask is not None and mask.is_floating_point():  # what the alignment saves
            unaligned = {**call, "mask": layout_copy(mask, aligned=False)}
            row["default_unaligned_mask"] = time_sdpa(unaligned, None, reps=3 if cuda else 1)
        row["backends"] = {}
        for name in BACKENDS:
            backend = getattr(SDPBackend, name, None)
            if backend is None:
                continue
            row["backends"][name.lower()] = time_sdpa(call, backend, reps=3 if cuda else 1)
        seen[key] = row
        rows.append(row)
        sec.set(sdpa_batch=batch, sdpa=rows)
    summary = {}
    for row in rows:
        summary.setdefault(row["default_kernel"], []).extend(row["layers"])
    sec.set(sdpa_batch=batch, sdpa=rows, sdpa_kernels=summary)
    log(
        f"SDPA kernels at batch {batch}: "
        + "; ".join(f"{k}: {len(v)} calls" for k, v in summary.items())
    )


# --------------------------------------------------------------------------- 2. swin training


def section_swin(sec: Section) -> None:
    import torch

    cfg = sizes(sec.smoke)
    cuda = torch.cuda.is_available() and not sec.smoke
    preset, overrides = cfg["swin"], cfg["swin_overrides"]
    peak, how = bf16_peak(device_name(), sec.peak_tflops) if cuda else (None, "no GPU")
    flops = flops_per_sample(preset, overrides)
    sec.set(
        preset=preset,
        flops_per_sample=flops,
        bf16_peak_tflops=peak,
        bf16_peak=how,
        dtype="bf16 autocast" if cuda else "float32",
        rows=[],
    )
    small, *others = cfg["batches"]
    plan = [("eager", small), ("compiled", small)]
    plan += [("eager", b) for b in others] + [("compiled", b) for b in reversed(others)]
    rows: list[dict] = []
    compile_s = None
    for mode, batch in plan:
        row: dict = {"batch": batch, "mode": mode}
        if mode == "compiled" and sec.smoke:
            row["skipped"] = "smoke run: torch.compile takes minutes on a CPU"
        elif mode == "compiled" and sec.left() < max(60.0, 1.5 * (compile_s or 0)):
            row["skipped"] = f"not enough section time left ({sec.left():.0f} s) to compile"
        else:
            log(f"{preset} {mode}, batch {batch} ...")
            try:
                row = time_training(preset, overrides, batch, cfg, compiled=mode == "compiled")
                add_mfu(row, flops, peak)
                if mode == "compiled":
                    compile_s = compile_s or row["first_step_s"]
            except Exception as err:  # noqa: BLE001 - record it and go on
                row["error"] = error_text(err)
                free_memory()
        rows.append(row)
        sec.set(rows=rows)


# --------------------------------------------------------------------------- stores and genome


def track_rows(n: int) -> list[dict]:
    """The manifest's tracks, one in five of them in stranded pairs (as benchmarks/loader.py
    generates them)."""
    import loader

    return loader.track_rows(n)


def write_store(root: Path, cfg: dict, seed: int = 0) -> None:
    """A coverage store ``gitool train`` opens (the approach of ``benchmarks/loader.py``):
    random codes, float16 targets in [0, 1.25] (a random block of 64 windows, varied per
    block), the manifest's keys."""
    from gitool.data.npy import NpyWriter
    from gitool.data.store import FORMAT_NAME, STORE_FORMAT, write_manifest

    seq, bins, tracks = cfg["seq_length"], cfg["target_length"], cfg["tracks"]
    stride = bins * cfg["bin_size"]
    rng = np.random.default_rng([seed, tracks])
    counts = {"train": cfg["train_windows"], "valid": cfg["valid_windows"], "test": 8}
    block = rng.integers(0, 0x3C00, (64, bins, tracks), dtype=np.uint16)
    values = block.view(np.float16).astype(np.float32)  # the statistics gitool train reads
    means = [round(float(m), 4) for m in values.mean(axis=(0, 1))]
    maxima = [round(float(m), 4) for m in values.max(axis=(0, 1))]
    for split, n in counts.items():
        (root / split).mkdir(parents=True)
        np.save(root / split / "sequences.npy", rng.integers(0, 5, (n, seq), dtype=np.uint8))
        with NpyWriter(root / split / "targets.npy", np.float16, (bins, tracks)) as out:
            for k, i in enumerate(range(0, n, len(block))):
                rows = block[: min(len(block), n - i)] ^ np.uint16(k % 256)
                out.append(rows.view(np.float16))
        (root / split / "windows.bed").write_text(
            "".join(f"chr1\t{j * stride}\t{j * stride + seq}\t0\t0\n" for j in range(n))
        )
    manifest = {
        "format": FORMAT_NAME,
        "version": STORE_FORMAT,
        "generated": "benchmarks/gpu.py (random codes and targets)",
        "seq_length": seq,
        "bin_size": cfg["bin_size"],
        "target_length": bins,
        "stride": stride,
        "n_tracks": tracks,
        "splits": {
            split: {"windows": n, "track_mean": means, "track_max": maxima}
            for split, n in counts.items()
        },
        "tracks": track_rows(tracks),
    }
    write_manifest(manifest, root / "manifest.yaml")


def prepare_store(sec: Section, workdir: Path) -> tuple[Path, float | None]:
    """The generated store (its head is named ``human``, as the preset's), reused when its
    parameters match; seconds spent writing it (None: reused)."""
    cfg = sizes(sec.smoke)
    root = workdir / "store" / "human"
    keys = ("tracks", "seq_length", "target_length", "bin_size", "train_windows", "valid_windows")
    params = {k: cfg[k] for k in keys} | {"version": 1}
    marker = root / "params.json"
    if marker.is_file() and json.loads(marker.read_text()) == params:
        return root, None
    began = time.perf_counter()
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    write_store(root, cfg)
    marker.write_text(json.dumps(params))
    return root, time.perf_counter() - began


def write_genome(path: Path, length: int, seed: int = 1) -> None:
    """One chromosome ``chr1`` of random ACGT, 60 bp per line."""
    rng = np.random.default_rng(seed)
    bases = np.frombuffer(b"ACGT", dtype=np.uint8)[rng.integers(0, 4, length)]
    width = 60
    full = length // width * width
    lines = np.full((full // width, width + 1), ord("\n"), dtype=np.uint8)
    lines[:, :width] = bases[:full].reshape(-1, width)
    with open(path, "wb") as handle:
        handle.write(b">chr1\n")
        handle.write(lines.tobytes())
        if length > full:
            handle.write(bases[full:].tobytes() + b"\n")


# --------------------------------------------------------------------------- 3. loader


def touch(batch) -> int:
    """Read one byte of every page of the batch's arrays (as the copy to the device would)."""
    import torch

    return sum(int(t.reshape(-1).view(torch.uint8)[::4096].sum()) for t in batch[:2])


def time_batches(batches, windows: int, on_batch, warmup: int = 3) -> dict:
    for _ in range(warmup):
        on_batch(next(batches))
    count, began = 0, time.perf_counter()
    while count < windows:
        batch = next(batches)
        on_batch(batch)
        count += len(batch[0])
    seconds = time.perf_counter() - began
    return {"windows": count, "seconds": seconds, "windows_per_s": count / seconds}


def model_rates(sec: Section) -> dict[str, float]:
    """samples/s of section 2's measurements: ``'<mode> b<batch>'`` → rate."""
    rows = sec.earlier("swin").get("rows", [])
    return {f"{r['mode']} b{r['batch']}": r["samples_per_s"] for r in rows if "samples_per_s" in r}


def section_loader(sec: Section) -> None:
    import torch

    from gitool.data.loader import device_batch, training_batches
    from gitool.data.store import Store

    cfg = sizes(sec.smoke)
    cuda = torch.cuda.is_available() and not sec.smoke
    device = torch.device("cuda" if cuda else "cpu")
    torch.set_num_threads(1)
    log("generating the store ...")
    root, generated = prepare_store(sec, sec.workdir)
    store = Store(root)
    strand_pair = torch.as_tensor(store.strand_pair(), device=device)
    gb = store.count("train") * cfg["target_length"] * cfg["tracks"] * 2 / 1e9
    sec.set(
        store=str(root),
        tracks=cfg["tracks"],
        train_windows=store.count("train"),
        targets_gb=gb,
        generated_s=generated,
        batch=8,
        rows=[],
    )
    for path in root.glob("*/*.npy"):  # no measurement pays for cold reads
        with open(path, "rb") as handle:
            while handle.read(1 << 24):
                pass
    model = model_rates(sec)
    best = max((v for k, v in model.items() if k.endswith(" b8")), default=None)
    sec.set(model_samples_per_s=model, model_b8_best=best)
    common = dict(seed=0, epoch=0, shift=3, rc=True)

    def on_device(batch) -> None:
        device_batch(batch, device, strand_pair)
        sync()

    plan = [("host", w) for w in cfg["loader_workers"]]
    to_device = {2, cfg["train_workers"], max(cfg["loader_workers"])} - {0}
    plan += [("to device", w) for w in sorted(to_device)]
    resident = "resident" in inspect.signature(training_batches).parameters
    plan += [("resident", 0)] if resident else []
    rows = []
    for kind, workers in plan:
        log(f"training_batches, {kind}, {workers} worker(s) ...")
        row: dict = {"path": kind, "workers": workers}
        try:
            extra = {"resident": True} if kind == "resident" else {}
            batches = training_batches(
                store, "train", 8, num_workers=workers, device=device, **common, **extra
            )
            row.update(
                time_batches(batches, cfg["loader_windows"], touch if kind == "host" else on_device)
            )
            batches.close()
            if best:
                row["loader_over_model"] = row["windows_per_s"] / best
        except Exception as err:  # noqa: BLE001 - record it and go on
            row["error"] = error_text(err)
        rows.append(row)
        sec.set(rows=rows)
    if not resident:
        sec.set(resident="not measured: training_batches has no resident option here")


# --------------------------------------------------------------------------- 4. gitool train


def train_config(cfg: dict, smoke: bool) -> dict:
    config = {
        "model": cfg["swin"],
        "batch_size": 8 if not smoke else 2,
        "epochs": 1000,
        "log_every": cfg["log_every"],
        "eval_every": cfg["eval_every"],
        "valid_windows": cfg["valid_windows"],
        "checkpoint_every": cfg["checkpoint_every"],
        "num_workers": cfg["train_workers"],
        "lr": 3.0e-4,
        "bf16": True,
    }
    overrides = {
        k: v
        for k, v in cfg["swin_overrides"].items()
        if k not in ("seq_length", "target_length", "heads")
    }
    if overrides:
        config["model_config"] = overrides
    return config


class MetricsWatcher:
    """Reads ``metrics.jsonl`` as the run writes it: each record with its arrival time
    (seconds since launch)."""

    def __init__(self, path: Path):
        self.path, self.began, self.records, self.seen = path, time.perf_counter(), [], 0

    def __call__(self) -> None:
        if not self.path.is_file():
            return
        lines = self.path.read_text().splitlines(keepends=True)
        now = time.perf_counter() - self.began
        for line in lines[self.seen :]:
            if not line.endswith("\n"):
                break
            self.records.append({**json.loads(line), "arrived_s": now})
            self.seen += 1


def analyse_run(records: list[dict], cfg: dict, batch: int) -> dict:
    """Steps/s, start-up, validation and checkpoint costs from the watched records.

    A log window's seconds are ``log_every × batch / samples_per_s``; the steady ones leave
    out the first (start-up, compilation) and each that follows a validation or a
    checkpoint. A validation pass lasts from the training record of its step to its own
    record; a checkpoint costs the extra time of the window after it."""
    train = [r for r in records if "samples_per_s" in r]
    evals = [r for r in records if "loss" not in r]
    if len(train) < 2:
        return {"error": f"only {len(train)} training records in metrics.jsonl"}
    every = cfg["log_every"]
    window_s = {r["step"]: every * batch / r["samples_per_s"] for r in train}
    eval_steps = {r["step"] for r in evals}
    ckpt_steps = {s for s in window_s if s % cfg["checkpoint_every"] == 0}
    disturbed = {s + every for s in eval_steps | ckpt_steps}
    steady = [window_s[s] for s in list(window_s)[1:] if s not in disturbed]
    out: dict = {"records": len(records), "first_record_s": train[0]["arrived_s"]}
    if steady:
        median = statistics.median(steady)
        out.update(
            steps_per_s=every / median,
            samples_per_s=every * batch / median,
            steady_windows=len(steady),
        )
        after = [
            window_s[s + every] - median
            for s in sorted(ckpt_steps - eval_steps)
            if s + every in window_s
        ]
        if after:
            out["checkpoint_s"] = max(0.0, statistics.median(after))
    passes = []
    for r in evals:
        before = [t for t in train if t["step"] == r["step"]]
        if before:
            passes.append({"step": r["step"], "seconds": r["arrived_s"] - before[-1]["arrived_s"]})
    if passes:
        out["validation_passes"] = passes
        out["validation_windows"] = cfg["valid_windows"]
        out["validation_first_s"] = passes[0]["seconds"]
        if len(passes) > 1:
            out["validation_s"] = statistics.median(p["seconds"] for p in passes[1:])
    return out


def dynamo_events(log_text: str, keep: int = 5) -> dict:
    """What ``TORCH_LOGS=recompiles,graph_breaks`` printed: the number of recompilations and
    graph breaks, and the first ``keep`` of each (the function, and for a recompilation the
    first guard that failed)."""
    recompiles: list[str] = []
    breaks: list[str] = []
    lines = log_text.splitlines()
    for i, line in enumerate(lines):
        if "[__recompiles] Recompiling function" in line:
            what = line.split("[__recompiles] ", 1)[1].strip()
            guard = next(
                (n.split("- ", 1)[1].split("#")[0].strip() for n in lines[i + 1 : i + 4]
                 if "[__recompiles]" in n and "- " in n and "guard failure" not in n),
                "",
            )  # fmt: skip
            recompiles.append(f"{what}: {guard}" if guard else what)
        elif "[__graph_breaks] Graph break in user code at" in line:
            breaks.append(line.split("[__graph_breaks] ", 1)[1].strip())
    return {
        "recompiles": len(recompiles),
        "graph_breaks": len(breaks),
        "first_recompiles": recompiles[:keep],
        "first_graph_breaks": breaks[:keep],
    }


def section_train(sec: Section) -> None:
    import torch
    import yaml

    cfg = sizes(sec.smoke)
    cuda = torch.cuda.is_available() and not sec.smoke
    root, generated = prepare_store(sec, sec.workdir)
    config = train_config(cfg, sec.smoke)
    run = sec.workdir / "runs" / "train"
    shutil.rmtree(run, ignore_errors=True)
    config_file = sec.workdir / "train.yaml"
    config_file.write_text(yaml.safe_dump(config, sort_keys=False))
    steps = cfg["train_steps"]
    command = [
        sys.executable,
        "-m",
        "gitool",
        "train",
        "--config",
        str(config_file),
        "--data",
        str(root),
        "-o",
        str(run),
        "--gpus",
        "1" if cuda else "0",
        "--max-steps",
        str(steps),
    ]
    compiled = [r for r in sec.earlier("swin").get("rows", []) if r.get("mode") == "compiled"]
    if cuda and compiled and all("error" in r for r in compiled):
        command.append("--no-compile")  # torch.compile failed in section 2
        sec.set(note=f"--no-compile: torch.compile failed in section 2 ({compiled[0]['error']})")
    sec.set(
        command=" ".join(command[1:]), config=config, store=str(root), store_generated_s=generated
    )
    watcher = MetricsWatcher(run / "metrics.jsonl")
    log(f"gitool train, {steps} steps ...")
    compiling = cuda and "--no-compile" not in command  # gitool train's default
    # Compiled, dynamo reports each recompilation and graph break: a model that compiles
    # again on every step, or runs eagerly after a break, shows here.
    train_log = sec.workdir / "logs" / "train.log"
    dynamo_log = {"TORCH_LOGS": "recompiles,graph_breaks"} if compiling else None
    done = run_command(command, train_log, sec.left() - 5, watcher, sec.smoke, env=dynamo_log)
    result = {**done, "run": str(run), "steps": steps, "compiled": compiling}
    if compiling and train_log.is_file():
        result["dynamo"] = dynamo_events(train_log.read_text(errors="replace"))
    if watcher.records:  # a stopped run's records count too
        result.update(analyse_run(watcher.records, cfg, config["batch_size"]))
    result["checkpoints"] = sorted(p.name for p in (run / "checkpoints").glob("*.pt"))
    sec.set(**result)
    if done["returncode"]:
        raise RuntimeError(done.get("error", "gitool train failed"))
    if "steps_per_s" in result:
        result["epoch_s"] = EPOCH_WINDOWS / result["samples_per_s"]
        if "validation_s" in result:  # a later pass: the first compiles the eval graph
            per = result["validation_s"] / cfg["valid_windows"]
            result["basenji_validation_s"] = per * VALID_WINDOWS
        sec.set(**result)


# --------------------------------------------------------------------------- 5. gitool predict


def fallback_run(sec: Section, root: Path) -> Path:
    """A 2-step run (no compilation) when section 4 left no checkpoint."""
    cfg = sizes(sec.smoke)
    run = sec.workdir / "runs" / "predict-model"
    shutil.rmtree(run, ignore_errors=True)
    config = train_config(cfg, sec.smoke) | {"num_workers": 0, "eval_every": None}
    config_file = sec.workdir / "predict-model.yaml"
    import yaml

    config_file.write_text(yaml.safe_dump({k: v for k, v in config.items() if v is not None}))
    command = [
        sys.executable,
        "-m",
        "gitool",
        "train",
        "--config",
        str(config_file),
        "--data",
        str(root),
        "-o",
        str(run),
        "--max-steps",
        "2",
        "--no-compile",
    ]
    done = run_command(
        command, sec.workdir / "logs" / "predict-model.log", sec.left() - 5, smoke=sec.smoke
    )
    if done["returncode"]:
        raise RuntimeError(f"no run from section 4, and a 2-step run failed: {done.get('error')}")
    return run


def section_predict(sec: Section) -> None:
    import torch

    cfg = sizes(sec.smoke)
    cuda = torch.cuda.is_available() and not sec.smoke
    earlier = sec.earlier("train")
    run = Path(earlier["run"]) if earlier.get("run") else None
    source = "section 4's run"
    if run is None or not list((run / "checkpoints").glob("*.pt")):
        log("no run from section 4: training 2 steps for a checkpoint ...")
        root, _ = prepare_store(sec, sec.workdir)
        run, source = fallback_run(sec, root), "a 2-step run (section 4 left none)"
    genome = sec.workdir / "genome.fa"
    if not genome.is_file() or genome.stat().st_size < cfg["genome_bp"]:
        write_genome(genome, cfg["genome_bp"])
    span = cfg["target_length"] * cfg["bin_size"]
    sec.set(
        run=str(run),
        model_from=source,
        genome=str(genome),
        genome_bp=cfg["genome_bp"],
        device="cuda" if cuda else "cpu",
        batch_size=8,
        rows=[],
    )
    rows: list[dict] = []
    for tracks in cfg["predict_tracks"]:
        first = cfg["predict_bp"][tracks]
        sizes_bp = [first, min(4 * first, cfg["genome_bp"])]
        measured: list[dict] = []
        for i in range(3):
            if i == 2:  # a third, longer run when the second added too little time
                extra = measured[1]["wall_s"] - measured[0]["wall_s"]
                wanted = cfg["predict_second_s"]
                if not wanted or extra >= wanted / 2 or sizes_bp[-1] >= cfg["genome_bp"]:
                    break
                rate = (sizes_bp[1] - sizes_bp[0]) / max(extra, 0.25)
                sizes_bp.append(int(min(cfg["genome_bp"], sizes_bp[0] + rate * wanted)))
            bp = sizes_bp[i] // span * span or span
            if sec.left() < 15:
                rows.append({"tracks": tracks, "bp": bp, "skipped": "out of section time"})
                sec.set(rows=rows)
                break
            log(f"gitool predict, {tracks} tracks, {bp:,} bp ...")
            row = predict_once(sec, run, genome, tracks, bp, cuda)
            measured.append(row)
            rows.append(row)
            sec.set(rows=rows)
            if "error" in row:
                break
        good = [m for m in measured if "error" not in m]
        if len(good) >= 2:
            rows.append(extrapolate(good[0], good[-1], tracks))
            sec.set(rows=rows)


def predict_once(sec: Section, run: Path, genome: Path, tracks: int, bp: int, cuda: bool) -> dict:
    cfg = sizes(sec.smoke)
    out = sec.workdir / "predict" / f"t{tracks}-{bp}"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    bed = sec.workdir / "predict" / f"region-{bp}.bed"
    bed.write_text(f"chr1\t0\t{bp}\n")
    command = [
        sys.executable,
        "-m",
        "gitool",
        "predict",
        str(bed),
        "-o",
        f"{out}/",
        "-m",
        str(run),
        "-g",
        str(genome),
        "--device",
        "cuda" if cuda else "cpu",
    ]
    if tracks < cfg["tracks"]:
        command += ["--tracks", ",".join(str(i) for i in range(tracks))]
    done = run_command(
        command,
        sec.workdir / "logs" / f"predict-t{tracks}-{bp}.log",
        sec.left() - 5,
        smoke=sec.smoke,
    )
    span = cfg["target_length"] * cfg["bin_size"]
    files = list(out.glob("*.bw"))
    row = {
        "tracks": tracks,
        "bp": bp,
        "windows": -(-bp // span),
        "bins": bp // cfg["bin_size"],
        **done,
        "files": len(files),
        "bytes": sum(f.stat().st_size for f in files),
    }
    if not done["returncode"]:
        row["windows_per_s"] = row["windows"] / done["wall_s"]
        row["bins_written_per_s"] = row["bins"] * tracks / done["wall_s"]
    shutil.rmtree(out, ignore_errors=True)
    return row


def extrapolate(small: dict, large: dict, tracks: int) -> dict:
    """The per-bp rate from the difference of two runs (start-up, model load and opening
    the files cancel out), the fixed cost left, and a whole genome at that rate."""
    extra = large["wall_s"] - small["wall_s"]
    row: dict = {"tracks": tracks, "extrapolation": True, "from_bp": [small["bp"], large["bp"]]}
    if extra > 0:
        rate = (large["bp"] - small["bp"]) / extra
        fixed = max(0.0, small["wall_s"] - small["bp"] / rate)
    else:
        row["note"] = "the longer region took no longer: the longer run's overall rate used"
        rate, fixed = large["bp"] / large["wall_s"], 0.0
    bp_per_window = large["bp"] / large["windows"]
    bp_per_bin = large["bp"] / large["bins"]
    bytes_per_value = large["bytes"] / (large["bins"] * tracks)
    row.update(
        bp_per_s=rate,
        fixed_s=fixed,
        windows_per_s=rate / bp_per_window,
        bins_written_per_s=rate / bp_per_bin * tracks,
        genome_s=fixed + GENOME_BP / rate,
        genome_output_gb=GENOME_BP / bp_per_bin * tracks * bytes_per_value / 1e9,
    )
    return row


# --------------------------------------------------------------------------- 6. enformer


def section_enformer(sec: Section) -> None:
    import torch

    from gitool.models.registry import create_model

    cfg = sizes(sec.smoke)
    cuda = torch.cuda.is_available() and not sec.smoke
    preset, overrides = cfg["enformer"], cfg["enformer_overrides"]
    peak, how = bf16_peak(device_name(), sec.peak_tflops) if cuda else (None, "no GPU")
    flops = flops_per_sample(preset, overrides)
    with torch.device("meta"):
        has_checkpointing = hasattr(create_model(preset, **overrides), "checkpoint_activations")
    sec.set(
        preset=preset,
        flops_per_sample=flops,
        bf16_peak_tflops=peak,
        bf16_peak=how,
        dtype="bf16 autocast" if cuda else "float32",
        rows=[],
    )
    plan = [(b, False) for b in cfg["enformer_batches"]]
    plan += [(b, True) for b in cfg["enformer_batches"]] if has_checkpointing else []
    rows = []
    steps = {**cfg, "warmup": min(cfg["warmup"], 2), "steps": min(cfg["steps"], 5)}
    for batch, checkpoint in plan:
        row: dict = {"batch": batch, "checkpoint_activations": checkpoint}
        if sec.left() < 10:
            row["skipped"] = "out of section time"
        else:
            log(f"{preset}, batch {batch}{', checkpointed' if checkpoint else ''} ...")
            try:
                row.update(time_training(preset, overrides, batch, steps, checkpoint=checkpoint))
                add_mfu(row, flops, peak)
            except Exception as err:  # noqa: BLE001 - record it and go on
                row["error"] = error_text(err)
                free_memory()
        rows.append(row)
        sec.set(rows=rows)
    if not has_checkpointing:
        sec.set(checkpointing="the model has no checkpoint_activations()")


RUNNERS = {
    "environment": section_environment,
    "swin": section_swin,
    "loader": section_loader,
    "train": section_train,
    "predict": section_predict,
    "enformer": section_enformer,
}


def run_section(args: argparse.Namespace) -> None:
    """In the section's subprocess: run it, recording results as they come."""
    workdir = args.workdir / ("smoke" if args.smoke else "gpu")
    workdir.mkdir(parents=True, exist_ok=True)
    seconds = args.section_seconds or 600
    sec = Section(json_path(args), args.section, seconds, args.smoke, workdir, args.peak_tflops)
    if args.smoke:
        import torch

        torch.set_num_threads(1)
    RUNNERS[args.section](sec)
    record = read_json(sec.path)
    record["sections"][args.section]["status"] = "ok"
    write_json(sec.path, record)


# --------------------------------------------------------------------------- the parent


class Child:
    """A section's subprocess in its own process group; its output echoed, the last lines
    kept for the error message."""

    def __init__(self, command: list[str], smoke: bool):
        self.tail: deque[str] = deque(maxlen=8)
        self.proc = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
            cwd=ROOT,
            env=gitool_env(smoke),
        )
        self.reader = threading.Thread(target=self._echo, daemon=True)
        self.reader.start()

    def _echo(self) -> None:
        for line in self.proc.stdout:
            self.tail.append(line.rstrip())
            print(line, end="", file=sys.stderr, flush=True)

    def wait(self, timeout: float) -> int | None:
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return None
        finally:
            self.reader.join(timeout=2)

    def kill(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


def run_all(args: argparse.Namespace, path: Path) -> dict:
    import torch

    began = time.perf_counter()
    names = section_names(args.sections)
    gpu = torch.cuda.is_available()
    record = {
        "benchmark": "benchmarks/gpu.py",
        "machine": machine(gpu_name=False),
        "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "settings": {
            "smoke": args.smoke,
            "budget_s": args.budget,
            "sections": names,
            "workdir": str(args.workdir),
            "peak_tflops": args.peak_tflops,
            "sizes": sizes(args.smoke),
        },
        "sections": {n: {"status": "pending"} for n in names},
        "finished": False,
    }
    write_json(path, record)
    current: list[Child] = []

    def stop(signum, frame):  # a killed run stops its section too
        for child in current:
            child.kill()
        sys.exit(128 + signum)

    signal.signal(signal.SIGTERM, stop)
    for i, name in enumerate(names, start=1):
        left = args.budget - (time.perf_counter() - began)
        cap = SMOKE_TIMEOUT if args.smoke else TIMEOUTS[name]
        status = None
        if not args.smoke and not gpu and name in NEEDS_GPU:
            status = NO_GPU
        elif left < min(MIN_SECTION, cap):
            status = f"skipped: out of time ({left:.0f} s of the --budget left)"
        if status:
            record = read_json(path)
            record["sections"][name] = {"status": status}
            write_json(path, record)
            print(f"[{i}/{len(names)}] {name}: {status}", file=sys.stderr, flush=True)
            continue
        timeout = min(cap, left)
        print(
            f"[{i}/{len(names)}] {name} (at most {timeout:.0f} s) ...", file=sys.stderr, flush=True
        )
        command = [
            sys.executable,
            str(Path(__file__).resolve()),
            *sys_argv(args),
            "--section",
            name,
            "--section-seconds",
            str(timeout),
        ]
        started = time.perf_counter()
        child = Child(command, args.smoke)
        current[:] = [child]
        code = child.wait(timeout + 10)
        current.clear()
        record = read_json(path)
        entry = record["sections"].setdefault(name, {})
        if code is None:
            entry["status"] = f"timeout after {timeout:.0f} s (results so far kept)"
        elif code != 0 or entry.get("status") != "ok":
            last = [line for line in child.tail if line.strip()]
            entry["status"] = "failed: " + (last[-1][:300] if last else f"exit status {code}")
        entry["seconds"] = time.perf_counter() - started
        if name == "environment" and "machine" in entry.get("results", {}):
            record["machine"] = entry["results"]["machine"]  # with the GPU's name
        write_json(path, record)
    record = read_json(path)
    record["seconds"] = time.perf_counter() - began
    try:
        record["targets"] = targets(record)
    except Exception as err:  # noqa: BLE001 - the measurements matter more than the verdicts
        record["targets"], record["targets_error"] = [], error_text(err)
    record["finished"] = True
    write_json(path, record)
    return record


def sys_argv(args: argparse.Namespace) -> list[str]:
    """The options a section's subprocess needs."""
    out = ["--json", str(json_path(args)), "--workdir", str(args.workdir)]
    if args.smoke:
        out.append("--smoke")
    if args.peak_tflops:
        out += ["--peak-tflops", str(args.peak_tflops)]
    return out


# --------------------------------------------------------------------------- targets, summary


def results(record: dict, name: str) -> dict:
    return record["sections"].get(name, {}).get("results", {})


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def ceiling_note(record: dict) -> str:
    """Below the MFU target: the best MFU at any batch, and the attention kernels used."""
    notes = []
    rows = [r for r in results(record, "swin").get("rows", []) if r.get("mfu") is not None]
    if rows:
        top = max(rows, key=lambda r: r["mfu"])
        notes.append(f"best {pct(top['mfu'])} ({top['mode']}, batch {top['batch']})")
    kernels = results(record, "environment").get("sdpa_kernels") or {}
    if kernels:
        calls = ", ".join(f"{k} {len(v)}" for k, v in kernels.items())
        notes.append(f"attention calls per kernel: {calls}")
    return "; ".join(notes)


def targets(record: dict) -> list[dict]:
    """Each target: what was measured, the limit and PASS / FAIL / n/a (with why)."""
    out = []
    smoke = record["settings"]["smoke"]
    swin = [r for r in results(record, "swin").get("rows", []) if r.get("batch") == 8]
    mfus = [r["mfu"] for r in swin if r.get("mfu") is not None]
    label = "swin-basenji-small bf16 MFU at batch 8 (best of eager/compiled)"
    if mfus:
        best = max(mfus)
        note = "" if best >= MFU_TARGET else ceiling_note(record)
        out.append(
            {
                "target": label,
                "value": pct(best),
                "limit": f">= {MFU_TARGET:.0%}",
                "result": verdict(best >= MFU_TARGET),
                "note": note,
            }
        )
    else:
        why = "smoke run (CPU)" if smoke else "not measured (see section swin)"
        out.append(
            {
                "target": label,
                "value": "n/a",
                "limit": f">= {MFU_TARGET:.0%}",
                "result": "n/a",
                "note": why,
            }
        )
    train = results(record, "train")
    label = f"one BasenjiSmall epoch ({EPOCH_WINDOWS:,} windows), gitool train"
    limit = f"<= {EPOCH_TARGET_S:g} s"
    if "epoch_s" in train and not smoke:
        out.append(
            {
                "target": label,
                "value": duration(train["epoch_s"]),
                "limit": limit,
                "result": verdict(train["epoch_s"] <= EPOCH_TARGET_S),
                "note": "steady steps, no validation",
            }
        )
    else:
        out.append(
            {
                "target": label,
                "value": "n/a",
                "limit": limit,
                "result": "n/a",
                "note": "smoke run (CPU)" if smoke else "not measured (see section train)",
            }
        )
    rates = [r["samples_per_s"] for r in swin if "samples_per_s" in r]
    if rates and not smoke:
        epoch = EPOCH_WINDOWS / max(rates)
        out.append(
            {
                "target": "one BasenjiSmall epoch at the model-alone rate (batch 8)",
                "value": duration(epoch),
                "limit": limit,
                "result": verdict(epoch <= EPOCH_TARGET_S),
                "note": "random data on the GPU: the floor",
            }
        )
    loader = results(record, "loader")
    best = loader.get("model_b8_best")
    host = [
        r for r in loader.get("rows", []) if r.get("path") == "to device" and "windows_per_s" in r
    ]
    if best and host and not smoke:
        workers = sizes(smoke)["train_workers"]  # what gitool train runs with
        top = next((r for r in host if r["workers"] == workers), host[-1])
        ratio = top["windows_per_s"] / best
        label = f"loader keeps up: to the GPU, {top['workers']} workers / model at batch 8"
        out.append(
            {
                "target": label,
                "value": f"{ratio:.2f}x",
                "limit": ">= 1x",
                "result": verdict(ratio >= 1),
            }
        )
    predict = [r for r in results(record, "predict").get("rows", []) if r.get("extrapolation")]
    small = [r for r in predict if r["tracks"] == min(sizes(smoke)["predict_tracks"])]
    label = "whole human genome (3.1 Gbp) predicted, 50 tracks"
    if small and not smoke:
        seconds = small[0]["genome_s"]
        out.append(
            {
                "target": label,
                "value": duration(seconds),
                "limit": "< 30 min",
                "result": verdict(seconds < GENOME_TARGET_S),
                "note": "extrapolated",
            }
        )
    else:
        out.append(
            {
                "target": label,
                "value": "n/a",
                "limit": "< 30 min",
                "result": "n/a",
                "note": "smoke run (CPU)" if smoke else "not measured (see section predict)",
            }
        )
    return out


def fmt(x: float | None, unit: str = "") -> str:
    if x is None:
        return ""
    digits = 0 if abs(x) >= 100 else 1 if abs(x) >= 10 else 2 if abs(x) >= 1 else 3
    return f"{x:,.{digits}f}{unit}"


def memory(row: dict) -> str:
    if "peak_alloc_gb" not in row:
        return ""
    return f"{row['peak_alloc_gb']:.1f}/{row['peak_reserved_gb']:.1f} GB"


def summary_lines(record: dict) -> list[str]:
    """The readable summary: one block per section, then the targets."""
    lines = [
        "gitool GPU benchmark"
        + (
            " (smoke run: tiny sizes on the CPU, not a measurement)"
            if record["settings"]["smoke"]
            else ""
        ),
        f"machine: {record['machine']}",
    ]
    if "seconds" in record:
        lines.append(f"total:   {record['seconds']:.0f} s")
    rows: list[tuple[str, ...]] = [("section", "measurement", "result", "notes")]
    for name, entry in record["sections"].items():
        rows.append((name, "status", entry.get("status", "?"), fmt(entry.get("seconds"), " s")))
        rows += section_rows(name, entry.get("results", {}))
    lines += table(rows)
    lines.append("")
    lines += table(
        [("target", "value", "limit", "result", "note")]
        + [
            tuple(t.get(k, "") for k in ("target", "value", "limit", "result", "note"))
            for t in record.get("targets", [])
        ]
    )
    return lines


def section_rows(name: str, res: dict) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    if name == "environment" and res:
        rows.append(
            (
                "",
                "device",
                res.get("device", ""),
                f"torch {res.get('torch')}, CUDA {res.get('cuda')}",
            )
        )
        rows.append(("", "bf16 peak", str(res.get("bf16_peak", "")), ""))
        for row in res.get("sdpa", []):
            ok = [k for k, v in row["backends"].items() if v.get("ok")]
            unaligned = row.get("default_unaligned_mask", {}).get("forward_backward_ms")
            rows.append(
                (
                    "",
                    f"SDPA {'x'.join(map(str, row['q_shape']))} ({len(row['layers'])} calls)",
                    row["default_kernel"],
                    f"{fmt(row['default'].get('forward_backward_ms'))} ms fwd+bwd"
                    + (f" ({fmt(unaligned)} with an unaligned bias)" if unaligned else "")
                    + f"; runs: {', '.join(ok) or 'none'}",
                )
            )
    elif name in ("swin", "enformer"):
        for row in res.get("rows", []):
            label = f"{row.get('mode', 'eager')} batch {row['batch']}"
            if row.get("checkpoint_activations"):
                label += " checkpointed"
            if "samples_per_s" not in row:
                rows.append(("", label, row.get("error") or row.get("skipped", ""), ""))
                continue
            note = (
                f"{memory(row)}; MFU {pct(row.get('mfu'))}"
                if row.get("mfu") is not None
                else memory(row)
            )
            if row["mode"] == "compiled":
                note += f"; first step {row['first_step_s']:.0f} s"
            rows.append(
                (
                    "",
                    label,
                    f"{fmt(1000 * row['step_s'])} ms/step, {fmt(row['samples_per_s'])} samples/s",
                    note,
                )
            )
    elif name == "loader":
        for row in res.get("rows", []):
            label = f"{row['path']}, {row['workers']} worker(s)"
            if "windows_per_s" not in row:
                rows.append(("", label, row.get("error", ""), ""))
                continue
            ratio = row.get("loader_over_model")
            rows.append(
                (
                    "",
                    label,
                    f"{fmt(row['windows_per_s'])} windows/s",
                    f"{ratio:.2f}x the model (batch 8)" if ratio else "",
                )
            )
    elif name == "train" and res:
        if "steps_per_s" in res:
            rows.append(
                (
                    "",
                    "steady steps/s",
                    f"{fmt(res['steps_per_s'])} ({fmt(res['samples_per_s'])} samples/s)",
                    f"epoch {duration(res.get('epoch_s', 0))}",
                )
            )
        labels = (
            ("first_record_s", "launch to first log record", "start-up, compilation, first steps"),
            (
                "validation_first_s",
                "first validation pass",
                "includes compiling the eval graph" if res.get("compiled") else "",
            ),
            ("validation_s", "later validation pass", ""),
            ("checkpoint_s", "checkpoint", "extra time of the window after it"),
            ("wall_s", "whole run", f"{res.get('steps')} steps, launch to exit"),
        )
        for key, label, note in labels:
            if key in res:
                if key == "validation_s":
                    note = (
                        f"{res['validation_windows']} windows; BasenjiSmall's {VALID_WINDOWS:,}: "
                        f"{duration(res.get('basenji_validation_s', 0))}"
                    )
                rows.append(("", label, fmt(res[key], " s"), note))
        if "dynamo" in res:  # expected: no graph break; the validation graphs' compilations
            events = res["dynamo"]
            first = (events["first_recompiles"] or events["first_graph_breaks"] or [""])[0]
            rows.append(
                (
                    "",
                    "torch.compile",
                    f"{events['recompiles']} recompilation(s), {events['graph_breaks']} graph "
                    "break(s)",
                    first[:100],
                )
            )
    elif name == "predict":
        for row in res.get("rows", []):
            if row.get("extrapolation"):
                rows.append(
                    (
                        "",
                        f"{row['tracks']:,} tracks, marginal rate",
                        f"{fmt(row['bp_per_s'] / 1e6)} Mbp/s, "
                        f"{fmt(row['windows_per_s'])} windows/s",
                        f"genome {duration(row['genome_s'])}, "
                        f"{fmt(row['genome_output_gb'])} GB of bigWigs"
                        + (
                            "; the longer run was not slower: its overall rate"
                            if "note" in row
                            else ""
                        ),
                    )
                )
            elif "windows_per_s" not in row:
                why = row.get("error") or row.get("skipped", "")
                rows.append(("", f"{row['tracks']:,} tracks, {row['bp']:,} bp", why, ""))
            else:
                rows.append(
                    (
                        "",
                        f"{row['tracks']:,} tracks, {row['bp']:,} bp",
                        f"{fmt(row['wall_s'], ' s')}, {fmt(row['windows_per_s'])} windows/s",
                        f"{fmt(row['bins_written_per_s'])} bins/s written",
                    )
                )
    return rows


def table(rows: list[tuple[str, ...]]) -> list[str]:
    widths = [min(70, max(len(r[i]) for r in rows)) for i in range(len(rows[0]))]
    rule = "-" * min(160, sum(widths) + 2 * len(widths))
    out = [rule]
    for j, row in enumerate(rows):
        cells = (c if len(c) <= w else c[: w - 3] + "..." for c, w in zip(row, widths, strict=True))
        out.append("  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip())
        if j == 0:
            out.append(rule)
    out.append(rule)
    return out


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.section:
        run_section(args)
        return
    path = json_path(args)
    record = run_all(args, path)
    try:
        print("\n".join(summary_lines(record)))
    except Exception as err:  # noqa: BLE001 - the JSON holds everything; say so
        print(f"(the summary could not be printed: {error_text(err)})")
    print(f"results: {path}")


if __name__ == "__main__":
    main()
