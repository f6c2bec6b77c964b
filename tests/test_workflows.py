"""Every workflow YAML is a valid training config whose model builds."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from gitool.models.registry import create_model
from gitool.train.launch import resolve_config

# Training configs; config*.yaml are the Snakemake workflow's (tests/test_snakemake.py).
WORKFLOWS = sorted(
    p
    for p in (Path(__file__).resolve().parents[1] / "workflows").glob("*.yaml")
    if not p.name.startswith("config")
)


def test_there_is_a_paper_workflow_per_preset():
    from gitool.models.registry import PRESETS

    names = {p.stem for p in WORKFLOWS}
    for preset in PRESETS:
        if not preset.startswith("can"):
            assert preset in names


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.stem)
def test_workflow_is_a_valid_config(path):
    cfg = resolve_config(str(path), {})
    with torch.device("meta"):
        model = create_model(cfg.model, **cfg.model_config)
    assert sum(p.numel() for p in model.parameters()) > 0
    assert cfg.lr > 0 and cfg.batch_size >= 1
