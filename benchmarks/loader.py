#!/usr/bin/env python
"""Benchmark the training data path: host windows/s and peak memory of
:func:`gitool.data.loader.training_batches` against the per-sample path ``gitool train`` used
before it.

On a generated store at the paper's scale (17,712-bp windows, 80 × 128-bp bins, default
5,313 tracks and 1,920 training windows: 1.6 GB of float16 targets, written directly as
``.npy`` files with a manifest; cached under ``--workdir``), each measurement in a fresh
subprocess, the store's files read once beforehand so that none pays for cold disk reads:

1. the per-sample path, as ``Batches`` in ``gitool.train.loop`` used it before (kept here so
   it stays measurable): ``WindowDataset(shift=3, rc=True, one_hot=False)`` — a float32 copy
   of each target row, augmentation on the host — in a ``DataLoader`` with ``batch_size``
   (collate), a ``DistributedSampler`` order, ``drop_last`` and workers that are not
   persistent; with 0, 1 and 2 workers;
2. ``training_batches`` (whole float16 batches gathered from the memory maps, the draws
   travelling with the batch, augmentation left to the device) with 0, 1 and 2 workers.

Windows/s over ``--windows`` windows after ``--warmup`` batches (worker start-up excluded; the
per-sample path restarts its workers each epoch, as it did). The main process reads every
page of each batch once (what the copy to the device does) and, when a GPU is present, both
paths pin their batches as training does. ``--threads`` torch threads in the measuring
process (DataLoader workers use 1).

3. memory: the peak of the memory the main process and its workers own (Pss_Anon +
   Pss_Shmem from ``/proc/PID/smaps_rollup``, summed, sampled after each batch: pages they
   share counted once; the store's memory-mapped pages are page cache, shared and
   reclaimable, and left out) of both paths with 2 workers at ``--small-tracks`` and
   ``--tracks`` tracks; split into what the opened store holds (its manifest: a few kB per
   track) and what the data path adds (peak − after ``Store(...)``), in MiB and in multiples
   of one batch's growth.

Targets: ``training_batches`` with 2 workers ≥ 3,000 windows/s and ≥ 6× the per-sample path
with 2 workers (its default); peak memory flat in the track count (≤ 1.10× from
``--small-tracks`` to ``--tracks``).

Examples::

    python benchmarks/loader.py                  # 5,313 / 1,000 tracks, best of 3
    python benchmarks/loader.py --quick          # smoke run: 500 / 100 tracks, one repeat
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from common import cpu_description, parser

DATA_VERSION = 1  # bump when the generator changes: cached stores are rewritten
SEQ_LENGTH, BIN_SIZE, TARGET_LENGTH = 17_712, 128, 80
SMALL_SPLIT = 8  # windows in valid and test (not read)
RATE_TARGET = 3_000.0  # windows/s, training_batches with 2 workers
SPEEDUP_TARGET = 6.0  # × the per-sample path with 2 workers
MEMORY_TARGET = 1.10  # peak at --tracks / peak at --small-tracks
WORKERS = (0, 1, 2)
MEMORY_WORKERS = 2


@dataclass(frozen=True)
class Config:
    tracks: int
    small_tracks: int
    train_windows: int
    batch_size: int
    windows: int
    warmup: int
    repeats: int
    threads: int
    workdir: Path
    seed: int

    def store(self, tracks: int) -> Path:
        return self.workdir / f"loader-store-t{tracks}-w{self.train_windows}-s{self.seed}"


# --------------------------------------------------------------------------- arguments


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    cli = parser(
        "Benchmark the training data path: host windows/s and peak memory of "
        "training_batches against the per-sample WindowDataset path.",
        quick="smoke run: 500 / 100 tracks, 256 training windows, one repeat",
        workdir=Path("/tmp/gitool-bench"),
    )
    cli.add_argument("--tracks", type=int, default=5_313, help="tracks of the main store")
    cli.add_argument(
        "--small-tracks", type=int, default=1_000, help="tracks of the memory comparison store"
    )
    cli.add_argument(
        "--train-windows", type=int, default=1_920, help="training windows in each store"
    )
    cli.add_argument("--batch-size", type=int, default=8, help="windows per batch")
    cli.add_argument("--windows", type=int, default=2_000, help="windows timed per measurement")
    cli.add_argument("--warmup", type=int, default=4, help="batches before the timing starts")
    cli.add_argument(
        "--repeats", type=int, default=3, help="fresh subprocesses per measurement (best rate)"
    )
    cli.add_argument(
        "--threads", type=int, default=1, help="torch CPU threads in the measuring process"
    )
    cli.add_argument("--seed", type=int, default=0)
    cli.add_argument("--measure", help=argparse.SUPPRESS)  # internal: one measurement
    return cli.parse_args(argv)


def config_from(args: argparse.Namespace) -> Config:
    if args.quick:
        args.tracks, args.small_tracks, args.train_windows = 500, 100, 256
        args.windows, args.repeats = 256, 1
    if min(args.tracks, args.small_tracks, args.batch_size, args.windows, args.repeats) < 1:
        sys.exit("--tracks, --small-tracks, --batch-size, --windows and --repeats must be positive")
    if args.train_windows < args.batch_size:
        sys.exit("--train-windows must hold a batch")
    return Config(
        args.tracks,
        args.small_tracks,
        args.train_windows,
        args.batch_size,
        args.windows,
        args.warmup,
        args.repeats,
        args.threads,
        args.workdir,
        args.seed,
    )


# --------------------------------------------------------------------------- data generation


def track_rows(n: int) -> list[dict]:
    """Tracks of the manifest; one in five of them in stranded pairs."""
    pair = list(range(n))
    for i in range(0, n - 1, 10):
        pair[i], pair[i + 1] = i + 1, i
    return [
        {"index": i, "identifier": f"T{i:04d}", "file": f"T{i:04d}.bw", "strand_pair": pair[i],
         "description": f"DNASE:synthetic {i}", "group": "DNASE"}
        for i in range(n)
    ]  # fmt: skip


def write_store(root: Path, tracks: int, train_windows: int, seed: int) -> None:
    """A store ``gitool.data.store.Store`` opens: random codes, float16 targets in [0, 1.25]
    (a random block of 64 windows, varied per block), a manifest with the keys it reads."""
    from gitool.data.npy import NpyWriter
    from gitool.data.store import FORMAT_NAME, STORE_FORMAT, write_manifest

    rng = np.random.default_rng([seed, tracks])
    counts = {"train": train_windows, "valid": SMALL_SPLIT, "test": SMALL_SPLIT}
    block = rng.integers(0, 0x3C00, (64, TARGET_LENGTH, tracks), dtype=np.uint16)
    for split, n in counts.items():
        (root / split).mkdir(parents=True)
        codes = rng.integers(0, 5, (n, SEQ_LENGTH), dtype=np.uint8)
        np.save(root / split / "sequences.npy", codes)
        with NpyWriter(root / split / "targets.npy", np.float16, (TARGET_LENGTH, tracks)) as out:
            for k, i in enumerate(range(0, n, len(block))):
                rows = block[: min(len(block), n - i)] ^ np.uint16(k % 256)
                out.append(rows.view(np.float16))
        (root / split / "windows.bed").write_text(
            "".join(f"chr1\t{j * 10_240}\t{j * 10_240 + SEQ_LENGTH}\t0\t0\n" for j in range(n))
        )
    manifest = {
        "format": FORMAT_NAME,
        "version": STORE_FORMAT,
        "generated": "benchmarks/loader.py (random codes and targets)",
        "seq_length": SEQ_LENGTH,
        "bin_size": BIN_SIZE,
        "target_length": TARGET_LENGTH,
        "stride": 10_240,
        "n_tracks": tracks,
        "splits": {split: {"windows": n} for split, n in counts.items()},
        "tracks": track_rows(tracks),
    }
    write_manifest(manifest, root / "manifest.yaml")


def prepare_store(cfg: Config, tracks: int) -> tuple[Path, float | None]:
    """The store with ``tracks`` tracks (generated, or reused when its parameters match);
    seconds spent generating (None: cached)."""
    import shutil

    root = cfg.store(tracks)
    params = {"version": DATA_VERSION, "tracks": tracks, "windows": cfg.train_windows,
              "seed": cfg.seed}  # fmt: skip
    marker = root / "params.json"
    if marker.is_file() and json.loads(marker.read_text()) == params:
        return root, None
    began = time.perf_counter()
    shutil.rmtree(root, ignore_errors=True)
    write_store(root, tracks, cfg.train_windows, cfg.seed)
    marker.write_text(json.dumps(params))
    return root, time.perf_counter() - began


def warm_page_cache(root: Path) -> None:
    """Read every array once so no measurement pays for cold disk reads."""
    for path in root.glob("*/*.npy"):
        with open(path, "rb") as handle:
            while handle.read(1 << 24):
                pass


# --------------------------------------------------------------------------- measurements
# Each runs in a fresh interpreter (``--measure``) and prints one JSON line.


def per_sample_batches(store, batch_size: int, workers: int, pin: bool, seed: int = 0):
    """The per-sample path as ``Batches`` used it before ``training_batches`` (one process):
    ``(codes uint8, targets float32)`` batches, augmented on the host, endlessly."""
    import torch
    from torch.utils.data import DataLoader, DistributedSampler

    from gitool.data.dataset import WindowDataset
    from gitool.data.loader import default_sigterm

    dataset = WindowDataset(store, "train", shift=3, rc=True, seed=seed, one_hot=False)
    sampler = DistributedSampler(
        dataset, num_replicas=1, rank=0, shuffle=True, seed=seed, drop_last=True
    )
    loader = DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        drop_last=True,
        num_workers=workers,
        pin_memory=pin,
        generator=torch.Generator().manual_seed(seed),
        persistent_workers=False,
        worker_init_fn=default_sigterm,
    )
    for epoch in itertools.count():
        dataset.set_epoch(epoch)
        sampler.set_epoch(epoch)
        yield from loader


def whole_batches(store, batch_size: int, workers: int, pin: bool, seed: int = 0):
    from gitool.data.loader import training_batches

    return training_batches(
        store, "train", batch_size, num_workers=workers, seed=seed, epoch=0, shift=3, rc=True,
        device="cuda" if pin else "cpu",
    )  # fmt: skip


PATHS = {"per-sample": per_sample_batches, "training_batches": whole_batches}


def touch(batch) -> int:
    """Read one byte of every page of the batch's arrays (as the copy to the device would)."""
    import torch

    return sum(int(t.reshape(-1).view(torch.uint8)[::4096].sum()) for t in batch[:2])


