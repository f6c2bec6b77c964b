"""``gitool build-dataset``: layout, windows, splits, filters, determinism, atomicity, errors."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pyBigWig
import pytest
import yaml

from gitool.data.genome import encode
from gitool.data.store import Store
from gitool.errors import InputError

from conftest import write_bigwig, write_fasta, write_tracks
from helpers import assert_input_error, folder_bytes, run_cli

GEOM = ["--seq-length", "400", "--bin-size", "8", "--target-length", "25"]


def build(tiny, capsys, *extra, out="store"):
    args = [
        "build-dataset",
        tiny["genome"],
        tiny["tracks"],
        "-o",
        tiny["dir"] / out,
        *GEOM,
        "-j",
        "1",
        *extra,
    ]
    code, _, err = run_cli(args, capsys)
    assert code == 0, err
    return Store(tiny["dir"] / out)


def test_layout_shapes_and_window_arithmetic(tiny, capsys):
    store = build(tiny, capsys)
    m = store.manifest
    assert (m["seq_length"], m["bin_size"], m["target_length"], m["n_tracks"]) == (400, 8, 25, 4)
    assert m["transform"]["version"] == 1
    assert set(m["genome"]["chromosomes"]) == {"chr1", "chr2", "chr3"}  # chrM dropped
    for split in ("train", "valid", "test"):
        seqs, targets, windows = store.sequences(split), store.targets(split), store.windows(split)
        n = m["splits"][split]["windows"]
        assert seqs.shape == (n, 400) and seqs.dtype == np.uint8
        assert targets.shape == (n, 25, 4) and targets.dtype == np.float16
        assert len(windows) == n
        assert (windows.end - windows.start == 400).all()
        assert (windows.target_start - windows.start == 100).all()
        assert (windows.target_end - windows.target_start == 200).all()
        for row, w in windows.iterrows():
            assert w.start >= 0 and w.end <= tiny["sizes"][w.chrom]
            np.testing.assert_array_equal(seqs[row], encode(tiny["seqs"][w.chrom][w.start : w.end]))
    # Default stride = the target span: consecutive targets abut, never overlap.
    train = store.windows("train")
    assert (np.diff(train.target_start[train.chrom == "chr1"]) == 200).all()
    # Split by chromosome: chr1 (largest) train; each split holds whole chromosomes.
    assert m["splits"]["train"]["chromosomes"] == ["chr1"]
    assert sorted(m["splits"]["valid"]["chromosomes"] + m["splits"]["test"]["chromosomes"]) == [
        "chr2",
        "chr3",
    ]


def test_n_rich_windows_skipped(tiny, capsys):
    store = build(tiny, capsys, "--valid-chroms", "chr2", "--test-chroms", "chr3")
    w = store.windows("valid")
    # chr2 has N at 1000-1600: windows overlapping it by > 40 bp (10% of 400) are gone.
    n_overlap = np.clip(np.minimum(w.end, 1600) - np.maximum(w.start, 1000), 0, None)
    assert (n_overlap <= 40).all()
    assert len(w) < (4000 - 400) // 200 + 1
    relaxed = build(
        tiny,
        capsys,
        "--valid-chroms",
        "chr2",
        "--test-chroms",
        "chr3",
        "--max-n-frac",
        "1",
        out="all",
    )
    assert relaxed.count("valid") == (4000 - 400) // 200 + 1  # every window fits


def test_blacklist_and_regions_filter_target_spans(tiny, capsys):
    d = tiny["dir"]
    (d / "black.bed").write_text("chr1\t1000\t1050\n")
    (d / "regions.bed").write_text("chr1\t2500\t2501\nchr3\t0\t3000\n")
    store = build(tiny, capsys, "--blacklist", d / "black.bed")
    t = store.windows("train")
    assert not ((t.target_start < 1050) & (t.target_end > 1000)).any()
    loose = build(
        tiny, capsys, "--blacklist", d / "black.bed", "--max-blacklist-frac", "0.5", out="loose"
    )
    assert len(loose.windows("train")) == len(t) + 1
    only = build(tiny, capsys, "--regions", d / "regions.bed", out="regions")
    t = only.windows("train")
    assert t.target_start.tolist() == [2500]  # the one chr1 target span holding 2500
    assert only.count("test") + only.count("valid") > 0


def test_stride_off_the_bin_grid_pools_each_window(tiny, capsys):
    store = build(
        tiny, capsys, "--stride", "100", "--test-chroms", "chr3", "--valid-chroms", "chr2"
    )
    ref = build(
        tiny,
        capsys,
        "--stride",
        "200",
        "--test-chroms",
        "chr3",
        "--valid-chroms",
        "chr2",
        out="ref",
    )
    # Windows at even multiples of 200 exist in both builds and must hold the same targets.
    a, b = store.windows("train"), ref.windows("train")
    rows = {s: i for i, s in enumerate(a.target_start)}
    for j, s in enumerate(b.target_start):
        np.testing.assert_array_equal(store.targets("train")[rows[s]], ref.targets("train")[j])
    assert len(a) == 2 * len(b) - 1


def test_split_fractions_are_contiguous_blocks(tiny, capsys):
    big = {"chrA": 60_000, "chrB": 40_000}
    rng = np.random.default_rng(3)
    d = tiny["dir"]
    write_fasta(d / "big.fa", {c: "".join(rng.choice(list("ACGT"), n)) for c, n in big.items()})
    write_bigwig(d / "big.bw", big, {c: rng.random(n) for c, n in big.items()})
    write_tracks(d / "big.txt", [dict(identifier="t", file="big.bw")])
    args = [
        "build-dataset",
        d / "big.fa",
        d / "big.txt",
        *GEOM,
        "-j",
        "1",
        "--split-fractions",
        "0.8,0.1,0.1",
    ]
    code, _, err = run_cli([*args, "-o", d / "f1", "--seed", "5"], capsys)
    assert code == 0, err
    store = Store(d / "f1")
    spans = {s: store.windows(s) for s in ("train", "valid", "test")}
    assert all(len(w) for w in spans.values())
    # No two windows of different splits share any base.
    for s1 in spans:
        for s2 in spans:
            if s1 >= s2:
                continue
            for _, w in spans[s1].iterrows():
                other = spans[s2][spans[s2].chrom == w.chrom]
                assert not ((other.start < w.end) & (other.end > w.start)).any()
    assert run_cli([*args, "-o", d / "f2", "--seed", "5"], capsys)[0] == 0
    assert folder_bytes(d / "f1") == folder_bytes(d / "f2")
    assert run_cli([*args, "-o", d / "f3", "--seed", "6"], capsys)[0] == 0
    assert folder_bytes(d / "f1") != folder_bytes(d / "f3")


def test_rebuild_is_byte_identical_whatever_the_workers(tiny, capsys):
    build(tiny, capsys, out="a")
    code, _, err = run_cli(
        [
            "build-dataset",
            tiny["genome"],
            tiny["tracks"],
            "-o",
            tiny["dir"] / "b",
            *GEOM,
            "-j",
            "2",
        ],
        capsys,
    )
    assert code == 0, err
    assert folder_bytes(tiny["dir"] / "a") == folder_bytes(tiny["dir"] / "b")


def test_fasta_index_is_built_when_missing(tiny, capsys):
    fai = tiny["genome"].with_suffix(".fa.fai")
    fai.unlink()
    args = [
        "build-dataset",
        tiny["genome"],
        tiny["tracks"],
        "-o",
        tiny["dir"] / "s",
        *GEOM,
        "-j",
        "1",
    ]
    code, _, err = run_cli(args, capsys)
    assert code == 0, err
    assert fai.exists() and "building FASTA index" in err


def test_fasta_index_in_a_read_only_folder(tiny, capsys, monkeypatch):
    """A missing or out-of-date .fai that cannot be written: say how to make one, not
    pyfaidx's API advice; one that matches the FASTA is used whatever its time."""
    import shutil

    real_access = os.access
    folder = tiny["dir"] / "readonly"
    folder.mkdir()
    genome = folder / "genome.fa"
    shutil.copy(tiny["genome"], genome)
    # Root writes through a chmod, so stand in for a read-only mount of the genome's folder.
    monkeypatch.setattr(
        os, "access", lambda p, mode: real_access(p, mode) and str(p) != str(folder)
    )
    fai = genome.with_suffix(".fa.fai")
    shutil.copy(tiny["genome"].with_suffix(".fa.fai"), fai)
    os.utime(fai, (1, 1))  # older than the genome, but it matches it: used as it is
    code, _, err = run_cli(["build-dataset", genome, tiny["tracks"], "-o", tiny["dir"] / "ok",
                            *GEOM, "-j", "1"], capsys)  # fmt: skip
    assert code == 0, err
    fai.write_text(fai.read_text().splitlines()[0] + "\n")  # lists one chromosome of four
    code, err = _bad_build(tiny, capsys, genome=genome)
    assert_input_error(code, err, f"{fai} is out of date", "read-only folder")
    fai.unlink()
    code, err = _bad_build(tiny, capsys, genome=genome)
    assert_input_error(
        code, err, f"{fai} is missing", f"samtools faidx {genome}", "writable folder"
    )
    # The output's folder itself read-only: refused before any work, naming -o.
    import errno
    import tempfile

    def read_only(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    code, err = _bad_build(tiny, capsys)
    assert_input_error(code, err, f"-o {tiny['dir'] / 'out'}: cannot write in {tiny['dir']}")


def test_bgzip_fasta(tiny, capsys):
    from Bio import bgzf

    with bgzf.BgzfWriter(tiny["dir"] / "genome.fa.gz", "wb") as handle:
        handle.write(tiny["genome"].read_bytes())
    plain = build(tiny, capsys, out="plain")
    args = [
        "build-dataset",
        tiny["dir"] / "genome.fa.gz",
        tiny["tracks"],
        "-o",
        tiny["dir"] / "gz",
        *GEOM,
        "-j",
        "1",
    ]
    assert run_cli(args, capsys)[0] == 0
    np.testing.assert_array_equal(
        Store(tiny["dir"] / "gz").sequences("train"), plain.sequences("train")
    )


def test_force_replaces_only_a_store(tiny, capsys):
    build(tiny, capsys)
    code, _, err = run_cli(
        ["build-dataset", tiny["genome"], tiny["tracks"], "-o", tiny["dir"] / "store", *GEOM],
        capsys,
    )
    assert_input_error(code, err, "already exists", "--force")
    build(tiny, capsys, "--force", "--max-n-frac", "1")
    assert (
        yaml.safe_load((tiny["dir"] / "store" / "manifest.yaml").read_text())["options"][
            "max_n_frac"
        ]
        == 1.0
    )
    (tiny["dir"] / "notes").mkdir()
    (tiny["dir"] / "notes" / "keep.txt").write_text("mine")
    code, _, err = run_cli(
        [
            "build-dataset",
            tiny["genome"],
            tiny["tracks"],
            "-o",
            tiny["dir"] / "notes",
            *GEOM,
            "--force",
        ],
        capsys,
    )
    assert_input_error(code, err, "not a coverage store", "--force")
    assert (tiny["dir"] / "notes" / "keep.txt").read_text() == "mine"
    # a file of the user's put into the store: the store is not replaced, even with --force
    (tiny["dir"] / "store" / "NOTES.txt").write_text("mine")
    (tiny["dir"] / "store" / "train" / "runs").mkdir()
    before = (tiny["dir"] / "store" / "manifest.yaml").read_bytes()
    code, _, err = run_cli(
        ["build-dataset", tiny["genome"], tiny["tracks"], "-o", tiny["dir"] / "store", *GEOM,
         "--force"],
        capsys,
    )  # fmt: skip
    assert_input_error(code, err, "also holds NOTES.txt", "did not write", "--force")
    assert (tiny["dir"] / "store" / "NOTES.txt").read_text() == "mine"
    assert (tiny["dir"] / "store" / "manifest.yaml").read_bytes() == before
    (tiny["dir"] / "store" / "NOTES.txt").unlink()
    code, _, err = run_cli(
        ["build-dataset", tiny["genome"], tiny["tracks"], "-o", tiny["dir"] / "store", *GEOM,
         "--force"],
        capsys,
    )  # fmt: skip
    assert_input_error(code, err, "also holds train/runs", "--force")
    assert (tiny["dir"] / "store" / "train" / "runs").is_dir()


def test_force_replaces_an_older_gitools_store_but_not_an_edited_or_copied_one(tiny, capsys):
    """Output folders record their files: an edited file (or a `cp -r` copy) is refused; a
    store made before the records (none in it) is still replaced."""
    import shutil

    from gitool.made import RECORD

    store = build(tiny, capsys).path
    again = ["build-dataset", tiny["genome"], tiny["tracks"], "-o", store, *GEOM, "--force"]
    with open(store / "valid" / "windows.bed", "a") as handle:
        handle.write("# my note\n")
    code, _, err = run_cli(again, capsys)
    assert_input_error(code, err, "also holds valid/windows.bed", "changed since", "cp -r")
    assert (store / "valid" / "windows.bed").read_text().endswith("# my note\n")
    copy = tiny["dir"] / "copy"
    shutil.copytree(store, copy, copy_function=shutil.copyfile)  # `cp -r`: new times
    code, _, err = run_cli([*again[:4], copy, *again[5:]], capsys)
    assert_input_error(code, err, f"-o {copy} is a coverage store", "holds manifest.yaml")
    for record in store.rglob(RECORD):  # as an older gitool left it
        record.unlink()
    assert run_cli(again, capsys)[0] == 0
    assert not (store / "valid" / "windows.bed").read_text().endswith("# my note\n")
    assert (store / RECORD).is_file()


@pytest.mark.slow
def test_killed_build_leaves_nothing_that_looks_complete(tmp_path):
    """SIGKILL part-way: no folder at -o, and nothing with a manifest anywhere."""
    rng = np.random.default_rng(0)
    sizes = {f"chr{i}": 400_000 for i in range(1, 4)}
    write_fasta(
        tmp_path / "g.fa", {c: "".join(rng.choice(list("ACGT"), n)) for c, n in sizes.items()}
    )
    rows = []
    for i in range(12):
        write_bigwig(tmp_path / f"{i}.bw", sizes, {c: rng.random(n) for c, n in sizes.items()})
        rows.append(dict(identifier=f"t{i}", file=f"{i}.bw"))
    write_tracks(tmp_path / "t.txt", rows)
    cmd = [sys.executable, "-m", "gitool", "build-dataset", str(tmp_path / "g.fa"), str(tmp_path / "t.txt"),
           "-o", str(tmp_path / "out"), "--seq-length", "2000", "--bin-size", "8", "--target-length", "125",
           "--stride", "8", "-j", "1"]  # fmt: skip
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.time() + 60
    while time.time() < deadline and not any(tmp_path.glob(".out.partial-*/train/sequences.npy")):
        time.sleep(0.02)
    time.sleep(0.3)
    assert proc.poll() is None, "build finished before it could be killed; make it bigger"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (tmp_path / "out").exists()
    assert not list(tmp_path.rglob("manifest.yaml"))


def test_info_prints_summary(tiny, capsys):
    build(tiny, capsys)
    code, out, err = run_cli(["info", tiny["dir"] / "store"], capsys)
    assert code == 0, err
    assert "plus" in out and "sparse" in out and "train" in out and "400 bp" in out
    code, _, err = run_cli(["info", tiny["dir"]], capsys)
    assert_input_error(code, err, "not a gitool store", "build-dataset")


# ---------------------------------------------------------------- bad input: exit 2, one line, no output


def _bad_build(tiny, capsys, tracks=None, extra=(), genome=None):
    out = tiny["dir"] / "out"
    args = [
        "build-dataset",
        genome or tiny["genome"],
        tracks or tiny["tracks"],
        "-o",
        out,
        *GEOM,
        *extra,
    ]
    code, _, err = run_cli(args, capsys)
    assert not out.exists()
    assert not list(tiny["dir"].glob(".out.*"))
    return code, err


def _tracks(tiny, *rows):
    return write_tracks(tiny["dir"] / "bad.txt", list(rows))


def test_missing_bigwig(tiny, capsys):
    t = _tracks(tiny, dict(identifier="a", file="nope.bw"))
    assert_input_error(*_bad_build(tiny, capsys, t), "nope.bw", "does not exist", "bad.txt line 2")


def test_duplicate_identifier(tiny, capsys):
    t = _tracks(tiny, dict(identifier="a", file="plus.bw"), dict(identifier="a", file="minus.bw"))
    assert_input_error(*_bad_build(tiny, capsys, t), "duplicate identifier 'a'", "line 3")


def test_unknown_sum_stat(tiny, capsys):
    t = _tracks(tiny, dict(identifier="a", file="plus.bw", sum_stat="avg"))
    assert_input_error(*_bad_build(tiny, capsys, t), "unknown sum_stat 'avg'", "sum, mean, max")


def test_basenji_hdf5_coverage_in_the_tracks_file(tiny, capsys):
    t = _tracks(tiny, dict(identifier="a", file="plus.bw"), dict(identifier="b", file="cov.w5"))
    assert_input_error(*_bad_build(tiny, capsys, t), "bad.txt line 3", "cov.w5",
                       "Basenji HDF5 coverage, not a bigWig", "gitool import-basenji")  # fmt: skip


def test_genome_column_of_a_basenji_targets_file_is_recorded(tiny, capsys):
    rows = [dict(index=0, genome=0, identifier="a", file="plus.bw", sum_stat="sum"),
            dict(index=1, genome=0, identifier="b", file="dense.bw", sum_stat="mean")]  # fmt: skip
    tracks = write_tracks(tiny["dir"] / "targets.txt", rows)
    args = ["build-dataset", tiny["genome"], tracks, "-o", tiny["dir"] / "g", *GEOM, "-j", "1"]
    code, _, err = run_cli(args, capsys)
    assert code == 0, err
    store = Store(tiny["dir"] / "g")
    assert [r["genome"] for r in store.manifest["tracks"]] == [0, 0]
    header, *lines = (store.path / "tracks.tsv").read_text().splitlines()
    assert header.split("\t")[-1] == "genome" and all(x.endswith("\t0") for x in lines)
    plain = build(tiny, capsys)  # no genome column: no genome anywhere in the store
    assert not any("genome" in r for r in plain.manifest["tracks"])
    assert "genome" not in (plain.path / "tracks.tsv").read_text().splitlines()[0]


def test_bad_strand_pair(tiny, capsys):
    t = _tracks(tiny, dict(index=0, identifier="a", file="plus.bw", strand_pair=1),
                dict(index=1, identifier="b", file="minus.bw", strand_pair=1))  # fmt: skip
    assert_input_error(*_bad_build(tiny, capsys, t), "strand_pair 1", "name each other")


def test_malformed_line(tiny, capsys):
    (tiny["dir"] / "bad.txt").write_text("identifier\tfile\tscale\na\tplus.bw\n")
    assert_input_error(*_bad_build(tiny, capsys, tiny["dir"] / "bad.txt"), "line 2", "tab")


def test_chromosome_name_mismatch_offers_chr_prefix(tiny, capsys):
    sizes = {c[3:]: n for c, n in tiny["sizes"].items()}
    write_bigwig(tiny["dir"] / "nochr.bw", sizes, {c: np.ones(n) for c, n in sizes.items()})
    t = _tracks(tiny, dict(identifier="a", file="nochr.bw"))
    assert_input_error(*_bad_build(tiny, capsys, t), "'1'", "'chr1'", "one spelling on both sides")


def test_chromosome_length_mismatch(tiny, capsys):
    sizes = dict(tiny["sizes"], chr2=3999)
    write_bigwig(tiny["dir"] / "short.bw", sizes, {"chr1": np.ones(6000)})
    t = _tracks(tiny, dict(identifier="a", file="short.bw"))
    assert_input_error(*_bad_build(tiny, capsys, t), "chr2", "3,999", "4,000")


def test_unreadable_bigwig(tiny, capsys):
    (tiny["dir"] / "junk.bw").write_bytes(b"not a bigwig at all" * 10)
    t = _tracks(tiny, dict(identifier="a", file="junk.bw"))
    assert_input_error(*_bad_build(tiny, capsys, t), "junk.bw", "not a readable bigWig")


def test_bedgraph_posing_as_bigwig(tiny, capsys):
    (tiny["dir"] / "cov.bedGraph").write_text("chr1\t0\t10\t1.0\n")
    t = _tracks(tiny, dict(identifier="a", file="cov.bedGraph"))
    assert_input_error(*_bad_build(tiny, capsys, t), "not a readable bigWig")


def test_empty_regions(tiny, capsys):
    (tiny["dir"] / "empty.bed").write_text("# nothing here\n")
    code, err = _bad_build(tiny, capsys, extra=["--regions", tiny["dir"] / "empty.bed"])
    assert_input_error(code, err, "--regions", "empty.bed", "no intervals")


def test_regions_that_keep_no_window(tiny, capsys):
    (tiny["dir"] / "edge.bed").write_text("chr1\t0\t10\n")  # inside the left context only
    code, err = _bad_build(tiny, capsys, extra=["--regions", tiny["dir"] / "edge.bed"])
    assert_input_error(code, err, "no windows")


def test_bed_with_unknown_chromosome_and_bad_line(tiny, capsys):
    (tiny["dir"] / "b.bed").write_text("chr1\t0\t100\n1\t0\t100\n")
    code, err = _bad_build(tiny, capsys, extra=["--blacklist", tiny["dir"] / "b.bed"])
    assert_input_error(code, err, "b.bed line 2", "'1'", "'chr1'")
    (tiny["dir"] / "b.bed").write_text("chr1\t0\n")
    code, err = _bad_build(tiny, capsys, extra=["--blacklist", tiny["dir"] / "b.bed"])
    assert_input_error(code, err, "b.bed line 1")
    (tiny["dir"] / "b.bed").write_text("chrUn_KI270302v1\t0\t100\nchrEBV\t0\t100\n")
    code, err = _bad_build(tiny, capsys, extra=["--blacklist", tiny["dir"] / "b.bed"])
    assert_input_error(code, err, "none of its chromosomes", "chrEBV", "this assembly")


def test_a_published_blacklist_skips_contigs_the_genome_lacks_and_clips_at_ends(tiny, capsys):
    """A whole-assembly blacklist (unplaced contigs, chrEBV; an interval past a shortened
    chromosome's end) was refused line by line."""
    d = tiny["dir"]
    (d / "black.bed").write_text("chr1\t1000\t1050\nchrEBV\t0\t10\nchr3\t2990\t3100\n")
    (d / "exact.bed").write_text("chr1\t1000\t1050\nchr3\t2990\t3000\n")
    args = ["build-dataset", tiny["genome"], tiny["tracks"], "-o", d / "store", *GEOM, "-j", "1"]
    code, _, err = run_cli([*args, "--blacklist", d / "black.bed"], capsys)
    assert code == 0, err
    store, err = Store(d / "store"), " ".join(err.split())
    assert "skipped 1 interval(s) on 1 chromosome(s) the genome does not have (chrEBV)" in err
    assert "clipped 1 interval(s)" in err and "line 3 (chr3:2990-3100)" in err
    exact = build(tiny, capsys, "--blacklist", d / "exact.bed", out="exact")
    for split in ("train", "valid", "test"):
        assert store.windows(split).equals(exact.windows(split))


@pytest.mark.parametrize(
    "extra,needle",
    [
        (["--valid-chroms", "chr7"], "--valid-chroms"),
        (["--valid-chroms", "chr2", "--test-chroms", "chr2"], "both"),
        (["--split-fractions", "0.9,0.2,0.1"], "--split-fractions"),
        (["--split-fractions", "0.8,0.1,0.1", "--test-chroms", "chr3"], "exclude each other"),
        (["--chroms", "chrZ"], "--chroms"),
        (["--max-n-frac", "1.5"], "--max-n-frac"),
        (["--stride", "0"], "--stride"),
        (["--target-length", "100"], "does not fit"),
        (["--seq-length", "x"], "--seq-length"),
    ],
)
def test_bad_options(tiny, capsys, extra, needle):
    assert_input_error(*_bad_build(tiny, capsys, extra=extra), needle)


def test_bad_genome(tiny, capsys):
    assert_input_error(
        *_bad_build(tiny, capsys, genome=tiny["dir"] / "none.fa"), "none.fa", "no such file"
    )


def test_bigwig_written_by_ucsc_convention_reads_back(tiny):
    """Sanity of the fixture itself: what the tests write is what pyBigWig reads."""
    bw = pyBigWig.open(str(tiny["dir"] / "dense.bw"))
    np.testing.assert_allclose(
        bw.values("chr1", 0, 50, numpy=True), tiny["values"]["dense"]["chr1"][:50], rtol=1e-6
    )


def _fail_on_track_2(bw, run, track, *args):
    if track.identifier == "dense":
        raise ValueError("simulated read failure")
    return _real_run_targets(bw, run, track, *args)


def _die_on_track_2(bw, run, track, *args):
    if track.identifier == "dense":
        os._exit(3)
    return _real_run_targets(bw, run, track, *args)


from gitool.data import build as build_module  # noqa: E402

_real_run_targets = build_module._run_targets


@pytest.mark.parametrize(
    "fault,needle",
    [(_fail_on_track_2, "simulated read failure"), (_die_on_track_2, "process died")],
)
def test_worker_failure_exits_1_with_message_and_no_output(
    tiny, capsys, monkeypatch, fault, needle
):
    monkeypatch.setattr(build_module, "_run_targets", fault)  # forked workers inherit it
    out = tiny["dir"] / "out"
    code, _, err = run_cli(
        ["build-dataset", tiny["genome"], tiny["tracks"], "-o", out, *GEOM, "-j", "2"], capsys
    )
    assert code == 1 and needle in err and "Traceback" not in err
    assert not out.exists() and not list(tiny["dir"].glob(".out.*"))


def test_small_negative_values_are_refused(tmp_path, tiny, capsys):
    """Minimum in (-1, 0): pyBigWig's header rounds it to 0; the exact summary must win,
    and a Poisson model cannot use it."""
    sizes = tiny["sizes"]
    values = {c: np.full(n, 0.5) for c, n in sizes.items()}
    values["chr2"][1233] = -0.5
    write_bigwig(tiny["dir"] / "small.bw", sizes, values)
    t = _tracks(tiny, dict(identifier="s", file="small.bw", sum_stat="sum"))
    code, err = _bad_build(tiny, capsys, t)
    assert_input_error(code, err, "track 's'", "small.bw", "negative values", "chr2:1,234",
                       "raw coverage")  # fmt: skip


def test_stale_fasta_index_is_rebuilt(tiny, capsys):
    seqs = dict(tiny["seqs"])
    seqs["chr1"] = seqs["chr1"][:5000]  # same file name, different content, newer than .fai
    time.sleep(0.01)
    write_fasta(tiny["genome"], seqs, width=80)
    os.utime(tiny["genome"], (time.time() + 5, time.time() + 5))
    args = [
        "build-dataset",
        tiny["genome"],
        tiny["tracks"],
        "-o",
        tiny["dir"] / "s",
        *GEOM,
        "-j",
        "1",
    ]
    code, _, err = run_cli(args, capsys)
    assert tiny["genome"].with_suffix(".fa.fai").read_text().startswith("chr1\t5000\t")
    # chr1 is now shorter than in the bigWigs: caught as a length mismatch, not misread.
    assert code == 2 and "5,000" in err


def test_everything_is_checked_before_coverage_is_read(tiny, capsys, monkeypatch):
    def no_reading(*args, **kwargs):
        raise AssertionError("coverage was read before the inputs were checked")

    monkeypatch.setattr(build_module, "read_values", no_reading)
    (tiny["dir"] / "bad.bed").write_text("chr1\t10\t5\n")
    for extra in (["--blacklist", tiny["dir"] / "bad.bed"], ["--split-fractions", "1,0,x"],
                  ["--valid-chroms", "chrQ"]):  # fmt: skip
        assert _bad_build(tiny, capsys, extra=extra)[0] == 2


def test_empty_train_split_is_an_error_and_empty_test_a_warning(tiny, capsys):
    code, err = _bad_build(
        tiny,
        capsys,
        extra=["--chroms", "chr2,chr3", "--valid-chroms", "chr2", "--test-chroms", "chr3"],
    )
    assert_input_error(code, err, "train split has no windows")
    code, _, err = run_cli(
        ["build-dataset", tiny["genome"], tiny["tracks"], "-o", tiny["dir"] / "f", *GEOM, "-j", "1",
         "--split-fractions", "0.98,0.01,0.01"], capsys)  # fmt: skip
    assert code == 0 and "warning" in err and "no windows" in err


def test_fraction_blocks_hold_whole_windows(tiny, capsys):
    """Blocks are at least 4 windows long, even when the target span is tiny."""
    code, _, err = run_cli(
        ["build-dataset", tiny["genome"], tiny["tracks"], "-o", tiny["dir"] / "f", "--seq-length", "400",
         "--bin-size", "8", "--target-length", "1", "-j", "1", "--split-fractions", "0.6,0.2,0.2"], capsys)  # fmt: skip
    assert code == 0, err
    store = Store(tiny["dir"] / "f")
    counts = {s: store.count(s) for s in ("train", "valid", "test")}
    assert counts["valid"] > 0 and counts["test"] > 0
    assert counts["train"] > 0.3 * sum(counts.values())


@pytest.mark.parametrize("make", ["file", "file_parent"])
def test_output_path_through_a_file(tiny, capsys, make):
    (tiny["dir"] / "afile").write_text("x")
    out = tiny["dir"] / "afile" if make == "file" else tiny["dir"] / "afile" / "sub"
    code, _, err = run_cli(
        ["build-dataset", tiny["genome"], tiny["tracks"], "-o", out, *GEOM, "--force"], capsys
    )
    assert_input_error(code, err, "-o", "is a file")


def test_latin1_tracks_file(tiny, capsys):
    (tiny["dir"] / "l1.txt").write_bytes(
        b"identifier\tfile\tdescription\nt\tplus.bw\tCAGE:H\xe9patocyte\n"
    )
    args = [
        "build-dataset",
        tiny["genome"],
        tiny["dir"] / "l1.txt",
        "-o",
        tiny["dir"] / "s",
        *GEOM,
        "-j",
        "1",
    ]
    assert run_cli(args, capsys)[0] == 0
    assert Store(tiny["dir"] / "s").tracks[0]["description"] == "CAGE:Hépatocyte"


def test_truncated_bigwig_is_one_line(tiny, capsys):
    data = (tiny["dir"] / "dense.bw").read_bytes()
    (tiny["dir"] / "cut.bw").write_bytes(data[: len(data) // 3])
    t = _tracks(tiny, dict(identifier="a", file="cut.bw"))
    assert_input_error(*_bad_build(tiny, capsys, t), "cut.bw")


def test_bigwig_with_no_data_gives_zero_targets_and_one_warning(tiny, capsys):
    """A header but no entries (e.g. a ChIP-seq track without peaks) is valid input."""
    bw = pyBigWig.open(str(tiny["dir"] / "empty.bw"), "w")
    bw.addHeader(list(tiny["sizes"].items()))
    bw.close()
    t = write_tracks(
        tiny["dir"] / "t.txt",
        [dict(identifier="dense", file="dense.bw"), dict(identifier="none", file="empty.bw")],
    )
    args = ["build-dataset", tiny["genome"], t, "-o", tiny["dir"] / "s", *GEOM, "-j", "1"]
    code, _, err = run_cli(args, capsys)
    assert code == 0, err
    assert err.count("warning:") == 1, err
    warning = " ".join(err.split("warning:")[1].split())  # rich may wrap it
    assert warning.startswith("track 'none':") and "has no data; its targets are all 0" in warning
    store = Store(tiny["dir"] / "s")
    for split in ("train", "valid", "test"):
        targets = np.asarray(store.targets(split))
        assert not targets[..., 1].any() and targets[..., 0].any()
        assert store.manifest["splits"][split]["track_max"][1] == 0
    # Bad input elsewhere: the error stays the only line.
    assert_input_error(*_bad_build(tiny, capsys, t, extra=["--valid-chroms", "chrQ"]), "chrQ")


def test_truncated_store_array_is_a_clear_input_error(tiny, capsys):
    store = build(tiny, capsys)
    path = store.path / "train" / "targets.npy"
    os.truncate(path, path.stat().st_size // 2)
    with pytest.raises(InputError, match=r"train/targets\.npy is damaged .*rebuild it"):
        store.targets("train")
    (store.path / "valid" / "sequences.npy").unlink()
    with pytest.raises(InputError, match=r"valid/sequences\.npy is missing"):
        store.sequences("valid")


# ---------------------------------------------------------------- outputs: never over inputs or other kinds


def _error_after_work(code: int, err: str, *needles: str) -> None:
    """Exit 2 with one error line (after the status lines of the work begun), no traceback."""
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 2 and len(errors) == 1 and "Traceback" not in err, err
    assert err.splitlines()[-1] == errors[0] and all(n in errors[0] for n in needles), err


def _cli_build(tiny, capsys, out, *extra, genome=None, tracks=None):
    args = ["build-dataset", genome or tiny["genome"], tracks or tiny["tracks"], "-o", out,
            *GEOM, "-j", "1", *extra]  # fmt: skip
    return run_cli(args, capsys)


def test_force_never_replaces_a_label_store(tiny, capsys):
    from gitool.data.labels import write_label_store

    codes = np.zeros((6, 10), np.uint8)
    labels_out = write_label_store(tiny["dir"] / "motifs", codes, np.zeros((6, 1), np.uint8),
                                   np.array([0, 0, 0, 0, 1, 2], np.uint8), ["A"])  # fmt: skip
    before = folder_bytes(labels_out)
    code, _, err = _cli_build(tiny, capsys, labels_out, "--force")
    assert_input_error(code, err, "-o", "not a coverage store", "--force")
    assert folder_bytes(labels_out) == before


def test_force_never_replaces_a_folder_holding_an_input(tiny, capsys):
    store = build(tiny, capsys).path
    (store / "mine.bw").write_bytes((tiny["dir"] / "plus.bw").read_bytes())
    t = write_tracks(tiny["dir"] / "in.txt", [dict(identifier="a", file="store/mine.bw")])
    code, _, err = _cli_build(tiny, capsys, store, "--force", tracks=t)
    assert_input_error(code, err, "-o", "holds", "mine.bw", "never writes over its inputs")
    assert (store / "mine.bw").exists() and (store / "manifest.yaml").exists()


def test_a_store_that_appears_during_the_build_is_kept(tiny, capsys, monkeypatch):
    out = tiny["dir"] / "out"
    real = build_module._write_windows_bed

    def another_run_finishes_first(path, *args):
        if not out.exists():
            out.mkdir()
            (out / "theirs.txt").write_text("theirs")
        return real(path, *args)

    monkeypatch.setattr(build_module, "_write_windows_bed", another_run_finishes_first)
    code, _, err = _cli_build(tiny, capsys, out)
    _error_after_work(code, err, "appeared while gitool was writing it")
    assert (out / "theirs.txt").read_text() == "theirs"
    assert not list(tiny["dir"].glob(".out.*"))


def test_stale_stage_of_a_killed_build_is_removed(tiny, capsys):
    dead = tiny["dir"] / ".store.partial-4194305"  # above Linux's largest pid: not running
    (dead / "train").mkdir(parents=True)
    (dead / "train" / "sequences.npy").write_bytes(b"half")
    build(tiny, capsys)
    assert not dead.exists()


# ---------------------------------------------------------------- the genome index


def _three_chroms_built(tiny, capsys, out):
    code, _, err = _cli_build(tiny, capsys, tiny["dir"] / out)
    assert code == 0, err
    return set(Store(tiny["dir"] / out).manifest["genome"]["chromosomes"])


def test_an_index_that_lists_fewer_sequences_is_rebuilt(tiny, capsys):
    """A .fai newer than the FASTA listing one chromosome of four used to give a
    one-chromosome store."""
    fai = tiny["genome"].with_suffix(".fa.fai")
    fai.write_text(fai.read_text().splitlines()[0] + "\n")
    os.utime(fai, (time.time() + 5, time.time() + 5))
    assert _three_chroms_built(tiny, capsys, "s") == {"chr1", "chr2", "chr3"}
    assert len(fai.read_text().splitlines()) == 4


def test_an_index_with_stale_offsets_is_rebuilt(tiny, capsys):
    """The FASTA rewritten with 80-base lines, the old .fai touched newer: used to be an
    internal ValueError."""
    write_fasta(tiny["genome"], tiny["seqs"], width=80)
    fai = tiny["genome"].with_suffix(".fa.fai")
    os.utime(fai, (time.time() + 5, time.time() + 5))
    assert _three_chroms_built(tiny, capsys, "s") == {"chr1", "chr2", "chr3"}
    store = Store(tiny["dir"] / "s")
    w = store.windows("train").iloc[0]
    np.testing.assert_array_equal(
        store.sequences("train")[0], encode(tiny["seqs"][w.chrom][w.start : w.end])
    )


def test_accession_named_chromosomes_are_all_kept(tiny, capsys):
    """GenBank/RefSeq names (no chr-style names at all): every sequence is a chromosome, as
    the help says; the status line gives the counts."""
    rng = np.random.default_rng(4)
    sizes = {"CM000663.2": 4000, "CM000664.2": 3000, "NT_187361.1": 3000}
    d = tiny["dir"]
    write_fasta(d / "acc.fa", {c: "".join(rng.choice(list("ACGT"), n)) for c, n in sizes.items()})
    write_bigwig(d / "acc.bw", sizes, {c: rng.random(n) for c, n in sizes.items()})
    t = write_tracks(d / "acc.txt", [dict(identifier="t", file="acc.bw")])
    code, _, err = _cli_build(tiny, capsys, d / "s", "--split-fractions", "0.8,0.1,0.1",
                              genome=d / "acc.fa", tracks=t)  # fmt: skip
    assert code == 0, err
    assert list(Store(d / "s").manifest["genome"]["chromosomes"]) == list(sizes)
    assert "kept 3 chromosomes (CM000663.2, CM000664.2, NT_187361.1)" in err


def test_status_line_counts_dropped_chromosomes(tiny, capsys):
    code, _, err = _cli_build(tiny, capsys, tiny["dir"] / "s")
    assert code == 0, err
    assert "kept 3 chromosomes (chr1, chr2, chr3); dropped 1 (chrM)" in err


def test_default_split_chromosomes_are_printed_when_chosen(tiny, capsys):
    code, _, err = _cli_build(tiny, capsys, tiny["dir"] / "s")
    assert code == 0, err
    store = Store(tiny["dir"] / "s")
    valid, test = (store.windows(s).chrom.unique().tolist() for s in ("valid", "test"))
    assert len(valid) == len(test) == 1
    line = " ".join(err.split())  # the console wraps long lines
    assert (
        f"split chromosomes: validation {valid[0]} (default; set --valid-chroms), "
        f"test {test[0]} (default; set --test-chroms)"
    ) in line
    code, _, err = _cli_build(tiny, capsys, tiny["dir"] / "s2", "--test-chroms", test[0])
    assert code == 0, err
    line = " ".join(err.split())
    assert f"validation {valid[0]} (default; set --valid-chroms), test {test[0]}" in line
    assert "set --test-chroms" not in line  # given, so not a default
    code, _, err = _cli_build(tiny, capsys, tiny["dir"] / "s3", "--split-fractions", "0.8,0.1,0.1")
    assert code == 0, err
    assert "split chromosomes" not in err


# ---------------------------------------------------------------- bigWigs that must not crash the build


def test_a_bigwig_that_crashes_its_reader_is_one_line(tiny, capsys, monkeypatch):
    """A reader that segfaults (as libBigWig does on some damaged headers) is a child
    process: the build names the file and exits 2."""
    from gitool.data import bigwig

    real = bigwig.bigwig_facts

    def segfault_on_dense(track, *args):
        if track.identifier == "dense":
            os.kill(os.getpid(), signal.SIGSEGV)
        return real(track, *args)

    monkeypatch.setattr(bigwig, "bigwig_facts", segfault_on_dense)
    code, err = _bad_build(tiny, capsys)
    assert_input_error(code, err, "track 'dense'", "dense.bw", "crashed the bigWig reader")


def test_a_damaged_data_block_is_one_line_naming_the_file(tiny, capsys):
    data = bytearray((tiny["dir"] / "dense.bw").read_bytes())
    middle = len(data) // 2
    data[middle : middle + 200] = b"\xff" * 200
    (tiny["dir"] / "damaged.bw").write_bytes(bytes(data))
    t = _tracks(tiny, dict(identifier="d", file="damaged.bw"))
    code, err = _bad_build(tiny, capsys, t, extra=["-j", "1"])
    _error_after_work(code, err, "track 'd'", "damaged.bw is damaged", "re-download")
    assert "bwGetOverlappingIntervalsCore" not in err


def test_a_folder_given_as_a_bigwig(tiny, capsys):
    (tiny["dir"] / "folder.bw").mkdir()
    t = _tracks(tiny, dict(identifier="a", file="folder.bw"))
    assert_input_error(*_bad_build(tiny, capsys, t), "bad.txt line 2", "is a folder")


def test_tracks_file_with_a_byte_order_mark(tiny, capsys):
    text = tiny["tracks"].read_text()
    (tiny["dir"] / "bom.txt").write_bytes(b"\xef\xbb\xbf" + text.encode())
    code, _, err = _cli_build(tiny, capsys, tiny["dir"] / "s", tracks=tiny["dir"] / "bom.txt")
    assert code == 0, err
    assert Store(tiny["dir"] / "s").tracks[0]["identifier"] == "plus"


# ---------------------------------------------------------------- damaged stores


def test_damaged_manifest_is_one_line(tiny, capsys):
    store = build(tiny, capsys).path
    (store / "manifest.yaml").write_text("format: gitool-store\nsplits: [unclosed\n  - x: {\n")
    code, _, err = run_cli(["info", store], capsys)
    assert_input_error(code, err, "manifest.yaml is damaged", "line", "rebuild the store")


def test_info_names_a_truncated_array(tiny, capsys):
    store = build(tiny, capsys).path
    path = store / "valid" / "targets.npy"
    os.truncate(path, path.stat().st_size - 10)
    code, _, err = run_cli(["info", store], capsys)
    assert_input_error(code, err, "valid/targets.npy is damaged", "rebuild it")


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda lines: lines[:-1], "holds 14 windows, but the manifest counts 15"),
        (lambda lines: [lines[0].replace("\t", "\tx", 1), *lines[1:]], "not a whole number"),
        (lambda lines: [lines[0].rsplit("\t", 1)[0], *lines[1:]], "missing or not a whole"),
    ],
    ids=["truncated", "text", "short-line"],
)
def test_info_names_a_damaged_windows_bed(tiny, capsys, edit, expected):
    """A windows.bed cut short or edited passed `gitool info` and broke attention/evaluate."""
    store = build(tiny, capsys).path
    path = store / "valid" / "windows.bed"
    lines = path.read_text().splitlines()
    assert len(lines) == 15
    path.write_text("\n".join(edit(lines)) + "\n")
    code, _, err = run_cli(["info", store], capsys)
    assert_input_error(code, err, "valid/windows.bed", expected, "rebuild")
    path.unlink()
    code, _, err = run_cli(["info", store], capsys)
    assert_input_error(code, err, "valid/windows.bed is missing", "rebuild it")


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("strand_pair", 7, "track 1 of 4: strand_pair 7 is not a track index 0-3"),
        ("strand_pair", 2, "track 1 of 4: strand_pair 2, but track 3's strand_pair is 2"),
        ("strand_pair", "1", "strand_pair '1' is not a track index"),
        ("identifier", ["a", "b"], "identifier ['a', 'b'] is not text"),
        ("identifier", "minus", "track 2 of 4: identifier 'minus' is also track 1"),
    ],
)
def test_a_hand_edited_track_in_the_manifest_is_one_line(tiny, capsys, field, value, expected):
    """Strand partners out of range or not mutual, and identifiers that are not text or
    repeat, passed `gitool info` and failed later inside training or prediction."""
    from gitool.data.store import load_yaml, write_manifest

    store = build(tiny, capsys).path
    manifest = load_yaml((store / "manifest.yaml").read_text())
    manifest["tracks"][0][field] = value
    write_manifest(manifest, store / "manifest.yaml")
    code, _, err = run_cli(["info", store], capsys)
    assert_input_error(code, err, "manifest.yaml is damaged", expected, "rebuild the store")


