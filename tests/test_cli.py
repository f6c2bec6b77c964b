"""The command line as a whole: entry points, help, version, import cost, error contract."""

from __future__ import annotations

import errno
import os
import subprocess
import sys

import pytest

from gitool import __version__

from helpers import assert_input_error, run_cli


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
        "import-basenji",
        "info",
        "models",
        "train",
        "evaluate",
        "predict",
        "variants",
        "attribute",
        "modisco",
        "marginalize",
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


def test_help_states_the_defaults_of_the_design_card(capsys):
    """`train`, `predict` and `attention` run with no run, store, genome or output given;
    their help says what they use then."""
    for command, needles in [
        ("train", ["data/ in the current folder", "runs/run-2", "never written over"]),
        ("predict", ["newest run under runs/", "the genome the run's store was built from",
                     "OUT.<identifier>.bw"]),
        ("attention", ["newest run under runs/", "attention/", "first 4 (0-3)"]),
    ]:  # fmt: skip
        code, out, _ = run_cli([command, "--help"], capsys)
        text = " ".join(out.replace("│", " ").split())
        assert code == 0
        for needle in needles:
            assert needle in text, (command, needle)


def test_usage_errors_are_one_line_exit_2(capsys):
    code, _, err = run_cli(["build-dataset"], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "GENOME" in err.upper()
    code, _, err = run_cli(["no-such-command"], capsys)
    assert code == 2 and "no-such-command" in err


def test_an_option_where_a_value_belongs_is_refused(tmp_path, capsys, monkeypatch):
    """click takes the next token as the value, whatever it is: `-o --force` wrote a file
    named --force."""
    monkeypatch.chdir(tmp_path)
    for args, flag, value in (
        (["evaluate", "-o", "--force"], "-o", "--force"),
        (["attribute", "--bigwig", "--force", "-o", "a.npz"], "--bigwig", "--force"),
        (["predict", "r.bed", "--tracks", "--rc"], "--tracks", "--rc"),
    ):
        code, _, err = run_cli(args, capsys)
        assert_input_error(code, err, f"{flag} needs a value, but {value} follows it")
    assert list(tmp_path.iterdir()) == []


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


@pytest.mark.parametrize(
    ("number", "words"),
    [
        (errno.EROFS, "read-only file system; check the permissions"),
        (errno.EACCES, "permission denied; check the permissions"),
        (errno.ENOSPC, "no space left on the device; free some space"),
    ],
)
def test_unwritable_output_is_one_line_exit_2(tmp_path, capsys, monkeypatch, number, words):
    """A read-only folder, missing permissions or a full disk are the user's to fix: one
    line naming the path, exit 2 (not an internal error); other OSErrors stay internal."""
    import gitool.interpret.synthetic as synthetic

    target = tmp_path / "motifs"

    def refuse(*args, **kwargs):
        raise OSError(number, os.strerror(number), str(target / "manifest.yaml"))

    monkeypatch.setattr(synthetic, "save_store", refuse)
    code, _, err = run_cli(["synth-motifs", "--sequences", "20", "-o", target], capsys)
    assert_input_error(code, err, f"{target / 'manifest.yaml'}: {words}")

    def broken(*args, **kwargs):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(synthetic, "save_store", broken)
    code, _, err = run_cli(["synth-motifs", "--sequences", "20", "-o", target], capsys)
    assert code == 1 and "internal error: OSError" in err


@pytest.mark.slow
def test_sigterm_cleans_up_like_ctrl_c(tmp_path):
    """A killed command (SIGTERM) runs its cleanup and exits 143 with one line: here
    `gitool attention` on a long FASTA, killed while it writes windows, leaves nothing."""
    import signal
    import time

    fasta = tmp_path / "long.fa"
    fasta.write_text(">a\n" + "ACGT" * 50_000 + "\n")  # 1,000 CAN windows of 200 bp
    run = tmp_path / "run"
    code = (
        "import dataclasses, torch\n"
        "from gitool.models.can import CAN, CANConfig\n"
        "from gitool.runs import save_checkpoint\n"
        "m = CAN(CANConfig(pool=4))\n"
        f"save_checkpoint({str(run / 'checkpoints' / 'best.pt')!r}, {{'model_name': 'can', "
        "'preset': 'can-cnn4-relu', 'model_config': dataclasses.asdict(m.config), "
        "'model': m.state_dict(), 'step': 0, 'data': []})\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    out = tmp_path / "att"
    proc = subprocess.Popen(
        [sys.executable, "-m", "gitool", "attention", "-m", str(run), "--fasta", str(fasta),
         "-o", str(out), "--device", "cpu"],
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while not list(tmp_path.glob(".att.partial-*/window_*")):
        assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read()
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert "terminated (SIGTERM)" in err and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["long.fa", "long.fa.fai", "run"]


def test_warnings_are_one_line_and_keep_brackets(capsys):
    from gitool.console import warn

    text = "track 'x': /data/[run 1]/a.bw has no data; " + "its targets are all 0 " * 10
    warn(text)
    err = capsys.readouterr().err
    assert err == f"warning: {text}\n"


def test_status_lines_before_a_refusal_are_dropped_and_kept_on_success(capsys):
    """A command refused during its checks prints exactly one line (the error); status
    lines chosen before it (defaults, inputs) appear once work starts or at the end."""
    from gitool.console import info, progress, run_reporting_errors, state
    from gitool.errors import InputError

    def refused():
        info("using the newest run runs/run")
        raise InputError("regions.bed line 3: end before start; fix the BED")

    state.pending = []
    with pytest.raises(SystemExit) as exit_info:
        run_reporting_errors(refused)
    err = capsys.readouterr().err
    assert exit_info.value.code == 2
    assert err.strip().splitlines() == ["error: regions.bed line 3: end before start; fix the BED"]

    def works():
        info("using the newest run runs/run")
        with progress("predicting", 1) as advance:
            advance()
        info("wrote out.bw")
        return 0

    state.pending = []
    assert run_reporting_errors(works) == 0
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[0] == "using the newest run runs/run" and lines[-1] == "wrote out.bw"
    assert state.pending is None


def test_ctrl_c_is_one_line_too(tmp_path, capsys, monkeypatch):
    """typer turns Ctrl-C into a silent exit 130: `gitool train` stopped without a word."""
    import gitool.interpret.synthetic as synthetic

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(synthetic, "save_store", interrupted)
    code, _, err = run_cli(["synth-motifs", "--sequences", "20", "-o", tmp_path / "s"], capsys)
    assert code == 130
    assert err.splitlines() == ["interrupted (Ctrl-C); nothing half-written is left"]
