#!/usr/bin/env python
"""Benchmark ``gitool import-basenji`` against the floor of only decompressing the same files.

On a generated release in the Basenji/Enformer format (131,072-bp one-hot records, 896 bins
× 5,313 float16 tracks, ZLIB-compressed TFRecord files written by the ``tfrecord`` package;
default ≥ 2 GB compressed) it measures, each in a fresh subprocess so that peak RSS is per
measurement:

1. the floor: every file inflated with ``zlib`` (1-MB chunks), nothing else, one process;
2. the import with one worker: GB/s of compressed input, windows/s. Target: within 1.5× of
   the floor's time;
3. the import with N workers (default: all usable cores): speed-up over (2), target ≥ 0.7·N;
4. peak memory of the one-worker import of half the files against all of them. Target: flat
   (≤ 1.1×): memory does not grow with the number of records.

The generated release is cached under ``--workdir`` and reused when the parameters match.
Examples::

    python benchmarks/import_basenji.py            # ≥ 2 GB compressed, 1 and N workers
    python benchmarks/import_basenji.py --quick    # 24 records, a smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import time
import zlib
from pathlib import Path

from common import cpu_description, parser

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "data"))

DATA_VERSION = 1  # bump when the generator changes: cached data are regenerated
FLOOR_TARGET = 1.5  # import time (one worker) / inflate-only time
SPEEDUP_TARGET = 0.7  # × workers
MEMORY_TARGET = 1.10  # peak RSS of all files / peak RSS of half the files


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    cli = parser(
        __doc__.split("\n\n")[0],
        quick="24 records of 5,313 tracks (about 0.2 GB), for a smoke run",
        workdir=Path("/tmp/gitool-bench-import"),
    )
    cli.add_argument("--records", type=int, default=384, help="records in the release")
    cli.add_argument("--per-file", type=int, default=16, help="records per .tfr file")
    cli.add_argument("--tracks", type=int, default=5313)
    cli.add_argument("--workers", type=int, default=None, help="N (default: usable cores)")
    cli.add_argument("--child", help=argparse.SUPPRESS)  # internal: floor | import
    cli.add_argument("--source", type=Path, help=argparse.SUPPRESS)
    cli.add_argument("--child-workers", type=int, default=1, help=argparse.SUPPRESS)
    return cli.parse_args(argv)


def peak_rss_mb() -> float:
    """Peak RSS of this process and of its largest finished child, MB. This process's own
    peak is VmHWM: ``ru_maxrss`` keeps the peak of the process that started it (Linux
    carries it across fork and exec, and the parent held the generated data)."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                own = int(line.split()[1])
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) / 1024


def child(args: argparse.Namespace) -> None:
    """One measurement in this process; prints a JSON line."""
    files = sorted((args.source / "tfrecords").glob("*.tfr"))
    began = time.perf_counter()
    if args.child == "floor":
        for path in files:
            inflate = zlib.decompressobj()
            with open(path, "rb") as handle:
                while chunk := handle.read(1 << 20):
                    inflate.decompress(chunk)
        result = {}
    else:
        from gitool.config.import_basenji import ImportBasenjiOptions
        from gitool.console import state
        from gitool.data.basenji import import_release

        state.quiet = True
        out = args.workdir / f"store-{os.getpid()}"
        summary = import_release(
            ImportBasenjiOptions(source=str(args.source), out=str(out), workers=args.child_workers)
        )
        result = {"windows": sum(summary.counts.values())}
        shutil.rmtree(out)
    result.update(
        seconds=time.perf_counter() - began,
        gb=sum(p.stat().st_size for p in files) / 1e9,
        peak_rss_mb=peak_rss_mb(),
    )
    print(json.dumps(result))


