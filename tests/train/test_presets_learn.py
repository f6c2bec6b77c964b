"""Every sequence-to-track preset learns on the example data: the tiny CPU workflows in
``workflows/example-*.yaml`` (same geometry as the presets, a fraction of the width) bring
the loss down within a few dozen steps."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from gitool.config import BuildOptions
from gitool.data.store import build_store

from helpers import run_cli

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "workflows").glob("example-*.yaml"))


@pytest.fixture(scope="module")
def example_store(tmp_path_factory):
    out = tmp_path_factory.mktemp("example") / "yeast"
    example = ROOT / "example_data"
    build_store(
        BuildOptions(
            str(example / "genome.fa.gz"), str(example / "tracks.txt"), out=str(out), workers=1
        )
    )
    return out


def test_every_basenji_small_preset_has_an_example_workflow():
    from gitool.models.registry import PRESETS

    covered = {yaml.safe_load(p.read_text())["model"] for p in EXAMPLES}
    assert covered == {name for name in PRESETS if name.endswith("basenji-small")}


@pytest.mark.slow
@pytest.mark.parametrize("workflow", EXAMPLES, ids=lambda p: p.stem)
def test_loss_goes_down(workflow, example_store, tmp_path, capsys):
    args = ["train", "--config", workflow, "--data", example_store, "-o", tmp_path / "run", "--gpus", "0",
            "--max-steps", "40", "--log-every", "1", "--num-workers", "0"]  # fmt: skip
    code, _, err = run_cli(args, capsys)
    assert code == 0, err
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    losses = [r["loss"] for r in map(yaml.safe_load, lines) if "loss" in r]
    assert len(losses) == 40
    assert sum(losses[-8:]) / 8 < 0.95 * sum(losses[:8]) / 8, losses
