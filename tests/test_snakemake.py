"""workflows/Snakefile: Genomic Interpreter Table 1 end to end through Snakemake.

The dry runs check the job graph of the shipped configs (the paper's, with its placeholder
paths pointed at the example data, the example's, and the paper's from the Basenji/Enformer
release, pointed at a tiny generated release); the slow tests run the example workflow for
real on example_data/ and open everything it writes, and the release workflow on a tiny
release with the example models.
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
# Table 1 from the Basenji/Enformer release
BASENJI_CONFIG = WORKFLOWS / "config-basenji-small.yaml"
EXAMPLE = REPO / "example_data"
# Genomic Interpreter Table 1's models, as the shipped configs name them; 1D-Swin is the reference.
MODELS = ["MaxPool-CNN", "AttPool-CNN", "AttPool-dilated-CNN", "Enformer", "1D-Swin"]
REFERENCE = "1D-Swin"
JOBS = {"build_dataset": 1, "train": 5, "evaluate": 1, "predict": 5, "all": 1, "total": 13}
# From the release: the store is imported, and predictions need `genome` and `regions`.
RELEASE_JOBS = {"import_basenji": 1, "train": 5, "evaluate": 1, "all": 1, "total": 8}
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


def flat(text: str) -> str:
    """Console output without its line wrapping."""
    return " ".join(text.split())


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


def test_false_writes_only_flags_the_command_has_and_reserved_options_are_named(tmp_path):
    """`rc: false` is --no-rc for train (it has one) and nothing for predict (--rc is an
    on-switch; --no-rc failed after training); evaluate's model is the workflow's."""
    args = ["--configfile", str(WORKFLOWS / "config-example.yaml"), "--cores", "1", "-n", "-p"]
    result = snakemake(tmp_path, *args, "--config", "train={options: {rc: false}}",
                       "predict={gpus: 0, options: {rc: false}}")  # fmt: skip
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    trains = [line for line in out.splitlines() if "gitool train" in line]
    predicts = [line for line in out.splitlines() if "gitool predict" in line]
    assert trains and all("--no-rc" in line for line in trains)
    assert predicts and not any("-rc" in line for line in predicts)
    # empty values are unset, as elsewhere in the config (gitool refuses --heads '')
    result = snakemake(tmp_path, *args, "--config", "train={options: {heads: '', tracks: []}}")
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    trains = [line for line in out.splitlines() if "gitool train" in line]
    assert trains and not any("--heads" in line or "--tracks" in line for line in trains)
    result = snakemake(tmp_path, *args, "--config", "evaluate={options: {model: runs/x}}")
    assert result.returncode != 0
    assert "option 'model' is set by the workflow" in result.stdout + result.stderr


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


# --------------------------------------------------------------------------- from the release


def make_tiny_release(folder: Path) -> Path:
    """A Basenji/Enformer-format release (tests/data/basenji_release.py) of 12/4/4 records of
    2,048 bp with 128-bp bins, the example models' bin size; 4 records per file."""
    pytest.importorskip("tfrecord")
    sys.path.insert(0, str(REPO / "tests" / "data"))
    try:
        from basenji_release import make_release
    finally:
        sys.path.remove(str(REPO / "tests" / "data"))
    make_release(folder, seq_length=2048, pool_width=128, target_length=12, counts=(12, 4, 4),
                 per_file=4, keep=False)  # fmt: skip
    return folder


@pytest.fixture(scope="module")
def release(tmp_path_factory) -> Path:
    return make_tiny_release(tmp_path_factory.mktemp("basenji") / "human")


@pytest.mark.parametrize("predict", [False, True], ids=["no-predictions", "predictions"])
def test_release_dry_run_imports_instead_of_building(tmp_path, release, predict):
    config = yaml.safe_load(BASENJI_CONFIG.read_text())
    paper = yaml.safe_load((WORKFLOWS / "config.yaml").read_text())
    assert config["models"] == paper["models"] and config["reference"] == REFERENCE
    for key in ("train", "evaluate", "predict"):
        assert config[key] == paper[key], key
    assert config["release"].startswith("/path/to/") and config["genome"] is None
    overrides = [f"release={release}"]
    if predict:
        overrides += [f"genome={EXAMPLE / 'genome.fa.gz'}", f"regions={EXAMPLE / 'regions.bed'}"]
    args = ["--configfile", str(BASENJI_CONFIG), "--cores", "2", "-n", "-p"]
    result = snakemake(tmp_path, *args, "--config", *overrides)
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    expected = dict(RELEASE_JOBS)
    if predict:
        expected.update(predict=5, total=13)
    assert job_counts(out) == expected
    assert "build-dataset" not in out and ("gitool predict" in out) == predict
    # --resume: a job killed by a time limit continues from its finished files when rerun.
    assert re.search(
        rf"gitool import-basenji {re.escape(str(release))} -o data -j 2\s+--resume", out
    )
    assert f"{release}/tfrecords/valid-0.tfr" in out  # the files are the job's inputs
    for name in MODELS:
        preset = WORKFLOWS / config["models"][name]["config"]
        assert preset.name.endswith("-basenji-small.yaml")
        assert re.search(
            rf"gitool train --config {re.escape(str(preset))} --data data\s+-o runs/{name} --gpus 3\b",
            out,
        ), name
        if predict:
            assert f"-m runs/{name} -g {EXAMPLE / 'genome.fa.gz'} -o predictions/{name}/" in out
    evaluate = next(line for line in out.splitlines() if "gitool evaluate" in line)
    assert re.findall(r"--compare runs/(\S+)", evaluate) == [m for m in MODELS if m != REFERENCE]
    assert not (tmp_path / "data").exists()


