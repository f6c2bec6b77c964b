"""The docs site builds with ``mkdocs build --strict`` (no broken link or anchor), its command
reference is rendered from the CLI by the hook in docs/hooks/, and the README and the docs
cite papers by name."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_docs_build_strict_with_the_generated_command_reference(tmp_path):
    pytest.importorskip("mkdocs")
    pytest.importorskip("material")
    import typer

    from gitool.cli import app

    site = tmp_path / "site"
    build = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert build.returncode == 0, build.stderr[-3000:]
    page = (site / "reference" / "cli" / "index.html").read_text()
    assert "cli-reference" not in page and "page's source" not in page  # markers replaced
    group = typer.main.get_command(app)
    names = group.list_commands(group.context_class(group, info_name="gitool"))
    assert {"build-dataset", "import-basenji", "info", "train", "evaluate", "predict", "variants",
            "attention", "attribute", "modisco", "marginalize", "synth-motifs", "interactions",
            "quickstart", "models"} <= set(names)  # fmt: skip
    for name in names:
        assert f'id="gitool-{name}"' in page, name
    for option in ("--seq-length", "--gpus", "--threshold", "--rc"):
        assert f"<code>{option}</code>" in page, option
    assert "<table>" in page and not re.search(r"[Ss]eed 00\d", page)


def test_readme_docs_and_code_cite_papers_by_name():
    """Papers are cited by name ("Genomic Interpreter Table 1"), never by a file name a reader
    of the repository cannot open ("seed 000", "SPEC §5")."""
    pages = [ROOT / "README.md", *(ROOT / "docs").rglob("*.md")]
    for folder in ("src", "benchmarks", "experiments", "workflows"):
        pages += [p for p in (ROOT / folder).rglob("*") if p.suffix in (".py", ".yaml", ".md")]
    pages.append(ROOT / "workflows" / "Snakefile")
    for page in pages:
        for number, line in enumerate(page.read_text().splitlines(), 1):
            assert not re.search(r"\b[Ss]eed 00\d|\bSPEC\b|\bthe issue\b", line), (
                f"{page}:{number}: {line}"
            )


def test_the_presets_parameter_counts_in_models_md_are_the_models():
    """models.md said 14,524,481 parameters for swin-basenji-small; the model has 14,521,409."""
    from gitool.models.registry import model_summary

    rows = re.findall(r"^\| `([\w-]+)` \|[^|]*\| ([\d,]+) \|", (ROOT / "docs" / "models.md")
                      .read_text(), flags=re.M)  # fmt: skip
    assert len(rows) >= 5
    for preset, count in rows:
        assert int(count.replace(",", "")) == model_summary(preset).parameters, preset
