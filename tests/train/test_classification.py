"""Training CAN models on label stores (the GLIFAC paper): BCE, AUPR/AUROC, plateau schedule,
errors."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from gitool.config import TrainConfig
from gitool.data.labels import LabelDataset, LabelStore
from gitool.errors import InputError
from gitool.evaluate.labels import evaluate_labels, predict_labels
from gitool.interpret.synthetic import generate, save_store
from gitool.made import RECORD
from gitool.metrics import auroc, auroc_columns, average_precision, average_precision_columns
from gitool.train.launch import run_training
from gitool.train.loop import Patience, make_scheduler
from gitool.train.tasks import LabelMetrics

from helpers import assert_input_error, run_cli


@pytest.fixture(scope="module")
def motifs(tmp_path_factory):
    return save_store(tmp_path_factory.mktemp("labels") / "motifs", generate(600, seed=5))


def flags(data, out, **extra) -> dict:
    base = dict(data=[str(data)], model="can-cnn20-relu", out=str(out), gpus=0, batch_size=50,
                epochs=2, num_workers=0, lr=1e-3, schedule="plateau", log_every=2)  # fmt: skip
    return {**base, **extra}


@pytest.fixture(scope="module")
def run(motifs, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "can"
    summary = run_training(None, flags(motifs, out))
    assert summary.score == "mean AUPR"
    return out


def test_label_dataset(motifs):
    store = LabelStore(motifs)
    dataset = LabelDataset(store, "valid")
    assert len(dataset) == 60
    codes, labels = dataset[3]
    assert codes.dtype == torch.uint8 and codes.shape == (200,)
    assert labels.dtype == torch.float32 and labels.shape == (12,)
    np.testing.assert_array_equal(labels.numpy(), store.labels("valid")[3])
    with pytest.raises(IndexError):
        dataset[60]


def test_training_logs_classification_scores(run):
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in records if "loss" in r]
    evals = [r for r in records if "valid_aupr" in r]
    assert len(evals) == 2 and all(0 <= r["valid_aupr"] <= 1 for r in evals)
    assert all(0 <= r["valid_auroc"] <= 1 and r["lr"] > 0 for r in evals)
    assert losses[-1] < losses[0]  # BCE starts near log 2 and drops
    assert (run / "checkpoints" / "best.pt").exists()


def test_evaluate_label_store_matches_hand_scores(run, motifs, tmp_path, capsys):
    store = LabelStore(motifs)
    result = evaluate_labels(run, store, "test", batch_size=7, out=tmp_path)
    from gitool.runs import load_model

    model, _ = load_model(run)
    probs = predict_labels(model, store, "test", 64, "cpu")
    labels = np.asarray(store.labels("test"), dtype=float)
    np.testing.assert_allclose(result.tasks["aupr"], average_precision_columns(probs, labels))
    np.testing.assert_allclose(result.tasks["auroc"], auroc_columns(probs, labels))
    # pooled: one ranking of every (sequence, task) cell, as Keras' AUC(curve="PR") scores
    assert result.pooled_aupr == pytest.approx(average_precision(probs.ravel(), labels.ravel()))
    assert result.pooled_auroc == pytest.approx(auroc(probs.ravel(), labels.ravel()))
    assert result.pooled_aupr != pytest.approx(result.mean_aupr)
    assert list(result.tasks["task"]) == store.tasks
    assert (tmp_path / "test.tsv").exists()
    code, out, err = run_cli(
        ["evaluate", "-m", run, "--data", motifs, "-o", tmp_path / "e.tsv"], capsys
    )
    assert code == 0, err
    assert "AUPR" in out and "mean" in out and "pooled" in out and "CEBPB" in out
    code, _, err = run_cli(["evaluate", "-m", run, "--data", motifs, "--plot-window", "1"], capsys)
    assert_input_error(code, err, "--plot-window")
    # The library's evaluate() takes the run's own (label) store by default and gives the
    # same per-task scores as evaluate_labels.
    from gitool.config.evaluate import EvaluateOptions
    from gitool.evaluate.coverage import evaluate

    again = evaluate(EvaluateOptions(model=str(run), out=str(tmp_path / "default")))
    pd.testing.assert_frame_equal(again.tasks, result.tasks)
    assert again.paths == {"tasks": tmp_path / "default" / "test.tsv"}
    with pytest.raises(InputError, match="apply to coverage stores"):
        evaluate(EvaluateOptions(model=str(run), head="motifs"))


def test_a_label_store_with_other_tasks_is_refused(run, motifs, tmp_path, capsys):
    """As many tasks under other names or in another order (the SP1 motif set in place of
    SPI1): output k would be scored against another task, silently."""
    import shutil

    import yaml

    other = shutil.copytree(motifs, tmp_path / "sp1")
    manifest = yaml.safe_load((other / "manifest.yaml").read_text())
    k = manifest["tasks"].index("SPI1")
    manifest["tasks"][k] = "SP1"
    (other / "manifest.yaml").write_text(yaml.safe_dump(manifest))
    code, _, err = run_cli(["evaluate", "-m", run, "--data", other, "-o", tmp_path / "e.tsv"],
                           capsys)  # fmt: skip
    assert_input_error(code, err, "--data", f"task {k} is SP1", f"output {k} was trained on SPI1")
    assert not (tmp_path / "e.tsv").exists()


def test_label_evaluation_writes_beside_the_run_for_a_checkpoint_and_per_checkpoint(
    run, motifs, tmp_path, capsys
):
    """A checkpoint path writes into its run's eval/ (it was refused as lying inside the
    checkpoints folder), and --which last gets its own table instead of replacing best's."""
    import shutil

    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    args = ["evaluate", "--data", motifs]
    code, _, err = run_cli([*args, "-m", copy / "checkpoints" / "best.pt"], capsys)
    assert code == 0, err
    code, _, err = run_cli([*args, "-m", copy, "--which", "last"], capsys)
    assert code == 0, err
    assert sorted(p.name for p in (copy / "eval").iterdir()) == [
        RECORD,
        "test.last.tsv",
        "test.tsv",
    ]
    code, _, err = run_cli([*args, "-m", copy, "-o", tmp_path / "E.TSV"], capsys)
    assert code == 0, err
    assert (tmp_path / "E.TSV").is_file()


