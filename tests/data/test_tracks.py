"""The tracks table: both formats, relative paths, defaults, strand pairs, groups."""

from __future__ import annotations

import numpy as np
import pytest

from gitool.data.tracks import read_tracks, strand_pair_permutation
from gitool.errors import InputError


def test_basenji_format_with_unnamed_index_and_defaults(tmp_path):
    (tmp_path / "bw").mkdir()
    for name in ("a", "b", "c"):
        (tmp_path / "bw" / f"{name}.bw").write_bytes(b"")
    (tmp_path / "t.txt").write_text(
        "\tidentifier\tfile\tclip\tclip_soft\tscale\tsum_stat\tstrand_pair\tdescription\n"
        "0\tA+\tbw/a.bw\t32\t\t2\tmean\t1\tCAGE:liver +\n"
        "1\tA-\tbw/b.bw\t\t384\t\tmax\t0\tCAGE:liver -\n"
        "2\tC\tbw/c.bw\t\t\t\t\t\t\n"
    )
    tracks = read_tracks(tmp_path / "t.txt")
    assert [t.identifier for t in tracks] == ["A+", "A-", "C"]
    assert tracks[0].file == str((tmp_path / "bw" / "a.bw").resolve())
    assert (tracks[0].clip, tracks[0].clip_soft, tracks[0].scale, tracks[0].sum_stat) == (
        32.0,
        None,
        2.0,
        "mean",
    )
    assert (tracks[1].clip, tracks[1].clip_soft, tracks[1].scale) == (None, 384.0, 1.0)
    c = tracks[2]
    assert (c.sum_stat, c.scale, c.strand_pair, c.description, c.clip) == ("sum", 1.0, 2, "C", None)
    assert [t.group for t in tracks] == ["CAGE", "CAGE", "other"]
    assert strand_pair_permutation(tracks).tolist() == [1, 0, 2]


def test_two_column_format_resolves_against_tracks_folder(tmp_path, monkeypatch):
    (tmp_path / "x.bw").write_bytes(b"")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "y.bw").write_bytes(b"")
    (tmp_path / "t.tsv").write_text("x\tx.bw\ny\tsub/y.bw\n")
    monkeypatch.chdir("/")  # resolution must not depend on the working directory
    tracks = read_tracks(tmp_path / "t.tsv")
    assert [(t.identifier, t.file) for t in tracks] == [
        ("x", str((tmp_path / "x.bw").resolve())),
        ("y", str((tmp_path / "sub" / "y.bw").resolve())),
    ]
    assert all(t.sum_stat == "sum" and t.strand_pair == t.index for t in tracks)


def test_groups_follow_description_prefix(tmp_path):
    names = ["DNASE:x", "ATAC:y", "CHIP:H3K27ac:z", "CAGE:w", "RNA:v", "Hi-C", "chip:lower"]
    for i in range(len(names)):
        (tmp_path / f"{i}.bw").write_bytes(b"")
    (tmp_path / "t.txt").write_text(
        "identifier\tfile\tdescription\n"
        + "".join(f"t{i}\t{i}.bw\t{d}\n" for i, d in enumerate(names))
    )
    assert [t.group for t in read_tracks(tmp_path / "t.txt")] == [
        "DNASE", "ATAC", "CHIP", "CAGE", "RNA", "other", "CHIP",
    ]  # fmt: skip


def test_strand_pair_by_index_value_not_position(tmp_path):
    """A subset of a bigger targets file keeps its own index numbers."""
    for name in ("p", "m"):
        (tmp_path / f"{name}.bw").write_bytes(b"")
    (tmp_path / "t.txt").write_text(
        "index\tidentifier\tfile\tstrand_pair\n10\tp\tp.bw\t11\n11\tm\tm.bw\t10\n"
    )
    assert strand_pair_permutation(read_tracks(tmp_path / "t.txt")).tolist() == [1, 0]


@pytest.mark.parametrize(
    "text,needle",
    [
        ("identifier\tfile\nA\ta.bw\nA\ta.bw\n", "duplicate identifier 'A'"),
        ("identifier\tfile\tsum_stat\nA\ta.bw\tmedian\n", "unknown sum_stat 'median'"),
        ("identifier\tfile\tstrand_pair\nA\ta.bw\t5\n", "strand_pair 5"),
        (
            "index\tidentifier\tfile\tstrand_pair\n0\tA\ta.bw\t1\n1\tB\ta.bw\t1\n",
            "must name each other",
        ),
        ("identifier\tfile\nA\ta.bw\textra\n", "line 2"),
        ("identifier\tfile\tscale\nA\ta.bw\tbig\n", "scale 'big' is not a number"),
        ("identifier\tfile\tscale\nA\ta.bw\tnan\n", "line 2: scale must be finite, got 'nan'"),
        ("identifier\tfile\tclip\nA\ta.bw\tNaN\n", "line 2: clip must be finite, got 'NaN'"),
        ("identifier\tfile\tclip_soft\nA\ta.bw\t-inf\n", "clip_soft must be finite"),
        ("identifier\tfile\tsumstat\nA\ta.bw\tsum\n", "unknown column 'sumstat'"),
        ("A\ta.bw\tthird\n", "line 1"),
        ("identifier\tfile\nA\tmissing.bw\n", "does not exist"),
        ("", "no tracks"),
    ],
)
def test_bad_tracks_files_name_line_and_fix(tmp_path, text, needle):
    (tmp_path / "a.bw").write_bytes(b"")
    (tmp_path / "t.txt").write_text(text)
    with pytest.raises(InputError) as err:
        read_tracks(tmp_path / "t.txt")
    assert needle in str(err.value)
    assert str(tmp_path / "t.txt") in str(err.value)


def test_permutation_is_an_involution(tmp_path):
    for i in range(4):
        (tmp_path / f"{i}.bw").write_bytes(b"")
    (tmp_path / "t.txt").write_text(
        "index\tidentifier\tfile\tstrand_pair\n0\ta\t0.bw\t2\n1\tb\t1.bw\t1\n2\tc\t2.bw\t0\n3\td\t3.bw\t3\n"
    )
    perm = strand_pair_permutation(read_tracks(tmp_path / "t.txt"))
    assert perm.tolist() == [2, 1, 0, 3]
    np.testing.assert_array_equal(perm[perm], np.arange(4))
