#!/usr/bin/env python
"""Benchmark ``gitool build-dataset`` against the bigWig read floor and a Basenji-style reader.

On a generated genome (default 50 Mb, 5 chromosomes with N gaps) and generated bigWig tracks
(default 8, and 16 for the memory check) that look like coverage (piecewise-constant,
variable-length intervals, missing-data gaps, peaks), it measures, each in a fresh
subprocess so that peak RSS is per measurement:

1. the gitool build with one worker: total and per-phase seconds, windows/s;
2. the gitool build with N workers: speed-up of the whole build over (1), target ≥ 0.7·N
   (with N > 1 the pool reads coverage while the main process reads the genome, so the
   per-phase times overlap and only the total is comparable);
3. the read floor: only pyBigWig ``values`` over the build's merged target runs (exactly
   ``gitool.data.build._runs``), every track, one process. Target: gitool ≤ 1.3× the floor,
   judged on the coverage phase (the part of the build that reads bigWigs);
4. a Basenji-style reader: per track and window, ``values`` over the whole sequence window,
   crop the centre, NaN → 0, reshape-sum into bins (``--basenji-windows`` subsamples and
   extrapolates);
5. peak memory of the one-worker build with the track count doubled. Target: flat (≤ 1.1×).

Data are cached under ``--workdir`` and reused when the parameters match. Examples::

    python benchmarks/build_dataset.py              # 50 Mb, 8/16 tracks, all cores
    python benchmarks/build_dataset.py --quick      # 10 Mb, 4/8 tracks, one repeat
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
from dataclasses import dataclass
from multiprocessing import Pool
from pathlib import Path

import numpy as np

from common import cpu_description, parser

DATA_VERSION = 1  # bump when the generator changes: cached data are regenerated
N_CHROMS = 5
COVERAGE_TARGET = 1.3  # gitool (one worker) / read floor
SPEEDUP_TARGET = 0.7  # × workers
MEMORY_TARGET = 1.10  # peak RSS with 2× tracks / peak RSS with 1× tracks


@dataclass(frozen=True)
class Config:
    genome_mb: float
    tracks: int
    workers: int
    repeats: int
    basenji_windows: int
    workdir: Path
    seed: int

    @property
    def data_dir(self) -> Path:
        return self.workdir / f"g{self.genome_mb:g}mb-t{2 * self.tracks}-s{self.seed}"

    def data_params(self) -> dict:
        return {
            "version": DATA_VERSION,
            "genome_mb": self.genome_mb,
            "tracks": 2 * self.tracks,
            "seed": self.seed,
        }


# --------------------------------------------------------------------------- arguments


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    cli = parser(
        "Benchmark gitool build-dataset: windows/s, peak RSS, and ratios against "
        "the bigWig read floor and a Basenji-style per-window reader.",
        quick="smoke run: 10 Mb, 4/8 tracks, one repeat",
        json=False,
        workdir=Path("/tmp/gitool-bench"),
    )
    cli.add_argument("--genome-mb", type=float, default=50.0, help="generated genome size")
    cli.add_argument("--tracks", type=int, default=8, help="tracks (2× for the memory check)")
    cli.add_argument(
        "--workers", type=int, default=len(os.sched_getaffinity(0)), help="N for the N-worker run"
    )
    cli.add_argument(
        "--repeats", type=int, default=3, help="fresh subprocesses per measurement (best time)"
    )
    cli.add_argument(
        "--basenji-windows",
        type=int,
        default=0,
        help="time the Basenji-style reader on this many evenly spaced windows and "
        "extrapolate (0: all windows)",
    )
    cli.add_argument("--seed", type=int, default=0)
    cli.add_argument("--measure", help=argparse.SUPPRESS)  # internal: one measurement
    return cli.parse_args(argv)


def config_from(args: argparse.Namespace) -> Config:
    if args.quick:
        args.genome_mb, args.tracks, args.repeats = 10.0, 4, 1
    if args.genome_mb <= 0 or args.tracks < 1 or args.workers < 1 or args.repeats < 1:
        sys.exit("--genome-mb, --tracks, --workers and --repeats must be positive")
    return Config(
        args.genome_mb,
        args.tracks,
        args.workers,
        args.repeats,
        args.basenji_windows,
        args.workdir,
        args.seed,
    )


# --------------------------------------------------------------------------- data generation


def chrom_sizes(cfg: Config) -> dict[str, int]:
    size = int(cfg.genome_mb * 1_000_000) // N_CHROMS
    return {f"chr{i + 1}": size for i in range(N_CHROMS)}


def n_gaps(seed: int, chrom_index: int, size: int) -> np.ndarray:
    """N runs of one chromosome, int64 ``(k, 2)``: both ends plus three inside gaps."""
    rng = np.random.default_rng([seed, 7, chrom_index])
    ends = [(0, 10_000), (size - 10_000, size)]
    centres = rng.integers(size // 10, size - size // 10, 3)
    lengths = rng.integers(20_000, 200_000, 3)
    inside = [(int(c), int(c + n)) for c, n in zip(centres, lengths, strict=True)]
    return np.array(sorted(ends + inside), dtype=np.int64)


def write_genome(path: Path, sizes: dict[str, int], seed: int) -> None:
    """Random ACGT with N gaps, 60 bases a line."""
    alphabet = np.frombuffer(b"ACGT", np.uint8)
    with open(path, "wb") as handle:
        for i, (chrom, size) in enumerate(sizes.items()):
            seq = alphabet[np.random.default_rng([seed, 1, i]).integers(0, 4, size)]
            for a, b in n_gaps(seed, i, size):
                seq[a:b] = ord("N")
            full = size - size % 60
            lines = np.hstack([seq[:full].reshape(-1, 60), np.full((full // 60, 1), 10, np.uint8)])
            handle.write(f">{chrom}\n".encode() + lines.tobytes())
            if size % 60:
                handle.write(seq[full:].tobytes() + b"\n")


def coverage(size: int, gaps: np.ndarray, rng: np.random.Generator, mean_len: float):
    """Piecewise-constant coverage of one chromosome: (starts, ends, values) of the kept
    intervals. Geometric lengths, gamma values, peaks ×5–100, ~40% of the background
    left out as missing data, nothing over N gaps."""
    lengths = rng.geometric(1 / mean_len, int(size / mean_len * 1.2) + 1000)
    ends = np.cumsum(lengths)
    ends = np.append(ends[ends < size], size)
    starts = np.concatenate([[0], ends[:-1]])
    values = rng.gamma(0.6, 1.5, len(starts))
    n_peaks = max(1, size // 20_000)
    peak_starts = np.sort(rng.integers(0, size, n_peaks))
    peak_ends = peak_starts + rng.integers(150, 2_000, n_peaks)
    mids = (starts + ends) // 2
    k = np.searchsorted(peak_starts, mids, side="right") - 1
    in_peak = (k >= 0) & (mids < peak_ends[np.maximum(k, 0)])
    values[in_peak] *= rng.uniform(5, 100, n_peaks)[k[in_peak]]
    keep = in_peak | (rng.random(len(starts)) > 0.4)
    g = np.searchsorted(gaps[:, 0], ends, side="left") - 1  # last gap starting before `end`
    keep &= ~((g >= 0) & (starts < gaps[np.maximum(g, 0), 1]))
    return starts[keep], ends[keep], values[keep]


def write_track(job: tuple[str, dict[str, int], int, int]) -> None:
    import pyBigWig

    path, sizes, seed, track = job
    rng = np.random.default_rng([seed, 2, track])
    mean_len = 20 + 30 * rng.random()  # 20–50 bp
    bw = pyBigWig.open(path, "w")
    bw.addHeader(list(sizes.items()), maxZooms=10)
    for i, (chrom, size) in enumerate(sizes.items()):
        starts, ends, values = coverage(size, n_gaps(seed, i, size), rng, mean_len)
        if not pyBigWig.numpy:  # pyBigWig built without numpy: lists
            starts, ends, values = starts.tolist(), ends.tolist(), values.tolist()
        bw.addEntries(np.full(len(starts), chrom), starts, ends=ends, values=values)
    bw.close()


def write_tracks_table(path: Path, files: list[Path]) -> None:
    """Basenji targets.txt: sum_stat sum, clip_soft on every other track, a clip on some."""
    header = "index identifier file clip clip_soft scale sum_stat strand_pair description"
    lines = [header.replace(" ", "\t")]
    for i, file in enumerate(files):
        clip_soft = "32" if i % 2 else ""
        clip = "384" if i % 4 == 3 else ""
        scale = "0.5" if i % 3 == 2 else "1"
        fields = [i, f"T{i:02d}", file.name, clip, clip_soft, scale, "sum", i, f"DNASE:synth {i}"]
        lines.append("\t".join(map(str, fields)))
    path.write_text("\n".join(lines) + "\n")


def prepare_data(cfg: Config) -> tuple[dict[str, Path], float | None]:
    """Generate (or reuse) genome, bigWigs and tables; returns paths and seconds (None: cached)."""
    root = cfg.data_dir
    n = 2 * cfg.tracks
    files = [root / f"track{i:02d}.bw" for i in range(n)]
    paths = {
        "genome": root / "genome.fa",
        "tracks": root / f"tracks{cfg.tracks}.txt",
        "tracks2x": root / f"tracks{n}.txt",
    }
    params = root / "params.json"
    cached = params.is_file() and json.loads(params.read_text()) == cfg.data_params()
    if cached and all(p.is_file() for p in [*files, *paths.values()]):
        return paths, None
    began = time.perf_counter()
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    sizes = chrom_sizes(cfg)
    write_genome(paths["genome"], sizes, cfg.seed)
    jobs = [(str(f), sizes, cfg.seed, i) for i, f in enumerate(files)]
    with Pool(min(cfg.workers, n)) as pool:
        pool.map(write_track, jobs, chunksize=1)
    write_tracks_table(paths["tracks"], files[: cfg.tracks])
    write_tracks_table(paths["tracks2x"], files)
    params.write_text(json.dumps(cfg.data_params()))
    return paths, time.perf_counter() - began


def warm_page_cache(root: Path) -> None:
    """Read every input once so no measurement pays for cold disk reads."""
    for path in (p for p in root.iterdir() if p.is_file()):
        with open(path, "rb") as handle:
            while handle.read(1 << 24):
                pass


# --------------------------------------------------------------------------- measurements
# Each runs in a fresh interpreter (``--measure``) and prints one JSON line.


def load_windows(store: Path):
    """Per split: ``Windows`` of the built store (from ``windows.bed``) in row order."""
    from gitool.data.build import Windows
    from gitool.data.windows import SPLITS

    out = {}
    for split in SPLITS:
        rows = [
            line.split("\t") for line in (store / split / "windows.bed").read_text().split("\n")
        ]
        rows = [r for r in rows if len(r) == 5]
        out[split] = Windows(
            chrom=np.array([r[0] for r in rows], dtype=object),
            start=np.array([int(r[1]) for r in rows], dtype=np.int64),
            target_start=np.array([int(r[3]) for r in rows], dtype=np.int64),
        )
    return out


def track_files(tracks_table: str) -> list[str]:
    from gitool.data.tracks import read_tracks

    return [t.file for t in read_tracks(tracks_table)]


def measure_build(spec: dict) -> dict:
    from gitool.config import BuildOptions
    from gitool.console import state
    from gitool.data.build import build_store

    state.quiet = True
    opts = BuildOptions(
        spec["genome"], spec["tracks"], out=spec["out"], workers=spec["workers"], force=True
    )
    summary = build_store(opts)
    return {"seconds": summary.seconds, "phases": summary.phases, "counts": summary.counts}


def measure_floor(spec: dict) -> dict:
    """Only ``values`` over every merged run (``_runs``), track by track, as gitool reads."""
    import pyBigWig

    from gitool.data.build import _runs
    from gitool.data.store import Store as GitoolStore

    span = GitoolStore(spec["store"]).geometry.target_span
    runs = [r for s, w in load_windows(Path(spec["store"])).items() for r in _runs(s, w, span)]
    bigwigs = [pyBigWig.open(f) for f in track_files(spec["tracks"])]
    began = time.perf_counter()
    for bw in bigwigs:
        for run in runs:
            bw.values(run.chrom, run.start, run.end, numpy=True)
    seconds = time.perf_counter() - began
    lengths = [r.end - r.start for r in runs]
    return {"seconds": seconds, "runs": len(runs), "run_bp": int(sum(lengths))}


def measure_basenji(spec: dict) -> dict:
    """Per track and window: ``values`` over the sequence window, crop, NaN → 0, pool.

    Also checks the pooled sums against the store's targets (track 0: no clip, scale 1).
    """
    import pyBigWig

    from gitool.data.store import Store as GitoolStore

    store = GitoolStore(spec["store"])
    geo = store.geometry
    windows = [
        (s, i, c, int(x))
        for s, w in load_windows(store.path).items()
        for i, (c, x) in enumerate(zip(w.chrom, w.start, strict=True))
    ]
    k = spec["sample"] or len(windows)
    picks = np.unique(np.linspace(0, len(windows) - 1, min(k, len(windows))).round().astype(int))
    sample = [windows[i] for i in picks]
    bigwigs = [pyBigWig.open(f) for f in track_files(spec["tracks"])]
    first = geo.context_left
    track0 = []
    began = time.perf_counter()
    for t, bw in enumerate(bigwigs):
        for split, row, chrom, start in sample:
            values = bw.values(chrom, start, start + geo.seq_length, numpy=True)
            crop = np.nan_to_num(values[first : first + geo.target_span])
            pooled = crop.reshape(geo.target_length, geo.bin_size).sum(axis=1).astype(np.float16)
            if t == 0:
                track0.append((split, row, pooled))
    seconds = time.perf_counter() - began
    return {
        "seconds": seconds,
        "sampled": len(sample),
        "windows": len(windows),
        "max_rel_diff": _compare(store, track0),
    }


def _compare(store, pooled: list) -> float:
    """Largest relative difference, Basenji-style pooled sums vs the store (track 0)."""
    worst = 0.0
    targets = {}
    for split, row, values in pooled:
        if split not in targets:
            targets[split] = store.targets(split)
        ours = targets[split][row, :, 0].astype(np.float32)
        theirs = values.astype(np.float32)
        worst = max(worst, float(np.max(np.abs(ours - theirs) / np.maximum(np.abs(theirs), 1))))
    return worst


MEASURES = {"build": measure_build, "floor": measure_floor, "basenji": measure_basenji}


def measure_main(spec_json: str) -> None:
    spec = json.loads(spec_json)
    baseline = _proc_status_mib("VmRSS")
    result = MEASURES[spec["kind"]](spec)
    # VmHWM, not RUSAGE_SELF: subprocess starts children with vfork/exec and Linux carries
    # the parent's peak RSS over exec into ru_maxrss. Pool workers are forked, not exec'd:
    # RUSAGE_CHILDREN gives the largest one (pages shared with this process included).
    result["rss_self_mib"] = _proc_status_mib("VmHWM")
    result["rss_children_mib"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    result["rss_baseline_mib"] = baseline
    print(json.dumps(result))


def _proc_status_mib(key: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def run_child(spec: dict) -> dict:
    command = [sys.executable, str(Path(__file__).resolve()), "--measure", json.dumps(spec)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"measurement {spec['kind']} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def plan(cfg: Config, paths: dict[str, Path]) -> dict[str, dict]:
    """Measurement name → spec, in running order (the floor/Basenji read ``w1``'s store)."""
    root = cfg.data_dir
    genome, tracks = str(paths["genome"]), str(paths["tracks"])

    def build(workers: int, table: Path, name: str) -> dict:
        return {
            "kind": "build",
            "genome": genome,
            "tracks": str(table),
            "workers": workers,
            "out": str(root / f"store-{name}"),
        }

    store = str(root / "store-w1")
    return {
        "w1": build(1, paths["tracks"], "w1"),
        "wN": build(cfg.workers, paths["tracks"], "wN"),
        "floor": {"kind": "floor", "store": store, "tracks": tracks},
        "basenji": {
            "kind": "basenji",
            "store": store,
            "tracks": tracks,
            "sample": cfg.basenji_windows,
        },
        "w1x2": build(1, paths["tracks2x"], "w1x2"),
    }


def measure_all(cfg: Config, paths: dict[str, Path]) -> dict[str, dict]:
    """Every measurement ``repeats`` times, interleaved; keep the fastest, the largest RSS."""
    specs = plan(cfg, paths)
    best: dict[str, dict] = {}
    for rep in range(cfg.repeats):
        for name, spec in specs.items():
            if spec["kind"] == "build":
                shutil.rmtree(spec["out"], ignore_errors=True)  # not timed
            print(f"  [{rep + 1}/{cfg.repeats}] {name} ...", file=sys.stderr, flush=True)
            result = run_child(spec)
            best[name] = _keep_best(best.get(name), result)
    return best


def _keep_best(old: dict | None, new: dict) -> dict:
    if old is None:
        return new
    keep = dict(new if new["seconds"] < old["seconds"] else old)
    for key in ("rss_self_mib", "rss_children_mib"):
        keep[key] = max(old[key], new[key])
    return keep


# --------------------------------------------------------------------------- report


def machine() -> str:
    import pyBigWig

    import gitool

    versions = (
        f"Python {platform.python_version()}, numpy {np.__version__}, pyBigWig "
        f"{_version('pyBigWig')} (numpy={pyBigWig.numpy}), gitool {gitool.__version__}"
    )
    return f"{cpu_description()}; {versions}"


def _version(package: str) -> str:
    from importlib.metadata import version

    return version(package)


Row = tuple[str, str, str, str]  # label, value, target, PASS/FAIL/info


def ratio_row(label: str, x: float, op: str, limit: float) -> Row:
    ok = x >= limit if op == ">=" else x <= limit
    return (label, f"{x:.2f}x", f"{op} {limit:.2f}x", "PASS" if ok else "FAIL")


def build_rows(cfg: Config, w1: dict, wn: dict) -> list[Row]:
    n_win = sum(w1["counts"].values())
    cov1 = w1["phases"]["coverage"]
    overlapped = wn["phases"]["genome"] + wn["phases"]["coverage"]
    names = ("checks", "genome", "coverage", "finish")
    phases = " / ".join(f"{w1['phases'][p]:.2f}" for p in names)
    want = SPEEDUP_TARGET * cfg.workers
    return [
        (f"gitool build, workers=1, {cfg.tracks} tracks", f"{w1['seconds']:.2f} s", "", ""),
        ("  phases checks / genome / coverage / finish", f"{phases} s", "", ""),
        ("  windows/s: total | coverage phase", f"{n_win / w1['seconds']:,.0f} | "
         f"{n_win / cov1:,.0f}", "", ""),
        (f"gitool build, workers={cfg.workers}, {cfg.tracks} tracks", f"{wn['seconds']:.2f} s",
         "", ""),
        ("  genome + coverage (overlapped)", f"{overlapped:.2f} s", "", ""),
        ratio_row("  speed-up over workers=1, total", w1["seconds"] / wn["seconds"], ">=", want),
    ]  # fmt: skip


def reader_rows(cfg: Config, w1: dict, floor: dict, bas: dict) -> list[Row]:
    cov1 = w1["phases"]["coverage"]
    bas_s = bas["seconds"] * bas["windows"] / bas["sampled"]
    sampled = bas["sampled"] < bas["windows"]
    note = f" (extrapolated from {bas['sampled']:,} windows)" if sampled else ""
    diff = bas["max_rel_diff"]
    return [
        (f"read floor: values() on {floor['runs']} runs x {cfg.tracks} tracks",
         f"{floor['seconds']:.2f} s", "", ""),
        ratio_row("  gitool coverage phase (w=1) / floor", cov1 / floor["seconds"], "<=",
                  COVERAGE_TARGET),
        ("  gitool total (w=1) / floor", f"{w1['seconds'] / floor['seconds']:.2f}x", "", "info"),
        (f"Basenji-style reader{note}", f"{bas_s:.2f} s", "", ""),
        ("  Basenji-style / floor", f"{bas_s / floor['seconds']:.2f}x", "~5x", "info"),
        ("  Basenji-style / gitool coverage phase (w=1)", f"{bas_s / cov1:.2f}x", "", "info"),
        ("  store vs Basenji-style sums, track 0, max rel diff", f"{diff:.1e}", "<= 1e-2",
         "PASS" if diff <= 1e-2 else "FAIL"),
    ]  # fmt: skip


def memory_rows(cfg: Config, w1: dict, wn: dict, w2: dict, floor: dict, bas: dict) -> list[Row]:
    t = cfg.tracks
    mib = "{:.0f} MiB".format
    return [
        ("peak RSS, main process", "", "", ""),
        ("  at start (Python + numpy, workers=1 build)", mib(w1["rss_baseline_mib"]), "", ""),
        (f"  workers=1, {t} tracks", mib(w1["rss_self_mib"]), "", ""),
        (f"  workers=1, {2 * t} tracks ({w2['seconds']:.2f} s)", mib(w2["rss_self_mib"]), "", ""),
        ratio_row(f"  {2 * t} tracks / {t} tracks", w2["rss_self_mib"] / w1["rss_self_mib"],
                  "<=", MEMORY_TARGET),
        (f"  workers={cfg.workers}: main | largest worker", f"{mib(wn['rss_self_mib'])} | "
         f"{mib(wn['rss_children_mib'])}", "", ""),
        ("  read floor | Basenji-style", f"{mib(floor['rss_self_mib'])} | "
         f"{mib(bas['rss_self_mib'])}", "", ""),
    ]  # fmt: skip


def print_report(cfg: Config, results: dict[str, dict], generation: float | None) -> None:
    w1, floor = results["w1"], results["floor"]
    counts = ", ".join(f"{s} {n:,}" for s, n in w1["counts"].items())
    sizes = chrom_sizes(cfg)
    gen = "reused from cache" if generation is None else f"{generation:.1f} s"
    header = [
        "gitool build-dataset benchmark",
        f"machine:    {machine()}",
        f"data:       {sum(sizes.values()) / 1e6:g} Mb genome ({N_CHROMS} chromosomes, N gaps), "
        f"{cfg.tracks} tracks ({2 * cfg.tracks} for memory), {cfg.data_dir}",
        f"windows:    {sum(w1['counts'].values()):,} ({counts}); 17,712 bp, 80 x 128-bp targets, "
        f"stride 10,240; {floor['runs']} merged runs, {floor['run_bp'] / 1e6:.1f} Mbp",
        f"generation: {gen}",
        f"timing:     best of {cfg.repeats} fresh subprocess(es) per measurement; coverage "
        f"target judged on the coverage phase",
    ]
    r = results
    rows = (
        build_rows(cfg, r["w1"], r["wN"])
        + reader_rows(cfg, r["w1"], r["floor"], r["basenji"])
        + memory_rows(cfg, r["w1"], r["wN"], r["w1x2"], r["floor"], r["basenji"])
    )
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
        measure_main(args.measure)
        return
    cfg = config_from(args)
    print(f"preparing data in {cfg.data_dir} ...", file=sys.stderr, flush=True)
    paths, generation = prepare_data(cfg)
    if generation is not None:
        print(f"generated in {generation:.1f} s", file=sys.stderr, flush=True)
    warm_page_cache(cfg.data_dir)
    results = measure_all(cfg, paths)
    print_report(cfg, results, generation)


if __name__ == "__main__":
    main()
