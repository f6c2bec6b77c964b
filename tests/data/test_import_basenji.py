"""``gitool import-basenji``: the Basenji/Enformer release (TFRecords) into a store.

The release files are written by another implementation (the ``tfrecord`` package's writer,
then ``zlib``/``gzip``), and every stored byte is checked against a crop computed here from
genome coordinates."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
import yaml
from basenji_release import make_release

from gitool.data import basenji
from gitool.data.store import Store
from gitool.data.tfrecord import RecordReader, masked_crc

from helpers import assert_input_error, folder_bytes, run_cli

SMALL = ["--seq-length", "512", "--target-length", "16"]


def expected_crop(release, split: str, seq_length: int, target_length: int):
    """The store's sequences and targets, from genome coordinates: the window centred in
    the record, its target bins centred in the window, found among the record's bins."""
    stats = release.statistics
    pool, crop_bp = stats["pool_width"], stats["crop_bp"]
    start = (stats["seq_length"] - seq_length) // 2  # bp into the record
    target_start = start + (seq_length - target_length * pool) // 2
    bins = [(target_start + pool * j - crop_bp) // pool for j in range(target_length)]
    return release.codes[split][:, start : start + seq_length], release.targets[split][:, bins]


def flat(text: str) -> str:
    """Console output without its line wrapping."""
    return " ".join(text.split())


def test_crc32c_matches_the_published_test_vector_and_the_tfrecord_writer(tmp_path):
    import crc32c
    from tfrecord.writer import TFRecordWriter

    assert crc32c.crc32c(b"123456789") == 0xE3069283  # RFC 3720's CRC32C check value
    for data in (b"", b"123456789", bytes(range(256)) * 3):
        assert masked_crc(data).to_bytes(4, "little") == TFRecordWriter.masked_crc(data)


def test_every_stored_byte_is_the_centred_crop(tmp_path, capsys):
    release = make_release(tmp_path / "rel", counts=(7, 3, 2), per_file=3)
    code, _, err = run_cli(["import-basenji", tmp_path / "rel", "-o", tmp_path / "st", *SMALL,
                            "-j", "1"], capsys)  # fmt: skip
    assert code == 0, err
    assert "train 7, valid 3, test 2 windows × 5 tracks from 5 files" in flat(err)
    store = Store(tmp_path / "st")
    store.check_arrays()
    for split in ("train", "valid", "test"):
        codes, targets = expected_crop(release, split, 512, 16)
        np.testing.assert_array_equal(store.sequences(split), codes)
        assert store.targets(split).dtype == np.float16
        np.testing.assert_array_equal(store.targets(split), targets)
        windows = store.windows(split)
        starts = release.starts[split]
        assert windows.chrom.tolist() == release.chroms[split]
        np.testing.assert_array_equal(windows.start, starts + 256)
        np.testing.assert_array_equal(windows.end, starts + 256 + 512)
        np.testing.assert_array_equal(windows.target_start, starts + 256 + 192)
        np.testing.assert_array_equal(windows.target_end, starts + 256 + 192 + 128)
    assert (store.geometry.seq_length, store.geometry.bin_size) == (512, 8)
    tracks = store.tracks
    assert [t["identifier"] for t in tracks] == [f"ENCFF{i:06d}" for i in range(5)]
    assert [t["group"] for t in tracks] == ["DNASE", "CHIP", "CAGE", "ATAC", "DNASE"]
    assert [t["strand_pair"] for t in tracks] == list(range(5))
    assert {(t["clip"], t["scale"], t["sum_stat"]) for t in tracks} == {(32.0, 2.0, "sum_sqrt")}
    m = store.manifest
    assert m["transform"]["version"] == "basenji-release"
    assert m["source"]["crop"] == {"record_length": 1024, "record_bins": 96,
                                   "sequence_offset": 256, "target_bins": [40, 56]}  # fmt: skip
    train = release.targets["train"][:, 40:56].astype(np.float64)
    np.testing.assert_allclose(
        m["splits"]["train"]["track_mean"], train.mean(axis=(0, 1)), atol=1e-6
    )
    np.testing.assert_allclose(m["splits"]["train"]["track_max"], train.max(axis=(0, 1)))
    assert not basenji.stage_path(tmp_path / "st").exists()


@pytest.mark.parametrize(
    "encoding, compression, key", [("index", "gzip", "target"), ("onehot", "none", "targets")]
)
def test_encodings_and_compressions_give_the_same_store(
    tmp_path, capsys, encoding, compression, key
):
    make_release(tmp_path / "a", seed=3)
    make_release(tmp_path / "b", seed=3, encoding=encoding, compression=compression, target_key=key)
    for name in ("a", "b"):
        args = ["import-basenji", tmp_path / name, "-o", tmp_path / f"{name}.st", *SMALL]
        assert run_cli(args, capsys)[0] == 0
    a, b = folder_bytes(tmp_path / "a.st"), folder_bytes(tmp_path / "b.st")
    assert a.keys() == b.keys()
    assert all(a[k] == b[k] for k in a if k != "manifest.yaml")


def test_the_paper_crop_of_a_full_size_record(tmp_path, capsys):
    """131,072-bp records with 896 bins: BasenjiSmall is bp 56,680-74,392 and bins 408-487."""
    release = make_release(tmp_path / "rel", seq_length=131072, pool_width=128, target_length=896,
                           n_tracks=3, counts=(2, 1, 1), per_file=1)  # fmt: skip
    crop = basenji.plan_crop(release.statistics, 17712, 80)
    assert (crop.seq_offset, crop.bin_offset) == (56680, 408)
    assert run_cli(["import-basenji", tmp_path / "rel", "-o", tmp_path / "st"], capsys)[0] == 0
    store = Store(tmp_path / "st")
    for split in ("train", "valid", "test"):
        records = release.codes[split]
        np.testing.assert_array_equal(store.sequences(split), records[:, 56680 : 56680 + 17712])
        np.testing.assert_array_equal(store.targets(split), release.targets[split][:, 408:488])
        windows = store.windows(split)
        np.testing.assert_array_equal(windows.target_start - windows.start, 3736)
        np.testing.assert_array_equal(windows.target_end - windows.target_start, 80 * 128)


def corrupt(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x40
    path.write_bytes(bytes(data))


def test_a_damaged_record_names_file_and_record_and_writes_nothing(tmp_path, capsys):
    make_release(tmp_path / "rel", compression="none", per_file=3)
    bad = tmp_path / "rel" / "tfrecords" / "train-1.tfr"
    with RecordReader(bad) as reader:  # the second record's payload starts after the first
        first = len(next(iter(reader)))
    corrupt(bad, 8 + 4 + first + 4 + 12 + 100)
    before = set(os.listdir(tmp_path))
    code, _, err = run_cli(["import-basenji", tmp_path / "rel", "-o", tmp_path / "st", *SMALL],
                           capsys)  # fmt: skip
    assert_input_error(code, err, "train-1.tfr", "record 2", "checksum")
    assert set(os.listdir(tmp_path)) == before  # no store, no hidden stage

    make_release(tmp_path / "z", compression="zlib")
    corrupt(tmp_path / "z" / "tfrecords" / "valid-0.tfr", 200)
    code, _, err = run_cli(["import-basenji", tmp_path / "z", "-o", tmp_path / "st", *SMALL],
                           capsys)  # fmt: skip
    assert_input_error(code, err, "valid-0.tfr", "record 1")
    assert set(os.listdir(tmp_path)) == before | {"z"}


def test_release_inconsistencies_are_one_line(tmp_path, capsys):
    def run(folder, *extra):
        return run_cli(["import-basenji", folder, "-o", tmp_path / "st", *SMALL, *extra], capsys)

    rel = tmp_path / "rel"
    make_release(rel)
    stats = json.loads((rel / "statistics.json").read_text())
    (rel / "statistics.json").write_text(json.dumps({**stats, "num_targets": 6}))
    (rel / "targets.txt").write_text(
        (rel / "targets.txt").read_text() + "5\t0\tX\tx.w5\t32\t2\tsum\tX\n"
    )
    code, _, err = run(rel)
    assert_input_error(code, err, "train-0.tfr", "record 1", "target", "num_targets 6")
    assert not (tmp_path / "st").exists()
    (rel / "statistics.json").write_text(json.dumps(stats))
    assert_input_error(*run(rel)[::2], "targets.txt", "6 tracks", "num_targets 5")
    make_release(rel)
    (rel / "statistics.json").write_text(json.dumps({**stats, "seq_length": 1032}))
    assert_input_error(*run(rel)[::2], "sequences.bed", "1,024 bp", "1,032 bp")
    (rel / "statistics.json").write_text(json.dumps({**stats, "valid_seqs": 4}))
    assert_input_error(*run(rel)[::2], "sequences.bed", "3 valid windows", "4")
    (rel / "statistics.json").write_text(json.dumps(stats))
    assert_input_error(*run(rel, "--seq-length", "513")[::2], "--seq-length", "even")
    assert_input_error(
        *run(rel, "--target-length", "15")[::2], "--seq-length", "between", "even or odd"
    )
    assert_input_error(*run(rel, "--seq-length", "2048")[::2], "--seq-length", "1,024")
    (rel / "tfrecords" / "train-1.tfr").unlink()
    assert_input_error(*run(rel)[::2], "train-1.tfr is missing")
    assert not (tmp_path / "st").exists()


def test_genome_picks_the_organism_of_a_barnyard_folder(tmp_path, capsys):
    make_release(tmp_path / "data" / "human", n_tracks=5)
    make_release(tmp_path / "data" / "mouse", n_tracks=3, genome=1, seed=1)
    code, _, err = run_cli(
        ["import-basenji", tmp_path / "data", "-o", tmp_path / "h", *SMALL], capsys
    )
    assert_input_error(code, err, "human and mouse", "--genome")
    for organism, n in (("human", 5), ("mouse", 3)):
        args = [
            "import-basenji",
            tmp_path / "data",
            "--genome",
            organism,
            "-o",
            tmp_path / organism,
            *SMALL,
        ]
        assert run_cli(args, capsys)[0] == 0
        store = Store(tmp_path / organism)
        assert len(store.tracks) == n and store.manifest["genome"]["organism"] == organism
    code, _, err = run_cli(["import-basenji", tmp_path / "data" / "mouse", "--genome", "human",
                            "-o", tmp_path / "x", *SMALL], capsys)  # fmt: skip
    assert_input_error(code, err, "--genome", "mouse release")
    code, _, err = run_cli(
        ["import-basenji", tmp_path / "data", "--genome", "yeast", "-o", tmp_path / "x"], capsys
    )
    assert_input_error(code, err, "--genome", "'yeast'", "human, mouse")


def test_never_writes_into_the_release_or_over_a_foreign_folder(tmp_path, capsys):
    make_release(tmp_path / "rel")
    code, _, err = run_cli(["import-basenji", tmp_path / "rel", "-o", tmp_path / "rel" / "st", *SMALL,
                            "--force"], capsys)  # fmt: skip
    assert_input_error(code, err, "-o", "inputs")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    code, _, err = run_cli(["import-basenji", tmp_path / "rel", "-o", tmp_path / "mine", *SMALL,
                            "--force"], capsys)  # fmt: skip
    assert code == 2 and (tmp_path / "mine" / "notes.txt").read_text() == "keep me"


KILLER = """
import os, signal, sys
from gitool.data import basenji
from gitool.cli import main

real, seen = basenji._import_file, []

def import_file(job, report):
    seen.append(job.stem)
    if len(seen) == int(os.environ["KILL_AT"]):
        os.kill(os.getpid(), signal.SIGKILL)  # no clean-up of any kind
    return real(job, report)

basenji._import_file = import_file
main(sys.argv[1:])
"""


def test_a_killed_import_resumes_file_by_file_to_the_same_bytes(tmp_path, capsys, monkeypatch):
    make_release(tmp_path / "rel", counts=(7, 3, 2), per_file=2)  # 4 + 2 + 1 files
    args = ["import-basenji", str(tmp_path / "rel"), *SMALL, "-j", "1"]
    assert run_cli([*args, "-o", tmp_path / "clean"], capsys)[0] == 0
    script = tmp_path / "killer.py"
    script.write_text(textwrap.dedent(KILLER))
    env = {**os.environ, "KILL_AT": "4"}
    proc = subprocess.run([sys.executable, script, *args, "-o", tmp_path / "st"], env=env,
                          capture_output=True, text=True)  # fmt: skip
    assert proc.returncode == -signal.SIGKILL
    stage = basenji.stage_path(tmp_path / "st")
    assert not (tmp_path / "st").exists()
    assert sorted(p.name for p in (stage / "parts").glob("*.json")) == [
        "train-0.json",
        "train-1.json",
        "train-2.json",
    ]
    # without --resume: told how to continue, nothing touched
    code, _, err = run_cli([*args, "-o", tmp_path / "st"], capsys)
    assert_input_error(code, err, f"-o {tmp_path / 'st'}: its import folder {stage} holds an "
                       "interrupted import (3 files finished)", "--resume")  # fmt: skip
    read = []
    real = basenji._import_file
    monkeypatch.setattr(
        basenji, "_import_file", lambda job, report: read.append(job.stem) or real(job, report)
    )
    code, _, err = run_cli([*args, "-o", tmp_path / "st", "--resume"], capsys)
    assert code == 0, err
    assert "resuming: 3 files already imported, 4 to go" in flat(err) and "(3 resumed)" in flat(err)
    assert read == ["train-3", "valid-0", "valid-1", "test-0"]  # finished files never re-read
    assert folder_bytes(tmp_path / "st") == folder_bytes(tmp_path / "clean")
    assert not stage.exists()


def test_a_worker_that_dies_stops_the_import_with_a_message(tmp_path, capsys):
    """A worker killed mid-file (the OOM killer) left the pool waiting for it forever."""
    make_release(tmp_path / "rel", counts=(7, 3, 2), per_file=2)  # 4 + 2 + 1 files
    args = ["import-basenji", str(tmp_path / "rel"), *SMALL, "-j", "2"]
    script = tmp_path / "killer.py"
    script.write_text(textwrap.dedent(KILLER))
    env = {**os.environ, "KILL_AT": "2"}  # each worker counts its own files
    proc = subprocess.run([sys.executable, script, *args, "-o", tmp_path / "st"], env=env,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("error")]
    assert len(lines) == 1 and "died" in lines[0] and "--resume" in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "st").exists()
    code, _, err = run_cli([*args, "-o", tmp_path / "st", "--resume"], capsys)
    assert code == 0, err
    assert run_cli([*args, "-o", tmp_path / "clean"], capsys)[0] == 0
    assert folder_bytes(tmp_path / "st") == folder_bytes(tmp_path / "clean")


SLOW = """
import sys, time
from gitool.data import basenji
from gitool.cli import main

real = basenji._import_file

def import_file(job, report):
    if job.stem == "train-0":
        time.sleep(60)  # one big file still being read
    return real(job, report)

basenji._import_file = import_file
main(sys.argv[1:])
"""


def test_sigterm_to_the_whole_process_group_ends_the_import(tmp_path):
    """`timeout`, systemd and Slurm signal every process of the job: the workers die at once,
    and one of them died holding the pool's queue lock, so the import waited forever."""
    make_release(tmp_path / "rel", counts=(7, 3, 2), per_file=2)
    script = tmp_path / "slow.py"
    script.write_text(textwrap.dedent(SLOW))
    args = ["import-basenji", str(tmp_path / "rel"), *SMALL, "-j", "2", "-o", tmp_path / "st"]
    proc = subprocess.Popen([sys.executable, script, *args], start_new_session=True,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    parts = basenji.stage_path(tmp_path / "st") / "parts"
    deadline = time.monotonic() + 60
    while len(list(parts.glob("*.json"))) < 6 and time.monotonic() < deadline:
        time.sleep(0.1)  # the other worker has imported every other file and waits
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        err = proc.communicate(timeout=30)[1]
    finally:
        proc.kill()
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert "terminated (SIGTERM)" in err and not (tmp_path / "st").exists()


def test_resume_refuses_a_stage_of_other_options(tmp_path, capsys, monkeypatch):
    make_release(tmp_path / "rel", per_file=2)

    def stop(job, report):
        raise KeyboardInterrupt

    monkeypatch.setattr(basenji, "_import_file", stop)
    args = ["import-basenji", tmp_path / "rel", "-o", tmp_path / "st", "-j", "1"]
    code, _, err = run_cli([*args, *SMALL], capsys)
    assert code == 130 and "--resume" in err
    monkeypatch.undo()
    code, _, err = run_cli(
        [*args, "--seq-length", "256", "--target-length", "16", "--resume"], capsys
    )
    assert_input_error(code, err, "--resume", "seq_length")


def test_workers_give_the_same_store(tmp_path, capsys):
    make_release(tmp_path / "rel", counts=(9, 3, 3), per_file=2)
    for workers in ("1", "2"):
        args = ["import-basenji", tmp_path / "rel", "-o", tmp_path / workers, *SMALL, "-j", workers]
        assert run_cli(args, capsys)[0] == 0
    assert folder_bytes(tmp_path / "1") == folder_bytes(tmp_path / "2")


def test_a_truncated_file_and_a_short_stream(tmp_path):
    make_release(tmp_path / "rel", compression="zlib", per_file=3)
    path = tmp_path / "rel" / "tfrecords" / "train-0.tfr"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with (
        pytest.raises(basenji.InputError, match="train-0.tfr: record [12] "),
        RecordReader(path) as reader,
    ):
        list(reader)
    raw = zlib.decompress(data)
    path.write_bytes(raw[:-3])
    with (
        pytest.raises(basenji.InputError, match="record 3 is cut short"),
        RecordReader(path) as reader,
    ):
        list(reader)


def test_imported_stores_train_with_two_heads_and_refuse_untransform(tmp_path, capsys):
    make_release(tmp_path / "data" / "human", n_tracks=4, counts=(8, 4, 4), per_file=4)
    make_release(tmp_path / "data" / "mouse", n_tracks=2, counts=(8, 4, 4), per_file=4, seed=1)
    for organism in ("human", "mouse"):
        args = [
            "import-basenji",
            tmp_path / "data",
            "--genome",
            organism,
            "-o",
            tmp_path / organism,
            *SMALL,
        ]
        assert run_cli(args, capsys)[0] == 0
    config = {"model": "cnn-maxpool", "num_workers": 0, "epochs": 1, "batch_size": 4,
              "model_config": {"stem_channels": 8, "channels": 16, "divisible_by": 4}}  # fmt: skip
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(config))
    code, _, err = run_cli(["train", "--config", tmp_path / "c.yaml", "--data", tmp_path / "human",
                            "--data", tmp_path / "mouse", "-o", tmp_path / "run", "--gpus", "0"], capsys)  # fmt: skip
    assert code == 0, err
    (tmp_path / "r.bed").write_text("chr1\t0\t600\n")
    (tmp_path / "g.fa").write_text(">chr1\n" + "ACGT" * 300 + "\n")
    code, _, err = run_cli(["predict", tmp_path / "r.bed", "-m", tmp_path / "run", "--head", "human",
                            "-g", tmp_path / "g.fa", "-o", tmp_path / "p.bw", "--untransform"], capsys)  # fmt: skip
    assert_input_error(code, err, "--untransform", "release")
    code, _, err = run_cli(["predict", tmp_path / "r.bed", "-m", tmp_path / "run", "--head", "human",
                            "-o", tmp_path / "p.bw"], capsys)  # fmt: skip
    assert_input_error(code, err, "--genome")


def test_with_resume_a_damaged_file_can_be_replaced_and_the_import_continued(tmp_path, capsys):
    make_release(tmp_path / "rel", compression="none", counts=(7, 3, 2), per_file=2)
    args = ["import-basenji", tmp_path / "rel", *SMALL, "-j", "1"]
    assert run_cli([*args, "-o", tmp_path / "clean"], capsys)[0] == 0
    bad = tmp_path / "rel" / "tfrecords" / "valid-0.tfr"
    good = bad.read_bytes()
    corrupt(bad, 100)
    code, _, err = run_cli([*args, "-o", tmp_path / "st", "--resume"], capsys)
    assert_input_error(code, err, "valid-0.tfr", "record 1", "checksum")
    stage = basenji.stage_path(tmp_path / "st")
    assert len(list((stage / "parts").glob("*.json"))) == 4  # the train files, kept
    bad.write_bytes(good)  # downloaded again
    code, _, err = run_cli([*args, "-o", tmp_path / "st", "--resume"], capsys)
    assert code == 0, err
    assert "resuming: 4 files already imported, 3 to go" in flat(err)
    assert folder_bytes(tmp_path / "st") == folder_bytes(tmp_path / "clean")


def test_a_finished_file_that_changed_is_imported_again(tmp_path, capsys, monkeypatch):
    make_release(tmp_path / "rel", counts=(6, 2, 2), per_file=2)
    args = ["import-basenji", tmp_path / "rel", *SMALL, "-j", "1", "-o", tmp_path / "st"]

    def stop(job, report):
        raise KeyboardInterrupt

    real = basenji._import_file
    calls = []

    def first_two(job, report):
        calls.append(job.stem)
        return real(job, report) if len(calls) <= 2 else stop(job, report)

    monkeypatch.setattr(basenji, "_import_file", first_two)
    assert run_cli(args, capsys)[0] == 130  # train-0 and train-1 finished
    monkeypatch.undo()
    changed = tmp_path / "rel" / "tfrecords" / "train-1.tfr"
    changed.write_bytes(changed.read_bytes())  # downloaded again: a new modification time
    os.utime(changed, ns=(1, 1))
    read = []
    monkeypatch.setattr(
        basenji, "_import_file", lambda job, report: read.append(job.stem) or real(job, report)
    )
    code, _, err = run_cli([*args, "--resume"], capsys)
    assert code == 0, err
    assert read == ["train-1", "train-2", "valid-0", "test-0"]
    assert "(1 resumed)" in flat(err)


def test_a_wrong_compression_choice_says_what_the_file_looks_like(tmp_path, capsys):
    """Not "the file is damaged, download it again" (hundreds of GB) for a wrong option."""
    make_release(tmp_path / "rel", compression="zlib")
    args = ["import-basenji", tmp_path / "rel", "-o", tmp_path / "st", *SMALL]
    for given in ("none", "gzip"):
        code, _, err = run_cli([*args, "--compression", given], capsys)
        assert_input_error(
            code, err, "--compression", "looks zlib-compressed", "--compression zlib"
        )
        assert "damaged" not in err
    assert not (tmp_path / "st").exists()


def test_a_kernel_copy_refused_part_way_still_appends_every_byte_once(tmp_path, monkeypatch):
    import errno

    part = tmp_path / "part.bin"
    part.write_bytes(np.random.default_rng(0).integers(0, 256, 16384, dtype=np.uint8).tobytes())
    real, calls = os.copy_file_range, []

    def refused_after_one_page(src, dst, count, *rest):
        calls.append(count)
        if len(calls) == 1:
            return real(src, dst, 4096)
        raise OSError(errno.EXDEV, "cross-device copy")

    monkeypatch.setattr(os, "copy_file_range", refused_after_one_page, raising=False)
    out = tmp_path / "out.bin"
    with open(out, "wb") as target:
        target.write(b"HDR")
        assert basenji._append(part, target) == 16384
        target.write(b"END")
    assert out.read_bytes() == b"HDR" + part.read_bytes() + b"END"


def test_stranded_identifiers_without_a_strand_pair_column_are_warned_about(tmp_path, capsys):
    from gitool.data.tracks import read_tracks

    table = tmp_path / "targets.txt"
    table.write_text("index\tidentifier\tfile\n0\tCNhs1+\ta.w5\n1\tCNhs1-\ta.w5\n2\tDNase\ta.w5\n")
    tracks = read_tracks(table, check_files=False)
    assert [t.strand_pair for t in tracks] == [0, 1, 2]  # unstranded, as Basenji reads it
    err = " ".join(capsys.readouterr().err.split())
    assert "no strand_pair column" in err and "CNhs1+ and CNhs1-" in err
    table.write_text(
        "index\tidentifier\tfile\tstrand_pair\n0\tCNhs1+\ta.w5\t1\n1\tCNhs1-\ta.w5\t0\n"
    )
    assert [t.strand_pair for t in read_tracks(table, check_files=False)] == [1, 0]
    assert "strand_pair" not in capsys.readouterr().err


def test_sequences_bed_errors_name_the_line_of_the_file(tmp_path, capsys):
    make_release(tmp_path / "rel")
    bed = tmp_path / "rel" / "sequences.bed"
    lines = bed.read_text().splitlines()
    fields = lines[4].split("\t")
    lines[4] = "\t".join([*fields[:3], "training", *fields[4:]])
    bed.write_text("# a comment\n\n" + "\n".join(lines) + "\n")
    code, _, err = run_cli(
        ["import-basenji", tmp_path / "rel", "-o", tmp_path / "st", *SMALL], capsys
    )
    assert_input_error(code, err, "sequences.bed line 7", "'training'")