def run_child(args: argparse.Namespace, kind: str, source: Path, workers: int = 1) -> dict:
    cmd = [sys.executable, __file__, "--child", kind, "--source", str(source),
           "--child-workers", str(workers), "--workdir", str(args.workdir)]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode:
        raise SystemExit(f"{kind} child failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def release(args: argparse.Namespace, records: int) -> Path:
    """The generated release of ``records`` training records (cached)."""
    from basenji_release import make_release

    key = f"v{DATA_VERSION}-r{records}-f{args.per_file}-t{args.tracks}"
    folder = args.workdir / key
    if (folder / "done").exists():
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    began = time.perf_counter()
    print(f"generating {records} records × {args.tracks} tracks in {folder} ...", flush=True)
    make_release(folder, seq_length=131072, pool_width=128, target_length=896,
                 n_tracks=args.tracks, counts=(records, 0, 0), per_file=args.per_file,
                 keep=False)  # fmt: skip
    (folder / "done").write_text("")
    print(f"  {time.perf_counter() - began:.0f} s", flush=True)
    return folder


def half_release(args: argparse.Namespace, full: Path) -> Path:
    """The first half of ``full``'s files (links) with matching statistics and windows."""
    folder = args.workdir / f"{full.name}-half"
    shutil.rmtree(folder, ignore_errors=True)
    (folder / "tfrecords").mkdir(parents=True)
    files = sorted((full / "tfrecords").glob("train-*.tfr"), key=lambda p: int(p.stem[6:]))
    kept = files[: max(1, len(files) // 2)]
    for path in kept:
        os.link(path, folder / "tfrecords" / path.name)
    records = min(
        len(kept) * args.per_file,
        int(json.loads((full / "statistics.json").read_text())["train_seqs"]),
    )
    stats = json.loads((full / "statistics.json").read_text())
    stats["train_seqs"] = records
    (folder / "statistics.json").write_text(json.dumps(stats))
    shutil.copy(full / "targets.txt", folder / "targets.txt")
    lines = (full / "sequences.bed").read_text().splitlines()[:records]
    (folder / "sequences.bed").write_text("\n".join(lines) + "\n")
    return folder


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    if args.child:
        child(args)
        return {}
    if args.quick:
        args.records = 24
        args.per_file = 4
    workers = args.workers or (
        len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    )
    args.workdir.mkdir(parents=True, exist_ok=True)
    full = release(args, args.records)
    half = half_release(args, full)
    print(f"machine: {cpu_description()}; Python {platform.python_version()}")

    floor = run_child(args, "floor", full)
    one = run_child(args, "import", full)
    many = run_child(args, "import", full, workers) if workers > 1 else one
    small = run_child(args, "import", half)

    gb, windows = one["gb"], one["windows"]
    results = {
        "machine": cpu_description(),
        "records": args.records,
        "tracks": args.tracks,
        "compressed_gb": round(gb, 3),
        "floor_s": round(floor["seconds"], 2),
        "floor_gb_per_s": round(gb / floor["seconds"], 3),
        "one_worker_s": round(one["seconds"], 2),
        "one_worker_gb_per_s": round(gb / one["seconds"], 3),
        "one_worker_windows_per_s": round(windows / one["seconds"], 1),
        "vs_floor": round(one["seconds"] / floor["seconds"], 3),
        "workers": workers,
        "n_workers_s": round(many["seconds"], 2),
        "n_workers_gb_per_s": round(gb / many["seconds"], 3),
        "n_workers_windows_per_s": round(windows / many["seconds"], 1),
        "speedup": round(one["seconds"] / many["seconds"], 3),
        "peak_rss_mb_half": round(small["peak_rss_mb"], 1),
        "peak_rss_mb_all": round(one["peak_rss_mb"], 1),
        "memory_ratio": round(one["peak_rss_mb"] / small["peak_rss_mb"], 3),
    }
    print(f"release: {args.records} records × {args.tracks} tracks, {gb:.2f} GB compressed")
    print(
        f"inflate only (floor):   {floor['seconds']:7.1f} s  {results['floor_gb_per_s']:.3f} GB/s"
    )
    print(
        f"import, 1 worker:       {one['seconds']:7.1f} s  {results['one_worker_gb_per_s']:.3f} GB/s"
        f"  {results['one_worker_windows_per_s']:.1f} windows/s  ({results['vs_floor']:.2f}× the "
        f"floor; target ≤ {FLOOR_TARGET})"
    )
    print(
        f"import, {workers} workers:      {many['seconds']:7.1f} s  "
        f"{results['n_workers_gb_per_s']:.3f} GB/s  {results['n_workers_windows_per_s']:.1f} "
        f"windows/s  (speed-up {results['speedup']:.2f}; target ≥ {SPEEDUP_TARGET * workers:.1f})"
    )
    print(
        f"peak RSS, 1 worker:     {results['peak_rss_mb_half']:.0f} MB for half the files, "
        f"{results['peak_rss_mb_all']:.0f} MB for all ({results['memory_ratio']:.2f}×; target ≤ "
        f"{MEMORY_TARGET})"
    )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return results


if __name__ == "__main__":
    main()
