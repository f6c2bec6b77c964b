"""Import the Basenji/Enformer data release into a gitool store (``gitool import-basenji``).

A release folder (``basenji_barnyard/data/human``, ``.../mouse``) holds::

    statistics.json   seq_length, pool_width, target_length, num_targets, crop_bp,
                      train_seqs / valid_seqs / test_seqs
    sequences.bed     chrom, start, end, split: one line per record, in record order
    targets.txt       the tracks table (index, genome, identifier, file, clip, scale,
                      sum_stat, description; newer releases add clip_soft, strand_pair)
    tfrecords/        {split}-{N}.tfr, ZLIB-compressed TFRecord files

Each record (a ``tf.train.Example``) holds a ``seq_length`` sequence (one-hot bytes, L × 4,
or base indices, L bytes) and float16 targets ``(target_length, num_targets)`` for the
central ``seq_length - 2 * crop_bp`` bases. The import crops every record around its
centre to the store's geometry (the defaults: the central 17,712 bp and the central 80 bins,
bins 408-487 of 896, the sequence window starting 56,680 bp into the 131,072-bp record:
the Genomic Interpreter paper's BasenjiSmall) and writes a normal store whose windows.bed
holds the genome coordinates of ``sequences.bed``.

Files are read one record at a time (memory per worker: one record), several files at once
with ``workers``. Each finished file is kept in a hidden folder beside the output until the
store is complete, so an interrupted import continues file by file (``resume``).

The targets are stored as the release holds them: Basenji already pooled, clipped and
scaled them, so ``gitool predict --untransform`` refuses these stores.
"""

from __future__ import annotations

import dataclasses
import json
import multiprocessing
import os
import re
import shutil
import signal
import socket
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gitool import __version__
from gitool.config.import_basenji import IMPORT_RUNTIME_ONLY, ORGANISMS, ImportBasenjiOptions
from gitool.console import info, progress
from gitool.data.npy import npy_header
from gitool.data.store import FORMAT_NAME, STORE_FORMAT, is_coverage_store, write_manifest
from gitool.data.store import LAYOUT as STORE_LAYOUT
from gitool.data.tfrecord import COMPRESSIONS, RecordReader, parse_example
from gitool.data.tracks import read_tracks, store_rows, write_tracks_table
from gitool.data.windows import SPLITS, Geometry
from gitool.errors import InputError, RunFailure, naming_a_full_disk, opt
from gitool.files import Outputs, process_alive, staged_folder
from gitool.machine import cpu_count

SOURCE_FORMAT = "basenji-release"
TRANSFORM = "basenji-release"  # the store's transform version: values as the release has them
_FILE_NAME = re.compile(r"^(train|valid|test)-(\d+)\.tfr$")
_STAGE_FORMAT = 1


# --------------------------------------------------------------------------- the release


@dataclass(frozen=True)
class Crop:
    """Where the store's window lies in a release record (bp and bins from its start)."""

    record_length: int  # bp of sequence per record
    record_bins: int  # target bins per record
    pool_width: int
    crop_bp: int  # bp before the first target bin
    seq_length: int
    target_length: int
    seq_offset: int  # first base of the store's window in the record
    bin_offset: int  # first target bin of the store's window in the record

    @property
    def geometry(self) -> Geometry:
        return Geometry(self.seq_length, self.pool_width, self.target_length)