def test_info_describes_a_label_store(tiny, capsys):
    from gitool.data.labels import write_label_store

    rng = np.random.default_rng(0)
    path = write_label_store(tiny["dir"] / "motifs", rng.integers(0, 4, (8, 12), np.uint8),
                             rng.integers(0, 2, (8, 2), np.uint8),
                             np.array([0] * 6 + [1, 2], np.uint8), ["CTCF", "GATA1"])  # fmt: skip
    code, out, err = run_cli(["info", path], capsys)
    assert code == 0, err
    assert "label store" in out and "CTCF" in out and "GATA1" in out and "12 bp" in out
    (path / "train" / "labels.npy").write_bytes(b"\x93NUMPY")
    code, _, err = run_cli(["info", path], capsys)
    assert_input_error(code, err, "train/labels.npy is damaged")


def test_a_file_named_like_the_index_but_not_one_is_kept(tmp_path):
    from gitool.data.genome import Genome

    fasta = tmp_path / "g.fa"
    fasta.write_text(">chrI\nACGTACGTAC\n")
    notes = tmp_path / "g.fa.fai"
    notes.write_text("my precious notes\n")
    with pytest.raises(InputError, match="is not a FASTA index"):
        Genome(fasta)
    assert notes.read_text() == "my precious notes\n"
    notes.write_text("chrI\t99\t6\t10\t11\n")  # a stale index is rebuilt
    assert Genome(fasta).sizes == {"chrI": 10}


