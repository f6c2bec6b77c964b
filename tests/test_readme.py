"""The README's Python snippets run as written, and every `gitool` command in it parses with
the CLI's own parser (the commands themselves run in their own tests; the Snakemake
commands in tests/test_snakemake.py)."""

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


def readme_commands() -> list[list[str]]:
    """Every ``gitool …`` command in the README's bash blocks, as argument lists."""
    import shlex

    commands = []
    for block in re.findall(r"```bash\n(.*?)```", README, flags=re.S):
        text = re.sub(r"\\\n\s*", " ", block)  # join continued lines
        for line in text.splitlines():
            line = line.split(" #")[0].strip()
            if line.startswith("#"):
                continue
            for part in line.split("&&"):
                words = shlex.split(part.strip())
                if words[:1] == ["gitool"] and "..." not in words:
                    commands.append(words[1:])
    return commands


def test_every_readme_command_parses():
    """Each README command names a real command and only options it accepts (parsed by the
    CLI's own parser, not run: the runs themselves are covered by the command tests)."""
    import typer

    from gitool.cli import GLOBAL_FLAGS, app

    group = typer.main.get_command(app)
    commands = readme_commands()
    assert len(commands) > 20
    seen = set()
    for words in commands:
        words = [w for w in words if w not in GLOBAL_FLAGS]
        if words in (["--version"], ["--help"]) or not words:
            continue
        name, args = words[0], words[1:]
        command = group.get_command(None, name)
        assert command is not None, f"README: unknown command gitool {name}"
        command.make_context(name, [a for a in args if a not in ("-h", "--help")])
        seen.add(name)
    assert {"build-dataset", "train", "evaluate", "predict", "attention", "synth-motifs",
            "interactions"} <= seen  # fmt: skip
