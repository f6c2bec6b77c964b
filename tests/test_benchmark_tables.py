"""The README's motif-interaction benchmark tables are what ``benchmarks/interactions_summary.py``
prints for the result files kept in ``benchmarks/results/interactions`` (so neither can drift
from the other), and the script refuses a file that is not a benchmark result."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def summary_module():
    spec = importlib.util.spec_from_file_location(
        "interactions_summary", ROOT / "benchmarks" / "interactions_summary.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_readme_tables_are_the_summary_of_the_kept_results(capsys):
    results = sorted((ROOT / "benchmarks" / "results" / "interactions").glob("*.json"))
    assert len(results) >= 20
    assert summary_module().main([*map(str, results), "--runs", "--markdown"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ")]
    readme = (ROOT / "README.md").read_text().splitlines()
    missing = [row for row in rows if row not in readme]
    assert not missing, f"README rows differ from interactions_summary.py: {missing[:3]}"
    best = [r for r in rows if r.startswith("| CNN20-ReLU-Norm | SP1 | 10 |")]
    assert len(best) == 1 and "6 of 10" in best[0]  # the runs the README's target text counts


def test_a_file_that_is_not_a_result_is_refused(tmp_path, capsys):
    bad = tmp_path / "notes.json"
    bad.write_text('{"rows": []}')
    with pytest.raises(SystemExit) as exit_info:
        summary_module().main([str(bad)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "notes.json is not an interactions.py --json file" in err
