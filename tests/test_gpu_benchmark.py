"""``benchmarks/gpu.py``, the script for the first lent GPU, works end to end before a GPU is
lent: its ``--smoke`` run (every section on the CPU at tiny sizes) records every section as
ok with results, prints its summary, and leaves a valid JSON file after each section (also
when it is stopped part-way); the arithmetic that turns the runs' records into figures is
checked on made-up records."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "gpu.py"
SECTIONS = ("environment", "swin", "loader", "train", "predict", "enformer")

sys.path.insert(0, str(ROOT / "benchmarks"))
import gpu  # noqa: E402 - benchmarks/ is not a package


def env() -> dict:
    out = dict(os.environ)
    out["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT / "src"), out.get("PYTHONPATH")) if p)
    return out


@pytest.mark.slow
def test_smoke_run_records_every_section(tmp_path):
    path = tmp_path / "out" / "gpu.json"
    command = [
        sys.executable,
        str(SCRIPT),
        "--smoke",
        "--json",
        str(path),
        "--workdir",
        str(tmp_path / "work"),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=150, env=env())
    assert done.returncode == 0, done.stderr[-3000:]
    record = json.loads(path.read_text())
    assert record["finished"] and record["settings"]["smoke"]
    assert list(record["sections"]) == list(SECTIONS)
    for name, entry in record["sections"].items():
        assert entry["status"] == "ok", (name, entry.get("status"))
        assert entry["results"], name
    res = {name: entry["results"] for name, entry in record["sections"].items()}
    sdpa = res["environment"]["sdpa"]
    assert sum(len(row["layers"]) for row in sdpa) == 17  # 8 layers × 2 blocks + transformer
    assert all(row["backends"]["math"]["ok"] for row in sdpa)
    swin = {(r["mode"], r["batch"]): r for r in res["swin"]["rows"]}
    assert swin[("eager", 1)]["samples_per_s"] > 0 and res["swin"]["flops_per_sample"] > 0
    assert "skipped" in swin[("compiled", 1)]  # says why (no fake numbers)
    assert all(r["windows_per_s"] > 0 for r in res["loader"]["rows"])
    assert res["train"]["steps_per_s"] > 0 and res["train"]["validation_passes"]
    assert {"last.pt"} <= set(res["train"]["checkpoints"])
    extrapolated = [r for r in res["predict"]["rows"] if r.get("extrapolation")]
    assert [r["tracks"] for r in extrapolated] == [4, 8]
    assert all(r["genome_s"] > 0 for r in extrapolated)
    assert res["predict"]["model_from"] == "section 4's run"
    enformer = res["enformer"]["rows"]
    assert [r["checkpoint_activations"] for r in enformer] == [False, False, True, True]
    assert all(r["samples_per_s"] > 0 for r in enformer)
    assert {t["result"] for t in record["targets"]} == {"n/a"}  # nothing judged on a CPU
    out = done.stdout
    assert "gitool GPU benchmark (smoke run" in out
    for name in SECTIONS:
        assert f"\n{name} " in out
    assert "whole human genome (3.1 Gbp) predicted, 50 tracks" in out
    assert f"results: {path}" in out


def test_json_is_valid_after_each_section_and_a_stopped_run_keeps_it(tmp_path):
    """$OUT/gpu.json by default; stopped (SIGTERM) during the second section, the file still
    holds the first section's results, and the second section's process is gone."""
    out = tmp_path / "out"
    out.mkdir()
    path = out / "gpu.json"
    command = [
        sys.executable,
        str(SCRIPT),
        "--smoke",
        "--sections",
        "environment,swin",
        "--workdir",
        str(tmp_path / "work"),
    ]
    proc = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**env(), "OUT": str(out)}
    )
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and proc.poll() is None:
            if path.is_file():
                record = json.loads(path.read_text())  # valid JSON at every moment
                if record["sections"]["environment"]["status"] == "ok":
                    break
            time.sleep(0.05)
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
        time.sleep(1.5)  # the swin section is running
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    record = json.loads(path.read_text())
    assert not record["finished"]
    environment = record["sections"]["environment"]
    assert environment["status"] == "ok" and environment["results"]["sdpa"]
    assert record["sections"]["swin"]["status"] in ("pending", "running")
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert not [line for line in ps.splitlines() if str(tmp_path) in line and "--section" in line]


def test_section_names():
    assert gpu.section_names("all") == list(SECTIONS)
    assert gpu.section_names("6,train,1") == ["environment", "train", "enformer"]
    with pytest.raises(SystemExit, match="unknown section"):
        gpu.section_names("gpu")


def test_run_analysis_from_metrics_records():
    """Log windows of 10 steps at batch 8: the first (compilation) and those after a
    validation (80) or checkpoint (50, 100) are left out of the steady rate; validation
    passes last from their step's training record to their own record."""
    cfg = {"log_every": 10, "checkpoint_every": 50, "valid_windows": 256}
    records, clock = [], 30.0
    for step in range(10, 151, 10):
        seconds = 1.0  # 80 samples per second: 10 steps of 8 in 1 s
        if step == 10:
            seconds = 30.0
        elif step in (60, 110):
            seconds = 1.5  # the window after a checkpoint
        elif step == 90:
            seconds = 1.2  # after the validation at 80 (and its best.pt)
        clock += seconds if step > 10 else 0.0
        records.append(
            {"step": step, "loss": 1.0, "samples_per_s": 80 / seconds, "arrived_s": clock}
        )
        if step in (80, 150):
            clock += 20.0 if step == 80 else 2.0
            records.append({"step": step, "valid_loss": 1.0, "arrived_s": clock})
    out = gpu.analyse_run(records, cfg, batch=8)
    assert out["steps_per_s"] == pytest.approx(10.0)
    assert out["samples_per_s"] == pytest.approx(80.0)
    assert out["checkpoint_s"] == pytest.approx(0.5)
    assert out["validation_first_s"] == pytest.approx(20.0)
    assert out["validation_s"] == pytest.approx(2.0)
    assert out["first_record_s"] == pytest.approx(30.0)
    assert out["steady_windows"] == 14 - 3


