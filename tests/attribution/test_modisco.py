"""``gitool modisco`` on synthetic attribution files: planted REB1 instances must come back
as a TF-MoDISco pattern whose best Tomtom match is JASPAR's REB1 (MA0363.3).

The first TF-MoDISco and Tomtom calls of a fresh install compile numba kernels (about 15 s
and 40 s, cached on disk afterwards); later runs take a few seconds each.
"""

from __future__ import annotations

import errno
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest

from gitool.attribution.modisco import (
    TSV_COLUMNS,
    Attributions,
    crop,
    is_modisco_output,
    load_attributions,
    run_modisco,
)
from gitool.attribution.motif_db import load_builtin_database, load_motif_database
from gitool.config.modisco import ModiscoOptions
from gitool.errors import InputError
from gitool.interpret.motifs import format_jaspar, log_odds, sample_instances

from helpers import assert_input_error, run_cli

N_WINDOWS, LENGTH, TARGET_START, TARGET_LENGTH = 300, 460, 30, 400
FAST_OPTIONS = {"leiden_runs": 2, "sliding_window": 15, "flank": 5, "seqlet_fdr": 0.05}
FAST = ["--leiden-runs", "2", "--sliding-window", "15", "--flank", "5", "--seqlet-fdr", "0.05"]


def builtin(name: str):
    return next(m for m in load_builtin_database().motifs if m.name == name)


def synthetic(path: Path, n: int = N_WINDOWS, plant: bool = True, seed: int = 0) -> dict:
    """A `gitool attribute`-style .npz: random sequence, REB1 instances (70% of windows,
    either strand, inside the target span) carrying PWM log-odds contributions, small noise
    elsewhere; track ``t1`` is noise only. Returns the planted instances' genome spans."""
    rng = np.random.default_rng(seed)
    motif = builtin("REB1")
    weights = log_odds(motif).astype(np.float32)
    codes = rng.integers(0, 4, (n, LENGTH)).astype(np.uint8)
    hyp = rng.normal(0, 0.02, (n, 2, LENGTH, 4)).astype(np.float32)
    starts = np.arange(n, dtype=np.int64) * 1000 + 5000
    planted = []
    instances = sample_instances(motif, n, rng)
    for i in range(n):
        if not plant or rng.random() > 0.7:
            continue
        s = int(rng.integers(TARGET_START + 20, TARGET_START + TARGET_LENGTH - 40))
        site, w = instances[i], weights
        if rng.random() < 0.5:  # reverse strand
            site, w = (3 - site)[::-1], weights[::-1, ::-1]
        codes[i, s : s + motif.length] = site
        hyp[i, 0, s : s + motif.length] = 0.3 * w
        planted.append((i, int(starts[i]) + s, int(starts[i]) + s + motif.length))
    np.savez_compressed(
        path,
        hypothetical=hyp,
        sequence=codes,
        tracks=np.array(["t0", "t1"]),
        name=np.array([f"w{i}" for i in range(n)]),
        chrom=np.array(["chrI"] * n),
        start=starts,
        method=np.array("integrated_gradients"),
        target_start=np.full(n, TARGET_START, dtype=np.int64),
        target_length_bp=np.int64(TARGET_LENGTH),
    )
    return {"planted": planted}


@pytest.fixture(scope="module")
def attr_file(tmp_path_factory) -> tuple[Path, dict]:
    path = tmp_path_factory.mktemp("attr") / "attr.npz"
    return path, synthetic(path)


@pytest.fixture(scope="module")
def result(attr_file, tmp_path_factory):
    """One run of the library (module-wide: TF-MoDISco takes seconds); the CLI runs below."""
    path, truth = attr_file
    out = tmp_path_factory.mktemp("run") / "modisco"
    summary = run_modisco(
        ModiscoOptions(attributions=str(path), out=str(out), track="t0", **FAST_OPTIONS)
    )
    return out, truth, summary


def test_finds_planted_reb1(result):
    out, _, summary = result
    table = pd.read_csv(out / "motifs.tsv", sep="\t")
    assert list(table.columns) == list(TSV_COLUMNS)
    top = table.iloc[0]
    assert top["pattern"] == "pos_patterns.pattern_0" and top["sign"] == "+"
    assert top["match_name"] == "REB1" and top["match_id"] == "MA0363.3", table
    assert top["q_value"] < 0.05 and top["p_value"] <= top["q_value"]
    assert top["orientation"] in "+-"
    # nothing else was planted: no pattern matches the unrelated yeast factors
    for rank in ("match", "match2", "match3"):
        hits = table[table[f"{rank}_name"].isin(["ABF1", "RAP1"])]
        column = "q_value" if rank == "match" else f"{rank}_q_value"
        assert (hits[column] >= 0.05).all(), table
    assert summary.n_windows == N_WINDOWS and summary.width == TARGET_LENGTH
    assert summary.modisco_seconds > 0 and summary.n_matched >= 1


