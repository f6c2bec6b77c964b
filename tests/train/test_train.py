"""``gitool train``: DDP equivalence, kill-and-resume, loss goes down, TensorBoard logging,
bad input."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from gitool.config import TrainConfig
from gitool.console import Terminated
from gitool.data.loader import default_sigterm
from gitool.models.can import CAN, CANConfig
from gitool.models.registry import build_from_config
from gitool.train import checks as train_checks
from gitool.train import distributed, loop
from gitool.train.distributed import Context, sync_batch_norm

from conftest import write_tracks
from helpers import assert_input_error, metrics_records, run_cli

GEOM = ["--seq-length", "400", "--bin-size", "8", "--target-length", "25"]
# cnn-maxpool at 8-bp bins: 3 poolings; no dropout and layer norm so that N processes = 1
# process exactly (batch norm keeps per-process statistics on CPUs: SyncBatchNorm is GPU-only).
TINY_CNN = {"stem_channels": 8, "channels": 16, "divisible_by": 4, "dropout": 0.0, "norm": "layer"}


@pytest.fixture
def store(tiny, capsys):
    args = [
        "build-dataset",
        tiny["genome"],
        tiny["tracks"],
        "-o",
        tiny["dir"] / "data",
        *GEOM,
        "-j",
        "1",
    ]
    assert run_cli(args, capsys)[0] == 0
    return tiny["dir"] / "data"


def write_config(path: Path, store: Path, **options) -> Path:
    values = {"data": [str(store)], "model": "cnn-maxpool", "model_config": TINY_CNN, "num_workers": 0,
              "log_every": 1, "lr": 1e-3, "epochs": 3, **options}  # fmt: skip
    path.write_text(yaml.safe_dump(values))
    return path


def final_weights(run: Path) -> dict[str, torch.Tensor]:
    return torch.load(run / "checkpoints" / "last.pt", weights_only=True)["model"]


def assert_same_weights(a: dict, b: dict, atol: float = 1e-5) -> None:
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], atol=atol, rtol=1e-4, msg=key)


def test_run_folder_contents_and_loss_going_down(store, tmp_path, capsys):
    cfg = write_config(tmp_path / "c.yaml", store, epochs=6, eval_every=7)
    code, _, err = run_cli(
        ["train", "--config", cfg, "-o", tmp_path / "run", "--gpus", "0", "--batch-size", "4",
         "--weight-decay", "1e-4"],
        capsys,
    )  # fmt: skip
    assert code == 0, err
    run = tmp_path / "run"
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["batch_size"] == 4 and saved["model_config"]["heads"] == {"data": 4}  # flag won
    assert saved["weight_decay"] == 1e-4
    records = metrics_records(run)
    train = [r for r in records if "loss" in r]
    valid = [r for r in records if "valid_pearson" in r]
    assert {"step", "epoch", "loss", "lr", "samples_per_s"} <= set(train[0])
    assert valid and {"valid_loss", "valid_pearson"} <= set(valid[0])
    first, last = sum(r["loss"] for r in train[:5]) / 5, sum(r["loss"] for r in train[-5:]) / 5
    assert last < first
    state = torch.load(run / "checkpoints" / "last.pt", weights_only=True)
    assert state["step"] == len(train) and state["model_name"] == "cnn-maxpool"
    assert (
        state["data"][0]["manifest"]["n_tracks"] == 4 and (run / "checkpoints" / "best.pt").exists()
    )
    assert {"optimizer", "scheduler", "rng", "batch", "epoch", "model_config"} <= set(state)
    assert {g["weight_decay"] for g in state["optimizer"]["param_groups"]} == {1e-4}
    assert not (run / "tensorboard").exists()  # only with --tensorboard


@pytest.mark.slow
def test_two_gloo_processes_match_one(store, tmp_path, capsys):
    cfg = write_config(tmp_path / "c.yaml", store, epochs=2, seed=3)
    one = ["train", "--config", cfg, "-o", tmp_path / "one", "--gpus", "0", "--batch-size", "4"]
    assert run_cli(one, capsys)[0] == 0
    two = [
        "train",
        "--config",
        cfg,
        "-o",
        tmp_path / "two",
        "--gpus",
        "0",
        "--procs",
        "2",
        "--batch-size",
        "2",
    ]
    code, _, err = run_cli(two, capsys)
    assert code == 0, err
    a, b = final_weights(tmp_path / "one"), final_weights(tmp_path / "two")
    assert torch.load(tmp_path / "two" / "checkpoints" / "last.pt", weights_only=True)["step"] > 5
    assert_same_weights(a, b)
    # the logged training loss is the whole batch's (both ranks'), not rank 0's half
    losses = [
        [r["loss"] for r in metrics_records(tmp_path / run) if "loss" in r]
        for run in ("one", "two")
    ]
    assert len(losses[0]) == len(losses[1]) > 5
    np.testing.assert_allclose(losses[1], losses[0], rtol=1e-4)
    # Gradient accumulation across processes: DDP skips the all-reduce (no_sync) on all but
    # the last batch of a step; the same 4 windows per step, so the same weights again.
    accum = ["train", "--config", cfg, "-o", tmp_path / "accum", "--gpus", "0", "--procs", "2",
             "--batch-size", "1", "--grad-accum", "2"]  # fmt: skip
    code, _, err = run_cli(accum, capsys)
    assert code == 0, err
    assert_same_weights(a, final_weights(tmp_path / "accum"))


@pytest.mark.slow
def test_gloo_ranks_validate_rank_zeros_batch_norm_statistics(store, tmp_path, capsys):
    """On CPU ranks BatchNorm is not synchronised: each rank's last batch moved its own
    running statistics, and the validation (of the unwrapped module) mixed two models."""
    cfg = write_config(tmp_path / "c.yaml", store, epochs=2, seed=3, eval_every=4,
                       model_config={**TINY_CNN, "norm": "batch"})  # fmt: skip
    args = ["train", "--config", cfg, "-o", tmp_path / "r", "--gpus", "0", "--procs", "2",
            "--batch-size", "2"]  # fmt: skip
    code, _, err = run_cli(args, capsys)
    assert code == 0, err
    last = torch.load(tmp_path / "r" / "checkpoints" / "last.pt", weights_only=True)["step"]
    logged = [
        r for r in metrics_records(tmp_path / "r") if "valid_pearson" in r and r["step"] == last
    ]
    assert logged, "no validation at the last step"
    code, _, err = run_cli(["evaluate", "-m", tmp_path / "r", "--which", "last", "--split",
                            "valid", "-o", tmp_path / "ev.tsv"], capsys)  # fmt: skip
    assert code == 0, err
    pearson = pd.read_csv(tmp_path / "ev.tsv", sep="\t")["pearson"].mean()
    assert logged[-1]["valid_pearson"] == pytest.approx(pearson, abs=1e-5)


@pytest.mark.slow
def test_a_store_named_with_a_comma_resumes_in_two_processes(store, tmp_path, capsys):
    """The head name taken from a store folder's name kept its comma, and a comma separates
    head names in --heads and in a config file: the torchrun processes of a resume, and a
    rerun of the saved config.yaml, split it into two heads for one store."""
    import shutil

    commas = shutil.copytree(store, tmp_path / "my,store")
    cfg = write_config(tmp_path / "c.yaml", commas, max_steps=1)
    args = ["train", "--config", cfg, "-o", tmp_path / "r", "--gpus", "0", "--procs", "2",
            "--batch-size", "2"]  # fmt: skip
    code, _, err = run_cli(args, capsys)
    assert code == 0, err
    code, _, err = run_cli(["train", "--resume", "-o", tmp_path / "r", "--gpus", "0", "--procs",
                            "2", "--max-steps", "2"], capsys)  # fmt: skip
    assert code == 0, err
    state = torch.load(tmp_path / "r" / "checkpoints" / "last.pt", weights_only=False)
    assert state["step"] == 2 and [e["head"] for e in state["data"]] == ["my_store"]
    again = ["train", "--config", tmp_path / "r" / "config.yaml", "-o", tmp_path / "again",
             "--gpus", "0"]  # fmt: skip
    code, _, err = run_cli(again, capsys)
    assert code == 0, err


@pytest.mark.slow
def test_killed_and_resumed_run_matches_uninterrupted(store, tmp_path, capsys):
    cfg = write_config(
        tmp_path / "c.yaml", store, epochs=8, checkpoint_every=1, eval_every=5, seed=1
    )
    full = ["train", "--config", cfg, "-o", tmp_path / "full", "--gpus", "0", "--batch-size", "4"]
    assert run_cli(full, capsys)[0] == 0
    cmd = [sys.executable, "-m", "gitool", "-q", "train", "--config", str(cfg), "-o", str(tmp_path / "cut"),
           "--gpus", "0", "--batch-size", "4"]  # fmt: skip
    proc = subprocess.Popen(cmd, start_new_session=True)
    last = tmp_path / "cut" / "checkpoints" / "last.pt"
    deadline = time.time() + 120
    while time.time() < deadline:
        if last.exists() and torch.load(last, weights_only=True)["step"] >= 9:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    killed_at = torch.load(last, weights_only=True)["step"]
    resume = [
        "train",
        "--config",
        cfg,
        "-o",
        tmp_path / "cut",
        "--gpus",
        "0",
        "--batch-size",
        "4",
        "--resume",
    ]
    code, _, err = run_cli(resume, capsys)
    assert code == 0, err
    assert "resuming" in err and killed_at < torch.load(last, weights_only=True)["step"]
    assert_same_weights(
        final_weights(tmp_path / "full"), final_weights(tmp_path / "cut"), atol=1e-6
    )


def test_resume_restores_rank_zeros_generators_and_gives_other_ranks_their_own():
    """The checkpoint holds rank 0's generators: rank 0 continues its stream exactly; every
    other rank draws its own (a function of seed, rank and step), never rank 0's, so
    dropout keeps differing by rank."""
    cpu = torch.device("cpu")
    torch.manual_seed(5)
    saved = loop._rng_state(cpu)
    assert set(saved) == {"torch"}  # no CUDA state from a CPU run, even on a GPU machine
    expected = torch.rand(4)

    def draws(rank, state=saved):
        torch.manual_seed(123)  # whatever the process did before resuming
        loop.restore_rng(state, cpu, rank, seed=0, step=40)
        return torch.rand(4)

    torch.testing.assert_close(draws(0), expected, rtol=0, atol=0)
    torch.testing.assert_close(draws(0, {**saved, "cuda": [saved["torch"]]}), expected)
    others = [draws(rank) for rank in (1, 2)]
    assert not torch.equal(others[0], expected) and not torch.equal(others[0], others[1])
    torch.testing.assert_close(draws(1), others[0], rtol=0, atol=0)  # deterministic


def test_resume_restores_only_this_processs_gpu_generator(monkeypatch):
    """A GPU state goes to this process's device only, as a CPU tensor; an earlier
    release's list (every GPU visible when it was saved) gives this device's entry, or
    nothing when that run saw fewer GPUs (setting all of them failed on fewer)."""
    calls = []
    monkeypatch.setattr(torch.cuda, "set_rng_state", lambda s, d: calls.append((s, d)))
    cpu_state = torch.get_rng_state()
    states = [torch.full((16,), i, dtype=torch.uint8) for i in range(2)]
    gpu = torch.device("cuda", 1)
    for saved, want in ((states[1], states[1]), (states, states[1]), (states[:1], None)):
        calls.clear()
        loop.restore_rng({"torch": cpu_state, "cuda": saved}, gpu, 0, seed=0, step=3)
        assert calls == ([] if want is None else [(want, gpu)])
        assert all(s.device.type == "cpu" for s, _ in calls)


def test_resume_loads_the_checkpoint_on_the_host(store, tmp_path, capsys, monkeypatch):
    """torch.set_rng_state takes CPU byte tensors only: loading the checkpoint straight onto
    a GPU (map_location = the training device) made every GPU resume fail."""
    cfg = write_config(tmp_path / "c.yaml", store, max_steps=2)
    args = ["train", "--config", cfg, "-o", tmp_path / "r", "--gpus", "0", "--batch-size", "4"]
    assert run_cli(args, capsys)[0] == 0
    seen, load = [], loop.load_checkpoint

    def spy(path, map_location="cpu", **kwargs):
        seen.append(map_location)
        return load(path, map_location=map_location, **kwargs)

    monkeypatch.setattr(loop, "load_checkpoint", spy)
    code, _, err = run_cli([*args, "--max-steps", "3", "--resume"], capsys)
    assert code == 0, err
    assert seen == ["cpu"]


def test_validation_reads_its_windows_in_a_background_thread(store, tmp_path, capsys, monkeypatch):
    """The valid windows are read from the memory maps in a thread, ahead of the model (on a
    GPU the model no longer waits for each batch's read and copy), in eval mode without
    autograd; the scores are logged."""
    import threading

    from gitool.train.tasks import CoverageTask

    readers, valid_batches = [], CoverageTask.valid_batches

    def recorded(self, *args):
        for batch in valid_batches(self, *args):
            readers.append(threading.current_thread().name)
            yield batch

    monkeypatch.setattr(CoverageTask, "valid_batches", recorded)
    grad, forward = [], CoverageTask.forward

    def spied(self, net, x, head):
        grad.append((net.training, torch.is_grad_enabled()))
        return forward(self, net, x, head)

    monkeypatch.setattr(CoverageTask, "forward", spied)
    cfg = write_config(tmp_path / "c.yaml", store, max_steps=2, eval_every=2)
    args = ["train", "--config", cfg, "-o", tmp_path / "r", "--gpus", "0", "--batch-size", "4"]
    code, _, err = run_cli(args, capsys)
    assert code == 0, err
    assert readers and set(readers) == {"gitool-valid-inputs"}
    assert (False, False) in grad and (False, True) not in grad  # validation: no autograd
    records = metrics_records(tmp_path / "r")
    assert any(np.isfinite(r.get("valid_pearson", np.nan)) for r in records)
    assert not [t for t in threading.enumerate() if t.name == "gitool-valid-inputs"]


def test_dataloader_workers_do_not_change_the_run(store, tmp_path, capsys):
    """Persistent workers gathering batches into shared buffers, across epochs: the same
    batches as reading in the training process, so the same weights."""
    cfg = write_config(tmp_path / "c.yaml", store, epochs=3, seed=2)
    for workers in (0, 2):
        args = ["train", "--config", cfg, "-o", tmp_path / f"w{workers}", "--gpus", "0",
                "--batch-size", "4", "--num-workers", str(workers)]  # fmt: skip
        code, _, err = run_cli(args, capsys)
        assert code == 0, err
    assert_same_weights(final_weights(tmp_path / "w0"), final_weights(tmp_path / "w2"), atol=1e-6)


def test_bad_inputs_one_line_exit_2(store, tmp_path, capsys):
    def bad(*args):
        return run_cli(["train", *args], capsys)

    run = ["-o", tmp_path / "r", "--gpus", "0", "--model", "cnn-maxpool"]
    assert_input_error(*bad("--data", tmp_path / "nope", *run)[::2], "--data", "no such folder")
    assert_input_error(*bad("--data", tmp_path, *run)[::2], "not a gitool store")
    cfg = write_config(tmp_path / "c.yaml", store)
    config = yaml.safe_load(cfg.read_text())
    config["model_config"] = {**TINY_CNN, "heads": {"data": 9}}
    (tmp_path / "heads.yaml").write_text(yaml.safe_dump(config))
    assert_input_error(
        *bad("--config", tmp_path / "heads.yaml", "-o", tmp_path / "r")[::2], "heads", "9", "4"
    )
    config["model_config"] = {**TINY_CNN, "seq_length": 512}
    (tmp_path / "len.yaml").write_text(yaml.safe_dump(config))
    assert_input_error(
        *bad("--config", tmp_path / "len.yaml", "-o", tmp_path / "r")[::2], "seq_length 512", "400"
    )
    (tmp_path / "typo.yaml").write_text("data: [x]\nbatchsize: 4\n")
    assert_input_error(
        *bad("--config", tmp_path / "typo.yaml")[::2], "unknown option 'batchsize'", "batch_size"
    )
    assert_input_error(
        *bad("--config", cfg, "-o", tmp_path / "r", "--gpus", "2")[::2], "--gpus 2", "0 visible GPU"
    )
    assert_input_error(
        *bad("--config", cfg, "-o", tmp_path / "r", "--model", "swim")[::2], "unknown model 'swim'"
    )
    assert not (tmp_path / "r").exists()


def test_corrupt_checkpoint_on_resume(store, tmp_path, capsys):
    cfg = write_config(tmp_path / "c.yaml", store, max_steps=2)
    args = ["train", "--config", cfg, "-o", tmp_path / "r", "--gpus", "0", "--batch-size", "4"]
    assert run_cli(args, capsys)[0] == 0
    last = tmp_path / "r" / "checkpoints" / "last.pt"
    last.write_bytes(last.read_bytes()[:1000])
    code, _, err = run_cli([*args, "--resume"], capsys)
    assert_input_error(code, err, "corrupt or truncated", "last.pt")
    code, _, err = run_cli(args, capsys)
    assert_input_error(code, err, "already exists", "--resume")


def _children(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True)
    return [int(p) for p in out.stdout.split()]


@pytest.mark.slow
def test_a_dying_process_stops_the_run_with_a_message(store, tmp_path):
    cfg = write_config(tmp_path / "c.yaml", store, epochs=400, checkpoint_every=5)
    cmd = [sys.executable, "-m", "gitool", "train", "--config", str(cfg), "-o", str(tmp_path / "r"),
           "--gpus", "0", "--procs", "2", "--batch-size", "2"]  # fmt: skip
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline and not (tmp_path / "r" / "checkpoints" / "last.pt").exists():
        time.sleep(0.1)
    launcher = _children(proc.pid)  # torchrun
    ranks = [c for p in launcher for c in _children(p)]
    assert len(ranks) == 2, ranks
    os.kill(ranks[-1], signal.SIGKILL)
    try:
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 1
    last = err.strip().splitlines()[-1]
    assert last.startswith("error: a training process failed") and "--resume" in last


def test_two_datasets_train_one_trunk_with_two_heads(store, tiny, tmp_path, capsys):
    two = write_tracks(tmp_path / "two.txt", [dict(identifier="a", file=str(tiny["dir"] / "dense.bw")),
                                             dict(identifier="b", file=str(tiny["dir"] / "sparse.bw"))])  # fmt: skip
    args = ["build-dataset", tiny["genome"], two, "-o", tmp_path / "mouse", *GEOM, "-j", "1"]
    assert run_cli(args, capsys)[0] == 0
    cfg = write_config(tmp_path / "c.yaml", store, epochs=2)
    code, _, err = run_cli(["train", "--config", cfg, "--data", store, "--data", tmp_path / "mouse",
                            "--heads", "human,mouse", "-o", tmp_path / "r", "--gpus", "0",
                            "--batch-size", "4"], capsys)  # fmt: skip
    assert code == 0, err
    state = torch.load(tmp_path / "r" / "checkpoints" / "last.pt", weights_only=True)
    assert state["model_config"]["heads"] == {"human": 4, "mouse": 2}
    assert [d["head"] for d in state["data"]] == ["human", "mouse"]
    records = metrics_records(tmp_path / "r")
    valid = [r for r in records if "valid_pearson" in r]
    per_head = {
        f"{key}/{head}" for key in ("valid_loss", "valid_pearson") for head in ("human", "mouse")
    }
    assert valid and all(per_head <= set(r) for r in valid)
    # Both heads were trained: their weights moved away from a fresh model's.
    torch.manual_seed(0)
    fresh = build_from_config("cnn-maxpool", state["model_config"]).state_dict()
    for head in ("human", "mouse"):
        key = f"heads.layers.{head}.weight"
        assert not torch.allclose(state["model"][key], fresh[key])
    code, _, err = run_cli(["train", "--config", cfg, "--data", store, "--data", tmp_path / "mouse",
                            "--heads", "human", "-o", tmp_path / "r2", "--gpus", "0"], capsys)  # fmt: skip
    assert_input_error(code, err, "--heads", "one per --data")


def test_batch_norm_is_synchronised_only_across_gpu_ranks():
    torch.manual_seed(0)
    model = CAN(CANConfig(pool=20, activation="relu", norm=True))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    plain = (torch.nn.BatchNorm1d, torch.nn.SyncBatchNorm)
    n_bn = sum(isinstance(m, plain) for m in model.modules())
    assert n_bn == 2  # after the convolution and in the dense layer

    for ctx in (Context(0, 1, 0, torch.device("cuda", 0)), Context(0, 2, 0, torch.device("cpu"))):
        same = sync_batch_norm(model, ctx)
        assert same is model
        assert not any(isinstance(m, torch.nn.SyncBatchNorm) for m in model.modules())

    synced = sync_batch_norm(model, Context(1, 2, 1, torch.device("cuda", 1)))
    assert sum(isinstance(m, torch.nn.SyncBatchNorm) for m in synced.modules()) == n_bn
    after = synced.state_dict()
    assert after.keys() == before.keys()  # checkpoints load into the plain model
    assert all(torch.equal(after[k], before[k]) for k in before)


def test_ddp_syncs_batch_norm_statistics_but_not_the_constant_attention_buffers(tmp_path):
    """DDP broadcasts buffers from rank 0 before every forward: BatchNorm's running
    statistics must stay in that set; the attention masks and positional bases (built from
    the config, 25 MiB for swin-basenji-small) must not cost a broadcast per step. The model
    is wrapped as the loop wraps it, compiled or not."""
    import torch.distributed as dist

    from gitool.models.registry import create_model

    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'rendezvous'}", rank=0,
                            world_size=1)  # fmt: skip
    try:
        swin = create_model("swin", heads={"human": 2}, seq_length=500, target_length=24,
                            bin_size=16, dims=(8, 12, 16, 16, 24), windows=(8, 8, 12, 16, 16),
                            attention_heads=(2, 2, 2, 2, 4), transformer_heads=2,
                            transformer_key_dim=8)  # fmt: skip
        can = CAN(CANConfig(pool=20, activation="relu", norm=True))
        ctx = Context(0, 1, 0, torch.device("cpu"))
        for model, compiled in ((swin, False), (swin, True), (can, False)):
            net = torch.compile(model, backend="eager") if compiled else model
            synced = set(
                distributed.data_parallel(net, ctx, find_unused=False).named_module_buffers
            )
            constant = {n.rsplit(".", 1)[-1] for n, _ in model.named_buffers()} & {
                "position_basis", "padding", "padding_bias"
            }  # fmt: skip
            assert constant == ({"position_basis", "padding", "padding_bias"} if model is swin
                                else set())  # fmt: skip
            assert not any(n.rsplit(".", 1)[-1] in constant for n in synced), synced
            names = {n.rsplit(".", 1)[-1] for n, _ in net.named_buffers()}
            assert {n.rsplit(".", 1)[-1] for n in synced} == names - constant
        assert {"running_mean", "running_var"} <= {n.rsplit(".", 1)[-1] for n in synced}
    finally:
        dist.destroy_process_group()


def test_interrupted_launcher_stops_torchrun_with_sigterm(monkeypatch):
    """SIGTERM (or Ctrl-C) in the launcher reaches torchrun as SIGTERM, which it forwards
    to its workers, instead of the SIGKILL that would orphan them."""
    calls = []

    class FakeTorchrun:
        def __init__(self, cmd):
            self.cmd = cmd

        def wait(self, timeout=None):
            calls.append(("wait", timeout))
            if timeout is None:
                raise Terminated
            return -15

        def terminate(self):
            calls.append(("terminate", None))

        def kill(self):
            calls.append(("kill", None))

    monkeypatch.setattr(distributed.subprocess, "Popen", FakeTorchrun)
    with pytest.raises(Terminated):
        distributed.relaunch(TrainConfig(data=["x"], gpus=0, procs=2), "cfg.yaml")
    assert calls == [("wait", None), ("terminate", None), ("wait", distributed.RELAUNCH_GRACE_S)]


def _worker_getting_sigterm() -> None:
    signal.signal(signal.SIGTERM, lambda *a: None)  # as the CLI's handler, inherited
    default_sigterm(0)
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(30)


def test_dataloader_workers_leave_quietly_on_sigterm():
    """A worker killed by SIGTERM made PyTorch raise in the main process during its cleanup
    (a traceback instead of exit 143): the worker exits 0 instead, at once."""
    import multiprocessing

    worker = multiprocessing.get_context("fork").Process(target=_worker_getting_sigterm)
    worker.start()
    worker.join(10)
    assert worker.exitcode == 0


def test_tensorboard_holds_what_metrics_jsonl_holds_and_resume_appends(store, tmp_path, capsys):
    # tensorboard is an optional dependency (the test extra installs it)
    accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    cfg = write_config(tmp_path / "c.yaml", store, eval_every=2)
    run = tmp_path / "r"
    args = [
        "train",
        "--config",
        cfg,
        "-o",
        run,
        "--gpus",
        "0",
        "--batch-size",
        "4",
        "--tensorboard",
    ]
    code, _, err = run_cli([*args, "--max-steps", "3"], capsys)
    assert code == 0, err
    assert yaml.safe_load((run / "config.yaml").read_text())["tensorboard"] is True
    code, _, err = run_cli([*args, "--max-steps", "5", "--resume"], capsys)
    assert code == 0, err
    assert len(list((run / "tensorboard").glob("events.out.tfevents.*"))) == 2  # one per process
    expected: dict[str, list[tuple[int, float]]] = {}
    for record in metrics_records(run):
        kind = "train" if "loss" in record else "valid"
        for key, value in record.items():
            if key != "step":
                tag = f"{kind}/{key.removeprefix('valid_')}"
                expected.setdefault(tag, []).append((record["step"], value))
    assert {"train/loss", "train/lr", "train/samples_per_s", "train/epoch", "valid/loss",
            "valid/pearson", "valid/epoch"} == set(expected)  # fmt: skip
    assert [s for s, _ in expected["train/loss"]] == [1, 2, 3, 4, 5]
    assert [s for s, _ in expected["valid/pearson"]] == [2, 3, 4, 5]  # every 2 and at the end
    events = accumulator.EventAccumulator(str(run / "tensorboard"))
    events.Reload()
    assert set(events.Tags()["scalars"]) == set(expected)
    for tag, points in expected.items():
        logged = [(e.step, e.value) for e in events.Scalars(tag)]
        assert [s for s, _ in logged] == [s for s, _ in points], tag
        np.testing.assert_allclose([v for _, v in logged], [v for _, v in points], rtol=1e-6)


def test_tensorboard_without_the_package_is_a_one_line_error(store, tmp_path, capsys, monkeypatch):
    find_spec = train_checks.importlib.util.find_spec
    monkeypatch.setattr(
        train_checks.importlib.util,
        "find_spec",
        lambda name, *a: None if name == "tensorboard" else find_spec(name, *a),
    )
    cfg = write_config(tmp_path / "c.yaml", store, max_steps=1)
    code, _, err = run_cli(
        ["train", "--config", cfg, "-o", tmp_path / "r", "--gpus", "0", "--tensorboard"], capsys
    )
    assert_input_error(code, err, "--tensorboard", "pip install")
    assert not (tmp_path / "r").exists()


def test_a_shift_beyond_half_the_window_is_refused_before_the_run_folder(store, tmp_path, capsys):
    cfg = write_config(tmp_path / "c.yaml", store, max_steps=1)
    args = ["train", "--config", cfg, "-o", tmp_path / "r", "--gpus", "0", "--batch-size", "4"]
    code, _, err = run_cli([*args, "--shift", "201"], capsys)
    assert_input_error(code, err, "--shift must be at most 200 bp (half the 400-bp window", "201")
    assert not (tmp_path / "r").exists()
    code, _, err = run_cli([*args, "--shift", "200"], capsys)
    assert code == 0, err


def test_warm_up_the_schedule_cannot_reach_is_refused_or_named(store, tmp_path, capsys):
    cfg = write_config(tmp_path / "c.yaml", store, epochs=1)
    args = ["train", "--config", cfg, "--gpus", "0", "--batch-size", "4"]
    # plateau has no warm-up: it used to ignore the option and start at --lr
    code, _, err = run_cli([*args, "-o", tmp_path / "p", "--schedule", "plateau",
                            "--warmup-steps", "5"], capsys)  # fmt: skip
    assert_input_error(code, err, "--warmup-steps does not apply to --schedule plateau")
    assert not (tmp_path / "p").exists()
    # a warm-up as long as the run: the rate never reaches --lr nor anneals; said once
    code, _, err = run_cli([*args, "-o", tmp_path / "w", "--warmup-steps", "20"], capsys)
    assert code == 0, err
    steps = [r for r in metrics_records(tmp_path / "w") if "lr" in r and "loss" in r]
    assert len(steps) < 20 and steps[-1]["lr"] < 1e-3
    err = " ".join(err.split())
    assert f"--warmup-steps 20 is not shorter than the run's {len(steps)} steps" in err
    assert "the cosine decay never starts" in err


def test_a_second_store_too_small_for_a_batch_is_refused(store, tiny, tmp_path, capsys):
    small = tmp_path / "small"
    code, _, err = run_cli(["build-dataset", tiny["genome"], tiny["tracks"], "-o", small, *GEOM,
                            "-j", "1", "--valid-chroms", "chr1", "--test-chroms", "chr2"],
                           capsys)  # fmt: skip
    assert code == 0, err
    cfg = write_config(tmp_path / "c.yaml", store, max_steps=1)
    code, _, err = run_cli(["train", "--config", cfg, "--data", store, "--data", small,
                            "--heads", "a,b", "-o", tmp_path / "r", "--gpus", "0",
                            "--batch-size", "16"], capsys)  # fmt: skip
    assert_input_error(code, err, "--batch-size 16 × 1 process(es) is more than the", str(small))
    assert not (tmp_path / "r").exists()


def test_checkpoints_are_written_in_the_background_from_a_snapshot(tmp_path, monkeypatch):
    from gitool import runs

    release, written = threading.Event(), []

    def slow_save(path, state):
        assert release.wait(10)
        written.append((path, state))

    monkeypatch.setattr(runs, "save_checkpoint", slow_save)
    writer = runs.CheckpointWriter()
    weights = torch.zeros(3)
    began = time.perf_counter()
    writer.save(tmp_path / "last.pt", {"model": {"w": weights}, "step": 1})
    assert time.perf_counter() - began < 5 and not written  # save() did not wait for the disk
    weights += 1  # training goes on changing the live tensors
    release.set()
    writer.wait()
    ((path, state),) = written
    assert path == tmp_path / "last.pt" and state["step"] == 1
    torch.testing.assert_close(state["model"]["w"], torch.zeros(3))  # the state at save()

    def failing(path, state):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(runs, "save_checkpoint", failing)
    writer.save(tmp_path / "x.pt", {"step": 2})
    with pytest.raises(OSError, match="No space"):
        writer.wait()


def test_checkpoint_minutes_adds_checkpoints_by_time(store, tmp_path, capsys, monkeypatch):
    from gitool import runs

    saves = []
    real = runs.CheckpointWriter.save
    monkeypatch.setattr(runs.CheckpointWriter, "save",
                        lambda self, path, state: saves.append(state["step"]) or real(self, path, state))  # fmt: skip
    cfg = write_config(tmp_path / "c.yaml", store, epochs=1, max_steps=4, checkpoint_every=100)
    base = ["train", "--config", cfg, "--gpus", "0", "--batch-size", "4"]
    assert run_cli([*base, "-o", tmp_path / "steps"], capsys)[0] == 0
    by_steps, saves[:] = list(saves), []
    assert run_cli([*base, "-o", tmp_path / "time", "--checkpoint-minutes", "1e-9"], capsys)[0] == 0
    assert by_steps == [4, 4]  # at the end only: best.pt and last.pt
    assert saves[:4] == [1, 2, 3, 4]  # and after every step by time
    assert torch.load(tmp_path / "time" / "checkpoints" / "last.pt", weights_only=True)["step"] == 4


def test_data_on_device_trains_the_same_weights(store, tmp_path, capsys):
    cfg = write_config(tmp_path / "c.yaml", store, epochs=1, max_steps=5)
    base = ["train", "--config", cfg, "--gpus", "0", "--batch-size", "4"]
    assert run_cli([*base, "-o", tmp_path / "stream"], capsys)[0] == 0
    code, _, err = run_cli([*base, "-o", tmp_path / "held", "--data-on-device"], capsys)
    assert code == 0, err
    assert "holding the training split(s) in memory" in " ".join(err.split())
    assert_same_weights(
        final_weights(tmp_path / "stream"), final_weights(tmp_path / "held"), atol=0
    )


# 400 bp at 8-bp bins: four 1D-Swin layers, padded last windows, the transformer block
TINY_SWIN = {"dims": [8, 12, 16, 16], "windows": [8, 8, 12, 16], "attention_heads": [2, 2, 2, 2],
             "transformer_heads": 2, "transformer_key_dim": 8, "dropout": 0.0,
             "attn_dropout": 0.0, "pos_dropout": 0.0}  # fmt: skip


def test_compiled_training_traces_one_graph_and_saves_plain_weights(
    store, tmp_path, capsys, monkeypatch
):
    """`gitool train --compile` (the default on GPUs) as the loop runs it: dynamo traces the
    real steps, validation and resume without a graph break, the weights equal an eager run's,
    and the checkpoints hold the plain model's keys, which `gitool predict` loads. Dynamo's
    eager backend stands in for inductor, whose code generation is too slow for the suite."""
    from torch._dynamo.utils import counters

    compile_, backends = torch.compile, []

    def traced(model, **kwargs):
        backends.append(kwargs.get("backend", "inductor"))
        return compile_(model, backend="eager")

    monkeypatch.setattr(torch, "compile", traced)
    torch._dynamo.reset()
    counters.clear()
    cfg = write_config(tmp_path / "c.yaml", store, model="swin", model_config=TINY_SWIN,
                       max_steps=4, eval_every=2, seed=5)  # fmt: skip
    base = ["train", "--config", cfg, "--gpus", "0", "--batch-size", "4"]
    code, _, err = run_cli([*base, "-o", tmp_path / "compiled", "--compile"], capsys)
    assert code == 0, err
    assert backends == ["inductor"]  # the loop asked for torch.compile's default backend
    resume = ["--max-steps", "6", "--resume"]  # the schedule follows --max-steps: both resume
    code, _, err = run_cli([*base, "-o", tmp_path / "compiled", "--compile", *resume], capsys)
    assert code == 0, err
    assert not counters["graph_break"], dict(counters["graph_break"])
    assert counters["stats"]["unique_graphs"] >= 2  # training and validation were traced
    for args in ([], resume):
        code, _, err = run_cli([*base, "-o", tmp_path / "eager", *args], capsys)
        assert code == 0, err
    compiled, eager = final_weights(tmp_path / "compiled"), final_weights(tmp_path / "eager")
    assert not [key for key in compiled if "_orig_mod" in key or key.startswith("module.")]
    assert_same_weights(compiled, eager)
    bed = tmp_path / "r.bed"
    bed.write_text("chr1\t0\t400\n")
    code, _, err = run_cli(
        ["predict", bed, "-m", tmp_path / "compiled", "-o", tmp_path / "p.bw"], capsys
    )
    assert code == 0, err
    assert len(list(tmp_path.glob("p.*.bw"))) == 4  # one bigWig per track


# --------------------------------------------------------------------------- the budget


def _records(run: Path) -> tuple[list[dict], list[dict]]:
    records = metrics_records(run)
    return [r for r in records if "loss" in r], [r for r in records if "valid_loss" in r]


def test_grad_accum_never_carries_a_batch_into_the_next_epoch(store, tmp_path, capsys, monkeypatch):
    """7 batches an epoch at --grad-accum 2: 3 steps of 2 batches; the 7th batch's gradient
    was added to the next epoch's first step, so a run resumed from an epoch's checkpoint
    differed from an uninterrupted one."""
    cfg = write_config(tmp_path / "c.yaml", store, epochs=3, grad_accum=2, seed=4)
    base = ["train", "--config", cfg, "--gpus", "0", "--batch-size", "4"]
    batches, accumulate = [], loop.TrainingRun.accumulate

    def counted(self, i, *args):
        batches.append((self.epoch, i))
        return accumulate(self, i, *args)

    monkeypatch.setattr(loop.TrainingRun, "accumulate", counted)
    assert run_cli([*base, "-o", tmp_path / "full"], capsys)[0] == 0
    assert [i for e, i in batches if e == 1] == list(range(6))  # the 7th is not used
    assert len(_records(tmp_path / "full")[0]) == 9  # 3 steps × 3 epochs
    end_epoch = loop.TrainingRun.end_epoch

    def killed(self):
        end_epoch(self)
        self.saver.wait()
        raise KeyboardInterrupt  # right after epoch 0's checkpoint

    monkeypatch.setattr(loop.TrainingRun, "end_epoch", killed)
    assert run_cli([*base, "-o", tmp_path / "cut"], capsys)[0] == 130
    monkeypatch.setattr(loop.TrainingRun, "end_epoch", end_epoch)
    assert run_cli([*base, "-o", tmp_path / "cut", "--resume"], capsys)[0] == 0
    assert_same_weights(final_weights(tmp_path / "full"), final_weights(tmp_path / "cut"), atol=0)
    code, _, err = run_cli([*base, "-o", tmp_path / "none", "--grad-accum", "8"], capsys)
    assert_input_error(code, err, "--grad-accum", "more than the 7 batches")
    assert not (tmp_path / "none").exists()


def test_the_schedule_ends_where_the_run_does(store, tmp_path, capsys):
    """--max-steps 30 over 2 epochs of 7 steps: the run stops at 14, and the cosine reaches 0
    there (it was drawn over 30 steps, so the rate stayed near half); each record's rate is
    the one its step ran at."""
    cfg = write_config(tmp_path / "c.yaml", store, epochs=2, max_steps=30, seed=2)
    args = ["train", "--config", cfg, "--gpus", "0", "--batch-size", "4", "-o", tmp_path / "r"]
    assert run_cli(args, capsys)[0] == 0
    train, valid = _records(tmp_path / "r")
    lrs = [r["lr"] for r in train]
    assert len(lrs) == 14 and lrs[0] == 1e-3 and lrs[-1] < 0.02 * 1e-3
    assert [r["epoch"] for r in valid] == [0, 1]  # each end-of-epoch score names its epoch
    args = [*args[:-1], tmp_path / "e", "--eval-every", "50", "--max-steps", "100"]
    assert run_cli(args, capsys)[0] == 0
    assert [r["epoch"] for r in _records(tmp_path / "e")[1]] == [1]  # the last, not one past


def test_a_resumed_run_with_a_longer_budget_goes_on_from_its_rate(
    store, tmp_path, capsys, monkeypatch
):
    """Interrupted at step 3 of 6 and resumed with --max-steps 12: the rate goes on down from
    where it was (it jumped back up the 12-step curve). A finished run extended the same way
    restarts the longer curve, and says so."""
    cfg = write_config(tmp_path / "c.yaml", store, epochs=20, max_steps=6, seed=2,
                       checkpoint_every=1)  # fmt: skip
    args = ["train", "--config", cfg, "--gpus", "0", "--batch-size", "4", "-o", tmp_path / "r"]
    after_step = loop.TrainingRun.after_step

    def interrupted(self, *a):
        window = after_step(self, *a)
        if self.step == 3:
            self.saver.wait()
            raise KeyboardInterrupt
        return window

    monkeypatch.setattr(loop.TrainingRun, "after_step", interrupted)
    assert run_cli(args, capsys)[0] == 130
    monkeypatch.setattr(loop.TrainingRun, "after_step", after_step)
    assert run_cli([*args, "--max-steps", "12", "--resume"], capsys)[0] == 0
    lrs = [r["lr"] for r in _records(tmp_path / "r")[0]]
    assert len(lrs) == 12
    steps = zip(lrs, lrs[1:], strict=False)
    assert all(b <= a for a, b in steps), lrs  # no jump back up the longer curve
    assert lrs[3] > 0.5 * lrs[2] and lrs[-1] < 0.05 * lrs[3]
    code, _, err = run_cli([*args, "--max-steps", "14", "--resume"], capsys)
    assert code == 0 and "had finished its 12 steps" in " ".join(err.split())
    # ... at the rate it announces from its first step (it took the finished run's 0 there)
    restarted = [r["lr"] for r in _records(tmp_path / "r")[0]][12:]
    announced = float(" ".join(err.split()).split("restarts at rate ")[1].split()[0])
    assert len(restarted) == 2 and restarted[0] == pytest.approx(announced, rel=5e-3)  # 3 digits
    assert restarted[0] > restarted[1] > 0
    saved = yaml.safe_load((tmp_path / "r" / "config.yaml").read_text())
    assert saved["resume"] is False  # the file starts the same run afresh with --config
    again = ["train", "--config", tmp_path / "r" / "config.yaml", "-o", tmp_path / "again"]
    assert run_cli(again, capsys)[0] == 0


def test_shift_beyond_half_a_bin_and_the_valid_subset(store, tmp_path, capsys, monkeypatch):
    from gitool.train.tasks import CoverageTask

    seen, valid_batches = [], CoverageTask.valid_batches

    def recorded(self, store_, indices, batch_size):
        seen.append(list(indices))
        return valid_batches(self, store_, indices, batch_size)

    monkeypatch.setattr(CoverageTask, "valid_batches", recorded)
    cfg = write_config(tmp_path / "c.yaml", store, max_steps=1, shift=5, valid_windows=3)
    args = ["train", "--config", cfg, "--gpus", "0", "--batch-size", "4", "-o", tmp_path / "r"]
    code, _, err = run_cli(args, capsys)
    assert code == 0, err
    assert "--shift 5 moves the input by more than half a 8-bp bin" in " ".join(err.split())
    assert seen == [[0, 7, 14]]  # spread over the 15 valid windows, not the first three
    # a checkpoint from before the spread subsets keeps its run's first windows on resume
    last = tmp_path / "r" / "checkpoints" / "last.pt"
    state = torch.load(last, weights_only=True)
    del state["valid_selection"]
    torch.save(state, last)
    assert run_cli([*args, "--max-steps", "2", "--resume"], capsys)[0] == 0
    assert seen[-1] == [0, 1, 2]


def test_resume_trains_on_the_runs_own_store_and_refuses_a_changed_one(
    tiny, tmp_path, capsys, monkeypatch
):
    """`--data data` was kept as typed, so a resume from another folder trained on that
    folder's `data/` (another store), and a store rebuilt with its tracks in another order
    was taken as it was: each output then learned another track, silently."""
    table = pd.read_csv(tiny["tracks"], sep="\t")
    table["file"] = [str(tiny["dir"] / f) for f in table["file"]]
    swapped = table.iloc[[1, 0, 2, 3]].reset_index(drop=True)
    swapped["index"], swapped["strand_pair"] = range(4), [1, 0, 2, 3]
    for folder, tracks in (("project", table), ("elsewhere", swapped)):
        (tmp_path / folder).mkdir()
        tracks.to_csv(tmp_path / folder / "tracks.txt", sep="\t", index=False)
        args = ["build-dataset", tiny["genome"], tmp_path / folder / "tracks.txt", "-o",
                tmp_path / folder / "data", *GEOM, "-j", "1"]  # fmt: skip
        assert run_cli(args, capsys)[0] == 0
    project, elsewhere = tmp_path / "project", tmp_path / "elsewhere"
    monkeypatch.chdir(project)
    cfg = write_config(tmp_path / "c.yaml", Path("data"), max_steps=2, checkpoint_every=1)
    assert run_cli(["train", "--config", cfg, "--gpus", "0", "-o", "run"], capsys)[0] == 0
    monkeypatch.chdir(elsewhere)  # its data/ lists the same tracks in another order
    resume = ["train", "--resume", "-o", project / "run", "--gpus", "0", "--max-steps", "3"]
    code, _, err = run_cli(resume, capsys)
    assert code == 0, err
    trained = torch.load(project / "run" / "checkpoints" / "last.pt", weights_only=False)
    assert trained["step"] == 3
    assert trained["data"][0]["path"] == str((project / "data").resolve())
    code, _, err = run_cli([*resume[:-1], "4", "--data", "data"], capsys)
    assert_input_error(code, err, "data is not the store", "tracks differ", "--data")
    # a store of other sizes: the data is named, not the model configuration they change
    args = ["build-dataset", tiny["genome"], tmp_path / "project" / "tracks.txt", "-o",
            elsewhere / "short", "--seq-length", "200", "--bin-size", "8", "--target-length",
            "10", "-j", "1"]  # fmt: skip
    assert run_cli(args, capsys)[0] == 0
    code, _, err = run_cli([*resume[:-1], "4", "--data", "short"], capsys)
    assert_input_error(code, err, "short is not the store", "geometry", "differ", "--data")
    assert torch.load(project / "run" / "checkpoints" / "last.pt", weights_only=False)["step"] == 3


@pytest.mark.parametrize(
    ("heads", "message"),
    [
        ({"dta": 4}, "heads: no entry for 'data'; 'dta' is not a head; this run's heads are data"),
        ({"data": 4, "more": 2}, "heads: 'more' is not a head"),
        ({"data": 3}, "heads: 'data' has 3 tracks but"),
        ([4], "heads must map each head (data) to its number of tracks, got [4]"),
    ],
)
def test_model_config_heads_name_the_runs_heads(store, tmp_path, capsys, heads, message):
    """A head name mistyped in `model_config: heads` said "'data' has None tracks"."""
    cfg = write_config(tmp_path / "c.yaml", store, max_steps=1,
                       model_config={**TINY_CNN, "heads": heads})  # fmt: skip
    code, _, err = run_cli(["train", "--config", cfg, "--gpus", "0", "-o", tmp_path / "r"], capsys)
    assert_input_error(code, err, "c.yaml: model_config", message)
    assert not (tmp_path / "r").exists()


def test_resume_of_a_folder_without_a_checkpoint_names_it(tmp_path, capsys, monkeypatch):
    """With no --data and no data/ here, it blamed the missing data/ store instead."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "run" / "checkpoints").mkdir(parents=True)
    code, _, err = run_cli(["train", "--resume", "-o", "run", "--gpus", "0"], capsys)
    assert_input_error(code, err, "run/checkpoints/last.pt does not exist", "without --resume")
    assert "data" not in err
    code, _, err = run_cli(["train", "--resume", "-o", "nowhere", "--gpus", "0"], capsys)
    assert_input_error(code, err, "last.pt does not exist (nowhere is not a folder)")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_resume_with_another_store_names_the_data_before_the_heads(tiny, store, tmp_path, capsys):
    """With `model_config: heads`, a resume on another store said "heads: no entry for
    'other'" (the model check ran first) instead of naming the store."""
    cfg = write_config(tmp_path / "c.yaml", store, max_steps=1,
                       model_config={**TINY_CNN, "heads": {"data": 4}})  # fmt: skip
    args = ["train", "--config", cfg, "--gpus", "0", "-o", tmp_path / "r"]
    assert run_cli(args, capsys)[0] == 0
    other = tmp_path / "other"
    build = ["build-dataset", tiny["genome"], tiny["tracks"], "-o", other, "--seq-length", "200",
             "--bin-size", "8", "--target-length", "10", "-j", "1"]  # fmt: skip
    assert run_cli(build, capsys)[0] == 0
    code, _, err = run_cli([*args, "--resume", "--data", other, "--max-steps", "2"], capsys)
    assert_input_error(code, err, f"--data {other} is not the store", "geometry")


def test_resume_with_another_model_names_what_differs(store, tmp_path, capsys):
    """It said only "holds a different model configuration than this run's"."""
    cfg = write_config(tmp_path / "c.yaml", store, max_steps=1)
    args = ["train", "--config", cfg, "--gpus", "0", "-o", tmp_path / "r"]
    assert run_cli(args, capsys)[0] == 0
    other = write_config(tmp_path / "d.yaml", store, max_steps=2,
                         model_config={**TINY_CNN, "channels": 32})  # fmt: skip
    code, _, err = run_cli(["train", "--config", other, "--gpus", "0", "-o", tmp_path / "r",
                            "--resume"], capsys)  # fmt: skip
    assert_input_error(code, err, "channels 16 there, 32 here", "own model, cnn-maxpool")
