"""Interval arithmetic, BED reading, tiling and chromosome selection."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from gitool.data.genome import select_chroms
from gitool.data.windows import (
    Contig,
    Geometry,
    contigs_by_fraction,
    default_split_chroms,
    merge_intervals,
    overlap_bp,
    read_bed,
    tile_contig,
)
from gitool.errors import InputError


def test_merge_intervals_merges_overlaps_and_touching():
    iv = np.array([[50, 60], [0, 10], [5, 20], [20, 25], [30, 40]])
    np.testing.assert_array_equal(merge_intervals(iv), [[0, 25], [30, 40], [50, 60]])


def test_overlap_bp_matches_brute_force():
    rng = np.random.default_rng(0)
    starts = rng.integers(0, 900, 300)
    iv = np.sort(rng.integers(0, 1000, (40, 2)), axis=1)
    iv = iv[iv[:, 1] > iv[:, 0]]
    merged = merge_intervals(iv)
    mask = np.zeros(1100, bool)
    for s, e in merged:
        mask[s:e] = True
    lengths = rng.integers(1, 200, 300)
    got = overlap_bp(starts, starts + lengths, merged)
    expect = [mask[s : s + n].sum() for s, n in zip(starts, lengths, strict=True)]
    np.testing.assert_array_equal(got, expect)


def test_read_bed_plain_or_gzip(tmp_path):
    text = b"track name=x\nchr1\t100\t200\nchr1 150 300\nchr2\t0\t5\n"
    (tmp_path / "a.bed").write_bytes(text)
    (tmp_path / "a.bed.gz").write_bytes(gzip.compress(text))
    (tmp_path / "b.bed").write_bytes(gzip.compress(text))  # gzip found by content, not name
    sizes = {"chr1": 1000, "chr2": 10}
    for name in ("a.bed", "a.bed.gz", "b.bed"):
        got = read_bed(tmp_path / name, sizes, "blacklist")
        assert {c: iv.tolist() for c, iv in got.items()} == {"chr1": [[100, 300]], "chr2": [[0, 5]]}
    (tmp_path / "cut.bed.gz").write_bytes(gzip.compress(text)[:-12])  # an interrupted download
    message = r"blacklist \S*cut\.bed\.gz: damaged gzip file .*gzip -t"
    with pytest.raises(InputError, match=message):
        read_bed(tmp_path / "cut.bed.gz", sizes, "blacklist")


def test_tile_basenji_small_geometry():
    g = Geometry(17712, 128, 80)
    assert (g.target_span, g.context_left, g.context_right) == (10240, 3736, 3736)
    starts = tile_contig(Contig("chr1", 0, 100_000, "train"), g, g.target_span)
    assert starts[0] == 3736
    assert (starts - 3736 + 17712 <= 100_000).all() and starts[-1] + 10240 + 3736 + 10240 > 100_000
    odd = Geometry(1001, 10, 50)  # 501 bp of context: 250 left, 251 right
    assert (odd.context_left, odd.context_right) == (250, 251)
    assert tile_contig(Contig("c", 0, 1000, "train"), odd, 500).size == 0


def test_default_split_chroms():
    sizes = {"chr1": 9, "chr8": 1, "chr9": 1}
    assert default_split_chroms(list(sizes), sizes, [], []) == (["chr8"], ["chr9"])
    ensembl = {"1": 9, "8": 1, "9": 1}
    assert default_split_chroms(list(ensembl), ensembl, [], []) == (["8"], ["9"])
    sizes = {"a": 1000, "b": 60, "c": 45, "d": 300}  # 5% of 1405 = 70: b nearest, then c
    assert default_split_chroms(list(sizes), sizes, [], []) == (["c"], ["b"])
    # Only one given: the other is picked from the rest, one is left for training.
    assert default_split_chroms(["a", "b", "c"], sizes, ["b"], []) == (["b"], ["c"])
    assert default_split_chroms(["a", "b", "c"], sizes, [], ["a"]) == (["b"], ["a"])
    with pytest.raises(InputError, match="pass split_fractions"):
        default_split_chroms(["a", "b"], sizes, [], [])
    with pytest.raises(InputError, match="keep one for training"):
        default_split_chroms(["a", "b"], sizes, ["a"], [])


def test_fraction_blocks_are_exact_and_merged():
    sizes = {"a": 1000, "b": 600}
    contigs = contigs_by_fraction(["a", "b"], sizes, (0.5, 0.25, 0.25), 100, seed=0)
    per_split = {
        s: sum(c.end - c.start for c in contigs if c.split == s) for s in ("train", "valid", "test")
    }
    assert per_split == {"train": 800, "valid": 400, "test": 400}
    for a, b in zip(contigs, contigs[1:], strict=False):
        assert not (a.chrom == b.chrom and a.split == b.split and a.end == b.start)


def test_select_chroms_defaults_and_patterns():
    human = [
        "chr1",
        "chr2",
        "chr10",
        "chrX",
        "chrY",
        "chrM",
        "chr1_KI270706v1_random",
        "chrUn_GL000195v1",
        "chr6_GL000251v2_alt",
        "chrEBV",
        "HLA-A*01:01:01:01",  # GRCh38's full analysis set (plus decoy and HLA)
        "HLA-DRB1*15:01:01:01",
        "chr22_KI270879v1_alt",
        "chrUn_JTFH01000001v1_decoy",
    ]
    assert select_chroms(human, None) == ["chr1", "chr2", "chr10", "chrX", "chrY"]
    assert select_chroms(human, "chr*") == ["chr1", "chr2", "chr10", "chrX", "chrY"]
    assert select_chroms(human, "HLA-A*01:01:01:01") == ["HLA-A*01:01:01:01"]  # named: kept
    assert select_chroms(human, "chr1,chrM") == ["chr1", "chrM"]  # named explicitly: kept
    assert select_chroms(human, "all") == human
    yeast = ["chrI", "chrII", "chrXVI", "chrM"]
    assert select_chroms(yeast, None) == ["chrI", "chrII", "chrXVI"]
    ensembl = ["1", "2", "X", "MT", "KI270728.1"]
    assert select_chroms(ensembl, None) == ["1", "2", "X"]
    fly = ["chr2L", "chr2R", "chr3L", "chr4", "chrX", "chrY", "chrM", "chrUn_DS483562v1"]
    assert select_chroms(fly, None) == ["chr2L", "chr2R", "chr3L", "chr4", "chrX", "chrY"]
    chicken = ["chr1", "chrZ", "chrW", "chrMT"]
    assert select_chroms(chicken, None) == ["chr1", "chrZ", "chrW"]
    with pytest.raises(InputError, match="chr99"):
        select_chroms(human, "chr1,chr99")


def test_resized_window_rounds_a_half_base_centre_down():
    from gitool.data.windows import resized_start

    assert resized_start(1000, 2000, 400) == 1300  # centre 1500 stays the centre
    assert resized_start(1001, 1400, 400) == 1000  # centre 1200.5 -> window 1000-1400
    assert resized_start(1000, 1401, 400) == 1000  # centre 1200.5 -> window 1000-1400
    assert resized_start(0, 131_072, 17_712) == 56_680  # Enformer window -> BasenjiSmall
    assert resized_start(0, 1, 400) == -200  # floor, also below 0 (refused by the reader)
