"""The motif-interaction benchmark tables in docs/results/motif-interactions.md are what
``experiments/motif_interactions/summary.py`` prints (run as a script) for the result files
kept in ``experiments/motif_interactions/results`` (so neither can drift from the other), and
the script refuses a file that is not a benchmark result."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STUDY = ROOT / "experiments" / "motif_interactions"


def run_summary(*args: str) -> subprocess.CompletedProcess:
    """``python experiments/motif_interactions/summary.py ARGS``, output captured."""
    command = [sys.executable, str(STUDY / "summary.py"), *args]
    return subprocess.run(command, capture_output=True, text=True)


def test_readme_tables_are_the_summary_of_the_kept_results():
    results = sorted((STUDY / "results").glob("*.json"))
    assert len(results) >= 20
    done = run_summary(*map(str, results), "--runs", "--markdown")
    assert done.returncode == 0, done.stderr
    rows = [line for line in done.stdout.splitlines() if line.startswith("| ")]
    readme = (ROOT / "docs" / "results" / "motif-interactions.md").read_text().splitlines()
    missing = [row for row in rows if row not in readme]
    assert not missing, f"README rows differ from interactions_summary.py: {missing[:3]}"
    best = [r for r in rows if r.startswith("| CNN20-ReLU-Norm | SP1 | 10 |")]
    assert len(best) == 1 and "6 of 10" in best[0]  # the runs the README's target text counts


def test_the_both_scorings_table_is_the_summary_of_its_run():
    results = sorted((STUDY / "results-scorings").glob("*.json"))
    assert results
    done = run_summary(*map(str, results), "--scorings", "--markdown")
    assert done.returncode == 0, done.stderr
    rows = [line for line in done.stdout.splitlines() if line.startswith("| ")]
    assert len(rows) == 1 + 2 * len(results)  # the header, then GLIFAC and local per run
    page = (ROOT / "docs" / "results" / "motif-interactions.md").read_text().splitlines()
    missing = [row for row in rows if row not in page]
    assert not missing, f"the page's rows differ from summary.py --scorings: {missing[:3]}"


def test_a_file_that_is_not_a_result_is_refused(tmp_path):
    bad = tmp_path / "notes.json"
    bad.write_text('{"rows": []}')
    done = run_summary(str(bad))
    assert done.returncode == 2
    err = done.stderr.strip()
    assert err.count("\n") == 0 and "notes.json is not a run.py --json file" in err
