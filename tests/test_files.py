"""Outputs appear whole or not at all."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

from gitool.files import staged_folder, write_tsv


def test_staged_folder_replaces_only_on_success(tmp_path):
    out = tmp_path / "out"
    with staged_folder(out) as tmp:
        (tmp / "a.txt").write_text("first")
    assert (out / "a.txt").read_text() == "first"
    with pytest.raises(RuntimeError), staged_folder(out) as tmp:
        (tmp / "a.txt").write_text("second")
        raise RuntimeError("failed half way")
    assert (out / "a.txt").read_text() == "first"  # the old output stays
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no staging left behind
    with staged_folder(out) as tmp:
        (tmp / "b.txt").write_text("third")
    assert sorted(p.name for p in out.iterdir()) == ["b.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_write_tsv(tmp_path):
    path = write_tsv(pd.DataFrame({"x": [1.23456789, 2.0]}), tmp_path / "sub" / "t.tsv")
    assert path.read_text() == "x\n1.23457\n2\n"
    assert sorted(p.name for p in path.parent.iterdir()) == ["t.tsv"]


def test_check_writable_names_the_option_and_folder(tmp_path, monkeypatch):
    from gitool.errors import InputError
    from gitool.files import check_writable

    out = tmp_path / "new" / "deeper" / "out"
    check_writable(out)  # tmp_path is writable: nothing to say
    # root writes through chmod, so a read-only folder is simulated at os.access
    monkeypatch.setattr(os, "access", lambda path, mode: Path(path) != tmp_path)
    with pytest.raises(InputError, match=rf"^--out-x {out}: cannot write in {tmp_path} "):
        check_writable(out, "--out-x")