def test_prediction_extrapolation():
    """Two runs: the difference gives the per-bp rate, the rest is fixed cost."""
    span, bin_size = 10_240, 128
    runs = [
        {"bp": bp, "windows": bp // span, "bins": bp // bin_size, "wall_s": wall, "bytes": 0}
        for bp, wall in ((2 * span * 100, 12.0), (8 * span * 100, 18.0))
    ]
    runs[1]["bytes"] = runs[1]["bins"] * 50 * 2  # two bytes per bin and track
    row = gpu.extrapolate(runs[0], runs[1], tracks=50)
    assert row["bp_per_s"] == pytest.approx(6 * span * 100 / 6.0)
    assert row["windows_per_s"] == pytest.approx(100.0)
    assert row["fixed_s"] == pytest.approx(10.0)
    assert row["bins_written_per_s"] == pytest.approx(row["bp_per_s"] / bin_size * 50)
    assert row["genome_s"] == pytest.approx(10.0 + 3.1e9 / row["bp_per_s"])
    assert row["genome_output_gb"] == pytest.approx(3.1e9 / bin_size * 50 * 2 / 1e9)


def test_targets_judge_gpu_figures():
    record = {
        "settings": {"smoke": False},
        "sections": {
            "environment": {"results": {"sdpa_kernels": {"memory-efficient": ["a"] * 17}}},
            "swin": {
                "results": {
                    "rows": [
                        {"mode": "eager", "batch": 8, "samples_per_s": 900.0, "mfu": 0.21},
                        {"mode": "compiled", "batch": 8, "samples_per_s": 1300.0, "mfu": 0.30},
                        {"mode": "eager", "batch": 32, "samples_per_s": 1400.0, "mfu": 0.33},
                    ]
                }
            },
            "loader": {
                "results": {
                    "model_b8_best": 1300.0,
                    "rows": [{"path": "to device", "workers": 2, "windows_per_s": 2600.0}],
                }
            },
            "train": {"results": {"epoch_s": 40.0}},
            "predict": {
                "results": {"rows": [{"tracks": 50, "extrapolation": True, "genome_s": 1200.0}]}
            },
        },
    }
    results = {t["target"].split(" (")[0].split(":")[0]: t for t in gpu.targets(record)}
    mfu = results["swin-basenji-small bf16 MFU at batch 8"]
    assert (mfu["value"], mfu["result"]) == ("30.0%", "FAIL")
    assert "best 33.0% (eager, batch 32)" in mfu["note"] and "memory-efficient 17" in mfu["note"]
    assert results["one BasenjiSmall epoch"]["result"] == "FAIL"  # 40 s > 30 s
    assert results["one BasenjiSmall epoch at the model-alone rate"]["result"] == "PASS"
    assert results["loader keeps up"]["value"] == "2.00x"
    genome = results["whole human genome"]
    assert (genome["value"], genome["result"]) == ("20.0 min", "PASS")


def test_summary_of_a_gpu_record_with_failures():
    """The summary and the targets of a GPU run's record (made-up values in its shape) where
    some measurements failed, were skipped or timed out: every row is printed, none raises."""
    kernel_rows = [
        {
            "layers": ["trunk.layers.0.regular.attn", "trunk.layers.0.shifted.attn"],
            "q_shape": [4432, 2, 32, 16],
            "default_kernel": "memory-efficient",
            "default": {"ok": True, "forward_ms": 0.1, "forward_backward_ms": 0.4},
            "backends": {
                "flash_attention": {"ok": False, "reason": "does not support non-null attn_mask"},
                "efficient_attention": {"ok": True, "forward_backward_ms": 0.4},
                "math": {"ok": True, "forward_backward_ms": 2.0},
            },
        }
    ]
    step = {"step_s": 0.05, "samples_per_s": 160.0, "first_step_s": 1.0, "mfu": 0.2}
    memory = {"peak_alloc_gb": 9.0, "peak_reserved_gb": 10.0}
    record = {
        "machine": "a GPU machine",
        "seconds": 400.0,
        "settings": {"smoke": False},
        "sections": {
            "environment": {
                "status": "ok",
                "seconds": 20.0,
                "results": {
                    "device": "NVIDIA H100 80GB HBM3",
                    "torch": "2.x",
                    "cuda": "12.x",
                    "bf16_peak": "989.4 TFLOP/s dense bf16 (H100)",
                    "sdpa": kernel_rows,
                    "sdpa_kernels": {"memory-efficient": kernel_rows[0]["layers"]},
                },
            },
            "swin": {
                "status": "ok",
                "seconds": 150.0,
                "results": {
                    "rows": [
                        {"mode": "eager", "batch": 8, **step, **memory},
                        {"mode": "compiled", "batch": 8, **step, "mfu": 0.25, **memory},
                        {"mode": "eager", "batch": 32, "error": "out of memory"},
                        {"mode": "compiled", "batch": 32, "skipped": "not enough time"},
                    ]
                },
            },
            "loader": {
                "status": "failed: RuntimeError: something",
                "results": {
                    "model_b8_best": 160.0,
                    "rows": [
                        {"path": "host", "workers": 2, "windows_per_s": 3000.0},
                        {"path": "to device", "workers": 6, "windows_per_s": 2000.0},
                        {"path": "to device", "workers": 8, "error": "boom"},
                    ],
                },
            },
            "train": {
                "status": "timeout after 180 s (results so far kept)",
                "results": {
                    "first_record_s": 90.0,
                    "validation_first_s": 30.0,
                    "steps": 150,
                    "compiled": True,
                    "dynamo": {
                        "recompiles": 2,
                        "graph_breaks": 0,
                        "first_recompiles": ["Recompiling function forward: ___check_training"],
                        "first_graph_breaks": [],
                    },
                },
            },
            "predict": {
                "status": "ok",
                "results": {
                    "rows": [
                        {
                            "tracks": 50,
                            "bp": 1_996_800,
                            "wall_s": 10.0,
                            "windows_per_s": 19.5,
                            "bins_written_per_s": 78_000.0,
                        },
                        {"tracks": 50, "bp": 7_987_200, "error": "gitool predict ran past"},
                        {"tracks": 5_313, "bp": 92_160, "skipped": "out of section time"},
                    ]
                },
            },  # fmt: skip
            "enformer": {"status": "skipped: out of time (10 s of the --budget left)"},
        },
    }
    record["targets"] = gpu.targets(record)
    text = "\n".join(gpu.summary_lines(record))
    for needle in ("memory-efficient", "out of memory", "not enough time", "boom",
                   "launch to first log record", "out of section time", "skipped: out of time",
                   "12.50x", "FAIL", "2 recompilation(s), 0 graph break(s)"):  # fmt: skip
        assert needle in text, needle
    epoch = [t for t in record["targets"] if t["target"].startswith("one BasenjiSmall epoch,")]
    assert epoch == [] or epoch[0]["result"] == "n/a"


def test_dynamo_events_are_read_from_torch_logs():
    """Section 4 runs `gitool train` with TORCH_LOGS=recompiles,graph_breaks and counts what
    this torch version prints: here one graph break and one recompilation, made on purpose."""
    script = (
        "import torch\n"
        "def f(x, k):\n"
        "    print('break')\n"
        "    return x * k\n"
        "g = torch.compile(f, backend='eager', dynamic=False)\n"
        "g(torch.ones(2), 1)\n"
        "g(torch.ones(2), 2)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120, env=env() | {"TORCH_LOGS": "recompiles,graph_breaks"})  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    events = gpu.dynamo_events(done.stdout + done.stderr)
    assert (
        events["graph_breaks"] >= 1
        and "Graph break in user code" in events["first_graph_breaks"][0]
    )
    assert events["recompiles"] == 1
    assert "Recompiling function" in events["first_recompiles"][0]
    assert "k == 1" in events["first_recompiles"][0]  # the guard that failed
    assert gpu.dynamo_events("no compiler output") == {
        "recompiles": 0, "graph_breaks": 0, "first_recompiles": [], "first_graph_breaks": []
    }  # fmt: skip