def test_an_unreadable_fasta_leaves_no_index_behind(tmp_path):
    from gitool.data.genome import Genome

    fasta = tmp_path / "dup.fa"
    fasta.write_text(">chrI\nACGT\n>chrI\nACGT\n")
    with pytest.raises(InputError, match="cannot read as FASTA"):
        Genome(fasta)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dup.fa"]


def test_untransformed_targets_per_base_are_the_bigwigs_coverage(tiny, capsys):
    """What `gitool predict --untransform` writes for a perfect model: the bigWig's per-base
    coverage averaged over each bin, for sum, mean and max tracks alike (a sum track's bin
    sum was written bin_size times too high)."""
    from gitool.data.tracks import per_base, read_tracks, untransform

    store = build(tiny, capsys)
    tracks = read_tracks(tiny["tracks"])
    windows, targets = store.windows("train"), np.asarray(store.targets("train"), np.float32)
    back = per_base(untransform(targets, tracks), tracks, 8)  # (N, 25, 4)
    for k, name in enumerate(["plus", "minus", "dense", "sparse"]):
        values = tiny["values"][name]
        for row, w in windows.iloc[:5].iterrows():
            bins = values[w.chrom][w.target_start : w.target_end].reshape(25, 8)
            observed = bins.max(1) if name == "sparse" else bins.mean(1)
            kept = observed < 10  # below the soft clips (dense: 10 / scale 0.5 = 20)
            np.testing.assert_allclose(back[row, kept, k], observed[kept], rtol=2e-3, atol=1e-3)


def test_fraction_limits_allow_exactly_the_fraction_given():
    """--max-n-frac 0.29 of a 100-bp window allows 29 N (floor(0.29 * 100) is 28)."""
    from gitool.data.build import most

    assert most(0.29, 100) == 29 and most(0.57, 100) == 57 and most(0.1, 17_712) == 1_771
    assert most(0.0, 400) == 0 and most(1.0, 400) == 400 and most(0.5, 3) == 1
