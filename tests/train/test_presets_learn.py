"""Every sequence-to-track preset learns on the example data: the tiny CPU workflows in
``workflows/example-*.yaml`` (same geometry as the presets, a fraction of the width) bring
the loss down within a few dozen steps. The families that ``test_models_learn.py`` trains
to a held-out Pearson (a stronger check) are not fitted again here."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from gitool.config import BuildOptions
from gitool.data.build import build_store

from helpers import run_cli
from test_models_learn import FAMILIES

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "workflows").glob("example-*.yaml"))
LEARNING = {workflow for workflow, *_ in FAMILIES.values()}  # held-out learning there


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
    assert {p.name for p in EXAMPLES} >= LEARNING


@pytest.mark.slow
@pytest.mark.usefixtures("all_cores")
@pytest.mark.parametrize(
    "workflow", [p for p in EXAMPLES if p.name not in LEARNING], ids=lambda p: p.stem
)
def test_preset_fits_four_windows(workflow, example_store):
    """Each tiny preset, built as `gitool train` builds it (heads at the training means),
    fits four example windows: the loss falls well below the mean-prediction baseline within
    50 Adam steps. A model whose signal vanishes stays at the baseline (the swin merges at
    std 0.02 did; ``test_models_learn.py`` now catches that: test Pearson -0.01 / 0.02)."""
    import torch

    from gitool.data.dataset import WindowDataset
    from gitool.models.registry import create_model
    from gitool.train.losses import poisson_nll

    config = yaml.safe_load(workflow.read_text())
    torch.manual_seed(0)
    model = create_model(config["model"], heads={"yeast": 7}, **config["model_config"])
    data = WindowDataset(example_store, "train")
    x = torch.stack([data[i][0] for i in (0, 100, 200, 300)])
    y = torch.stack([data[i][1] for i in (0, 100, 200, 300)])
    model.heads.start_at_means("yeast", y.mean((0, 1)))
    baseline = poisson_nll(y.mean((0, 1)).expand_as(y), y).item()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(50):
        loss = poisson_nll(model(x, "yeast"), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        final = poisson_nll(model(x, "yeast"), y).item()
    assert final < 0.85 * baseline, (final, baseline)


def test_training_starts_at_the_track_means(example_store, tmp_path, capsys):
    """`gitool train` starts each head at exactly its store's training means: biases at the
    inverse softplus of the means, weights at zero, so every bin of every window predicts the
    mean before the first step."""
    import torch

    from gitool.data.store import Store
    from gitool.runs import load_model

    args = ["train", "--config", EXAMPLES[0], "--data", example_store, "-o", tmp_path / "run",
            "--gpus", "0", "--max-steps", "1", "--lr", "1e-12", "--num-workers", "0"]  # fmt: skip
    code, _, err = run_cli(args, capsys)
    assert code == 0, err
    model, _ = load_model(tmp_path / "run", "last")
    means = Store(example_store).manifest["splits"]["train"]["track_mean"]
    bias = next(iter(model.heads.layers.values())).bias
    torch.testing.assert_close(
        torch.nn.functional.softplus(bias), torch.tensor(means, dtype=torch.float32),
        rtol=1e-3, atol=2e-4,
    )  # fmt: skip
    # lr 1e-12: the one step leaves the zero weights at ~0
    assert next(iter(model.heads.layers.values())).weight.abs().max() < 1e-9
