"""Every sequence-to-track preset, at tiny width, learns on the example data within a few
dozen steps (the loss goes down)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from gitool.config import BuildOptions
from gitool.data.store import build_store

from helpers import run_cli

EXAMPLE = Path(__file__).resolve().parents[2] / "example_data"
# Same geometry as the presets (17,712 bp, 128-bp bins), a fraction of the width.
TINY = {
    "swin-basenji-small": {"dims": [8, 8, 16, 16, 16, 32, 32, 32], "windows": [16, 16, 16, 16, 32, 32, 32, 32],
                           "attention_heads": [1, 1, 2, 2, 2, 4, 4, 4], "transformer_heads": 2,
                           "transformer_key_dim": 8},
    "enformer-basenji-small": {"channels": 48, "attention_heads": 4, "key_dim": 8, "divisible_by": 8, "depth": 1},
    "cnn-maxpool-basenji-small": {"stem_channels": 8, "channels": 32, "divisible_by": 4},
    "cnn-attpool-basenji-small": {"stem_channels": 8, "channels": 32, "divisible_by": 4},
    "cnn-dilated-basenji-small": {"stem_channels": 8, "channels": 32, "divisible_by": 4, "dilated_blocks": 2},
}  # fmt: skip


@pytest.fixture(scope="module")
def example_store(tmp_path_factory):
    out = tmp_path_factory.mktemp("example") / "yeast"
    build_store(
        BuildOptions(
            str(EXAMPLE / "genome.fa.gz"), str(EXAMPLE / "tracks.txt"), out=str(out), workers=1
        )
    )
    return out


def test_every_basenji_small_preset_is_covered():
    from gitool.models.registry import PRESETS

    assert {name for name in PRESETS if name.endswith("basenji-small")} == set(TINY)


@pytest.mark.slow
@pytest.mark.parametrize("preset", sorted(TINY))
def test_loss_goes_down(preset, example_store, tmp_path, capsys):
    config = {"data": [str(example_store)], "model": preset, "model_config": TINY[preset], "max_steps": 40,
              "batch_size": 4, "lr": 2e-3, "num_workers": 0, "log_every": 1, "epochs": 5, "shift": 0}  # fmt: skip
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(config))
    code, _, err = run_cli(
        ["train", "--config", tmp_path / "c.yaml", "-o", tmp_path / "run", "--gpus", "0"], capsys
    )
    assert code == 0, err
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    losses = [r["loss"] for r in map(yaml.safe_load, lines) if "loss" in r]
    assert len(losses) == 40
    assert sum(losses[-8:]) / 8 < 0.95 * sum(losses[:8]) / 8, losses
