"""``gitool quickstart`` end to end on the bundled example data, and its input errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyBigWig
import pytest
import torch
import yaml

from gitool.quickstart import find_example_data

from helpers import assert_input_error, run_cli

REPO = Path(__file__).resolve().parents[1]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_quickstart_end_to_end(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the report shows paths relative to the working folder
    threads = torch.get_num_threads()
    torch.set_num_threads(2)  # training lowers it to 1 (a core per loader worker)
    try:
        code, out, err = run_cli(["quickstart", "-o", "qs", "--steps", "3"], capsys)
        assert torch.get_num_threads() == 2  # ... and the quickstart puts it back
    finally:
        torch.set_num_threads(threads)
    assert code == 0, err
    qs = tmp_path / "qs"
    # the steps' defaults name the options of the commands they are, not Python keywords
    assert "set --valid-chroms)" in err and "--batch-size to change" in err
    assert "valid_chroms" not in err and "batch_size" not in err

    # 1. the store
    manifest = yaml.safe_load((qs / "data" / "manifest.yaml").read_text())
    assert manifest["n_tracks"] == 7
    assert (manifest["seq_length"], manifest["bin_size"], manifest["target_length"]) == (
        17712,
        128,
        80,
    )
    n_test = np.load(qs / "data" / "test" / "targets.npy", mmap_mode="r").shape[0]
    assert n_test > 0

    # 2. both runs trained for --steps and left checkpoints that load
    for name in ("swin", "cnn-maxpool"):
        run = qs / "runs" / name
        ckpt = torch.load(run / "checkpoints" / "last.pt", weights_only=True, map_location="cpu")
        assert ckpt["step"] == 3
        assert (run / "checkpoints" / "best.pt").is_file()
        assert yaml.safe_load((run / "config.yaml").read_text())["max_steps"] == 3

    # 3. evaluation: one row per track, finite Pearson in [-1, 1], both models in the summary
    tracks = pd.read_csv(qs / "eval" / "test.tsv", sep="\t")
    assert len(tracks) == 7 and list(tracks["index"]) == list(range(7))
    assert np.isfinite(tracks["pearson"]).all()
    assert tracks["pearson"].between(-1, 1).all()
    summary = pd.read_csv(qs / "eval" / "test.summary.tsv", sep="\t", index_col=0)
    assert list(summary.index) == ["swin", "cnn-maxpool"]
    for png in ("test.window0.png", "test.compare.cnn-maxpool.png"):
        assert (qs / "eval" / png).read_bytes()[:8] == PNG_MAGIC
    assert len(pd.read_csv(qs / "eval" / "test.compare.cnn-maxpool.tsv", sep="\t")) == 7
    table_rows = [line for line in out.splitlines() if line.startswith("│ cnn-maxpool")]
    assert "OVERALL" in out and len(table_rows) == 1

    # 4. predictions: one bigWig per track with finite, non-negative values over each region
    regions = pd.read_csv(
        REPO / "example_data" / "regions.bed", sep="\t", header=None, usecols=[0, 1, 2]
    )
    bigwigs = sorted((qs / "predictions").glob("*.bw"))
    assert {p.stem for p in bigwigs} == set(tracks["identifier"])
    for path in bigwigs:
        bw = pyBigWig.open(str(path))
        try:
            for chrom, start, end in regions.itertuples(index=False):
                values = np.asarray(bw.values(chrom, int(start), int(end)))
                assert np.isfinite(values).all(), (path, chrom, start)
                assert (values >= 0).all()
        finally:
            bw.close()

    # 5. attention of one test window: rows sum to 1, heatmaps are PNGs
    index = json.loads((qs / "attention" / "index.json").read_text())
    assert len(index["windows"]) == 1
    with np.load(qs / "attention" / index["windows"][0]["file"]) as archive:
        keys = [k for k in archive.files if k.endswith("/weights")]
        assert keys
        for key in keys:
            sums = archive[key].astype(np.float64).sum(-1)  # over keys
            record = key.removesuffix("/weights")
            if f"{record}/token_index" in archive.files:  # windowed: (windows, heads, slots)
                real = archive[f"{record}/token_index"] >= 0  # -1: padding, not a query
                sums = sums.transpose(0, 2, 1)[real]
            assert sums.size
            np.testing.assert_allclose(sums, 1.0, atol=1e-4)
    plots = sorted((qs / "attention" / "plots").glob("*.png"))
    assert plots
    for png in plots:
        assert png.read_bytes()[:8] == PNG_MAGIC

    # 6. the report says where things are and what to run next (real commands on real paths)
    assert "Next, try:" in out
    for command in ("gitool info qs/data", "gitool evaluate -m qs/runs/swin", "gitool predict"):
        assert command in out, out
    for step in range(1, 7):
        assert f"quickstart {step}/6" in err


def test_existing_folder_needs_force_and_force_only_a_quickstart_folder(tmp_path, capsys):
    out = tmp_path / "qs"
    (out / "data").mkdir(parents=True)
    (out / "data" / "mine.txt").write_text("mine")
    (out / "notes.txt").write_text("mine")
    # A folder of the user's own files is not the quickstart's to replace, even with --force
    # (and the first refusal says so, rather than suggesting a --force that would not do).
    for force in ([], ["--force"]):
        code, _, err = run_cli(["quickstart", "-o", out, *force], capsys)
        assert_input_error(code, err, "not a folder made by gitool quickstart", "even with --force")
        assert "pass --force" not in err
    assert sorted(p.name for p in out.rglob("*")) == ["data", "mine.txt", "notes.txt"]


def test_never_writes_into_the_example_data(tmp_path, capsys):
    for out in (REPO / "example_data", REPO / "example_data" / "qs", REPO):
        for force in ([], ["--force"]):
            code, _, err = run_cli(["quickstart", "-o", out, *force], capsys)
            assert code == 2 and len(err.strip().splitlines()) == 1, err
            assert f"-o {out}" in err
    assert not (REPO / "example_data" / "qs").exists()


def test_bad_steps_and_example_data(tmp_path, capsys):
    code, _, err = run_cli(["quickstart", "-o", tmp_path / "a", "--steps", "0"], capsys)
    assert_input_error(code, err, "--steps must be >= 1, got 0")
    code, _, err = run_cli(
        ["quickstart", "-o", tmp_path / "b", "--example-data", tmp_path / "nowhere"], capsys
    )
    assert_input_error(code, err, "--example-data", "genome.fa.gz")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_example_data_found_beside_the_package_or_given():
    folder, workflows = find_example_data()
    assert folder == REPO / "example_data" and workflows == REPO / "workflows"
    assert find_example_data(REPO) == (folder, workflows)
    assert find_example_data(REPO / "example_data") == (folder, workflows)


def test_a_failing_step_is_named(tmp_path, capsys, monkeypatch):
    from gitool.errors import InputError

    def broken(*args, **kwargs):
        raise InputError("no room")

    monkeypatch.setattr("gitool.data.build.build_store", broken)
    code, _, err = run_cli(["quickstart", "-q", "-o", tmp_path / "qs"], capsys)
    assert_input_error(
        code, err, "quickstart step 1/6 (build the training store) failed", "no room"
    )
    assert not (tmp_path / "qs").exists()  # no half-made quickstart folder


def test_a_steps_message_names_the_steps_own_options_and_arguments(tmp_path, capsys, monkeypatch):
    from gitool.errors import InputError, opt

    def broken(*args, **kwargs):  # a message naming build-dataset's argument and an option
        raise InputError(f"{opt('genome')} and {opt('valid_chroms')} and {opt('out')} clash")

    monkeypatch.setattr("gitool.data.build.build_store", broken)
    code, _, err = run_cli(["quickstart", "-q", "-o", tmp_path / "qs"], capsys)
    assert_input_error(code, err, "GENOME and --valid-chroms and -o clash")

    # a later step names its own command's: predict's genome is an option, REGIONS positional
    from gitool import quickstart

    def predict_step(*args):
        with quickstart._step(5, "predict", "predict", {}, "predict"):
            raise InputError(f"{opt('genome')} and {opt('regions')} clash")

    monkeypatch.setattr(quickstart, "_pipeline", predict_step)
    code, _, err = run_cli(["quickstart", "-q", "-o", tmp_path / "qs2"], capsys)
    assert_input_error(code, err, "step 5/6 (predict) failed: --genome and REGIONS clash")


def test_force_replaces_only_the_quickstarts_outputs_and_only_once_the_new_ones_are_made(
    tmp_path,
):
    from gitool.errors import InputError
    from gitool.quickstart import MARKER, _claim_out, _outputs_replaced

    def files(folder):
        return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())

    out = tmp_path / "qs"
    assert not _claim_out(out, False, [])
    with pytest.raises(KeyboardInterrupt), _outputs_replaced(out, replace=False):
        (out / "data").mkdir()
        raise KeyboardInterrupt  # a first run stopped: the folder it made is gone
    assert not out.exists()
    with _outputs_replaced(out, replace=False):  # a new quickstart folder: marked as one
        pass
    assert files(out) == [MARKER]
    earlier = [MARKER, "data/x", "eval/x", "notes.txt", "runs/mine/x", "runs/swin/x"]
    for name in earlier[1:]:
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_text("old")
    replace = _claim_out(out, True, [])
    assert replace
    # a rerun that fails part-way: what it wrote goes, the earlier outputs come back
    with pytest.raises(RuntimeError), _outputs_replaced(out, replace):
        aside = [".data.quickstart-old/x", ".eval.quickstart-old/x", f".{MARKER}.quickstart-old"]
        aside.append("runs/.swin.quickstart-old/x")  # beside each: never across file systems
        assert files(out) == sorted([MARKER, "notes.txt", "runs/mine/x", *aside])
        # a second run into the same folder meanwhile is refused, before it touches anything
        refused = pytest.raises(InputError, match="another gitool quickstart is writing")
        with refused, _outputs_replaced(out, replace):
            pass
        for name in ("data/y", "predictions/y"):
            (out / name).parent.mkdir(parents=True, exist_ok=True)
            (out / name).write_text("new")
        raise RuntimeError("step 3 failed")
    assert files(out) == earlier and (out / "data" / "x").read_text() == "old"
    # a killed rerun (set aside, partial outputs written): the next run puts the earlier
    # outputs back first; one that succeeds replaces the quickstart's outputs only
    (out / "data").rename(out / ".data.quickstart-old")
    (out / "data").mkdir()
    (out / "data" / "partial").write_text("killed")
    with _outputs_replaced(out, replace=False):
        assert (out / "data" / "x").read_text() == "old"
    with _outputs_replaced(out, replace):
        (out / "data").mkdir()
        (out / "data" / "y").write_text("new")
    assert files(out) == [MARKER, "data/y", "notes.txt", "runs/mine/x"]
