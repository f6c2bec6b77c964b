"""The record of the files gitool made, which decides what ``--force`` may replace."""

from __future__ import annotations

import json
import os
import shutil

import pandas as pd
import pytest

from gitool.errors import InputError
from gitool.files import Outputs, committed_together, staged_file, write_tsv
from gitool.made import RECORD, made_by_gitool, record


def test_outputs_committed_together_are_recorded_in_one_write_and_replaceable(tmp_path):
    out = tmp_path / "res"
    paths = [out / f"t{i}.tsv" for i in range(3)]
    outputs = Outputs()
    for path in paths:
        outputs.file(path, "TSV")
    with committed_together():
        for i, path in enumerate(paths):
            write_tsv(pd.DataFrame({"x": [i]}), path)
    lines = (out / RECORD).read_text().splitlines()
    assert [json.loads(line)["name"] for line in lines] == ["t0.tsv", "t1.tsv", "t2.tsv"]
    assert all(made_by_gitool(p) for p in paths)
    outputs = Outputs(force=True)
    for path in paths:
        outputs.file(path, "TSV")  # gitool's own: replaceable
    # a file staged without a claim (inside a run folder: checkpoints, configs) is not listed
    with staged_file(out / "free.txt") as tmp:
        tmp.write_text("x")
    assert not made_by_gitool(out / "free.txt")


def test_a_file_changed_replaced_or_renamed_since_is_the_users(tmp_path):
    path = tmp_path / "p.bw"
    Outputs().file(path, "bigWig")
    with staged_file(path) as tmp:
        tmp.write_bytes(b"ours")
    assert made_by_gitool(path)
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 1))  # touched
    assert not made_by_gitool(path)
    with pytest.raises(InputError, match="did not make it"):
        Outputs(force=True).file(path, "bigWig")
    record([path])
    path.rename(tmp_path / "mine.bw")  # a name gitool never wrote
    assert not made_by_gitool(tmp_path / "mine.bw")
    (tmp_path / "p.bw").write_bytes(b"ours")  # the user's, same bytes, written later
    assert not made_by_gitool(tmp_path / "p.bw")
    assert not made_by_gitool(tmp_path / RECORD)  # the record itself never


def test_a_folder_copied_with_its_times_stays_gitools_and_a_damaged_line_vouches_for_nothing(
    tmp_path,
):
    old = tmp_path / "old"
    old.mkdir()
    (old / "a.tsv").write_text("x\n1\n")
    (old / "b.tsv").write_text("x\n2\n")
    record([old / "a.tsv", old / "b.tsv"])
    new = tmp_path / "new"
    shutil.copytree(old, new)  # copy2: times kept, as cp -a or rsync -a
    assert made_by_gitool(new / "a.tsv") and made_by_gitool(new / "b.tsv")
    text = (new / RECORD).read_text().replace('"b.tsv"', '"b.tsv', 1)
    (new / RECORD).write_text("not json\n" + text)
    assert made_by_gitool(new / "a.tsv") and not made_by_gitool(new / "b.tsv")


def test_the_record_is_compacted_to_its_current_files(tmp_path):
    path = tmp_path / "p.tsv"
    for i in range(80):  # one run replacing its output 80 times
        path.write_text("x\n" * (i + 1))
        record([path])
    (tmp_path / "gone.tsv").write_text("x\n")
    record([tmp_path / "gone.tsv"])
    (tmp_path / "gone.tsv").unlink()
    lines = (tmp_path / RECORD).read_text().splitlines()
    assert len(lines) <= 2 * 2 + 64  # rewritten once stale lines outnumbered current ones
    assert made_by_gitool(path)
    for _ in range(70):
        record([path])
    names = [json.loads(line)["name"] for line in (tmp_path / RECORD).read_text().splitlines()]
    assert "gone.tsv" not in names and len(names) <= 2 * 1 + 64
    assert made_by_gitool(path)