def test_release_or_genome_and_tracks_exactly_one(tmp_path, release):
    """Both sources, neither, the placeholder, and half of what predictions need: one line
    naming the keys."""
    args = ["--configfile", str(BASENJI_CONFIG), "--cores", "1", "-n"]
    genome, tracks = f"genome={EXAMPLE / 'genome.fa.gz'}", f"tracks={EXAMPLE / 'tracks.txt'}"
    cases = [
        ([], "release is still the placeholder '/path/to/basenji_barnyard/data/human'"),
        (
            [f"release={release}", genome, tracks],
            "'release' and 'tracks' are both set: the store comes from the Basenji/Enformer "
            "release ('release') or is built from 'genome' + 'tracks', not both",
        ),
        (
            ["release="],
            "config: no data: give 'release' (the Basenji/Enformer release folder, e.g. "
            "--config release=DIR/basenji_barnyard/data/human) or 'genome' and 'tracks'",
        ),
        ([f"release={release}", genome], "'genome' is set but 'regions' is not"),
    ]
    for overrides, message in cases:
        result = snakemake(tmp_path, *args, *(["--config", *overrides] if overrides else []))
        out = result.stdout + result.stderr
        assert result.returncode != 0 and message in out, (overrides, out)
        assert not (tmp_path / "data").exists()


KILLER = """
import os, signal, sys
from gitool.data import basenji
from gitool.cli import main

real, seen = basenji._import_file, []

def import_file(job, report):
    seen.append(job.stem)
    if len(seen) == 3:
        os.kill(os.getpid(), signal.SIGKILL)  # as a cluster time limit would: no clean-up
    return real(job, report)

basenji._import_file = import_file
main(sys.argv[1:])
"""


@pytest.mark.slow
def test_release_workflow_end_to_end(tmp_path):
    """config-basenji-small.yaml on a tiny release with the example models (tiny CPU models,
    a few steps): an import killed after two files continues when rerun, and Table 1 has one
    row per model (about 25 s on 2 idle cores)."""
    release = make_tiny_release(tmp_path / "basenji" / "human")
    config = yaml.safe_load(BASENJI_CONFIG.read_text())
    example = yaml.safe_load((WORKFLOWS / "config-example.yaml").read_text())
    options = {"max-steps": 4, "eval-every": 4, "valid-windows": 4, "num-workers": 0}
    config.update(
        release=str(release),
        # 1,024 bp → 8 bins of 128 bp: the release's central ones, a size the tiny models take
        import_basenji={
            "threads": 2,
            "runtime": 10,
            "mem_mb": 2000,
            "options": {"seq-length": 1024, "target-length": 8},
        },
        models=example["models"],
        train={**example["train"], "options": options},
        evaluate=example["evaluate"],
    )
    configfile = tmp_path / "config.yaml"
    configfile.write_text(yaml.safe_dump(config, sort_keys=False))
    workdir = tmp_path / "out"
    args = ["--configfile", str(configfile)]

    # An import killed after two of its five files (one worker at --cores 1)...
    (tmp_path / "killer.py").write_text(KILLER)
    killer = f"gitool={sys.executable} {tmp_path / 'killer.py'}"
    killed = snakemake(workdir, *args, "--cores", "1", "--config", killer, "--", "data")
    assert killed.returncode != 0
    assert not (workdir / "data").exists()
    stage = workdir / ".data.import" / "parts"
    assert sorted(p.name for p in stage.glob("*.json")) == ["train-0.json", "train-1.json"]

    # ... continues when the workflow is run again, and the workflow runs to the end.
    result = snakemake(workdir, *args, "--cores", "2")
    assert result.returncode == 0, result.stdout + result.stderr
    assert job_counts(result.stdout + result.stderr) == RELEASE_JOBS
    log = flat((workdir / "logs" / "import_basenji.log").read_text())
    assert "resuming: 2 files already imported, 3 to go" in log, log
    assert "train 12, valid 4, test 4 windows × 5 tracks from 5 files (2 resumed)" in log, log
    assert not (workdir / ".data.import").exists()
    manifest = yaml.safe_load((workdir / "data" / "manifest.yaml").read_text())
    geometry = {k: manifest[k] for k in ("seq_length", "target_length", "bin_size")}
    assert geometry == {"seq_length": 1024, "target_length": 8, "bin_size": 128}
    assert manifest["genome"]["path"] is None

    # Table 1: one row per model, the reference first, a finite mean Pearson per model.
    summary = pd.read_csv(workdir / "eval" / "test.summary.tsv", sep="\t", index_col="model")
    assert list(summary.index) == [REFERENCE, *(m for m in MODELS if m != REFERENCE)]
    assert np.isfinite(summary["OVERALL"]).all() and (summary["n_OVERALL"] == 5).all()
    for name in MODELS:
        if name != REFERENCE:
            png = workdir / "eval" / f"test.compare.{name}.png"
            assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    assert not (workdir / "predictions").exists()  # no genome FASTA: no predictions