def test_h5_logos_report_and_seqlets(result):
    out, truth, _ = result
    table = pd.read_csv(out / "motifs.tsv", sep="\t")
    with h5py.File(out / "modisco.h5", "r") as h5:
        names = [f"{g}.{p}" for g in ("pos_patterns", "neg_patterns") if g in h5 for p in h5[g]]
        assert sorted(names) == sorted(table["pattern"])
        seqlets = h5["pos_patterns/pattern_0/seqlets"]
        assert int(seqlets["n_seqlets"][0]) == table.iloc[0]["n_seqlets"]
        assert h5.attrs["window_size"] == TARGET_LENGTH
    for logo in table["logo"]:
        assert (out / logo).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "MA0363.3" in (out / "report.html").read_text()
    assert is_modisco_output(out)
    # seqlets in genome coordinates: those of the REB1 pattern cover planted instances
    spans = pd.read_csv(out / "seqlets.tsv", sep="\t")
    reb1 = spans[spans["pattern"] == "pos_patterns.pattern_0"]
    planted = {i: (s, e) for i, s, e in truth["planted"]}
    covered = [
        row.window in planted
        and row.start <= planted[row.window][0]
        and planted[row.window][1] <= row.end + 2
        for row in reb1.itertuples()
    ]
    assert np.mean(covered) > 0.8


def test_existing_output_refused_then_forced(result, attr_file, tmp_path, capsys):
    out, _, _ = result
    path, _ = attr_file
    code, _, err = run_cli(["modisco", path, "--track", "t0", "-o", out], capsys)
    assert_input_error(code, err, "-o", "already exists", "--force")
    # --force replaces an earlier output; a motif file and --window this time
    motifs = tmp_path / "fungi.jaspar"
    motifs.write_text(format_jaspar(list(load_builtin_database().motifs)))
    fresh = tmp_path / "again"
    code, _, err = run_cli(
        ["modisco", path, "--track", "0", "-o", fresh, "--window", "200", "--motifs", motifs,
         *FAST],
        capsys,
    )  # fmt: skip
    assert code == 0, err
    assert "TF-MoDISco" in err and "REB1" in err and "wrote" in err
    table = pd.read_csv(fresh / "motifs.tsv", sep="\t")
    assert table.iloc[0]["match_name"] == "REB1" and table.iloc[0]["q_value"] < 0.05
    with h5py.File(fresh / "modisco.h5") as h5:
        assert h5.attrs["window_size"] == 200
    again = ["modisco", path, "--track", "t0", "-o", fresh, "--force", "--max-seqlets", "150",
             *FAST]  # fmt: skip
    with open(fresh / "report.html", "a") as handle:  # the user's notes in the report
        handle.write("<p>mine</p>")
    code, _, err = run_cli(again, capsys)
    assert_input_error(code, err, "also holds report.html", "changed since", "--force")
    assert (fresh / "report.html").read_text().endswith("<p>mine</p>")
    (fresh / "report.html").unlink()  # a file taken out of it: the rest is gitool's
    code, _, err = run_cli(again, capsys)
    assert code == 0, err
    assert is_modisco_output(fresh)
    assert not list(tmp_path.glob(".again.*"))


def _write(path: Path, **arrays) -> Path:
    np.savez_compressed(path, **arrays)
    return path


def test_bad_inputs_one_line(attr_file, tmp_path, capsys):
    path, _ = attr_file
    out = tmp_path / "out"
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"not a zip file at all")  # numpy's own error: pickle advice
    cut = tmp_path / "cut.npz"
    cut.write_bytes(path.read_bytes()[:200])
    nokeys = _write(tmp_path / "nokeys.npz", hypothetical=np.zeros((2, 1, 50, 4), np.float32))
    badmotif = tmp_path / "bad.meme"
    badmotif.write_text("hello\n")
    cases = [
        (["modisco", tmp_path / "missing.npz", "-o", out], ("ATTRIBUTIONS", "no such file")),
        (["modisco", garbage, "-o", out], ("ATTRIBUTIONS", "garbage.npz is not an .npz archive")),
        (["modisco", cut, "-o", out], ("ATTRIBUTIONS", "cut.npz: not a readable .npz")),
        (["modisco", nokeys, "-o", out], ("ATTRIBUTIONS", "lacks sequence")),
        (["modisco", path, "-o", out], ("--track", "2 tracks", "t0, t1")),
        (["modisco", path, "--track", "t9", "-o", out], ("--track", "'t9'", "t0, t1")),
        (["modisco", path, "--track", "t0", "--window", "1000", "-o", out],
         ("--window", "1000 bp", "460")),
        (["modisco", path, "--track", "t0", "--window", "5", "-o", out], ("--window", ">= 10")),
        (["modisco", path, "--track", "t0", "--motifs", badmotif, "-o", out],
         ("--motifs", "bad.meme", "not a JASPAR")),
        (["modisco", path, "--track", "t0", "--motifs", tmp_path / "no.meme", "-o", out],
         ("--motifs", "no such motif file")),
    ]  # fmt: skip
    for args, needles in cases:
        code, _, err = run_cli(args, capsys)
        assert_input_error(code, err, *needles)
        assert "pickle" not in err
        assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]


