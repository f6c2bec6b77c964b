"""The registry: every model and preset builds, runs, trains and round-trips via its config."""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F

from gitool.models.registry import (
    PRESETS,
    build_from_config,
    create_model,
    list_models,
    model_summary,
    resolve,
)

from helpers import run_cli

MODELS = ["swin", "enformer", "cnn-maxpool", "cnn-attpool", "cnn-dilated", "can"]
# Tiny sizes per model family, applied on top of each preset (CAN presets run at full size).
TINY = {
    "swin": dict(seq_length=500, target_length=24, bin_size=16, dims=(8, 12, 16, 16, 24),
                 windows=(8, 8, 12, 16, 16), attention_heads=(2, 2, 2, 2, 4), transformer_heads=2,
                 transformer_key_dim=8, heads={"human": 3, "mouse": 2}),
    "enformer": dict(seq_length=512, target_length=3, channels=48, attention_heads=4, key_dim=8,
                     divisible_by=8, depth=1, heads={"human": 3, "mouse": 2}),
    "cnn": dict(seq_length=1024, target_length=20, bin_size=32, stem_channels=8, channels=16,
                divisible_by=4, heads={"human": 3, "mouse": 2}),
    "can": {},
}  # fmt: skip


def tiny_overrides(name: str) -> dict:
    model, _ = resolve(name)
    return TINY["cnn" if model.startswith("cnn") else model]


def one_hot(batch: int, length: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return F.one_hot(torch.randint(0, 4, (batch, length), generator=g), 4).float()


def test_names_and_typos():
    names = list_models()
    assert set(MODELS) <= set(names)
    for model in ("swin", "enformer", "cnn-maxpool", "cnn-attpool", "cnn-dilated"):
        assert f"{model}-basenji-small" in names
    assert {
        f"can-cnn{p}-{a}{n}" for p in (4, 20) for a in ("relu", "exp") for n in ("", "-norm")
    } <= set(names)
    with pytest.raises(ValueError, match="unknown model 'swim'.*swin-basenji-small"):
        create_model("swim")
    with pytest.raises(ValueError, match="unknown config option 'window'.*windows"):
        create_model("swin", window=3)


@pytest.mark.parametrize("name", sorted(PRESETS) + MODELS)
def test_every_name_builds_runs_and_trains(name):
    torch.manual_seed(0)
    model = create_model(name, **tiny_overrides(name))
    config = model.config
    x = one_hot(2, config.seq_length)
    model.train()
    out = model(x)
    outputs = out if isinstance(out, dict) else {"": out}
    for y in outputs.values():
        assert torch.isfinite(y).all() and (y >= 0).all()
        if name.startswith("can"):
            assert y.shape == (2, config.n_tasks) and (y <= 1).all()
        else:
            assert y.shape[:2] == (2, config.target_length)
    sum(y.sum() for y in outputs.values()).backward()
    silent = [n for n, p in model.named_parameters() if p.grad is None]
    assert not silent, silent


@pytest.mark.parametrize("name", ["swin", "enformer", "cnn-dilated", "can-cnn4-exp-norm"])
def test_config_round_trip_rebuilds_the_same_model(name):
    torch.manual_seed(0)
    model = create_model(name, **tiny_overrides(name)).eval()
    model_name, _ = resolve(name)
    clone = build_from_config(model_name, dataclasses.asdict(model.config)).eval()
    clone.load_state_dict(model.state_dict(), strict=True)
    x = one_hot(2, model.config.seq_length)
    with torch.no_grad():
        a, b = model(x), clone(x)
    a, b = (a, b) if isinstance(a, dict) else ({"": a}, {"": b})
    for key in a:
        torch.testing.assert_close(a[key], b[key])


def test_summaries_count_parameters_without_allocating():
    full = model_summary("enformer")
    assert full.parameters == 251_221_292  # layer norm has the same count as batch norm
    assert (
        full.input == "196,608 × 4"
        and "896 × 5,313 (human)" in full.output
        and "1,643 (mouse)" in full.output
    )
    small = model_summary("swin-basenji-small")
    built = create_model("swin-basenji-small")
    assert small.parameters == sum(p.numel() for p in built.parameters())
    assert small.output == "80 × 5,313 (human)"


def test_models_command_lists_presets(capsys):
    code, out, err = run_cli(["models"], capsys)
    assert code == 0, err
    for name in ("swin-basenji-small", "enformer", "can-cnn20-exp-norm"):
        assert name in out
    assert "251,221,292" in out and "17,712 × 4" in out
