"""``gitool train`` refuses bad options, stores and resumes before the run folder is made,
and keeps a resumed run's bookkeeping (options, metrics.jsonl, staging files) consistent."""

from __future__ import annotations

import json
import os
import shutil

import pytest
import yaml

from gitool.errors import InputError
from gitool.interpret.synthetic import generate, save_store
from gitool.train import loop
from gitool.train.launch import run_training

from helpers import assert_input_error, metrics_records, run_cli


@pytest.fixture(scope="module")
def motifs(tmp_path_factory):
    return save_store(tmp_path_factory.mktemp("labels") / "motifs", generate(300, seed=5))


def flags(data, out, **extra) -> dict:
    base = dict(data=[str(data)], model="can-cnn20-relu", out=str(out), gpus=0, batch_size=50,
                epochs=1, num_workers=0, lr=1e-3, checkpoint_every=1, log_every=1)  # fmt: skip
    return {**base, **extra}


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--lr", "nan", "--lr must be > 0 and <= 1, got nan"),
        ("--grad-clip", "-1", "--grad-clip must be > 0, got -1.0"),
        ("--num-workers", "-2", "--num-workers must be >= 0, got -2"),
        ("--max-steps", "0", "--max-steps must be >= 1, got 0"),
        ("--valid-windows", "0", "--valid-windows must be >= 1, got 0"),
        ("--eval-every", "0", "--eval-every must be >= 1, got 0"),
        ("--lr-patience", "0", "--lr-patience must be >= 1, got 0"),
        ("--lr", "1e30", "--lr must be > 0 and <= 1, got 1e+30"),
    ],
)
def test_out_of_range_options_are_refused_before_anything_is_read(
    flag, value, message, tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)  # no data/ here: the option is still what is named
    code, _, err = run_cli(["train", flag, value], capsys)
    assert_input_error(code, err, message)
    assert list(tmp_path.iterdir()) == []


def test_config_values_are_checked_and_named_with_the_file(motifs, tmp_path, capsys):
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"data": [str(motifs)], "lr_patience": 0, "lr": "1e-3"}))
    code, _, err = run_cli(["train", "--config", config, "-o", tmp_path / "r"], capsys)
    assert_input_error(code, err, f"--config {config}: lr_patience must be >= 1, got 0")
    code, _, err = run_cli(["train", "--config", config, "--lr-patience", "-3"], capsys)
    assert_input_error(code, err, "--lr-patience must be >= 1, got -3")
    config.write_text(yaml.safe_dump({"data": [str(motifs)], "lr": [0.001]}))  # a list
    code, _, err = run_cli(["train", "--config", config, "-o", tmp_path / "r"], capsys)
    assert_input_error(code, err, f"--config {config}: lr must be a number")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.yaml"]


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"rc": "false"}, "rc must be true or false, got 'false'"),  # text: was taken as true
        ({"compile": "yes"}, "compile must be true or false (or null), got 'yes'"),
        ({"resume": "no"}, "resume must be true or false, got 'no'"),
        ({"heads": {"a": 1}}, "heads must be a list of text (or null)"),
        ({"epochs": 2.5}, "epochs must be a whole number, got 2.5"),
    ],
)
def test_config_values_of_the_wrong_type_are_named_with_the_file(
    values, message, motifs, tmp_path, capsys
):
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"data": [str(motifs)], **values}))
    code, _, err = run_cli(["train", "--config", config, "-o", tmp_path / "r"], capsys)
    assert_input_error(code, err, f"--config {config}: {message}")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.yaml"]


def test_config_values_take_the_forms_users_write(tmp_path):
    from gitool.train.launch import _file_values

    config = tmp_path / "c.yaml"
    config.write_text("data: store\nheads: human,mouse\nlr: 1e-3\nout: 5\n")
    values = _file_values(str(config))
    assert values == {"data": ["store"], "heads": ["human", "mouse"], "lr": 0.001, "out": "5"}
    config.write_text("heads: [human, mouse]\ndata: [a, b]\n")
    assert _file_values(str(config)) == {"heads": ["human", "mouse"], "data": ["a", "b"]}