def plan_crop(statistics: dict, seq_length: int, target_length: int) -> Crop:
    """The centred crop of a record with ``statistics`` to ``seq_length`` bp and
    ``target_length`` bins, the store's target bins lying exactly on record bins.

    Raises:
        InputError: the crop does not fit in a record or falls between bins.
    """
    length, pool = statistics["seq_length"], statistics["pool_width"]
    bins, crop_bp = statistics["target_length"], statistics["crop_bp"]
    geometry = Geometry(seq_length, pool, target_length)
    geometry.check()
    if seq_length > length:
        raise InputError(
            f"{seq_length:,} bp is longer than the release's records ({length:,} bp); "
            f"give at most {length:,}",
            field="seq_length",
        )
    if target_length > bins:
        raise InputError(
            f"{target_length} bins is more than the release's records hold ({bins}); give at "
            f"most {bins}",
            field="target_length",
        )
    if (length - seq_length) % 2:
        raise InputError(
            f"{seq_length:,} bp cannot be centred in the release's {length:,}-bp records "
            "(the difference is odd); give a length that differs from it by an even number",
            field="seq_length",
        )
    seq_offset = (length - seq_length) // 2
    first = seq_offset + geometry.context_left - crop_bp  # bp into the record's target span
    if first % pool or first < 0 or first // pool + target_length > bins:
        raise InputError(
            f"{seq_length:,} bp with {opt('target_length')} {target_length} puts the target "
            f"bins between the release's {pool}-bp bins; centred bins need a "
            f"{opt('target_length')} as even or odd as the release's {bins} (e.g. the "
            "defaults 17,712 and 80)",
            field="seq_length",
        )
    return Crop(length, bins, pool, crop_bp, seq_length, target_length, seq_offset, first // pool)


@dataclass
class Release:
    """A release folder read and checked (everything but the records)."""

    folder: Path
    organism: str | None
    statistics: dict
    tracks: list  # gitool.data.tracks.Track
    windows: dict  # split -> pandas DataFrame (chrom, start, end) in record order
    files: dict[str, list[Path]]  # split -> TFRecord files in record order

    @property
    def n_tracks(self) -> int:
        return int(self.statistics["num_targets"])

    def count(self, split: str) -> int:
        return int(self.statistics[f"{split}_seqs"])


def find_release(path: str | Path, organism: str | None) -> tuple[Path, str | None]:
    """The release folder to import: ``path`` itself when it holds ``statistics.json``, or
    its ``human``/``mouse`` subfolder (``organism`` picks one when it holds both).

    Raises:
        InputError: no release there, or the organism is ambiguous or missing.
    """
    path = Path(path)
    if organism is not None and organism not in ORGANISMS:
        raise InputError(
            f"{organism!r} is unknown; choose from {', '.join(ORGANISMS)}", field="genome"
        )
    if not path.is_dir():
        raise InputError(
            f"{path} is not a folder; give the release's data folder (the one holding "
            "statistics.json, sequences.bed, targets.txt and tfrecords/)",
            field="source",
        )
    if (path / "statistics.json").is_file():
        named = path.name if path.name in ORGANISMS else None
        if organism is not None and named is not None and named != organism:
            raise InputError(
                f"{organism} was asked for, but {path} is the {named} release; give the "
                f"{organism} folder",
                field="genome",
            )
        return path, organism or named
    found = [o for o in ORGANISMS if (path / o / "statistics.json").is_file()]
    if not found:
        raise InputError(
            f"{path} holds no statistics.json (nor human/ or mouse/ folders with one); give "
            "the release's data folder, e.g. basenji_barnyard/data/human",
            field="source",
        )
    if organism is None:
        if len(found) > 1:
            raise InputError(
                f"{path} holds the {' and '.join(found)} releases; choose one with "
                f"{opt('genome')} {'|'.join(found)} (import each into its own store)",
                field="source",
            )
        info(f"importing the {found[0]} release (the only one in {path})")
        organism = found[0]
    elif organism not in found:
        raise InputError(
            f"{organism} was asked for, but {path} holds only {', '.join(found)}",
            field="genome",
        )
    return path / organism, organism


def read_statistics(path: Path) -> dict:
    """``statistics.json`` with the keys the import needs, as integers; ``crop_bp``
    defaults to centring the target span in the record.

    Raises:
        InputError: naming the file and the missing or bad key.
    """
    try:
        raw = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise InputError(f"{path} is not readable JSON ({err}); download it again") from None
    if not isinstance(raw, dict):
        raise InputError(f"{path} is not a JSON object; download it again")
    stats = dict(raw)
    keys = ["seq_length", "pool_width", "target_length", "num_targets"]
    keys += [f"{s}_seqs" for s in SPLITS]
    for key in keys:
        value = raw.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise InputError(f"{path}: {key!r} must be a whole number, got {value!r}")
        stats[key] = value
    for key in ("seq_length", "pool_width", "target_length", "num_targets"):
        if stats[key] == 0:
            raise InputError(f"{path}: {key!r} is 0")
    span = stats["target_length"] * stats["pool_width"]
    crop_bp = raw.get("crop_bp", (stats["seq_length"] - span) // 2)
    if isinstance(crop_bp, bool) or not isinstance(crop_bp, int):
        raise InputError(f"{path}: 'crop_bp' must be a whole number, got {crop_bp!r}")
    if crop_bp < 0 or crop_bp + span > stats["seq_length"]:
        raise InputError(
            f"{path}: target_length {stats['target_length']} × pool_width "
            f"{stats['pool_width']} from crop_bp {crop_bp} does not fit in seq_length "
            f"{stats['seq_length']}"
        )
    stats["crop_bp"] = crop_bp
    return stats


def read_sequences_bed(path: Path, statistics: dict) -> dict:
    """``sequences.bed``'s windows per split, in record order, checked against the counts
    and the record length of ``statistics.json``.

    Raises:
        InputError: naming the file and line, or the split whose count differs.
    """
    import pandas as pd  # lazy: pandas

    try:
        table = pd.read_csv(
            path, sep="\t", header=None, comment="#", dtype={0: str}, keep_default_na=False
        )
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise InputError(f"{path} is not a readable BED file ({err})") from None
    if table.shape[1] < 4:
        raise InputError(
            f"{path}: {table.shape[1]} columns; the release's sequences.bed has chrom, start, "
            "end and split"
        )
    table = table.iloc[:, :4]
    table.columns = ["chrom", "start", "end", "split"]
    # each row's line in the file (comment and blank lines are skipped above)
    with open(path, encoding="utf-8", errors="replace") as handle:
        numbers = [n for n, line in enumerate(handle, 1) if line.strip() and line[0] != "#"]
    if len(numbers) != len(table):
        numbers = list(range(1, len(table) + 1))
    for column in ("start", "end"):
        values = pd.to_numeric(table[column], errors="coerce")
        bad = np.flatnonzero(values.isna().to_numpy() | (values < 0).to_numpy())
        if len(bad):
            raise InputError(
                f"{path} line {numbers[bad[0]]}: {column} {table[column].iloc[bad[0]]!r} is not a "
                "position"
            )
        table[column] = values.astype(np.int64)
    unknown = np.flatnonzero(~table["split"].isin(SPLITS).to_numpy())
    if len(unknown):
        raise InputError(
            f"{path} line {numbers[unknown[0]]}: split {table['split'].iloc[unknown[0]]!r} is not "
            f"one of {', '.join(SPLITS)}"
        )
    lengths = (table["end"] - table["start"]).to_numpy()
    wrong = np.flatnonzero(lengths != statistics["seq_length"])
    if len(wrong):
        raise InputError(
            f"{path} line {numbers[wrong[0]]}: the window is {lengths[wrong[0]]:,} bp, but "
            f"statistics.json's records are {statistics['seq_length']:,} bp"
        )
    windows = {}
    for split in SPLITS:
        rows = table[table["split"] == split].reset_index(drop=True)
        expected = statistics[f"{split}_seqs"]
        if len(rows) != expected:
            raise InputError(
                f"{path} lists {len(rows):,} {split} windows, but statistics.json says "
                f"{expected:,}; are they from the same release?"
            )
        windows[split] = rows[["chrom", "start", "end"]]
    return windows


def release_files(folder: Path, statistics: dict) -> dict[str, list[Path]]:
    """Each split's ``tfrecords/{split}-N.tfr`` files in record order (by N).

    Raises:
        InputError: a split with sequences has no files, or a number is missing.
    """
    tfrecords = folder / "tfrecords"
    if not tfrecords.is_dir():
        raise InputError(f"{folder} has no tfrecords/ folder; download it with the release")
    numbered: dict[str, dict[int, Path]] = {s: {} for s in SPLITS}
    for path in tfrecords.iterdir():
        match = _FILE_NAME.match(path.name)
        if match:
            numbered[match.group(1)][int(match.group(2))] = path
    files = {}
    for split in SPLITS:
        numbers = sorted(numbered[split])
        if statistics[f"{split}_seqs"] and not numbers:
            raise InputError(f"{tfrecords} has no {split}-N.tfr files; download them")
        missing = sorted(set(range(len(numbers))) - set(numbers))
        if missing:
            raise InputError(
                f"{tfrecords}: {split}-{missing[0]}.tfr is missing (the files are numbered "
                f"from 0 to {numbers[-1]}); download it"
            )
        files[split] = [numbered[split][n] for n in numbers]
    return files


def read_release(folder: Path, organism: str | None) -> Release:
    """Everything of a release folder except the records, checked against each other."""
    statistics = read_statistics(folder / "statistics.json")
    for name in ("sequences.bed", "targets.txt"):
        if not (folder / name).is_file():
            raise InputError(f"{folder} has no {name}; download it with the release")
    tracks = read_tracks(folder / "targets.txt", check_files=False)
    if len(tracks) != statistics["num_targets"]:
        raise InputError(
            f"{folder / 'targets.txt'} lists {len(tracks):,} tracks, but statistics.json "
            f"says num_targets {statistics['num_targets']:,}; are they from the same release?"
        )
    windows = read_sequences_bed(folder / "sequences.bed", statistics)
    files = release_files(folder, statistics)
    return Release(folder, organism, statistics, tracks, windows, files)


# --------------------------------------------------------------------------- one record


def decode_record(payload: bytes, crop: Crop, n_tracks: int) -> tuple[np.ndarray, np.ndarray]:
    """One record's cropped sequence (uint8 codes A0 C1 G2 T3 N4) and targets (float16
    ``(target_length, n_tracks)``).

    Raises:
        ValueError: a missing feature or a size that disagrees with ``crop``/``n_tracks``
        (the message says which; the caller names the file and record).
    """
    features = parse_example(payload)
    sequence = features.get("sequence")
    target = features.get("target", features.get("targets"))
    if not isinstance(sequence, bytes):
        raise ValueError("has no bytes feature 'sequence'")
    if not isinstance(target, bytes):
        raise ValueError("has no bytes feature 'target' (or 'targets')")
    length, start, stop = crop.record_length, crop.seq_offset, crop.seq_offset + crop.seq_length
    if len(sequence) == 4 * length:  # one-hot, one byte per base and channel
        onehot = np.frombuffer(sequence, np.uint8).reshape(length, 4)[start:stop]
        hot = onehot.sum(axis=1, dtype=np.int64)
        if onehot.max() > 1 or hot.max() > 1:
            raise ValueError("has a 'sequence' that is not one-hot (a base with several 1s)")
        codes = np.where(hot == 1, onehot.argmax(axis=1), 4).astype(np.uint8)
    elif len(sequence) == length:  # base indices
        codes = np.frombuffer(sequence, np.uint8)[start:stop].copy()
        if codes.max() > 4:
            raise ValueError(f"has a base index {int(codes.max())} in 'sequence' (0-4 allowed)")
    else:
        raise ValueError(
            f"has a 'sequence' of {len(sequence):,} bytes, but statistics.json's seq_length "
            f"{length:,} needs {4 * length:,} (one-hot) or {length:,} (base indices)"
        )
    expected = crop.record_bins * n_tracks * 2
    if len(target) != expected:
        raise ValueError(
            f"has a 'target' of {len(target):,} bytes, but statistics.json's target_length "
            f"{crop.record_bins} × num_targets {n_tracks:,} float16 values are {expected:,}"
        )
    values = np.frombuffer(target, "<f2").reshape(crop.record_bins, n_tracks)
    values = values[crop.bin_offset : crop.bin_offset + crop.target_length]
    if not np.isfinite(values).all():
        raise ValueError("has targets that are not finite (inf or NaN)")
    return codes, values


def _check_first_record(release: Release, crop: Crop, compression: str) -> None:
    """Decode the first record before any output is made, so that a release whose
    statistics.json disagrees with its records fails at once, naming that record."""
    path = next(iter(release.files["train"] or release.files["valid"] or release.files["test"]))
    with RecordReader(path, compression) as reader:
        for payload in reader:
            try:
                decode_record(payload, crop, release.n_tracks)
            except ValueError as err:
                raise InputError(
                    f"{path}: record 1 {err}; is statistics.json from the same release?"
                ) from None
            return


# --------------------------------------------------------------------------- one file


@dataclass(frozen=True)
class _FileJob:
    path: Path
    split: str
    number: int
    parts: Path
    crop: Crop
    n_tracks: int
    compression: str

    @property
    def stem(self) -> str:
        return f"{self.split}-{self.number}"


def _fingerprint(path: Path) -> list[int]:
    stat = path.stat()
    return [stat.st_size, stat.st_mtime_ns]


def _import_file(job: _FileJob, report: Callable[[int, int], None]) -> dict:
    """Crop every record of one file into ``{stem}.seq`` / ``{stem}.tgt`` (raw uint8 and
    float16 rows) beside a ``{stem}.json`` written last (records, per-track sums and maxima).
    ``report(records, compressed bytes)`` is called as records are read."""
    seq_tmp = job.parts / f"{job.stem}.seq.tmp"
    tgt_tmp = job.parts / f"{job.stem}.tgt.tmp"
    total = np.zeros(job.n_tracks, np.float64)
    peak = np.full(job.n_tracks, -np.inf)
    done_bytes = 0
    with (
        RecordReader(job.path, job.compression) as reader,
        open(seq_tmp, "wb") as seq_out,
        open(tgt_tmp, "wb") as tgt_out,
    ):
        for payload in reader:
            try:
                codes, values = decode_record(payload, job.crop, job.n_tracks)
            except ValueError as err:
                raise InputError(
                    f"{job.path}: record {reader.records} {err}; is statistics.json from the "
                    "same release?"
                ) from None
            seq_out.write(codes.data)
            tgt_out.write(np.ascontiguousarray(values).data)
            total += values.sum(axis=0, dtype=np.float64)
            np.maximum(peak, values.max(axis=0), out=peak)
            report(1, reader.compressed_bytes - done_bytes)
            done_bytes = reader.compressed_bytes
        records = reader.records
    os.replace(seq_tmp, job.parts / f"{job.stem}.seq")
    os.replace(tgt_tmp, job.parts / f"{job.stem}.tgt")
    summary = {
        "records": records,
        "source": _fingerprint(job.path),
        "sum": total.tolist(),
        "max": peak.tolist() if records else [0.0] * job.n_tracks,
    }
    marker = job.parts / f"{job.stem}.json"
    marker.with_suffix(".json.tmp").write_text(json.dumps(summary))
    os.replace(marker.with_suffix(".json.tmp"), marker)
    return summary


_counters = None  # in a worker: (records, bytes) read per job, shared with the parent


def _init_worker(counters) -> None:
    global _counters
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _counters = counters


def _work(index: int, job: _FileJob) -> tuple[str, dict]:
    slot = 2 * index

    def advance(records: int, nbytes: int) -> None:
        # One writer per slot and no lock: a worker that dies leaves nothing held.
        _counters[slot] += records  # type: ignore[index]
        _counters[slot + 1] += nbytes  # type: ignore[index]

    return job.stem, _import_file(job, advance)


class _Workers:
    """The processes that import files (none for one worker: the files are imported in this
    process). Started before any progress bar's thread, so no thread is forked. A worker
    that dies (out of memory, killed) stops the import with a message instead of leaving
    it waiting for the file that worker had."""

    def __init__(self, workers: int, n_jobs: int):
        self.pool = self.counters = None
        if workers > 1:
            context = multiprocessing.get_context("fork" if os.name == "posix" else "spawn")
            self.counters = context.RawArray("q", 2 * n_jobs)
            self.pool = ProcessPoolExecutor(
                workers, context, initializer=_init_worker, initargs=(self.counters,)
            )
            # The first task forks every worker (a forking executor starts them all then):
            # now, before the progress bar's thread exists.
            self.pool.submit(int).result()

    def run(self, jobs: list[_FileJob], advance: Callable[[int, int], None]) -> dict:
        """Import ``jobs``; returns stem -> file summary. ``advance(records, bytes)``."""
        done: dict[str, dict] = {}
        if self.pool is None:
            for job in jobs:
                done[job.stem] = _import_file(job, advance)
            return done
        futures = {self.pool.submit(_work, i, job): job for i, job in enumerate(jobs)}
        pending, reported = set(futures), np.zeros(2, np.int64)
        counts = np.frombuffer(self.counters, np.int64).reshape(-1, 2)  # type: ignore[arg-type]
        try:
            while pending:
                finished, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
                for future in finished:
                    stem, summary = future.result()
                    done[stem] = summary
                now = counts.sum(0)
                if (now > reported).any():
                    advance(*(int(v) for v in now - reported))
                    reported = now
        except BrokenProcessPool:
            raise RunFailure(
                "a process importing the release died (out of memory, or killed); the files "
                f"finished so far are kept: rerun with {opt('resume')} and fewer "
                f"{opt('workers')}"
            ) from None
        return done

    def __enter__(self) -> _Workers:
        return self

    def __exit__(self, kind, *exc) -> None:
        if self.pool is None:
            return
        if kind is not None:  # interrupted or failed: stop the files being read at once
            stop = getattr(self.pool, "terminate_workers", None)  # Python >= 3.14
            if stop is not None:
                stop()
            else:
                for process in list(self.pool._processes.values()):  # noqa: SLF001
                    process.terminate()
        self.pool.shutdown(wait=True, cancel_futures=True)


# --------------------------------------------------------------------------- the stage


def stage_path(out: Path) -> Path:
    """The hidden folder beside ``out`` that keeps finished files until the store is done."""
    return out.parent / f".{out.name}.import"


def _stage_identity(release: Release, crop: Crop, opts: ImportBasenjiOptions) -> dict:
    """What a resumed import must share with the interrupted one. The files are not part of
    it: each finished file records its own size and time, and a file that changed since (a
    damaged file downloaded again) is imported again."""
    options = {k: v for k, v in dataclasses.asdict(opts).items() if k not in IMPORT_RUNTIME_ONLY}
    options["source"] = str(release.folder.resolve())
    return {
        "format": _STAGE_FORMAT,
        "options": options,
        "statistics": release.statistics,
        "crop": dataclasses.asdict(crop),
    }


def _open_stage(stage: Path, identity: dict, resume: bool) -> dict[str, dict]:
    """Create the stage, or reopen an interrupted one with ``resume``; returns the
    summaries of the files it has finished.

    Raises:
        InputError: a stage exists without ``resume``, is in use, or holds another import.
    """
    owner = stage / "owner"
    out = stage.with_name(stage.name[1:].removesuffix(".import"))  # (:func:`stage_path`)
    me = f"{socket.gethostname()} {os.getpid()}"
    if stage.exists():
        try:
            host, pid = owner.read_text().split()
        except (OSError, ValueError):
            host, pid = "", "0"
        # a process of another machine (a cluster's shared disk) cannot be checked: a stage
        # it left is taken as interrupted
        if (
            host == socket.gethostname()
            and pid.isdigit()
            and int(pid) != os.getpid()
            and process_alive(int(pid))
        ):
            raise InputError(
                f"{out}: its import folder {stage} is being written by another import "
                f"(process {pid}); wait for it or choose another output folder",
                field="out",
            )
        finished = sorted(stage.glob("parts/*.json"))
        if not resume:
            raise InputError(
                f"{out}: its import folder {stage} holds an interrupted import "
                f"({len(finished)} files finished); continue it with {opt('resume')}, or "
                "delete that folder to start over",
                field="out",
            )
        try:
            recorded = json.loads((stage / "import.json").read_text())
        except (OSError, ValueError):
            recorded = None
        if recorded != identity:
            changed = _difference(recorded, identity)
            raise InputError(
                f"{stage} holds an import of another release or with other options "
                f"({changed}); delete that folder to start over",
                field="resume",
            )
    else:
        (stage / "parts").mkdir(parents=True)
        (stage / "import.json").write_text(json.dumps(identity))
    owner.write_text(me)
    for leftover in (stage / "parts").glob("*.tmp"):
        leftover.unlink()
    done = {}
    for marker in (stage / "parts").glob("*.json"):
        done[marker.stem] = json.loads(marker.read_text())
    return done


def _difference(recorded: dict | None, identity: dict) -> str:
    if not isinstance(recorded, dict):
        return "its import.json is unreadable"
    for key in ("options", "statistics", "crop"):
        old, new = recorded.get(key), identity[key]
        if old != new:
            if isinstance(new, dict) and isinstance(old, dict):
                name = next(k for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k))
                return f"{key} {name!r} differs"
            return f"{key} differ"
    return "unknown difference"


# --------------------------------------------------------------------------- the store


@dataclass
class ImportSummary:
    """What an import wrote."""

    out: Path
    counts: dict[str, int]
    n_tracks: int
    files: int
    files_resumed: int
    compressed_bytes: int
    seconds: float


def import_release(opts: ImportBasenjiOptions) -> ImportSummary:
    """Import a Basenji/Enformer release folder into a store (``gitool import-basenji``).

    Raises:
        InputError: a bad release (named file, record or line) or option; nothing is
        written (a hidden folder of finished files is kept only when the import was
        interrupted, or with ``resume``).
    """
    began = time.perf_counter()
    if opts.compression not in COMPRESSIONS:
        raise InputError(
            f"{opts.compression!r} is unknown; choose from {', '.join(COMPRESSIONS)}",
            field="compression",
        )
    folder, organism = find_release(opts.source, opts.genome)
    release = read_release(folder, organism)
    crop = plan_crop(release.statistics, opts.seq_length, opts.target_length)
    _check_first_record(release, crop, opts.compression)
    outputs = Outputs(opts.force, inputs=[folder])
    out = outputs.folder(
        opts.out, is_coverage_store, "a coverage store from gitool", field="out",
        layout=STORE_LAYOUT,
    )  # fmt: skip
    stage = stage_path(out)
    identity = _stage_identity(release, crop, opts)
    done = _open_stage(stage, identity, opts.resume)
    finished = False
    try:
        with naming_a_full_disk(out):
            summaries, resumed, read_bytes = _import_files(release, crop, stage, done, opts)
            counts = _check_counts(release, summaries)
            _write_store(release, crop, stage, summaries, out, opts)
        finished = True
    except InputError:
        if not opts.resume:
            shutil.rmtree(stage, ignore_errors=True)
        raise
    except BaseException:
        info(
            f"stopped: {len(list((stage / 'parts').glob('*.json')))} finished files are "
            f"kept in {stage}; continue with `gitool import-basenji ... --resume`"
        )
        raise
    finally:
        if finished:
            shutil.rmtree(stage, ignore_errors=True)
    n_files = sum(len(f) for f in release.files.values())
    return ImportSummary(
        out, counts, release.n_tracks, n_files, resumed, read_bytes,
        time.perf_counter() - began,
    )  # fmt: skip


def _import_files(release: Release, crop: Crop, stage: Path, done: dict, opts):
    """Import every file not yet finished (or changed since it was); returns stem ->
    summary for all files, how many were kept from before, and the compressed bytes read
    now."""
    jobs, kept = [], {}
    for split in SPLITS:
        for number, path in enumerate(release.files[split]):
            job = _FileJob(path, split, number, stage / "parts", crop, release.n_tracks,
                           opts.compression)  # fmt: skip
            summary = done.get(job.stem)
            if summary is not None and summary["source"] == _fingerprint(path):
                kept[job.stem] = summary
            else:
                jobs.append(job)
    if kept:
        info(f"resuming: {len(kept):,} files already imported, {len(jobs):,} to go")
    workers = max(1, min(opts.workers or cpu_count(), len(jobs)))
    total_records = sum(release.count(s) for s in SPLITS) - sum(s["records"] for s in kept.values())
    read = [0]
    label = f"importing {len(jobs):,} files" + (f" ({workers} workers)" if workers > 1 else "")
    with _Workers(workers, len(jobs)) as pool, progress(label, max(total_records, 0)) as bar:

        def advance(records: int, nbytes: int) -> None:
            read[0] += nbytes
            bar(records, description=f"{label}, {read[0] / 1e9:,.2f} GB read")

        summaries = pool.run(jobs, advance)
    return {**kept, **summaries}, len(kept), read[0]


def _check_counts(release: Release, summaries: dict) -> dict[str, int]:
    counts = {}
    for split in SPLITS:
        n = sum(summaries[f"{split}-{i}"]["records"] for i in range(len(release.files[split])))
        if n != release.count(split):
            raise InputError(
                f"{release.folder / 'tfrecords'}: the {split} files hold {n:,} records, but "
                f"statistics.json and sequences.bed say {release.count(split):,}; download "
                "the missing files"
            )
        counts[split] = n
    return counts


def _write_store(release, crop: Crop, stage: Path, summaries: dict, out: Path, opts):
    """Concatenate the finished files into the store's arrays and write its tables."""
    geometry = crop.geometry
    n_tracks = release.n_tracks
    row_bytes = crop.seq_length + crop.target_length * n_tracks * 2
    total = sum(release.count(s) for s in SPLITS) * row_bytes
    with staged_folder(out) as tmp, progress("writing the store", total) as bar:
        stats = {}
        for split in SPLITS:
            (tmp / split).mkdir()
            stems = [f"{split}-{i}" for i in range(len(release.files[split]))]
            n = release.count(split)
            for suffix, name, dtype, row in (
                ("seq", "sequences.npy", np.uint8, (crop.seq_length,)),
                ("tgt", "targets.npy", np.float16, (crop.target_length, n_tracks)),
            ):
                with open(tmp / split / name, "wb") as target:
                    target.write(npy_header(np.dtype(dtype), (n, *row)))
                    for stem in stems:
                        part = stage / "parts" / f"{stem}.{suffix}"
                        bar(_append(part, target))
            stats[split] = _split_stats(summaries, stems, n * crop.target_length)
            _write_windows(tmp / split / "windows.bed", release.windows[split], crop)
        rows = store_rows(release.tracks)
        write_tracks_table(tmp / "tracks.tsv", rows)
        manifest = _manifest(release, crop, geometry, rows, stats, opts)
        write_manifest(manifest, tmp / "manifest.yaml")  # last: marks the store complete


def _append(part: Path, target) -> int:
    """Copy ``part`` to the end of the open file ``target`` (in the kernel when it can)."""
    size = part.stat().st_size
    target.flush()
    start = target.seek(0, os.SEEK_END)
    with open(part, "rb") as source:
        copied = 0
        if hasattr(os, "copy_file_range"):
            try:
                while copied < size:
                    n = os.copy_file_range(source.fileno(), target.fileno(), size - copied)
                    if n == 0:
                        break
                    copied += n
            except OSError:  # the kernel refused part-way: go on from what it copied
                target.truncate(start + copied)
                target.seek(start + copied)
        if copied < size:
            source.seek(copied)
            shutil.copyfileobj(source, target, 1 << 24)
    target.seek(0, os.SEEK_END)
    return size


def _split_stats(summaries: dict, stems: list[str], values: int) -> dict:
    if not stems:
        return {"mean": [], "max": []}
    total = np.sum([summaries[s]["sum"] for s in stems], axis=0)
    peak = np.max([summaries[s]["max"] for s in stems], axis=0)
    if not values:
        return {"mean": [0.0] * len(total), "max": [0.0] * len(total)}
    return {
        "mean": [round(float(x), 6) for x in total / values],
        "max": [round(float(x), 6) for x in peak],
    }


def _write_windows(path: Path, windows, crop: Crop) -> None:
    """The store's windows.bed: each record's cropped window and target span, in the
    genome coordinates of sequences.bed."""
    start = windows["start"].to_numpy() + crop.seq_offset
    target = windows["start"].to_numpy() + crop.crop_bp + crop.bin_offset * crop.pool_width
    span = crop.target_length * crop.pool_width
    with open(path, "w") as handle:
        for chrom, s, t in zip(windows["chrom"], start, target, strict=True):
            handle.write(f"{chrom}\t{s}\t{s + crop.seq_length}\t{t}\t{t + span}\n")


def _manifest(release: Release, crop: Crop, geometry: Geometry, rows, stats, opts) -> dict:
    options = {k: v for k, v in dataclasses.asdict(opts).items() if k not in IMPORT_RUNTIME_ONLY}
    options["source"] = str(release.folder.resolve())
    return {
        "format": FORMAT_NAME,
        "version": STORE_FORMAT,
        "gitool_version": __version__,
        "genome": {
            "path": None,  # the release holds no FASTA: commands that need one take --genome
            "size": None,
            "fai_md5": None,
            "chromosomes": {},
            "organism": release.organism,
        },
        "seq_length": geometry.seq_length,
        "bin_size": geometry.bin_size,
        "target_length": geometry.target_length,
        "stride": None,
        "n_tracks": len(rows),
        "encoding": {"A": 0, "C": 1, "G": 2, "T": 3, "N": 4},
        "transform": {
            "version": TRANSFORM,
            "order": [
                "Basenji pooled, clipped and scaled the values when it made the release "
                "(targets.txt's sum_stat, clip, scale)",
                "float16 as the release stores them",
            ],
        },
        "splits": {
            s: {
                "windows": release.count(s),
                "chromosomes": list(dict.fromkeys(release.windows[s]["chrom"].tolist())),
                "track_mean": stats[s]["mean"],
                "track_max": stats[s]["max"],
            }
            for s in SPLITS
        },
        "tracks": rows,
        "options": options,
        "source": {
            "format": SOURCE_FORMAT,
            "folder": str(release.folder.resolve()),
            "organism": release.organism,
            "statistics": release.statistics,
            "files": {s: len(release.files[s]) for s in SPLITS},
            "crop": {
                "record_length": crop.record_length,
                "record_bins": crop.record_bins,
                "sequence_offset": crop.seq_offset,
                "target_bins": [crop.bin_offset, crop.bin_offset + crop.target_length],
            },
        },
    }
