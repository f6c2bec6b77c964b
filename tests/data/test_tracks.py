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
        ("identifier\tfile\nA\tmissing.bw\n", "'missing.bw' taken from the tracks file's folder"),
        ("identifier\tfile\tscale\t\tdescription\nA\ta.bw\t1\t\tx\n", "column 4 has no name"),
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


# A Basenji/Enformer release's targets.txt: unnamed index, a genome column (organism index),
# files on the authors' cluster (HDF5 coverage, not bigWigs).
RELEASE_TARGETS = (
    "\tgenome\tidentifier\tfile\tclip\tclip_soft\tscale\tsum_stat\tstrand_pair\tdescription\n"
    "0\t0\tENCFF833POA\t/home/drk/tillage/datasets/human/dnase/encode/ENCSR000EIE/summary/coverage.w5\t32\t2\t2\tsum_sqrt\t0\tDNASE:cerebellum male adult\n"
    "1\t0\tCNhs11760+\t/home/drk/tillage/datasets/human/cage/fantom/CNhs11760/coverage+.h5\t384\t32\t1\tsum_exp\t2\tCAGE:aorta +\n"
    "2\t0\tCNhs11760-\t/home/drk/tillage/datasets/human/cage/fantom/CNhs11760/coverage-.h5\t384\t32\t1\tsum_exp\t1\tCAGE:aorta -\n"
)


def test_genome_column_is_kept(tmp_path):
    for name in ("a", "b"):
        (tmp_path / f"{name}.bw").write_bytes(b"")
    (tmp_path / "t.txt").write_text(
        "\tgenome\tidentifier\tfile\tclip\tscale\tsum_stat\tdescription\n"
        "0\t1\tA\ta.bw\t32\t2\tsum\tDNASE:x\n"
        "1\t\tB\tb.bw\t\t\tmean\tCHIP:y\n"
    )
    tracks = read_tracks(tmp_path / "t.txt")
    assert [(t.genome, t.index, t.clip, t.scale) for t in tracks] == [(1, 0, 32.0, 2.0),
                                                                       (None, 1, None, 1.0)]  # fmt: skip
    assert tracks[0].as_row()["genome"] == 1
    (tmp_path / "t.txt").write_text("identifier\tgenome\tfile\nA\thuman\ta.bw\n")
    with pytest.raises(InputError, match=r"t\.txt line 2: genome 'human' is not an integer"):
        read_tracks(tmp_path / "t.txt")


def test_basenji_hdf5_coverage_is_named_with_the_fix(tmp_path):
    (tmp_path / "targets.txt").write_text(RELEASE_TARGETS)
    with pytest.raises(InputError) as err:
        read_tracks(tmp_path / "targets.txt")
    message = str(err.value)
    assert str(tmp_path / "targets.txt") in message and "line 2" in message
    assert "coverage.w5 is Basenji HDF5 coverage, not a bigWig" in message
    assert "gitool import-basenji DIR -o data/" in message
    (tmp_path / "c.h5").write_bytes(b"")  # existing or not, an .h5 is not a bigWig
    (tmp_path / "t.txt").write_text("identifier\tfile\nA\tc.h5\n")
    with pytest.raises(InputError, match=r"t\.txt line 2: c\.h5 is Basenji HDF5 coverage"):
        read_tracks(tmp_path / "t.txt")


def test_release_table_without_checking_files(tmp_path):
    (tmp_path / "targets.txt").write_text(RELEASE_TARGETS)
    tracks = read_tracks(tmp_path / "targets.txt", check_files=False)
    assert [t.identifier for t in tracks] == ["ENCFF833POA", "CNhs11760+", "CNhs11760-"]
    first = tracks[0]
    assert first.file.endswith("ENCSR000EIE/summary/coverage.w5")  # as given
    assert (first.index, first.genome, first.clip, first.clip_soft, first.scale) == (
        0, 0, 32.0, 2.0, 2.0
    )  # fmt: skip
    assert (first.sum_stat, first.strand_pair, first.group) == ("sum_sqrt", 0, "DNASE")
    assert [t.sum_stat for t in tracks[1:]] == ["sum_exp", "sum_exp"]  # kept, not refused
    assert strand_pair_permutation(tracks).tolist() == [0, 2, 1]
    # Relative paths stay as written; a missing file column is allowed.
    (tmp_path / "t.txt").write_text("identifier\tfile\nA\tsub/a.bw\nB\t\n")
    assert [t.file for t in read_tracks(tmp_path / "t.txt", check_files=False)] == ["sub/a.bw", ""]
    (tmp_path / "t.txt").write_text("index\tidentifier\tscale\tdescription\n3\tA\t0.5\tRNA:x\n")
    (track,) = read_tracks(tmp_path / "t.txt", check_files=False)
    assert (track.index, track.file, track.scale, track.group) == (3, "", 0.5, "RNA")


@pytest.mark.parametrize(
    "text,needle",
    [
        ("identifier\nA\nA\n", "duplicate identifier 'A'"),
        ("index\tidentifier\n0\tA\n0\tB\n", "duplicate index 0"),
        ("index\tidentifier\tstrand_pair\n0\tA\t1\n1\tB\t1\n", "must name each other"),
        ("identifier\tstrand_pair\nA\t5\n", "strand_pair 5"),
        ("identifier\tclip\nA\tnan\n", "clip must be finite"),
        ("identifier\tclip_soft\nA\t-1\n", "clip_soft must be > 0"),
        ("identifier\tscale\nA\t0\n", "scale 0"),
        ("identifier\tfile\tcolor\nA\ta.w5\tred\n", "unknown column 'color'"),
        ("file\tdescription\na.w5\tx\n", "needs a 'identifier' column"),
    ],
)
def test_without_checking_files_everything_else_is_checked(tmp_path, text, needle):
    (tmp_path / "t.txt").write_text(text)
    with pytest.raises(InputError) as err:
        read_tracks(tmp_path / "t.txt", check_files=False)
    assert needle in str(err.value) and str(tmp_path / "t.txt") in str(err.value)


def test_trailing_tabs_and_home_relative_paths_are_read(tmp_path, monkeypatch):
    """A spreadsheet's trailing tab was "unknown column ''"; `~/x.bw` was taken as a folder
    named `~` beside the tracks file; an absolute path's error spoke of relative paths."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "x.bw").write_bytes(b"")
    (tmp_path / "a.bw").write_bytes(b"")
    (tmp_path / "t.txt").write_text("identifier\tfile\t\nA\ta.bw\t\nB\t~/x.bw\n")
    tracks = read_tracks(tmp_path / "t.txt")
    assert [t.file for t in tracks] == [str(tmp_path / "a.bw"), str(tmp_path / "home" / "x.bw")]
    (tmp_path / "t.txt").write_text(f"identifier\tfile\nA\t{tmp_path / 'gone.bw'}\n")
    with pytest.raises(InputError) as err:
        read_tracks(tmp_path / "t.txt")
    assert str(err.value).endswith(f"bigWig {tmp_path / 'gone.bw'} does not exist")
