"""The design card, literally: in an empty folder

    gitool build-dataset genome.fa tracks.txt
    gitool train --gpus 3
    gitool predict regions.bed -o out.bw
    gitool attention --layer 8

run in this order with no other option (here on a CPU: ``--gpus 0``, plus the options that
make a tiny run), each printing the defaults it chooses; and a command whose default has
nothing to fall back on fails with one line naming the option to give.
"""

from __future__ import annotations

import json
import math
import os

import pyBigWig
import yaml

from conftest import write_fasta, write_tracks
from helpers import assert_input_error, run_cli

# 1,024-bp windows of 4 × 128-bp bins: swin-basenji-small's 8 swin layers (1 … 128 bp tokens,
# so layer 8 exists as on the card) at a fraction of the width.
GEOMETRY = ["--seq-length", "1024", "--bin-size", "128", "--target-length", "4", "-j", "1"]
TINY_SWIN = {
    "model_config": {
        "dims": [8, 8, 8, 8, 8, 8, 8, 8],
        "windows": [16, 16, 16, 16, 16, 16, 8, 8],
        "attention_heads": [1, 1, 1, 1, 1, 1, 2, 2],
        "transformer_heads": 2,
        "transformer_key_dim": 8,
    },
    "batch_size": 2,
    "num_workers": 0,
    "max_steps": 2,
    "epochs": 1,
    "valid_windows": 2,
}


def said(err: str) -> str:
    """stderr as one line (rich wraps long status lines)."""
    return " ".join(err.split())


def gitool(capsys, *args) -> str:
    code, _, err = run_cli(list(args), capsys)
    assert code == 0, err
    return said(err)


def test_the_design_card_runs_as_written(tiny, monkeypatch, capsys):
    monkeypatch.chdir(tiny["dir"])
    # One track, so that -o out.bw is the file itself (several: out.<identifier>.bw).
    write_tracks(tiny["dir"] / "tracks.txt", [dict(identifier="dense", file="dense.bw")])
    (tiny["dir"] / "regions.bed").write_text("chr1\t0\t2000\nchr3\t100\t900\n")
    (tiny["dir"] / "tiny.yaml").write_text(yaml.safe_dump(TINY_SWIN))

    err = gitool(capsys, "build-dataset", "genome.fa", "tracks.txt", *GEOMETRY)
    assert "wrote data" in err
    assert (tiny["dir"] / "data" / "manifest.yaml").is_file()

    err = gitool(capsys, "train", "--gpus", "0", "--config", "tiny.yaml")
    assert "using store data/ (default --data)" in err
    assert "using run folder runs/run (default -o)" in err
    assert (tiny["dir"] / "runs" / "run" / "checkpoints" / "best.pt").is_file()

    err = gitool(capsys, "predict", "regions.bed", "-o", "out.bw", "--device", "cpu")
    assert "using run runs/run (newest under runs/; give -m RUN to choose)" in err
    assert (
        "using genome genome.fa (recorded by the run's store; give --genome GENOME to choose)"
        in err
    )
    bw = pyBigWig.open("out.bw")
    assert list(bw.chroms()) == ["chr1", "chr2", "chr3", "chrM"]  # the genome, FASTA order
    values = [v for chrom in ("chr1", "chr3") for _, _, v in bw.intervals(chrom)]
    bw.close()
    assert len(values) == 2000 // 128 + 1 + 896 // 128 + 1  # bins of the snapped regions
    assert all(math.isfinite(v) for v in values)

    err = gitool(capsys, "attention", "--layer", "8", "--device", "cpu")
    assert "using run runs/run (newest under runs/" in err
    assert "writing attention/ (default -o" in err
    assert "exporting test windows 0-3 of data/ (default;" in err
    index = json.loads((tiny["dir"] / "attention" / "index.json").read_text())
    assert index["exported"] == [8] and len(index["windows"]) == 4
    assert all(w["name"].startswith("test:") for w in index["windows"])

    # The card again: the run folder is never written over, a new one is taken and is then
    # the newest run; attention/ exists now, so the default -o refuses it.
    err = gitool(capsys, "train", "--gpus", "0", "--config", "tiny.yaml")
    assert "using run folder runs/run-2 (default -o; runs/run is taken)" in err
    (tiny["dir"] / "out.bw").unlink()
    err = gitool(capsys, "predict", "regions.bed", "-o", "out.bw", "--device", "cpu")
    assert "using run runs/run-2 (newest under runs/" in err
    code, _, err = run_cli(["attention", "--layer", "8", "-m", "runs/run"], capsys)
    assert_input_error(code, err, "-o: no output given and attention/ already exists")

    # The recorded genome, changed or gone: one line telling to pass -g.
    seqs = dict(tiny["seqs"], chr3=tiny["seqs"]["chr3"][:2000])
    os.replace("genome.fa", "moved.fa")
    os.replace("genome.fa.fai", "moved.fa.fai")
    code, _, err = run_cli(["predict", "regions.bed", "-o", "x.bw", "-m", "runs/run"], capsys)
    assert_input_error(code, err, "--genome not given", "is no longer there", "--genome GENOME")
    write_fasta(tiny["dir"] / "genome.fa", seqs)
    code, _, err = run_cli(["predict", "regions.bed", "-o", "x.bw", "-m", "runs/run"], capsys)
    assert "has changed since its store was built (chr3 is 2,000 bp, was 3,000 bp)" in said(err)
    assert code == 2 and not (tiny["dir"] / "x.bw").exists()


