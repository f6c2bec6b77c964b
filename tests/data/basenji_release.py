"""Write a Basenji/Enformer-format data release with code that is not gitool's: TFRecord
framing and ``tf.train.Example`` payloads by the ``tfrecord`` package's writer, then the
whole file compressed by ``zlib``/``gzip``. Used by the import tests and the benchmark."""

from __future__ import annotations

import gzip
import itertools
import json
import shutil
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tfrecord.writer import TFRecordWriter

BASES = np.frombuffer(b"ACGTN", np.uint8)


@dataclass
class Release:
    """What was written: the folder, and per split the records' sequences (uint8 codes,
    ``(N, seq_length)``) and targets (float16, ``(N, target_length, num_targets)``) in
    record order, with their ``sequences.bed`` starts."""

    folder: Path
    statistics: dict
    codes: dict = field(default_factory=dict)
    targets: dict = field(default_factory=dict)
    chroms: dict = field(default_factory=dict)
    starts: dict = field(default_factory=dict)
    files: dict = field(default_factory=dict)


def targets_table(n_tracks: int, genome: int = 0) -> str:
    """A release-style targets.txt: unnamed index column, genome column, .w5 paths."""
    groups = ["DNASE", "CHIP", "CAGE", "ATAC"]
    lines = ["\tgenome\tidentifier\tfile\tclip\tscale\tsum_stat\tdescription"]
    for i in range(n_tracks):
        group = groups[i % len(groups)]
        lines.append(
            f"{i}\t{genome}\tENCFF{i:06d}\t/home/drk/tillage/{i}/coverage.w5\t32\t2\tsum_sqrt\t"
            f"{group}:sample {i}"
        )
    return "\n".join(lines) + "\n"


def write_tfrecord(path: Path, payloads: list[dict], compression: str) -> None:
    """``payloads``: feature name -> bytes. ``compression``: zlib, gzip or none."""
    raw = path.with_suffix(".raw")
    writer = TFRecordWriter(str(raw))
    for features in payloads:
        writer.write({name: (value, "byte") for name, value in features.items()})
    writer.close()
    if compression == "none":
        raw.rename(path)
        return
    with open(raw, "rb") as source, open(path, "wb") as target:
        if compression == "gzip":
            with gzip.GzipFile(fileobj=target, mode="wb", compresslevel=1) as packed:
                shutil.copyfileobj(source, packed, 1 << 22)
        else:
            packer = zlib.compressobj(1)
            while chunk := source.read(1 << 22):
                target.write(packer.compress(chunk))
            target.write(packer.flush())
    raw.unlink()


def make_release(
    folder: Path,
    *,
    seq_length: int = 1024,
    pool_width: int = 8,
    target_length: int = 96,
    n_tracks: int = 5,
    counts: tuple[int, int, int] = (7, 3, 2),
    per_file: int = 3,
    encoding: str = "onehot",
    compression: str = "zlib",
    target_key: str = "target",
    seed: int = 0,
    genome: int = 0,
    keep: bool = True,
) -> Release:
    """A release folder: statistics.json, sequences.bed (splits interleaved in the file, in
    record order within each split), targets.txt and ``tfrecords/{split}-N.tfr`` of
    ``per_file`` records each. ``keep``: remember the records (for checks)."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "tfrecords").mkdir(exist_ok=True)
    crop_bp = (seq_length - target_length * pool_width) // 2
    stats = {"num_targets": n_tracks, "seq_length": seq_length, "pool_width": pool_width,
             "crop_bp": crop_bp, "target_length": target_length}  # fmt: skip
    release = Release(folder, stats)
    beds = []
    for split, n in zip(("train", "valid", "test"), counts, strict=True):
        stats[f"{split}_seqs"] = n
        chroms = [f"chr{1 + i % 3}" for i in range(n)]
        starts = 10_000 + np.arange(n) * 7 * seq_length + rng.integers(0, 100, n)
        files, all_codes, all_values = [], [], []
        for number, first in enumerate(range(0, n, per_file)):
            rows = min(n, first + per_file) - first
            codes = rng.integers(0, 4, size=(rows, seq_length), dtype=np.uint8)
            codes[:, rng.integers(0, seq_length, size=8)] = 4  # some N
            # sparse, peaky targets (they compress as real coverage does)
            values = rng.gamma(0.3, 2.0, size=(rows, target_length, n_tracks)).astype(np.float16)
            values[values < 0.2] = 0
            payloads = []
            for r in range(rows):
                if encoding == "onehot":
                    onehot = np.zeros((seq_length, 4), np.uint8)
                    known = codes[r] < 4
                    onehot[np.flatnonzero(known), codes[r][known]] = 1
                    sequence = onehot.tobytes()
                else:
                    sequence = codes[r].tobytes()
                payloads.append({"sequence": sequence, target_key: values[r].tobytes()})
            path = folder / "tfrecords" / f"{split}-{number}.tfr"
            write_tfrecord(path, payloads, compression)
            files.append(path)
            if keep:
                all_codes.append(codes)
                all_values.append(values)
        if keep:
            empty = (
                np.zeros((0, seq_length), np.uint8),
                np.zeros((0, target_length, n_tracks), np.float16),
            )
            release.codes[split] = np.concatenate(all_codes) if all_codes else empty[0]
            release.targets[split] = np.concatenate(all_values) if all_values else empty[1]
        release.chroms[split], release.starts[split], release.files[split] = chroms, starts, files
        beds.append(
            [(c, int(s), int(s) + seq_length, split) for c, s in zip(chroms, starts, strict=True)]
        )
    # Basenji's sequences.bed lists the splits one after another; interleave them here (in
    # turn, each split's rows in record order) so that only the per-split order can matter.
    rows = [row for turn in itertools.zip_longest(*beds) for row in turn if row is not None]
    (folder / "sequences.bed").write_text("".join("\t".join(map(str, r)) + "\n" for r in rows))
    (folder / "statistics.json").write_text(json.dumps(stats, indent=4))
    (folder / "targets.txt").write_text(targets_table(n_tracks, genome))
    return release
