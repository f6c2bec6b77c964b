"""The README's and the docs pages' Python snippets run as written, and every `gitool` command
in their bash blocks parses with the CLI's own parser (the commands themselves run in their
own tests; the Snakemake commands in tests/test_snakemake.py)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").rglob("*.md"))]

# The README's design card: four commands that lean on defaults (data/, runs/, the newest run).
DESIGN_CARD = [
    ["build-dataset", "genome.fa", "tracks.txt"],
    ["train", "--gpus", "3"],
    ["predict", "regions.bed", "-o", "out.bw"],
    ["attention", "--layer", "8"],
]


def blocks(language: str, pages: list[Path] = PAGES) -> list[tuple[str, str]]:
    """Every fenced ``language`` block of ``pages``, as (page, code)."""
    found = []
    for page in pages:
        for code in re.findall(rf"```{language}\n(.*?)```", page.read_text(), flags=re.S):
            found.append((str(page.relative_to(ROOT)), code))
    return found


def snippet(word: str) -> tuple[str, str]:
    """The one Python block, in the README or any docs page, that mentions ``word``."""
    (found,) = [(page, code) for page, code in blocks("python") if word in code]
    return found


def test_models_snippet_runs():
    page, block = snippet("create_model")
    scope: dict = {}
    exec(compile(block, page, "exec"), scope)
    assert tuple(scope["y"].shape) == (2, 80, 7)
    assert scope["records"][0].layer == "trunk.layers.0.regular.attn"


def test_dataset_snippet_runs(tmp_path, monkeypatch, capsys):
    from helpers import run_cli

    example = ROOT / "example_data"
    monkeypatch.chdir(tmp_path)
    args = ["build-dataset", example / "genome.fa.gz", example / "tracks.txt", "-o", "data/", "-j", "1",
            "--chroms", "chrI,chrII,chrIII,chrV"]  # fmt: skip
    assert run_cli(args, capsys)[0] == 0
    page, block = snippet("WindowDataset")
    block = block.replace("range(10)", "range(1)").replace("num_workers=4", "num_workers=0")
    block = block.replace("        ...", "        break")
    scope: dict = {}
    exec(compile(block, page, "exec"), scope)
    assert tuple(scope["x"].shape) == (8, 17712, 4) and tuple(scope["y"].shape) == (8, 80, 7)


def commands(pages: list[Path] = PAGES) -> list[tuple[str, list[str]]]:
    """Every ``gitool …`` command in the bash blocks of ``pages``, as (page, argument list)."""
    found = []
    for page, block in blocks("bash", pages):
        text = re.sub(r"\\\n\s*", " ", block)  # join continued lines
        for line in text.splitlines():
            line = line.split(" #")[0].strip()
            if line.startswith("#"):
                continue
            for part in line.split("&&"):
                words = shlex.split(part.strip())
                if words[:1] == ["gitool"] and "..." not in words:
                    found.append((page, words[1:]))
    return found


def cli():
    """The CLI's click group and its global flags (accepted before or after the command)."""
    import typer

    from gitool.cli import app

    group = typer.main.get_command(app)
    flags = {opt for param in group.params for opt in param.opts if opt != "--version"}
    return group, flags


def parse(group, flags: set[str], page: str, words: list[str]) -> str | None:
    """Parse one command (not run it); return its name, or None for `--version`/`--help`."""
    words = [w for w in words if w not in flags]
    if words in (["--version"], ["--help"]) or not words:
        return None
    name, args = words[0], words[1:]
    command = group.get_command(None, name)
    assert command is not None, f"{page}: unknown command gitool {name}"
    command.make_context(name, [a for a in args if a not in ("-h", "--help")])
    return name


def test_every_readme_command_parses():
    """Each command of the README and the docs pages names a real command and only options it
    accepts (parsed by the CLI's own parser, not run: the runs themselves are covered by the
    command tests). The design card is checked on its own, below."""
    group, flags = cli()
    found = commands()
    assert len(found) > 20
    assert len(commands([README])) >= len(DESIGN_CARD)
    seen = set()
    for page, words in found:
        if words in DESIGN_CARD:  # also on the docs' home page
            continue
        name = parse(group, flags, page, words)
        if name:
            seen.add(name)
    assert {"build-dataset", "train", "evaluate", "predict", "attention", "synth-motifs",
            "interactions"} <= seen  # fmt: skip


def test_readme_design_card():
    """The README shows the design card's four commands, in order, in one bash block, and
    each parses as written (no run folder or genome named: the defaults fill them in)."""
    cards = [
        [shlex.split(line)[1:] for line in block.splitlines() if line.startswith("gitool ")]
        for _, block in blocks("bash", [README])
    ]
    assert DESIGN_CARD in cards
    group, flags = cli()
    for words in DESIGN_CARD:
        parse(group, flags, "README.md", words)
