#!/usr/bin/env python
"""Benchmark ``gitool predict`` end to end: predicted bp/s per preset, where the time goes,
the bigWig writer, memory on whole-chromosome regions, and a whole-human-genome estimate.

On a generated genome (random ACGT FASTA, cached under ``--workdir``):

1. end to end, per ``*-basenji-small`` preset: :func:`gitool.predict.inference.predict` on
   one region list (reading the FASTA, one-hot, batched inference, stitching, writing one
   bigWig per track, the atomic rename), bp predicted / wall seconds, after a one-window
   warm-up. Width: the paper presets (full width) on a GPU with bf16 autocast, the tiny
   CPU workflows (``workflows/example-<model>.yaml``) on a CPU, where ``--full-width``
   presets also run for ``--full-windows`` windows. The region size is chosen from the
   model-alone speed to take about ``--seconds``;
2. model alone: the same model and batch on random one-hot tensors already on the device
   (``no_grad``, bf16 autocast on a GPU), median forward time. "outside model" =
   1 − (forward passes × median forward) / end-to-end time: FASTA reading, one-hot,
   stitching and writing that did not overlap the model. Separately timed:
   FASTA + one-hot alone (the same windows, nothing else) and writing alone (the same
   bins of random values through the bigWig writer), as shares of end to end;
3. the bigWig writer: bins/s per track of the batched writer
   (:class:`gitool.predict.bigwig.TrackWriter`, fixed-step ``addEntries`` of 65,536 bins)
   against a loop adding one entry per call (what a per-bin writer does), 128-bp bins;
4. memory: peak RSS of a fresh process predicting one region of ``--rss-mb`` sizes
   (default 1 and 10 Mb; tiny cnn-maxpool) — it must not grow with the region;
5. a whole human genome (3.1 Gbp, no ``--rc``/``--shifts``; each doubles the work) at the
   measured end-to-end speed, per preset;
6. a head of ``--many-tracks`` tracks (default 5,313, Enformer's human head): every track of
   a ``--many-mb`` region (default 1 Mb; tiny cnn-maxpool on the device) written by
   :func:`gitool.predict.inference.predict` in a fresh process whose open-file limit is
   lowered to 1,024 (the usual default): windows/s, bins/s across all tracks written, the
   writer processes and the most files open in one process, and the wall time split into
   inference alone (the same region through ``predict_regions``, nothing written) and the
   rest (writing that did not overlap inference).

Examples::

    python benchmarks/predict.py                 # CPU: tiny presets + one full-width preset
    python benchmarks/predict.py --quick         # smoke run (< 1 min on a CPU)
    python benchmarks/predict.py --presets cnn-maxpool-basenji-small --seconds 20
    python benchmarks/predict.py --presets none --full-width none --rss-mb '' --threads 1
                                                 # the 5,313-track measurement only
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import time
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch
import yaml

from gitool import console
from gitool.config.predict import PredictOptions
from gitool.data.genome import Genome
from gitool.data.windows import Geometry
from gitool.models.registry import create_model
from gitool.predict.bigwig import TrackWriter
from gitool.predict.inference import predict, predict_regions
from gitool.predict.tiling import (
    SequenceReader,
    regions_from_intervals,
    sequence_interval,
    tile_regions,
)

from common import cpu_description, parser


def run_predict(model, genome: Path, intervals, out: Path, manifest: dict, **options):
    """:func:`predict` of ``model`` (with its head's ``manifest``) over ``intervals``,
    replacing the benchmark's own earlier ``out`` files."""
    options = PredictOptions(
        regions=intervals, out=str(out), genome=str(genome), force=True, **options
    )
    return predict(options, module=model, manifest=manifest)


ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = ROOT / "workflows"
SMALL = (
    "swin-basenji-small",
    "enformer-basenji-small",
    "cnn-maxpool-basenji-small",
    "cnn-attpool-basenji-small",
    "cnn-dilated-basenji-small",
)
HUMAN_BP = 3.1e9
WRITER_BIN = 128
RSS_PRESET = "cnn-maxpool-basenji-small"


# --------------------------------------------------------------------------- arguments


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    cli = parser(
        "Benchmark gitool predict end to end (FASTA reading, inference, bigWig "
        "writing) per preset; the share of time outside the model; the batched bigWig writer "
        "against one entry per call; peak memory for 1 vs 10 Mb regions; and the time of a "
        "whole human genome on this device.",
        presets="comma-separated presets, 'small' (all five) or 'none'",
        quick="smoke run: small everything",
        threads=True,
        workdir=Path("/tmp/gitool-predict-bench"),
    )
    cli.add_argument(
        "--width",
        choices=("auto", "tiny", "full"),
        default="auto",
        help="full: the presets as in the paper; tiny: widths of workflows/example-*.yaml; "
        "auto: full on a GPU, tiny on a CPU",
    )
    cli.add_argument(
        "--full-width",
        default=None,
        help=f"on a CPU, also run these presets at full width ('none' to skip; default "
        f"{RSS_PRESET}; 'none' with --quick)",
    )
    cli.add_argument(
        "--full-windows", type=int, default=8, help="windows of the CPU full-width runs"
    )
    cli.add_argument(
        "--seconds", type=float, help="aim for this long per end-to-end run (default 6 CPU, 10 GPU)"
    )
    cli.add_argument("--batch", type=int, help="windows per forward pass (default 8 CPU, 32 GPU)")
    cli.add_argument("--n-tracks", type=int, default=7, help="tracks per model head")
    cli.add_argument(
        "--rss-mb", default="1,10", help="region sizes (Mb) for the peak-RSS runs; '' to skip"
    )
    cli.add_argument(
        "--writer-bins", type=int, default=2_000_000, help="bins written by each writer"
    )
    cli.add_argument(
        "--many-tracks", type=int, default=5313, help="tracks of the many-track head; 0 to skip"
    )
    cli.add_argument("--many-mb", type=float, default=1.0, help="region of the many-track run")
    cli.add_argument("--rss-child", type=int, help=argparse.SUPPRESS)  # internal
    cli.add_argument("--many-child", type=int, help=argparse.SUPPRESS)  # internal
    cli.add_argument("--genome", type=Path, help=argparse.SUPPRESS)  # internal
    return cli.parse_args(argv)


def settings(args: argparse.Namespace) -> dict:
    gpu = torch.cuda.is_available()
    quick = args.quick
    full = args.full_width if args.full_width is not None else ("none" if quick else RSS_PRESET)
    rss = [float(x) for x in args.rss_mb.split(",") if x.strip()]
    return {
        "gpu": gpu,
        "device": "cuda" if gpu else "cpu",
        "presets": preset_names(args.presets),
        "width": args.width if args.width != "auto" else ("full" if gpu else "tiny"),
        "full_width": [] if gpu or full == "none" else preset_names(full),
        "full_windows": 2 if quick else args.full_windows,
        "seconds": args.seconds or (1.0 if quick else 10.0 if gpu else 6.0),
        "batch": args.batch or (32 if gpu else 8),
        "n_tracks": args.n_tracks,
        "rss_mb": [x / 10 for x in rss] if quick else rss,
        "many_tracks": args.many_tracks,
        "many_mb": args.many_mb / 10 if quick else args.many_mb,
        "writer_bins": 200_000 if quick else args.writer_bins,
        "threads": torch.get_num_threads(),
        # Enough sequence for the longest run: the RSS region, or ~seconds at GPU speed.
        "genome_mb": 96 if gpu and not quick else 24 if not quick else 4,
        "quick": quick,
    }


def preset_names(text: str) -> list[str]:
    names: list[str] = []
    for item in (s.strip() for s in text.split(",") if s.strip()):
        if item == "none":
            continue
        for name in SMALL if item == "small" else (item,):
            if name not in SMALL:
                sys.exit(f"unknown preset {name!r}; choose from {', '.join(SMALL)}")
            if name not in names:
                names.append(name)
    return names


def log(message: str) -> None:
    print(f"  {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- inputs


def make_genome(workdir: Path, mb: int) -> Path:
    """Random ACGT FASTA of ``mb`` Mb in chromosomes of at most 24 Mb (cached), indexed."""
    path = workdir / f"genome-{mb}mb.fa"
    if Path(str(path) + ".fai").is_file():
        return path
    log(f"writing {path} ...")
    rng = np.random.default_rng(0)
    lut = np.frombuffer(b"ACGT", dtype=np.uint8)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as handle:
        for k, start in enumerate(range(0, mb * 1_000_000, 24_000_000), start=1):
            n = min(mb * 1_000_000 - start, 24_000_000)
            seq = lut[rng.integers(0, 4, n, dtype=np.uint8)]
            body = b"\n".join(seq[i : i + 60].tobytes() for i in range(0, n, 60))
            handle.write(f">chr{k}\n".encode() + body + b"\n")
    os.replace(tmp, path)
    Genome(path).close()  # builds the .fai
    return path


def build(preset: str, width: str, n_tracks: int) -> torch.nn.Module:
    """The preset at full width, or with the tiny widths of its example workflow."""
    overrides: dict = {"heads": {"bench": n_tracks}}
    if width == "tiny":
        short = preset.removesuffix("-basenji-small")
        config = yaml.safe_load((WORKFLOWS / f"example-{short}.yaml").read_text())
        overrides.update(config.get("model_config") or {})
    torch.manual_seed(0)
    return create_model(preset, **overrides).eval()


def manifest(n_tracks: int) -> dict:
    rows = [{"index": i, "identifier": f"t{i}", "strand_pair": i} for i in range(n_tracks)]
    return {"tracks": rows}


def region_list(sizes: dict[str, int], bp: int) -> list[tuple[str, int, int]]:
    """Whole chromosomes in order, the last one cut, covering ``bp`` bp."""
    out = []
    for chrom, size in sizes.items():
        if bp <= 0:
            break
        out.append((chrom, 0, min(size, bp)))
        bp -= size
    return out


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


# --------------------------------------------------------------------------- measurements


def model_alone(model, batch: int, device: torch.device, min_time: float) -> float:
    """Median seconds of one forward pass of ``batch`` windows (inputs on the device)."""
    config = model.config
    x = torch.nn.functional.one_hot(
        torch.randint(0, 4, (batch, config.seq_length), device=device), 4
    ).float()
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else None
    times: list[float] = []

    def step() -> float:
        began = time.perf_counter()
        with torch.no_grad(), autocast or nullcontext():
            model(x, "bench")
        sync(device)
        return time.perf_counter() - began

    for _ in range(3 if device.type == "cuda" else 1):
        step()
    while len(times) < 3 or (sum(times) < min_time and len(times) < 200):
        times.append(step())
    return statistics.median(times)


def read_alone(genome: Genome, regions, geometry, batch: int, device: torch.device) -> float:
    """FASTA reading + one-hot of the same windows, nothing else; seconds."""
    eye = torch.cat([torch.eye(4), torch.zeros(1, 4)]).to(device)
    reader = SequenceReader(genome)
    began = time.perf_counter()
    inputs = []
    for window in tile_regions(regions, geometry):
        start, end = sequence_interval(window.target_start, geometry)
        inputs.append(reader.codes(window.chrom, start, end))
        if len(inputs) == batch:
            eye[torch.from_numpy(np.stack(inputs)).to(device).long()]
            inputs = []
    if inputs:
        eye[torch.from_numpy(np.stack(inputs)).to(device).long()]
    sync(device)
    return time.perf_counter() - began


def write_alone(regions, geometry, sizes, n_tracks: int, folder: Path) -> float:
    """The same bins of random values through the bigWig writer, a window at a time; s."""
    rng = np.random.default_rng(0)
    values = rng.random((geometry.target_length, n_tracks), dtype=np.float32)
    paths = [folder / f"write-alone.t{i}.bw" for i in range(n_tracks)]
    began = time.perf_counter()
    with TrackWriter(paths, sizes, geometry.bin_size) as writer:
        for w in tile_regions(regions, geometry):
            writer.add(w.chrom, w.target_start, w.end, values[: w.n_bins])
    seconds = time.perf_counter() - began
    for p in paths:
        p.unlink()
    return seconds


def end_to_end(spec: dict, cfg: dict, genome_path: Path, folder: Path) -> dict:
    preset, width = spec["preset"], spec["width"]
    device = torch.device(cfg["device"])
    model = build(preset, width, cfg["n_tracks"]).to(device)
    config = model.config
    params = sum(p.numel() for p in model.parameters())
    batch = spec["batch"]
    span = config.target_length * config.bin_size
    genome = Genome(genome_path)
    sizes = genome.sizes
    row = {"preset": preset, "width": width, "params": params, "batch": batch}
    common = dict(device=str(device), manifest=manifest(cfg["n_tracks"]), batch_size=batch)
    out = folder / "e2e.bw"
    # Warm-up (kernels, allocator): one window.
    run_predict(model, genome_path, [("chr1", 0, span)], out, **common)
    forward = model_alone(model, batch, device, 0.5 if cfg["quick"] else 2.0)
    if spec.get("windows"):
        bp = spec["windows"] * span
    else:
        bp = int(batch * span / forward * cfg["seconds"])
        bp = max(bp, 2 * batch * span)
    bp = min(bp, sum(sizes.values()))
    intervals = region_list(sizes, bp)
    log(f"{preset} [{width}]: {bp / 1e6:.2f} Mbp end to end ...")
    began = time.perf_counter()
    summary = run_predict(model, genome_path, intervals, out, **common)
    seconds = time.perf_counter() - began
    regions = regions_from_intervals(intervals, sizes, config.bin_size)
    geometry = Geometry(config.seq_length, config.bin_size, config.target_length)
    n_windows = summary.n_windows
    model_seconds = -(-n_windows // batch) * forward
    read_s = read_alone(genome, regions, geometry, batch, device)
    write_s = write_alone(regions, geometry, sizes, cfg["n_tracks"], folder)
    for path in summary.paths:
        path.unlink(missing_ok=True)
    row.update(
        bp=summary.bp,
        windows=n_windows,
        seconds=seconds,
        bp_per_s=summary.bp / seconds,
        model_bp_per_s=batch * span / forward,
        outside=max(0.0, 1 - model_seconds / seconds),
        read_share=read_s / seconds,
        write_share=write_s / seconds,
        human_hours=HUMAN_BP / (summary.bp / seconds) / 3600,
    )
    genome.close()
    del model
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return row


def writer_throughput(cfg: dict, folder: Path) -> list[dict]:
    """Bins/s of one track: the batched writer vs one ``addEntries`` call per bin.

    Both write the same bins; "add" is the time until the last entry is handed over,
    the rest is ``close()`` (libBigWig's zoom levels and index, the same for both).
    """
    import pyBigWig

    n = cfg["writer_bins"]
    sizes = {"chr1": n * WRITER_BIN}
    values = np.random.default_rng(0).random((n, 1), dtype=np.float32)
    path = folder / "writer.bw"
    began = time.perf_counter()
    writer = TrackWriter([path], sizes, WRITER_BIN).open()
    for start in range(0, n, 80):  # a window's worth of bins at a time, as predict does
        stop = min(start + 80, n)
        writer.add("chr1", start * WRITER_BIN, stop * WRITER_BIN, values[start:stop])
    writer._flush()
    added = time.perf_counter()
    writer.commit()
    rows = [{"kind": "batched", "bins": n, "add_s": added - began,
             "seconds": time.perf_counter() - began}]  # fmt: skip
    column = values[:, 0].tolist()
    began = time.perf_counter()
    bw = pyBigWig.open(str(path), "w")
    bw.addHeader(list(sizes.items()))
    for i, v in enumerate(column):
        bw.addEntries(["chr1"], [i * WRITER_BIN], ends=[(i + 1) * WRITER_BIN], values=[v])
    added = time.perf_counter()
    bw.close()
    rows.append({"kind": "loop", "bins": n, "add_s": added - began,
                 "seconds": time.perf_counter() - began})  # fmt: skip
    path.unlink()
    for row in rows:
        row["bins_per_s"] = n / row["seconds"]
    return rows


def _status_mib(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def rss_child(args: argparse.Namespace) -> None:
    """Internal: predict one region of ``--rss-child`` bp; print RSS before and peak as JSON.

    The peak is VmHWM after resetting it (``/proc/self/clear_refs``) once the model and
    genome are loaded: ``ru_maxrss`` would also count the parent's RSS (kept across exec)
    and torch's import-time peak.
    """
    console.state.quiet = True
    model = build(RSS_PRESET, "tiny", args.n_tracks)
    out = args.workdir / f"rss-{os.getpid()}.bw"
    options = dict(device="cpu", manifest=manifest(args.n_tracks), batch_size=8)
    warm = run_predict(model, args.genome, [("chr1", 0, 20_000)], out, **options)  # warm-up
    for path in warm.paths:
        path.unlink()
    base = _status_mib("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # reset the peak (VmHWM) to now
    began = time.perf_counter()
    summary = run_predict(model, args.genome, [("chr1", 0, args.rss_child)], out, **options)
    seconds = time.perf_counter() - began
    for path in summary.paths:
        path.unlink()
    peak = _status_mib("VmHWM")
    print(json.dumps({"bp": summary.bp, "seconds": seconds, "base_mib": base, "peak_mib": peak}))


def measure_rss(cfg: dict, genome: Path, workdir: Path) -> list[dict]:
    rows = []
    for mb in cfg["rss_mb"]:
        bp = int(mb * 1e6)
        log(f"peak RSS, {mb:g} Mb region (fresh process) ...")
        command = [sys.executable, __file__, "--rss-child", str(bp), "--genome", str(genome),
                   "--workdir", str(workdir), "--n-tracks", str(cfg["n_tracks"])]  # fmt: skip
        env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
        done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
        if done.returncode:
            rows.append({"mb": mb, "error": done.stderr.strip().splitlines()[-1:]})
            continue
        rows.append({"mb": mb, **json.loads(done.stdout.strip().splitlines()[-1])})
    return rows


MANY_LIMIT = 1024


def many_child(args: argparse.Namespace) -> None:
    """Internal: every track of a ``--many-child``-bp region with a head of ``--n-tracks``
    tracks, under an open-file limit of 1,024; prints the measurements as JSON."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    limit = MANY_LIMIT if hard == resource.RLIM_INFINITY else min(MANY_LIMIT, hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (limit, hard))
    console.state.quiet = True
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model = build(RSS_PRESET, "tiny", args.n_tracks).to(device)
    heads = manifest(args.n_tracks)
    span = model.config.target_length * model.config.bin_size
    region = [("chr1", 0, args.many_child)]
    common = dict(device=str(device), manifest=heads)
    # Warm-up (kernels, allocator): one window, one track.
    warm = run_predict(model, args.genome, [("chr1", 0, span)], args.workdir / "many-warm.bw",
                       tracks="t0", **common)  # fmt: skip
    for path in warm.paths:
        path.unlink()
    began = time.perf_counter()  # inference alone: reading, model, averaging, host copies
    prediction = predict_regions(model, args.genome, region, show_progress=False, **common)
    for _ in prediction:
        pass
    inference_s = time.perf_counter() - began
    out = args.workdir / f"many-{os.getpid()}"
    began = time.perf_counter()
    summary = run_predict(model, args.genome, region, f"{out}/", **common)
    seconds = time.perf_counter() - began
    shutil.rmtree(out, ignore_errors=True)
    w = summary.writing
    print(json.dumps({
        "tracks": args.n_tracks, "bp": summary.bp, "windows": summary.n_windows,
        "bins": summary.n_bins, "batch": summary.batch_size, "seconds": seconds,
        "inference_s": inference_s, "limit": limit, "device": str(device),
        "processes": w["processes"], "max_open": w["max_open"], "peak_fds": w["peak_fds"],
        "wait_s": w["wait_s"], "finish_s": w["finish_s"], "write_s": w["write_s"],
        "claim_s": w["claim_s"], "open_s": w["open_s"],
        "process_rss_mib": w.get("process_rss_mib"),
        "params": sum(p.numel() for p in model.parameters()),
    }))  # fmt: skip


def measure_many(cfg: dict, genome: Path, workdir: Path) -> dict | None:
    if not cfg["many_tracks"]:
        return None
    bp = int(cfg["many_mb"] * 1e6)
    log(f"{cfg['many_tracks']:,}-track head, {bp / 1e6:g} Mb, ulimit -n {MANY_LIMIT} ...")
    command = [sys.executable, __file__, "--many-child", str(bp), "--genome", str(genome),
               "--workdir", str(workdir), "--n-tracks", str(cfg["many_tracks"])]  # fmt: skip
    if cfg["threads"]:
        command += ["--threads", str(cfg["threads"])]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode:
        return {"error": (done.stderr.strip().splitlines() or ["?"])[-1][:200]}
    return json.loads(done.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------- report


def machine(cfg: dict) -> str:
    cores = cpu_description()
    versions = f"Python {platform.python_version()}, torch {torch.__version__}"
    try:
        import pyBigWig

        versions += f", pyBigWig {pyBigWig.__version__}"
    except (ImportError, AttributeError):
        pass
    if cfg["gpu"]:
        device = f"{torch.cuda.get_device_name()}, CUDA {torch.version.cuda}, bf16 autocast"
    else:
        device = f"no GPU, {cfg['threads']} torch threads, float32"
    return f"{cores}; {versions}; {device}"


def rate(x: float, unit: str) -> str:
    for factor, prefix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if x >= factor:
            return f"{x / factor:.2f} {prefix}{unit}"
    return f"{x:.1f} {unit}"


def hours(h: float) -> str:
    if h < 1:
        return f"{h * 60:.1f} min"
    return f"{h:.1f} h" if h < 48 else f"{h / 24:.1f} days"


HEAD = ("measurement", "setting", "params", "batch", "Mbp", "wall s", "result",
        "model alone", "outside model", "FASTA+1hot", "writing", "3.1-Gbp genome")  # fmt: skip


def table_rows(runs: list[dict], writer: list[dict], rss: list[dict]) -> list[tuple[str, ...]]:
    rows = []
    for r in runs:
        if "error" in r:
            rows.append((r["preset"], r["width"], *[""] * 4, "error: " + r["error"], *[""] * 5))
            continue
        rows.append((
            r["preset"], f"{r['width']} width", f"{r['params']:,}", str(r["batch"]),
            f"{r['bp'] / 1e6:.2f}", f"{r['seconds']:.2f}", rate(r["bp_per_s"], "bp/s"),
            rate(r["model_bp_per_s"], "bp/s"), f"{r['outside']:.0%}", f"{r['read_share']:.0%}",
            f"{r['write_share']:.0%}", hours(r["human_hours"]),
        ))  # fmt: skip
    batched, loop = writer
    for w, label in ((batched, "batched, fixed step"), (loop, "one entry per call")):
        note = f"adds {rate(w['bins'] / w['add_s'], 'bins/s')}"
        if w is batched:
            note += f", {loop['seconds'] / batched['seconds']:.1f}x"
        rows.append((
            "bigWig writer, 1 track", label, "", "", f"{w['bins'] / 1e6:.2f}M bins",
            f"{w['seconds']:.2f}", rate(w["bins_per_s"], "bins/s"), note, "", "", "", "",
        ))  # fmt: skip
    for m in rss:
        if "error" in m:
            rows.append((f"peak RSS, {m['mb']:g} Mb region", "", *[""] * 4, str(m["error"]),
                         *[""] * 5))  # fmt: skip
            continue
        rows.append((
            f"peak RSS, {m['mb']:g} Mb region", "tiny cnn-maxpool, new process", "", "8",
            f"{m['bp'] / 1e6:.2f}", f"{m['seconds']:.2f}", f"{m['peak_mib']:.0f} MiB",
            f"before: {m['base_mib']:.0f} MiB", "", "", "", "",
        ))  # fmt: skip
    return rows


def many_row(m: dict | None) -> list[tuple[str, ...]]:
    if m is None:
        return []
    label = "every track, 1 region"
    if "error" in m:
        return [(label, "", *[""] * 4, "error: " + m["error"], *[""] * 5)]
    values = m["bins"] * m["tracks"]
    return [(
        label, f"tiny cnn-maxpool, {m['tracks']:,} tracks", f"{m['params']:,}", str(m["batch"]),
        f"{m['bp'] / 1e6:.2f}", f"{m['seconds']:.2f}", rate(values / m["seconds"], "bins/s"),
        f"{m['inference_s']:.2f} s", f"{1 - m['inference_s'] / m['seconds']:.0%}", "", "", "",
    )]  # fmt: skip


def print_many(m: dict | None) -> None:
    if m is None or "error" in m:
        return
    values = m["bins"] * m["tracks"]
    rss = m.get("process_rss_mib")
    print(
        f"tracks:   {m['tracks']:,}-track head, every track of a {m['bp'] / 1e6:.2f}-Mb region "
        f"({m['windows']} windows, {m['bins']:,} bins x {m['tracks']:,} tracks = "
        f"{values / 1e6:.1f} M values) on {m['device']} under ulimit -n {m['limit']}: "
        f"{m['seconds']:.1f} s, {m['windows'] / m['seconds']:.1f} windows/s, "
        f"{rate(values / m['seconds'], 'bins/s')} across tracks; {m['processes']} writer "
        f"processes of <= {m['max_open']} bigWigs"
        + (f" (peak {rss:.0f} MiB each)" if rss else "")
        + f", at most {m['peak_fds']} files open in one process. Time: "
        f"{m['claim_s']:.1f} s checking the output paths, {m['open_s']:.1f} s creating the "
        f"files, inference {m['inference_s']:.1f} s alone (overlapped by writing; the model's "
        f"thread waited {m['wait_s']:.1f} s for the writers), {m['finish_s']:.1f} s of writing "
        f"after the last bins (busiest writer busy {m['write_s']:.1f} s)"
    )


def print_report(cfg: dict, runs, writer, rss, seconds: float, many=None) -> None:
    body = [HEAD, *table_rows(runs, writer, rss), *many_row(many)]
    widths = [max(len(r[i]) for r in body) for i in range(len(HEAD))]
    rule = "-" * (sum(widths) + 2 * (len(widths) - 1))
    busy = cfg["load"][0] + cfg["threads"] > (os.cpu_count() or 1) and not cfg["gpu"]
    print(
        "gitool predict benchmark: end to end (FASTA → model → bigWig) per preset, writer, memory"
    )
    print(f"machine:  {machine(cfg)}")
    print(
        f"load:     1-min load average {cfg['load'][0]:.2f} before, {os.getloadavg()[0]:.2f} "
        f"after{' (cores shared: expect noise)' if busy else ''}; total {seconds:.0f} s"
    )
    print(
        f"runs:     device {cfg['device']}; {cfg['n_tracks']} tracks per head, one bigWig each; "
        f"regions of ~{cfg['seconds']:g} s per preset on a random {cfg['genome_mb']}-Mb genome; "
        "no --rc/--shifts"
    )
    print(
        "columns:  result = bp predicted / wall s; model alone = forward passes only "
        "(inputs on the device); outside model = 1 - forward time / wall; FASTA+1hot, writing "
        "= each alone on the same windows, share of wall; writer: 128-bp bins, total incl. "
        "close() (zoom levels), 'adds' = until the last entry is handed over, Nx = vs one "
        "entry per call; every track: result = bins x tracks written / wall s, model alone = "
        "predict_regions alone (nothing written), outside model = 1 - that / wall"
    )
    print(rule)
    for i, row in enumerate(body):
        cells = [c.ljust(w) if j < 2 else c.rjust(w) for j, (c, w) in enumerate(zip(row, widths, strict=True))]  # fmt: skip
        print("  ".join(cells).rstrip())
        if i == 0:
            print(rule)
    print(rule)
    good = [r for r in runs if "error" not in r]
    if good:
        best = max(good, key=lambda r: r["bp_per_s"])
        slow = min(good, key=lambda r: r["bp_per_s"])
        print(
            f"estimate: a whole human genome (3.1 Gbp) on this device takes {hours(best['human_hours'])} "
            f"({best['preset']}, {best['width']} width) to {hours(slow['human_hours'])} "
            f"({slow['preset']}, {slow['width']} width); --rc doubles it, --shifts a,b,c triples"
        )
    ok = [m for m in rss if "error" not in m]
    if len(ok) >= 2:
        a, b = ok[0], ok[-1]
        print(
            f"memory:   peak RSS {a['peak_mib']:.0f} MiB ({a['mb']:g} Mb) vs {b['peak_mib']:.0f} "
            f"MiB ({b['mb']:g} Mb): x{b['peak_mib'] / a['peak_mib']:.2f} for "
            f"x{b['mb'] / a['mb']:g} the sequence"
        )
    print_many(many)
    print(rule)


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.rss_child:
        rss_child(args)
        return
    if args.many_child:
        many_child(args)
        return
    began = time.perf_counter()
    cfg = settings(args)
    cfg["load"] = os.getloadavg()
    console.state.quiet = True
    args.workdir.mkdir(parents=True, exist_ok=True)
    folder = args.workdir / f"out-{os.getpid()}"
    folder.mkdir(parents=True, exist_ok=True)
    genome = make_genome(
        args.workdir, max(cfg["genome_mb"], int(max(cfg["rss_mb"], default=0)) + 1)
    )
    specs = [{"preset": p, "width": cfg["width"], "batch": cfg["batch"]} for p in cfg["presets"]]
    specs += [{"preset": p, "width": "full", "batch": min(cfg["batch"], 2),
               "windows": cfg["full_windows"]} for p in cfg["full_width"] if cfg["width"] != "full"]  # fmt: skip
    runs = []
    try:
        for spec in specs:
            try:
                runs.append(end_to_end(spec, cfg, genome, folder))
            except Exception as err:  # report and go on with the next preset
                runs.append({**spec, "error": f"{type(err).__name__}: {err}"[:120]})
        log("bigWig writer ...")
        writer = writer_throughput(cfg, folder)
        rss = measure_rss(cfg, genome, args.workdir)
        many = measure_many(cfg, genome, args.workdir)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print_report(cfg, runs, writer, rss, time.perf_counter() - began, many)
    if args.json:
        out = {"machine": machine(cfg), "settings": cfg, "runs": runs, "writer": writer,
               "rss": rss, "many": many}  # fmt: skip
        args.json.write_text(json.dumps(out, indent=2, default=str) + "\n")


if __name__ == "__main__":
    main()
