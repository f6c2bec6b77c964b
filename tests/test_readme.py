"""The README's code runs as written."""

from __future__ import annotations

import re
from pathlib import Path

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README, flags=re.S)


def test_models_snippet_runs():
    (block,) = [b for b in python_blocks() if "create_model" in b]
    scope: dict = {}
    exec(compile(block, "README.md", "exec"), scope)
    assert tuple(scope["y"].shape) == (2, 80, 7)
    assert scope["records"][0].layer == "trunk.layers.0.regular.attn"


def test_dataset_snippet_runs(tmp_path, monkeypatch, capsys):
    from helpers import run_cli

    example = Path(__file__).resolve().parents[1] / "example_data"
    monkeypatch.chdir(tmp_path)
    args = ["build-dataset", example / "genome.fa.gz", example / "tracks.txt", "-o", "data/", "-j", "1",
            "--chroms", "chrI,chrII,chrIII,chrV"]  # fmt: skip
    assert run_cli(args, capsys)[0] == 0
    (block,) = [b for b in python_blocks() if "WindowDataset" in b]
    block = block.replace("range(10)", "range(1)").replace("num_workers=4", "num_workers=0")
    block = block.replace("        ...", "        break")
    scope: dict = {}
    exec(compile(block, "README.md", "exec"), scope)
    assert tuple(scope["x"].shape) == (8, 17712, 4) and tuple(scope["y"].shape) == (8, 80, 7)
