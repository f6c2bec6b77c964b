"""workflows/Snakefile: Genomic Interpreter Table 1 end to end through Snakemake.

The dry runs check the job graph of both shipped configs (the paper's, with its placeholder
paths pointed at the example data, and the example's); the slow test runs the example
workflow for real on example_data/ and opens everything it writes.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

pytest.importorskip("snakemake")

REPO = Path(__file__).resolve().parents[1]
WORKFLOWS = REPO / "workflows"
SNAKEFILE = WORKFLOWS / "Snakefile"
EXAMPLE = REPO / "example_data"
# Genomic Interpreter Table 1's models, as the shipped configs name them; 1D-Swin is the reference.
MODELS = ["MaxPool-CNN", "AttPool-CNN", "AttPool-dilated-CNN", "Enformer", "1D-Swin"]
REFERENCE = "1D-Swin"
JOBS = {"build_dataset": 1, "train": 5, "evaluate": 1, "predict": 5, "all": 1, "total": 13}
EXAMPLE_PATHS = [
    f"genome={EXAMPLE / 'genome.fa.gz'}",
    f"tracks={EXAMPLE / 'tracks.txt'}",
    f"blacklist={EXAMPLE / 'blacklist.bed'}",
    f"regions={EXAMPLE / 'regions.bed'}",
]


def snakemake(workdir: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """`python -m snakemake -s workflows/Snakefile -d WORKDIR ARGS` with this interpreter's
    scripts (gitool) first on PATH, as in an activated environment."""
    env = dict(os.environ)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    return subprocess.run(
        [sys.executable, "-m", "snakemake", "-s", str(SNAKEFILE), "-d", str(workdir), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )


def job_counts(output: str) -> dict[str, int]:
    """The 'Job stats' table of a Snakemake run: rule → job count."""
    counts = {}
    for line in output.split("Job stats:", 1)[1].splitlines()[3:]:
        match = re.match(r"^(\w+)\s+(\d+)$", line.strip())
        if not match:
            break
        counts[match[1]] = int(match[2])
    return counts


@pytest.mark.parametrize(
    ("configfile", "overrides", "gpus"),
    [("config.yaml", EXAMPLE_PATHS, 3), ("config-example.yaml", [], 0)],
    ids=["paper", "example"],
)
def test_dry_run_names_every_rule_and_model(tmp_path, configfile, overrides, gpus):
    config = yaml.safe_load((WORKFLOWS / configfile).read_text())
    assert list(config["models"]) == MODELS and config["reference"] == REFERENCE
    args = ["--configfile", str(WORKFLOWS / configfile), "--cores", "2", "-n", "-p"]
    result = snakemake(tmp_path, *args, *(["--config", *overrides] if overrides else []))
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    assert job_counts(out) == JOBS
    for name in MODELS:
        preset = WORKFLOWS / config["models"][name]["config"]
        assert preset.is_file()
        assert re.search(
            rf"gitool train --config {re.escape(str(preset))} --data data\s+-o runs/{name} "
            rf"--gpus {gpus}\b",
            out,
        ), name
        assert f"-m runs/{name} " in out and f"-o predictions/{name}/" in out
    evaluate = next(line for line in out.splitlines() if "gitool evaluate" in line)
    assert (
        f"gitool evaluate -m runs/{REFERENCE} --data data --split test -o eval/ --force" in evaluate
    )
    assert re.findall(r"--compare runs/(\S+)", evaluate) == [m for m in MODELS if m != REFERENCE]
    assert f"gpu={gpus}" in out  # the resource a cluster executor asks for
    assert not (tmp_path / "data").exists()  # a dry run runs nothing


def test_placeholders_and_config_mistakes_are_named(tmp_path):
    args = ["--configfile", str(WORKFLOWS / "config.yaml"), "--cores", "1", "-n"]
    result = snakemake(tmp_path, *args)
    assert result.returncode != 0
    assert "genome is still the placeholder '/path/to/genome.fa'" in result.stdout + result.stderr
    result = snakemake(tmp_path, *args, "--config", *EXAMPLE_PATHS, "reference=Basenji")
    assert result.returncode != 0
    assert "reference 'Basenji' is not one of the models" in result.stdout + result.stderr
    result = snakemake(tmp_path, *args, "--config", *EXAMPLE_PATHS, "train={options: {gpus: 2}}")
    assert result.returncode != 0
    assert "option 'gpus' is set by the workflow" in result.stdout + result.stderr


@pytest.mark.slow
def test_example_workflow_end_to_end(tmp_path):
    """The whole example config on the CPU (about a minute on 2 idle cores)."""
    import pyBigWig

    args = ["--configfile", str(WORKFLOWS / "config-example.yaml"), "--cores", "2"]
    result = snakemake(tmp_path, *args)
    assert result.returncode == 0, result.stdout + result.stderr
    assert job_counts(result.stdout + result.stderr) == JOBS

    # Table 1: one row per model, the reference first, a finite mean Pearson per model.
    summary = pd.read_csv(tmp_path / "eval" / "test.summary.tsv", sep="\t", index_col="model")
    assert list(summary.index) == [REFERENCE, *(m for m in MODELS if m != REFERENCE)]
    assert np.isfinite(summary["OVERALL"]).all()
    assert (summary["OVERALL"].abs() <= 1).all() and (summary["n_OVERALL"] == 7).all()
    table = (tmp_path / "eval" / "test.table.txt").read_text()
    assert "OVERALL" in table and all(name in table for name in MODELS)

    # Fig. 2: the reference against each other model.
    for name in MODELS:
        if name == REFERENCE:
            continue
        png = tmp_path / "eval" / f"test.compare.{name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
        per_track = pd.read_csv(tmp_path / "eval" / f"test.compare.{name}.tsv", sep="\t")
        assert len(per_track) == 7 and np.isfinite(per_track["pearson"]).any()

    # Predictions: one bigWig per track and model, covering the regions with finite values.
    identifiers = pd.read_csv(EXAMPLE / "tracks.txt", sep="\t")["identifier"]
    regions = pd.read_csv(EXAMPLE / "regions.bed", sep="\t", header=None, usecols=[0, 1, 2])
    chrom, start, end = regions.iloc[0]
    for name in MODELS:
        folder = tmp_path / "predictions" / name
        assert sorted(p.stem for p in folder.glob("*.bw")) == sorted(identifiers), name
        for identifier in identifiers:
            bw = pyBigWig.open(str(folder / f"{identifier}.bw"))
            try:
                values = np.array(bw.values(chrom, int(start), int(end)))
            finally:
                bw.close()
            assert np.isfinite(values).all(), (name, identifier)

    # Nothing left to do; a forced retraining stops before overwriting the earlier run,
    # and continues it with resume: true.
    for extra in ([], ["--cores", "1", "--config", "train={resume: true}"]):  # not params
        again = snakemake(tmp_path, *args, "-n", *extra)
        assert again.returncode == 0 and "Nothing to be done" in again.stdout + again.stderr
    rerun = ["-f", "runs/MaxPool-CNN/train.done"]
    refused = snakemake(tmp_path, *args, *rerun)
    assert refused.returncode != 0
    assert "runs/MaxPool-CNN holds an earlier training" in refused.stdout + refused.stderr
    assert (tmp_path / "runs" / "MaxPool-CNN" / "checkpoints" / "best.pt").is_file()
    resumed = snakemake(tmp_path, *args, *rerun, "--config", "train={resume: true}")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    log = (tmp_path / "logs" / "train" / "MaxPool-CNN.log").read_text()
    assert "resuming runs/MaxPool-CNN" in log
