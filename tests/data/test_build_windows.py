"""``gitool build-dataset --windows BED``: the exact windows of a BED (Basenji's
sequences.bed), resized around their centres, in the BED's order per split."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from gitool.data.genome import encode
from gitool.data.store import Store, store_inputs

from helpers import assert_input_error, folder_bytes, run_cli

GEOM = ["--seq-length", "400", "--bin-size", "8", "--target-length", "25"]

# chrom, start, end, split: lengths 1000, 400, 399 and 401 (resized to 400 around the
# centre; every resized start a multiple of 8, as in the tiled reference below), splits and
# chromosomes interleaved, not in genome order.
BED = [
    ("chr3", 1100, 2100, "test"),  # centre 1600 -> 1400-1800
    ("chr1", 3900, 4900, "train"),  # -> 4200-4600
    ("chr2", 2600, 3000, "valid"),  # 400 bp -> as is
    ("chr1", 300, 1300, "train"),  # -> 600-1000
    ("chr2", 100, 1100, "train"),  # a train window on chr2: labels, not chromosomes, decide
    ("chr1", 1001, 1400, "train"),  # 399 bp, centre 1200.5 -> floor((2401 - 400) / 2) = 1000
    ("chr1", 3900, 4900, "train"),  # the same window twice: kept twice
    ("chr3", 100, 1100, "valid"),  # -> 400-800
    ("chr1", 2000, 2401, "train"),  # 401 bp, centre 2200.5 -> floor((4401 - 400) / 2) = 2000
]
EXPECT = {
    "train": [("chr1", 4200), ("chr1", 600), ("chr2", 400), ("chr1", 1000), ("chr1", 4200),
              ("chr1", 2000)],
    "valid": [("chr2", 2600), ("chr3", 400)],
    "test": [("chr3", 1400)],
}  # fmt: skip


def write_bed(path, rows, extra=None):
    with open(path, "w") as handle:
        for i, row in enumerate(rows):
            handle.write("\t".join(map(str, row)) + (f"\t{extra[i]}" if extra else "") + "\n")
    return path


def build_windows(tiny, capsys, *extra, out="store", bed=None, check=True):
    bed = bed or write_bed(tiny["dir"] / "sequences.bed", BED)
    args = ["build-dataset", tiny["genome"], tiny["tracks"], "-o", tiny["dir"] / out, *GEOM,
            "-j", "1", "--windows", bed, *extra]  # fmt: skip
    code, _, err = run_cli(args, capsys)
    if check:
        assert code == 0, err
        return Store(tiny["dir"] / out), err
    return code, err


def test_windows_are_the_beds_resized_in_its_order(tiny, capsys):
    store, _ = build_windows(tiny, capsys)
    for split, expect in EXPECT.items():
        w = store.windows(split)
        assert list(zip(w.chrom, w.start, strict=True)) == expect
        assert (w.end - w.start == 400).all() and (w.target_start - w.start == 100).all()
        seqs = store.sequences(split)
        assert seqs.shape == (len(expect), 400)
        for row, (chrom, start) in enumerate(expect):
            np.testing.assert_array_equal(
                seqs[row], encode(tiny["seqs"][chrom][start : start + 400])
            )
    # Targets are those of the same windows in a tiled build (every 8 bp, all N kept).
    args = ["build-dataset", tiny["genome"], tiny["tracks"], "-o", tiny["dir"] / "ref", *GEOM,
            "-j", "1", "--stride", "8", "--valid-chroms", "chr2", "--test-chroms", "chr3",
            "--max-n-frac", "1"]  # fmt: skip
    code, _, err = run_cli(args, capsys)
    assert code == 0, err
    ref = Store(tiny["dir"] / "ref")
    rows = {}
    for split in ("train", "valid", "test"):
        w = ref.windows(split)
        for i, key in enumerate(zip(w.chrom, w.start, strict=True)):
            rows[key] = ref.targets(split)[i]
    for split, expect in EXPECT.items():
        got = store.targets(split)
        assert got.shape == (len(expect), 25, 4)
        for row, key in enumerate(expect):
            np.testing.assert_array_equal(got[row], rows[key])
    m = store.manifest
    assert [m["splits"][s]["windows"] for s in EXPECT] == [6, 2, 1]
    assert m["splits"]["train"]["chromosomes"] == ["chr1", "chr2"]
    assert m["genome"]["chromosomes"] == {"chr1": 6000, "chr2": 4000, "chr3": 3000}
    assert m["stride"] is None
    options = m["options"]
    assert options["windows"] == str((tiny["dir"] / "sequences.bed").resolve())
    assert (options["split_column"], options["max_n_frac"]) == (4, 1.0)
    # Commands that read the store never write over the windows BED.
    assert (tiny["dir"] / "sequences.bed").resolve() in [p.resolve() for p in store.sources()]
    assert (tiny["dir"] / "sequences.bed").resolve() in [
        p.resolve() for p in store_inputs(store.path)
    ]


def test_windows_build_is_byte_identical_whatever_the_workers(tiny, capsys):
    build_windows(tiny, capsys, out="a")
    build_windows(tiny, capsys, "-j", "2", out="b")
    assert folder_bytes(tiny["dir"] / "a") == folder_bytes(tiny["dir"] / "b")


def test_basenji_small_crop_of_an_enformer_window(tmp_path):
    """131,072-bp sequences.bed windows → their central 17,712 bp (start + 56,680) and the
    central 80 bins of the 896 (bins 408-487 of the target span that starts 8,192 bp in)."""
    from gitool.data.windows import Geometry, read_windows

    bed = write_bed(tmp_path / "s.bed", [("chr1", 1_000_000, 1_131_072, "train"),
                                         ("chr1", 5, 131_077, "valid")])  # fmt: skip
    got = read_windows(bed, {"chr1": 2_000_000}, 17712)
    assert got["train"].start.tolist() == [1_000_000 + 56_680]
    assert got["valid"].start.tolist() == [5 + 56_680]
    assert len(got["test"].start) == 0
    g = Geometry(17712, 128, 80)
    target_start = got["train"].start[0] + g.context_left
    assert target_start == 1_000_000 + 8_192 + 408 * 128
    assert target_start + g.target_span == 1_000_000 + 8_192 + 488 * 128


def test_n_filter_is_off_unless_asked_and_then_counted(tiny, capsys):
    # chr2 holds N at 1000-1600: the window 1000-1400 is all N.
    rows = [("chr1", 0, 400, "train"), ("chr2", 1000, 1400, "train"), ("chr1", 800, 1200, "train"),
            ("chr2", 2000, 2400, "valid"), ("chr3", 0, 400, "test")]  # fmt: skip
    bed = write_bed(tiny["dir"] / "n.bed", rows)
    store, err = build_windows(tiny, capsys, bed=bed)
    assert store.windows("train").start.tolist() == [0, 1000, 800]
    assert "warning" not in err
    assert (store.sequences("train")[1] == 4).all()  # N
    strict, err = build_windows(tiny, capsys, "--max-n-frac", "0.1", bed=bed, out="strict")
    assert "1 --windows windows dropped" in err and "--max-n-frac 0.1" in err
    w = strict.windows("train")
    assert list(zip(w.chrom, w.start, strict=True)) == [("chr1", 0), ("chr1", 800)]
    for row, (start, other) in enumerate(((0, 0), (800, 2))):
        np.testing.assert_array_equal(
            strict.sequences("train")[row], store.sequences("train")[other]
        )
        np.testing.assert_array_equal(strict.targets("train")[row], store.targets("train")[other])
        assert w.start[row] == start
    assert strict.manifest["options"]["max_n_frac"] == 0.1


def test_blacklist_drops_windows_with_a_warning(tiny, capsys):
    (tiny["dir"] / "black.bed").write_text("chr1\t4400\t4410\n")
    store, err = build_windows(tiny, capsys, "--blacklist", tiny["dir"] / "black.bed")
    assert "2 --windows windows dropped" in err and "--blacklist" in err
    train = store.windows("train")
    assert list(zip(train.chrom, train.start, strict=True)) == [
        ("chr1", 600), ("chr2", 400), ("chr1", 1000), ("chr1", 2000)
    ]  # fmt: skip


def test_split_column_names_another_column(tiny, capsys):
    rows = [(c, s, e, "x") for c, s, e, _ in BED]
    bed = write_bed(tiny["dir"] / "col5.bed", rows, extra=[r[3] for r in BED])
    store, _ = build_windows(tiny, capsys, "--split-column", "5", bed=bed)
    assert [store.count(s) for s in EXPECT] == [6, 2, 1]
    assert store.manifest["options"]["split_column"] == 5
    assert store.windows("valid").start.tolist() == [2600, 400]


def _refused(tiny, capsys, rows, *extra, name="bad.bed"):
    bed = write_bed(tiny["dir"] / name, rows)
    code, err = build_windows(tiny, capsys, *extra, bed=bed, out="out", check=False)
    assert not (tiny["dir"] / "out").exists()
    assert not list(tiny["dir"].glob(".out.*"))
    return code, err


@pytest.mark.parametrize(
    "rows,needles",
    [
        ([("chr1", 0, 400, "train"), ("chr1", 0, 100, "train")],
         ["bad.bed line 2", "chr1:0-100", "runs off chr1", "--seq-length"]),
        ([("chr1", 0, 400, "train"), ("chr3", 2700, 3000, "test")],
         ["bad.bed line 2", "chr3:2650-3050", "runs off chr3", "drop the line"]),
        ([("chr1", 0, 400, "train"), ("1", 0, 400, "train")],
         ["bad.bed line 2", "'1'", "names it 'chr1'"]),
        ([("chr1", 0, 400, "train"), ("chr7", 0, 400, "train")],
         ["bad.bed line 2", "'chr7'", "not in the genome"]),
        ([("chr1", 0, 400, "train"), ("chr1", 0, 400, "training")],
         ["bad.bed line 2", "'training'", "train, valid, test", "--split-column"]),
        ([("chr1", 0, 400)], ["bad.bed line 1", "no split label in column 4", "--split-column"]),
        ([("chr1", 500, 400, "train")], ["bad.bed line 1", "500-400", "empty"]),
        ([("chr2", 0, 400, "valid")], ["train split has no windows", "bad.bed"]),
    ],
)  # fmt: skip
def test_bad_windows_are_one_line_naming_file_and_line(tiny, capsys, rows, needles):
    assert_input_error(*_refused(tiny, capsys, rows), "--windows", *needles)


def test_windows_outside_chroms_are_refused(tiny, capsys):
    rows = [("chr1", 0, 400, "train"), ("chr2", 0, 400, "valid")]
    code, err = _refused(tiny, capsys, rows, "--chroms", "chr1,chr3")
    assert_input_error(code, err, "bad.bed line 2", "'chr2'", "--chroms")
    rows = [("chrM", 0, 400, "train")]  # dropped by default, there when asked for
    code, err = _refused(tiny, capsys, rows, "--chroms", "chr1")
    assert_input_error(code, err, "line 1", "'chrM'", "--chroms")


@pytest.mark.parametrize(
    "extra,flag",
    [
        (["--stride", "200"], "--stride"),
        (["--regions", "REGIONS"], "--regions"),
        (["--valid-chroms", "chr2"], "--valid-chroms"),
        (["--test-chroms", "chr3"], "--test-chroms"),
        (["--split-fractions", "0.8,0.1,0.1"], "--split-fractions"),
    ],
)
def test_options_that_choose_windows_exclude_windows(tiny, capsys, extra, flag):
    (tiny["dir"] / "regions.bed").write_text("chr1\t0\t100\n")
    extra = [str(tiny["dir"] / "regions.bed") if x == "REGIONS" else x for x in extra]
    code, err = _refused(tiny, capsys, BED, *extra)
    assert_input_error(code, err, "--windows and", flag, "exclude each other")


def test_split_column_needs_windows(tiny, capsys):
    out = tiny["dir"] / "out"
    args = ["build-dataset", tiny["genome"], tiny["tracks"], "-o", out, *GEOM,
            "--split-column", "5"]  # fmt: skip
    code, _, err = run_cli(args, capsys)
    assert_input_error(code, err, "--split-column", "--windows")
    assert not out.exists()


def test_force_never_replaces_a_folder_holding_the_windows_bed(tiny, capsys):
    store, _ = build_windows(tiny, capsys)
    bed = write_bed(store.path / "mine.bed", BED)
    code, err = build_windows(tiny, capsys, "--force", bed=bed, check=False)
    assert_input_error(code, err, "-o", "holds", "mine.bed")
    assert bed.exists()
    manifest = yaml.safe_load((store.path / "manifest.yaml").read_text())
    assert manifest["options"]["windows"].endswith("sequences.bed")


def test_windows_shared_across_splits_are_warned_about(tiny, capsys):
    _, err = build_windows(tiny, capsys)
    assert "share sequence" not in err  # the reference BED's splits are apart
    rows = [("chr1", 1000, 1100, "train"), ("chr1", 1100, 1200, "valid"),
            ("chr2", 100, 500, "test"), ("chr1", 3000, 3400, "test")]  # fmt: skip
    bed = write_bed(tiny["dir"] / "close.bed", rows)
    store, err = build_windows(tiny, capsys, bed=bed, out="close")
    text = " ".join(err.split())
    # resized to 400 bp, chr1:850-1250 (train) and 950-1350 (valid) share 300 bp of
    # sequence and 100 bp of target span: one window on each side
    assert "2 windows share sequence with a window of another split (2 share target bins)" in text
    assert [store.count(s) for s in ("train", "valid", "test")] == [1, 1, 2]