def _rollup_kib(pid: str, keys: tuple[str, ...]) -> int:
    total = 0
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            name, _, value = line.partition(":")
            if name in keys:
                total += int(value.split()[0])
    except OSError:  # a worker that just ended
        return 0
    return total


def children() -> list[str]:
    pids = []
    for task in Path("/proc/self/task").iterdir():
        with contextlib.suppress(OSError):  # a thread that just ended
            pids += (task / "children").read_text().split()
    return pids


def private_mib() -> float:
    """Pss_Anon + Pss_Shmem of this process and its children, MiB: their own memory, pages
    they share (forked workers' copy-on-write pages, shared-memory batches) counted once."""
    keys = ("Pss_Anon", "Pss_Shmem")
    return sum(_rollup_kib(pid, keys) for pid in ["self", *children()]) / 1024


def measure(spec: dict) -> dict:
    import torch

    from gitool.data.store import Store

    torch.set_num_threads(spec["threads"])
    pin = torch.cuda.is_available()
    started = private_mib()
    store = Store(spec["store"])  # its manifest (5,313 tracks: ~30 MiB) is not the data path's
    opened = peak = private_mib()
    batches = PATHS[spec["path"]](store, spec["batch_size"], spec["workers"], pin)
    for _ in range(spec["warmup"]):
        touch(next(batches))
        if spec["memory"]:
            peak = max(peak, private_mib())
    count, checksum = 0, 0
    began = time.perf_counter()
    while count < spec["windows"]:
        batch = next(batches)
        checksum += touch(batch)
        count += len(batch[0])
        if spec["memory"]:
            peak = max(peak, private_mib())
    seconds = time.perf_counter() - began
    nbytes = sum(t.numel() * t.element_size() for t in batch)
    batches.close()
    return {"windows": count, "seconds": seconds, "rate": count / seconds, "batch_bytes": nbytes,
            "peak_mib": peak, "opened_mib": opened, "started_mib": started,
            "checksum": checksum}  # fmt: skip


