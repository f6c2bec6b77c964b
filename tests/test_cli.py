"""The command line as a whole: entry points, help, version, import cost, error contract."""

from __future__ import annotations

import subprocess
import sys

from gitool import __version__

from helpers import run_cli


def test_version(capsys):
    code, out, _ = run_cli(["--version"], capsys)
    assert code == 0 and out.strip() == f"gitool {__version__}"


def test_help_lists_every_command(capsys):
    code, out, _ = run_cli(["--help"], capsys)
    assert code == 0
    listed = {
        line.split()[1]
        for line in out.splitlines()
        if line.startswith("│ ") and len(line.split()) > 2 and not line.split()[1].startswith("-")
    }
    assert {
        "build-dataset",
        "info",
        "models",
        "train",
        "evaluate",
        "predict",
        "attention",
        "synth-motifs",
        "interactions",
        "quickstart",
    } <= listed


def test_every_build_option_is_documented(capsys):
    code, out, _ = run_cli(["build-dataset", "--help"], capsys)
    assert code == 0
    for option in ["--out", "--seq-length", "--bin-size", "--target-length", "--stride", "--chroms",
                   "--max-n-frac", "--blacklist", "--max-blacklist-frac", "--regions", "--valid-chroms",
                   "--test-chroms", "--split-fractions", "--seed", "--workers", "--force"]:  # fmt: skip
        assert option in out


def test_usage_errors_are_one_line_exit_2(capsys):
    code, _, err = run_cli(["build-dataset"], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "GENOME" in err.upper()
    code, _, err = run_cli(["no-such-command"], capsys)
    assert code == 2 and "no-such-command" in err


def test_python_m_gitool_and_import_does_not_load_torch():
    out = subprocess.run(
        [sys.executable, "-m", "gitool", "--version"], capture_output=True, text=True
    )
    assert out.returncode == 0 and __version__ in out.stdout
    probe = "import sys, gitool, gitool.cli, gitool.data.store; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert out.stdout.strip() == "False", out.stderr


def test_debug_shows_traceback(tmp_path, capsys):
    code, _, err = run_cli(["--debug", "info", tmp_path], capsys)
    assert code == 2 and "Traceback" in err and "not a gitool store" in err