def test_defaults_with_nothing_to_fall_back_on(tmp_path, monkeypatch, capsys):
    """No runs/ here: predict and attention name --model; no data/ here: train names --data;
    --gpus beyond the machine's GPUs stays an error."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "regions.bed").write_text("chr1\t0\t100\n")
    code, _, err = run_cli(["predict", "regions.bed", "-o", "out.bw"], capsys)
    assert_input_error(
        code, err, "--model: no run given and no trained run under runs/", "--model RUN"
    )
    code, _, err = run_cli(["attention", "--layer", "8"], capsys)
    assert_input_error(code, err, "--model: no run given")
    code, _, err = run_cli(["train", "--gpus", "3"], capsys)
    assert_input_error(
        code, err, "--data: no store given and no data/ here; build one with `gitool "
        "build-dataset GENOME TRACKS` or give --data STORE",
    )  # fmt: skip
    (tmp_path / "runs" / "run" / "checkpoints").mkdir(parents=True)  # no checkpoint: no run
    code, _, err = run_cli(["predict", "regions.bed", "-o", "out.bw"], capsys)
    assert_input_error(code, err, "--model: no run given")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["regions.bed", "runs"]


def test_too_many_gpus_is_an_error(tiny, monkeypatch, capsys):
    monkeypatch.chdir(tiny["dir"])
    code, _, err = run_cli(["build-dataset", "genome.fa", "tracks.txt", *GEOMETRY], capsys)
    assert code == 0, err
    import torch

    gpus = torch.cuda.device_count() + 1
    code, _, err = run_cli(["train", "--gpus", gpus, "--model", "cnn-maxpool"], capsys)
    assert_input_error(code, err, f"--gpus {gpus}: this machine has")
    assert not (tiny["dir"] / "runs").exists()


def test_newest_run_is_the_latest_checkpoint(tmp_path):
    from gitool.runs import fresh_run_folder, newest_run

    assert newest_run(tmp_path / "runs") is None
    for name, which, when in (("a", "best", 300), ("b", "last", 200), ("c", "best", 100)):
        ckpt = tmp_path / "runs" / name / "checkpoints" / f"{which}.pt"
        ckpt.parent.mkdir(parents=True)
        ckpt.write_bytes(b"")
        os.utime(ckpt, (when, when))
    assert newest_run(tmp_path / "runs") == tmp_path / "runs" / "a"
    later = tmp_path / "runs" / "c" / "checkpoints" / "last.pt"
    later.write_bytes(b"")
    os.utime(later, (400, 400))
    assert newest_run(tmp_path / "runs") == tmp_path / "runs" / "c"
    (tmp_path / "runs" / "run").mkdir()  # empty: may be used
    assert fresh_run_folder(tmp_path / "runs") == tmp_path / "runs" / "run"
    (tmp_path / "runs" / "run" / "config.yaml").write_text("")
    (tmp_path / "runs" / "run-2").mkdir()
    (tmp_path / "runs" / "run-2" / "x").write_text("")
    assert fresh_run_folder(tmp_path / "runs") == tmp_path / "runs" / "run-3"