def test_no_seqlets_says_what_to_try(tmp_path, capsys):
    path = tmp_path / "noise.npz"
    synthetic(path, n=40, plant=False)
    out = tmp_path / "out"
    code, _, err = run_cli(["modisco", path, "--track", "t0", "-o", out, *FAST], capsys)
    assert_input_error(code, err, "ATTRIBUTIONS", "no seqlets", "--window", "more windows")
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]


def test_zero_contributions_refused(tmp_path, capsys):
    path = tmp_path / "zero.npz"
    n = 5
    _write(
        path, hypothetical=np.zeros((n, 1, 100, 4), np.float32),
        sequence=np.zeros((n, 100), np.uint8), tracks=np.array(["a"]),
        name=np.array(["x"] * n), chrom=np.array(["chrI"] * n), start=np.zeros(n, np.int64),
        target_start=np.zeros(n, np.int64), target_length_bp=np.int64(100),
    )  # fmt: skip
    code, _, err = run_cli(["modisco", path, "-o", tmp_path / "o"], capsys)
    assert_input_error(code, err, "ATTRIBUTIONS", "every observed contribution")


def test_crop_centres_window_and_clips_at_edges():
    n, length = 3, 100
    rng = np.random.default_rng(1)
    attr = Attributions(
        path=Path("x.npz"), track="t", hypothetical=rng.normal(size=(n, length, 4)),
        codes=np.full((n, length), 4, np.uint8), names=np.array(["a", "b", "c"]),
        chrom=np.array(["c"] * n), start=np.zeros(n, np.int64),
        target_start=np.array([0, 40, 80]), target_length=20,
    )  # fmt: skip
    whole = crop(attr)
    assert whole.width == 20 and list(whole.offsets) == [0, 40, 80]
    assert not whole.one_hot.any()  # N -> all-zero rows
    np.testing.assert_array_equal(whole.hypothetical[1], attr.hypothetical[1, 40:60])
    wide = crop(attr, 50)
    assert list(wide.offsets) == [0, 25, 50]  # centres 10, 50, 90; clipped to [0, 50]
    with pytest.raises(InputError) as err:
        crop(attr, 101)
    assert err.value.field == "window"


def test_a_window_crop_centres_on_the_bins_the_target_summed(tmp_path):
    """`attribute --bins 3` (or a short BED region's own bins) then `modisco --window`: the
    crop is centred on those bins, not on the middle of the target span."""
    n, length = 2, 400
    rng = np.random.default_rng(3)
    mask = np.zeros((n, 25), dtype=bool)
    mask[0, 3] = True  # --bins 3: bp 24-32 of the target span
    mask[1, :5] = True  # a 40-bp region's own bins: bp 0-40
    arrays = dict(
        hypothetical=rng.normal(size=(n, 1, length, 4)).astype(np.float32),
        sequence=rng.integers(0, 4, (n, length)).astype(np.uint8), tracks=np.array(["t"]),
        name=np.array(["a", "b"]), chrom=np.array(["c", "c"]), start=np.zeros(n, np.int64),
        target_start=np.full(n, 100, np.int64), target_length_bp=np.int64(200),
    )  # fmt: skip
    path = _write(tmp_path / "a.npz", **arrays, target_mask=mask, bin_size=np.int64(8))
    assert list(crop(load_attributions(path), 10).offsets) == [123, 115]  # centres 128, 120
    older = _write(tmp_path / "old.npz", **arrays)  # a file without target_mask
    assert list(crop(load_attributions(older), 10).offsets) == [195, 195]


def test_builtin_database_has_example_motifs():
    db = load_motif_database("builtin")
    ids = {m.matrix_id: m.name for m in db.motifs}
    assert len(db) == 178
    assert ids["MA0363.3"] == "REB1" and ids["MA0265.3"] == "ABF1" and ids["MA0359.3"] == "RAP1"
    assert all(p.shape[0] == 4 for p in db.probability_matrices())


def test_a_full_disk_is_one_line_naming_the_output_and_leaves_nothing(
    result, attr_file, tmp_path, capsys, monkeypatch
):
    """HDF5 writing modisco.h5 on a full disk crashed the process (a segmentation fault
    after thousands of error lines) and left the staging folder: the file is built in
    memory and written by Python, whose full-disk error names the output."""
    out, _, _ = result
    with h5py.File(out / "modisco.h5") as h5:  # what was built in memory: readable, complete
        assert "pos_patterns" in h5 and h5.attrs["window_size"] > 0
    path, _ = attr_file
    write_bytes = Path.write_bytes

    def full(self, data):
        if self.name == "modisco.h5":
            raise OSError(errno.ENOSPC, "No space left on device")
        return write_bytes(self, data)

    monkeypatch.setattr(Path, "write_bytes", full)
    code, _, err = run_cli(["modisco", path, "--track", "t0", "-o", tmp_path / "m", *FAST], capsys)
    assert_input_error(code, err, f"{tmp_path / 'm'}: no space left on the device")
    assert list(tmp_path.iterdir()) == []