def test_head_names_are_module_names(motifs, tmp_path, capsys):
    args = ["train", "--data", motifs, "--heads", "a.b", "-o", tmp_path / "r", "--gpus", "0"]
    code, _, err = run_cli(args, capsys)
    assert_input_error(code, err, "--heads 'a.b' cannot name a head", "without '.'")
    # 'x/y' made metric keys such as valid_pearson/x/y ambiguous
    code, _, err = run_cli([*args[:3], "--heads", "x/y", *args[5:]], capsys)
    assert_input_error(code, err, "--heads 'x/y' cannot name a head", "'/'")
    # --heads ' a ' kept the spaces (`attribute --head a` then found no head 'a')
    config = tmp_path / "s.yaml"
    config.write_text(yaml.safe_dump({"data": [str(motifs)], "heads": [" a "]}))
    code, _, err = run_cli(["train", "--config", config, "-o", tmp_path / "r"], capsys)
    assert_input_error(code, err, "' a ' cannot name a head", "spaces")
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"data": [str(motifs)], "heads": [""]}))
    code, _, err = run_cli(["train", "--config", config, "-o", tmp_path / "r"], capsys)
    assert_input_error(code, err, f"--config {config}: heads is empty; give a value")
    assert not (tmp_path / "r").exists()
    # a store folder with a dot names its head with "_" (it crashed the run)
    dotted = tmp_path / "my.store"
    shutil.copytree(motifs, dotted)
    cfg = flags(dotted, tmp_path / "run", max_steps=1, epochs=1)
    run_training(None, cfg)
    from gitool.runs import load_run

    _, checkpoint, _ = load_run(tmp_path / "run", "last", "model")
    assert "my_store" in str(checkpoint.get("heads", checkpoint)), checkpoint.keys()


@pytest.mark.parametrize(("flag", "value"), [("--track-weights", "heavy"), ("--schedule", "step")])
def test_unknown_choices_are_one_line_before_the_run_folder(flag, value, motifs, tmp_path, capsys):
    args = ["train", "--data", motifs, "-o", tmp_path / "r", flag, value, "--gpus", "0"]
    code, _, err = run_cli(args, capsys)
    assert_input_error(code, err, f"{flag} {value!r}: choose from")
    assert list(tmp_path.iterdir()) == []


def test_choices_and_heads_from_the_config_are_named_with_the_file(motifs, tmp_path, capsys):
    """Checked after the ranges (against the stores, the model registry), they named the
    flag the user never typed."""
    config = tmp_path / "c.yaml"
    out = ["-o", tmp_path / "r", "--gpus", "0"]
    for values, needle in [
        ({"schedule": "step"}, "schedule 'step': choose from"),
        ({"model": "nope"}, "model 'nope': unknown model"),
        ({"heads": ["a", "b"]}, "heads 2 name(s) for 1 dataset(s); give one per --data"),
        ({"nodes": 2}, "nodes > 1 needs --rdzv-endpoint HOST:PORT"),
    ]:
        config.write_text(yaml.safe_dump(values))
        code, _, err = run_cli(["train", "--config", config, "--data", motifs, *out], capsys)
        assert_input_error(code, err, f"--config {config}: {needle}")
    # given as a flag too: the flag's value is the one refused, and named as the flag
    config.write_text(yaml.safe_dump({"schedule": "cosine"}))
    code, _, err = run_cli(["train", "--config", config, "--data", motifs, "--schedule", "x",
                            *out], capsys)  # fmt: skip
    assert_input_error(code, err, "--schedule 'x': choose from")
    # a flag's value checked against the file's: the file's named with the file
    config.write_text(yaml.safe_dump({"nodes": 2, "rdzv_endpoint": "h:1"}))
    code, _, err = run_cli(["train", "--config", config, "--data", motifs, "--node-rank", "5",
                            *out], capsys)  # fmt: skip
    assert_input_error(code, err, f"--node-rank must be below nodes (in {config}) (2), got 5")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.yaml"]


def test_a_store_without_valid_windows_is_refused_before_the_run_folder(tmp_path):
    store = save_store(tmp_path / "novalid", generate(100, seed=1), fractions=(1.0, 0.0, 0.0))
    with pytest.raises(InputError, match="the valid split has no windows") as err:
        run_training(None, flags(store, tmp_path / "run"))
    assert err.value.field == "data"
    assert not (tmp_path / "run").exists()


def test_too_large_a_batch_for_any_store_is_refused_before_the_run_folder(motifs, tmp_path):
    with pytest.raises(InputError, match="is more than the 210 training windows") as err:
        run_training(None, flags(motifs, tmp_path / "run", batch_size=211))
    assert err.value.field == "batch_size"
    assert not (tmp_path / "run").exists()


def test_the_run_folder_is_never_inside_or_over_a_store(motifs, tmp_path):
    with pytest.raises(InputError, match="lies inside") as err:
        run_training(None, flags(motifs, motifs / "run"))
    assert err.value.field == "out"
    assert "force" not in str(err.value)  # train has no --force to name
    assert not (motifs / "run").exists()
    with pytest.raises(InputError, match="already exists"):
        run_training(None, flags(motifs, motifs))