def test_label_metrics():
    metrics = LabelMetrics("cpu")
    logits = torch.tensor([[2.0, -1.0], [0.5, 0.0], [-3.0, 1.0], [1.0, 2.0]])
    labels = torch.tensor([[1.0, 0.0], [0.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    metrics.update(logits[:2], labels[:2])
    metrics.update(logits[2:], labels[2:])
    scores = metrics.compute()
    np.testing.assert_allclose(scores["auroc"], [1.0, 1.0])
    np.testing.assert_allclose(scores["aupr"], [1.0, 1.0])


def test_plateau_schedule_decays_after_patience():
    cfg = TrainConfig(schedule="plateau", lr=1e-3, lr_decay=0.3, lr_patience=2)
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.Adam([param], lr=cfg.lr)
    scheduler = make_scheduler(cfg, optimizer, total=100)
    lrs = []
    for score in (0.5, 0.6, 0.6, 0.55, 0.59, 0.58, 0.7):
        scheduler.step(score)
        lrs.append(optimizer.param_groups[0]["lr"])
    # 2 evaluations without a better score → × 0.3, then the count starts again
    np.testing.assert_allclose(lrs, [1e-3, 1e-3, 1e-3, 3e-4, 3e-4, 9e-5, 9e-5])


def test_min_delta_ignores_creeping_scores():
    # any rise counts by default; with min_delta only rises beyond the reference do
    scores = (0.5, 0.6, 0.6001, 0.6002, 0.62, 0.6201, float("nan"), 0.7)
    counts = {}
    for delta in (0.0, 0.01):
        patience = Patience(delta)
        counts[delta] = []
        for score in scores:
            patience.update(score)
            counts[delta].append(patience.bad)
    assert counts[0.0] == [0, 0, 0, 0, 0, 0, 1, 0]
    assert counts[0.01] == [0, 0, 1, 2, 0, 1, 2, 0]
    # the plateau schedule uses the same rule
    cfg = TrainConfig(schedule="plateau", lr=1e-3, lr_decay=0.3, lr_patience=2, min_delta=0.01)
    optimizer = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=cfg.lr)
    scheduler = make_scheduler(cfg, optimizer, total=100)
    lrs = []
    for score in (0.5, 0.6, 0.6001, 0.6002, 0.6003):
        scheduler.step(score)
        lrs.append(optimizer.param_groups[0]["lr"])
    np.testing.assert_allclose(lrs, [1e-3, 1e-3, 1e-3, 3e-4, 3e-4])


def test_patience_stops_a_run_that_no_longer_improves(motifs, tmp_path, monkeypatch):
    from gitool.train import distributed

    synced = []  # the trainer offers its model for SyncBatchNorm (a no-op in one process)
    original = distributed.sync_batch_norm
    monkeypatch.setattr(distributed, "sync_batch_norm",
                        lambda model, ctx: synced.append(ctx.world) or original(model, ctx))  # fmt: skip
    # a learning rate of 1e-9 leaves the valid AUPR where it is: evaluation 1 sets the
    # reference, 2 and 3 do not beat it by 0.05, so the run stops after epoch 3 of 10
    out = tmp_path / "run"
    summary = run_training(None, flags(motifs, out, epochs=10, lr=1e-9, patience=2,
                                       min_delta=0.05))  # fmt: skip
    assert (summary.stopped, summary.epoch) == ("patience", 3)
    assert synced == [1]
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert len([r for r in records if "valid_aupr" in r]) == 3
    assert (out / "checkpoints" / "best.pt").exists()
    with pytest.raises(InputError, match="min_delta must be >= 0, got -0.1"):
        run_training(None, flags(motifs, tmp_path / "b", min_delta=-0.1))
    assert not (tmp_path / "b").exists()


def test_resume_continues_without_repeating_an_evaluation(motifs, tmp_path):
    out = tmp_path / "run"
    run_training(None, flags(motifs, out, epochs=2, lr_patience=1))
    run_training(None, flags(motifs, out, epochs=3, lr_patience=1, resume=True))
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    steps = [r["step"] for r in records if "valid_aupr" in r]
    assert steps == sorted(set(steps)) and len(steps) == 3  # one evaluation per epoch, no repeat
    with pytest.raises(InputError, match="trained with schedule 'plateau'"):
        run_training(None, flags(motifs, out, epochs=4, schedule="cosine", resume=True))


def test_bad_inputs(motifs, tiny, tmp_path, capsys):
    with pytest.raises(InputError, match="need batches of at least 2"):
        run_training(None, flags(motifs, tmp_path / "a", batch_size=1))
    with pytest.raises(InputError, match="not coverage models"):
        run_training(None, flags(motifs, tmp_path / "b", model="cnn-maxpool"))
    with pytest.raises(InputError, match="schedule 'linear': choose from") as err:
        run_training(None, flags(motifs, tmp_path / "c", schedule="linear"))
    assert err.value.field == "schedule"
    with pytest.raises(InputError, match="lr_decay must be > 0 and < 1, got 1.5"):
        run_training(None, flags(motifs, tmp_path / "c", lr_decay=1.5))
    with pytest.raises(InputError, match="model_config n_tasks 3 does not match the data's 12"):
        run_training(None, flags(motifs, tmp_path / "d", model_config={"n_tasks": 3}))
    code, _, err = run_cli(["train", "--data", motifs, "--model", "can-cnn4-exp", "-o",
                            tmp_path / "e", "--gpus", "0", "--batch-size", "1"], capsys)  # fmt: skip
    assert_input_error(code, err, "--batch-size 1")
    assert not (tmp_path / "e").exists()
    code, _, err = run_cli(["train", "--data", motifs, "--model", "can-cnn4-exp", "-o",
                            tmp_path / "e", "--gpus", "0", "--min-delta", "-1"], capsys)  # fmt: skip
    assert_input_error(code, err, "--min-delta must be >= 0, got -1")
    assert not (tmp_path / "e").exists()
    # a CAN on a coverage store
    from gitool.config import BuildOptions
    from gitool.data.build import build_store

    store = tiny["dir"] / "store"
    build_store(BuildOptions(genome=str(tiny["genome"]), tracks=str(tiny["tracks"]),
                             out=str(store), seq_length=400, bin_size=8, target_length=25,
                             workers=1))  # fmt: skip
    with pytest.raises(InputError, match="CAN models classify sequences"):
        run_training(None, flags(store, tmp_path / "f"))
    with pytest.raises(InputError, match="cannot be trained together"):
        run_training(None, {**flags(store, tmp_path / "g"), "data": [str(store), str(motifs)]})


def test_synth_motifs_command(tmp_path, capsys):
    code, _, err = run_cli(["synth-motifs", "-o", tmp_path / "m", "-n", "300", "--seed", "2",
                            "--split-fractions", "0.6,0.2,0.2"], capsys)  # fmt: skip
    assert code == 0, err
    store = LabelStore(tmp_path / "m")
    assert [store.count(s) for s in ("train", "valid", "test")] == [180, 60, 60]
    err = " ".join(err.split())  # the console wraps at the terminal's width
    assert "300 sequences" in err and "warning" not in err  # the built-in motifs stand out

    # a weak motif (8 bp of 67 % consensus bases) is flagged, a strong one is not; both written
    def jaspar(matrix_id, name, top):
        return f">{matrix_id} {name}\n" + "".join(
            f"{b} [ {' '.join(str(top) if i % 4 == k else '1' for i in range(12))} ]\n"
            for k, b in enumerate("ACGT"))  # fmt: skip

    (tmp_path / "two.jaspar").write_text(jaspar("W1", "WEAK", 6) + jaspar("S1", "STRONG", 97))
    code, _, err = run_cli(["synth-motifs", "-o", tmp_path / "w", "-n", "2000", "--motifs",
                            str(tmp_path / "two.jaspar"), "--interactions", "none"], capsys)  # fmt: skip
    assert code == 0, err
    assert LabelStore(tmp_path / "w").tasks == ["WEAK", "STRONG"]
    err = " ".join(err.split())
    assert "warning: motif WEAK (W1, 12 bp" in err and "STRONG" not in err
    code, _, err = run_cli(["synth-motifs", "-o", tmp_path / "n", "--motifs", "ELF1,SIX3",
                            "--interactions", "ELF1/SIX3:and", "-n", "50"], capsys)  # fmt: skip
    assert code == 0, err
    assert LabelStore(tmp_path / "n").tasks == ["ELF1", "SIX3"]
    for args, needle in (
        (["--motifs", "ELF1,NOPE"], "unknown motif name(s) 'NOPE'"),
        (["--motifs", "missing.jaspar"], "--motifs missing.jaspar: no such motif file"),
        (["--interactions", "ELF1+SIX3"], "--interactions 'ELF1+SIX3'"),
        (["--split-fractions", "0.5,0.5"], "--split-fractions"),
        (["-n", "0"], "must be >= 1, got 0"),
        (["--length", "50"], "too short"),
    ):
        code, _, err = run_cli(["synth-motifs", "-o", tmp_path / "bad", *args], capsys)
        assert_input_error(code, err, needle)
        assert not (tmp_path / "bad").exists()
    code, _, err = run_cli(["synth-motifs", "-o", tmp_path / "m", "-n", "10"], capsys)
    assert_input_error(code, err, "already exists; pass --force")
    (tmp_path / "file").write_text("x")
    code, _, err = run_cli(["synth-motifs", "-o", tmp_path / "file", "--force"], capsys)
    assert_input_error(code, err, "is a file")


def test_means_over_tasks_without_both_classes_are_nan_without_warnings():
    import warnings

    from gitool.evaluate.labels import LabelEvaluation

    tasks = pd.DataFrame({"task": ["a", "b"], "sequences": 1, "positives": [0, 1],
                          "aupr": [np.nan, np.nan], "auroc": [np.nan, 0.5]})  # fmt: skip
    result = LabelEvaluation(tasks, "run", "test", None, np.nan, np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy's "Mean of empty slice" would fail here
        assert np.isnan(result.mean_aupr) and result.mean_auroc == 0.5


def test_data_on_device_is_refused_for_a_label_store(motifs, tmp_path, capsys):
    code, _, err = run_cli(["train", "--data", motifs, "--model", "can-cnn20-relu", "-o",
                            tmp_path / "r", "--gpus", "0", "--data-on-device"], capsys)  # fmt: skip
    assert_input_error(code, err, "--data-on-device", "label stores")
    assert not (tmp_path / "r").exists()