def run_child(spec: dict) -> dict:
    command = [sys.executable, str(Path(__file__).resolve()), "--measure", json.dumps(spec)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"measurement {spec['path']} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def plan(cfg: Config, stores: dict[int, Path]) -> dict[str, dict]:
    """Measurement name → spec, in running order."""
    base = {"batch_size": cfg.batch_size, "warmup": cfg.warmup, "threads": cfg.threads}
    specs = {}
    for path in PATHS:
        for workers in WORKERS:
            specs[f"{path} w{workers}"] = {**base, "path": path, "workers": workers,
                                           "store": str(stores[cfg.tracks]),
                                           "windows": cfg.windows, "memory": False}  # fmt: skip
    for path in PATHS:
        for tracks in (cfg.small_tracks, cfg.tracks):
            specs[f"{path} memory t{tracks}"] = {
                **base, "path": path, "workers": MEMORY_WORKERS, "store": str(stores[tracks]),
                "windows": min(cfg.windows, cfg.train_windows), "memory": True,
            }  # fmt: skip
    return specs


def measure_all(cfg: Config, stores: dict[int, Path]) -> dict[str, dict]:
    """Every measurement ``repeats`` times, interleaved; keep the best rate, the largest
    memory."""
    best: dict[str, dict] = {}
    specs = plan(cfg, stores)
    for rep in range(cfg.repeats):
        for name, spec in specs.items():
            print(f"  [{rep + 1}/{cfg.repeats}] {name} ...", file=sys.stderr, flush=True)
            result = run_child(spec)
            old = best.get(name)
            if old is not None:
                result = dict(result if result["rate"] > old["rate"] else old) | {
                    "peak_mib": max(old["peak_mib"], result["peak_mib"])
                }
            best[name] = result
    return best


# --------------------------------------------------------------------------- report

Row = tuple[str, str, str, str]  # label, value, target, PASS/FAIL/info


def check(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def rate_rows(cfg: Config, r: dict[str, dict]) -> list[Row]:
    rows: list[Row] = []
    for path in PATHS:
        for workers in WORKERS:
            res = r[f"{path} w{workers}"]
            per_core = res["rate"] / max(workers, 1)
            label = f"{path}, {workers} worker(s)" if workers else f"{path}, in-process"
            rows.append(
                (label, f"{res['rate']:,.0f} windows/s ({per_core:,.0f} per process)", "", "")
            )
    new, old = r[f"training_batches w{MEMORY_WORKERS}"], r[f"per-sample w{MEMORY_WORKERS}"]
    rows.append((f"  training_batches, {MEMORY_WORKERS} workers", f"{new['rate']:,.0f} windows/s",
                 f">= {RATE_TARGET:,.0f}", check(new["rate"] >= RATE_TARGET)))  # fmt: skip
    speedup = new["rate"] / old["rate"]
    rows.append((f"  speed-up over per-sample, {MEMORY_WORKERS} workers", f"{speedup:.1f}x",
                 f">= {SPEEDUP_TARGET:.0f}x", check(speedup >= SPEEDUP_TARGET)))  # fmt: skip
    return rows


def memory_rows(cfg: Config, r: dict[str, dict]) -> list[Row]:
    from gitool.data.loader import PREFETCH

    ring = PREFETCH * MEMORY_WORKERS + 2
    both = (cfg.small_tracks, cfg.tracks)
    rows: list[Row] = [(f"memory, {MEMORY_WORKERS} workers (Pss anon + shmem, main + workers): "
                        f"{cfg.small_tracks:,} | {cfg.tracks:,} tracks", "", "", "")]  # fmt: skip
    for path in PATHS:
        small, large = (r[f"{path} memory t{t}"] for t in both)
        ratio = large["peak_mib"] / small["peak_mib"]
        new = path == "training_batches"
        rows.append((f"  {path}: peak", f"{small['peak_mib']:,.0f} | {large['peak_mib']:,.0f} MiB "
                     f"({ratio:.2f}x)", f"<= {MEMORY_TARGET:.2f}x" if new else "",
                     check(ratio <= MEMORY_TARGET) if new else "info"))  # fmt: skip
    opened = [r[f"training_batches memory t{t}"] for t in both]
    rows.append(("  of which the opened store (its manifest)",
                 " | ".join(f"{o['opened_mib'] - o['started_mib']:,.0f}" for o in opened)
                 + " MiB", "", ""))  # fmt: skip
    for path in PATHS:
        small, large = (r[f"{path} memory t{t}"] for t in both)
        added = [res["peak_mib"] - res["opened_mib"] for res in (small, large)]
        growth = added[1] - added[0]
        batch = (large["batch_bytes"] - small["batch_bytes"]) / 2**20
        rows.append((f"  of which the data path, {path}",
                     f"{added[0]:,.0f} | {added[1]:,.0f} MiB: +{growth:,.0f} MiB = "
                     f"{growth / batch:.1f} x one batch's +{batch:.1f} MiB", "", "info"))  # fmt: skip
    rows.append((f"  (training_batches holds a ring of {ring} batches in shared memory and makes "
                 "each host batch once)", "", "", ""))  # fmt: skip
    for path in PATHS:
        res = r[f"{path} memory t{cfg.tracks}"]
        rows.append((f"  one {path} batch on the host, {cfg.tracks:,} tracks",
                     f"{res['batch_bytes'] / 2**20:.1f} MiB", "", ""))  # fmt: skip
    return rows


def machine() -> str:
    import torch

    import gitool

    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (f"{cpu_description()}, load average {load}; Python {platform.python_version()}, "
            f"numpy {np.__version__}, torch {torch.__version__}, gitool {gitool.__version__}")  # fmt: skip


def print_report(cfg: Config, results: dict[str, dict], generation: list[str]) -> None:
    size = cfg.train_windows * TARGET_LENGTH * cfg.tracks * 2 / 1e9
    header = [
        "gitool training data path benchmark",
        f"machine:    {machine()}",
        f"data:       {cfg.train_windows:,} training windows of {SEQ_LENGTH:,} bp, "
        f"{TARGET_LENGTH} x {BIN_SIZE}-bp bins, {cfg.tracks:,} tracks ({size:.2f} GB float16 "
        f"targets) and {cfg.small_tracks:,} tracks; {cfg.workdir}",
        f"generation: {'; '.join(generation)}",
        f"timing:     batch {cfg.batch_size}, shift 3 + rc; {cfg.windows:,} windows after "
        f"{cfg.warmup} batches, best of {cfg.repeats} fresh subprocess(es); torch threads "
        f"{cfg.threads}",
    ]
    rows = rate_rows(cfg, results) + memory_rows(cfg, results)
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    rule = "-" * (sum(widths) + 6)
    print("\n".join(header))
    print(rule)
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    print(rule)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.measure:
        print(json.dumps(measure(json.loads(args.measure))))
        return
    cfg = config_from(args)
    stores, generation = {}, []
    for tracks in (cfg.tracks, cfg.small_tracks):
        print(f"preparing {cfg.store(tracks)} ...", file=sys.stderr, flush=True)
        stores[tracks], seconds = prepare_store(cfg, tracks)
        generation.append(
            f"{tracks:,} tracks " + ("reused" if seconds is None else f"{seconds:.1f} s")
        )
        warm_page_cache(stores[tracks])
    results = measure_all(cfg, stores)
    print_report(cfg, results, generation)
    if args.json:
        record = {"config": {k: str(v) for k, v in asdict(cfg).items()}, "results": results}
        args.json.write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