def test_a_run_that_fails_before_its_first_checkpoint_leaves_no_folder(
    motifs, tmp_path, monkeypatch
):
    def fail(self):
        raise RuntimeError("boom")

    monkeypatch.setattr(loop.TrainingRun, "run", fail)
    with pytest.raises(RuntimeError, match="boom"):
        run_training(None, flags(motifs, tmp_path / "run"))
    assert not (tmp_path / "run").exists()  # the retry is not blocked


def test_resume_takes_the_runs_options_and_refuses_changed_ones(motifs, tmp_path, capsys):
    out = tmp_path / "run"
    run_training(None, flags(motifs, out, schedule="plateau", lr_patience=2))
    # only the run folder and --resume: the run's own options (model, batch, schedule, ...)
    code, _, err = run_cli(["train", "-o", out, "--resume", "--epochs", "2", "--gpus", "0"], capsys)
    assert code == 0, err
    saved = yaml.safe_load((out / "config.yaml").read_text())
    assert (saved["batch_size"], saved["schedule"], saved["epochs"]) == (50, "plateau", 2)
    code, _, err = run_cli(["train", "-o", out, "--resume", "--epochs", "3", "--gpus", "0",
                            "--batch-size", "20", "--lr", "0.01"], capsys)  # fmt: skip
    assert_input_error(code, err, "--batch-size 50, --lr 0.001", "--batch-size 20, --lr 0.01",
                       f"--config {out / 'config.yaml'}")  # fmt: skip
    with pytest.raises(InputError, match="trained with batch_size 50") as info:
        run_training(None, flags(motifs, out, epochs=3, batch_size=25, resume=True))
    assert info.value.fields == ["resume", "batch_size", "batch_size", "config"]
    # another number of processes changes the global batch: refused before any is started
    with pytest.raises(InputError, match="trained by 1 process.* this run has 2") as info:
        run_training(None, flags(motifs, out, epochs=3, procs=2, resume=True))
    assert info.value.fields == ["resume", "gpus", "procs", "nodes"]


def test_resume_drops_the_abandoned_records_and_stale_stages(motifs, tmp_path):
    out = tmp_path / "run"
    run_training(None, flags(motifs, out))
    kept = metrics_records(out)
    step = max(r["step"] for r in kept)
    # what a run killed after its checkpoint leaves: records past it, a half-written file
    with open(out / "metrics.jsonl", "a") as handle:
        handle.write(json.dumps({"step": step + 1, "epoch": 1, "loss": 9.0}) + "\n")
        handle.write(json.dumps({"step": step + 2, "epoch": 1, "valid_aupr": 0.1}) + "\n")
        handle.write('{"step": ')
    stale = out / "checkpoints" / ".last.pt.tmp-999999999"
    stale.write_bytes(b"partial")
    os.utime(stale)
    run_training(None, flags(motifs, out, epochs=2, resume=True))
    records = metrics_records(out)
    assert records[: len(kept)] == kept
    assert all(r.get("loss") != 9.0 and r.get("valid_aupr") != 0.1 for r in records)
    assert records[len(kept) :] and all(r["step"] > step for r in records[len(kept) :])
    assert not stale.exists()


@pytest.mark.parametrize(
    ("model_config", "message"),
    [
        ({"filters": float("inf")}, "filters must be an integer, got inf"),
        ({"filters": 2.5}, "filters must be an integer, got 2.5"),
        ({"conv_dropout": float("nan")}, "conv_dropout must be a finite number, got nan"),
        ({"dense": 10**12}, "cannot be built with this configuration"),
        ([1, 2], "model_config must be a mapping of model option: value, got [1, 2]"),
    ],
)
def test_model_config_values_are_one_line_and_leave_no_run(
    model_config, message, motifs, tmp_path, capsys
):
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"model_config": model_config}))
    out = tmp_path / "r"
    args = ["train", "--config", config, "--data", motifs, "--model", "can-cnn20-relu",
            "--gpus", "0", "-o", out, "--max-steps", "1"]  # fmt: skip
    code, _, err = run_cli(args, capsys)
    assert_input_error(code, err, message)
    assert not out.exists()


@pytest.mark.parametrize(
    ("model", "model_config"),
    [
        ("cnn-maxpool", {"divisible_by": 0}),
        ("swin", {"heads": 0}),
        ("swin", {"transformer_heads": 0}),
    ],
)
def test_model_config_kinds_are_checked_before_the_model_is_built(model, model_config):
    from gitool.models.registry import create_model

    with pytest.raises(ValueError, match="must be"):
        create_model(model, **model_config)
