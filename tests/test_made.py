"""The record of the files gitool made, which decides what ``--force`` may replace."""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import stat
from pathlib import Path

import pandas as pd
import pytest

from gitool import files
from gitool.errors import InputError
from gitool.files import Outputs, committed_together, staged_file, stray_entry, write_tsv
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
    record([(path, path)])
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
    record([(old / "a.tsv", old / "a.tsv"), (old / "b.tsv", old / "b.tsv")])
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
        record([(path, path)])
    (tmp_path / "gone.tsv").write_text("x\n")
    record([(tmp_path / "gone.tsv", tmp_path / "gone.tsv")])
    (tmp_path / "gone.tsv").unlink()
    lines = (tmp_path / RECORD).read_text().splitlines()
    assert len(lines) <= 2 * 2 + 64  # rewritten once stale lines outnumbered current ones
    assert made_by_gitool(path)
    for _ in range(70):
        record([(path, path)])
    names = [json.loads(line)["name"] for line in (tmp_path / RECORD).read_text().splitlines()]
    assert "gone.tsv" not in names and len(names) <= 2 * 1 + 64
    assert made_by_gitool(path)


def interrupt_before(stop: Path, monkeypatch) -> None:
    """Ctrl-C when a commit comes to renaming its file into ``stop``."""
    real = files.commit_file

    def interrupted(tmp, path, replace):
        if path == stop:
            raise KeyboardInterrupt
        real(tmp, path, replace)

    monkeypatch.setattr(files, "commit_file", interrupted)


def test_a_run_stopped_part_way_through_its_renames_leaves_its_files_recorded(
    tmp_path, monkeypatch
):
    """Ctrl-C between two renames of one commit: the file already in place is gitool's."""
    a, b = tmp_path / "a.tsv", tmp_path / "b.tsv"
    outputs = Outputs()
    outputs.file(a, "TSV")
    outputs.file(b, "TSV")
    interrupt_before(b, monkeypatch)
    with pytest.raises(KeyboardInterrupt), committed_together():
        write_tsv(pd.DataFrame({"x": [1]}), a)
        write_tsv(pd.DataFrame({"x": [2]}), b)
    assert a.exists() and not b.exists()
    assert made_by_gitool(a)
    Outputs(force=True).file(a, "TSV")  # the rerun with --force may replace it


def test_the_record_is_never_an_output_and_never_counts_as_a_stray_file(tmp_path):
    for name in (RECORD, f".{RECORD}.tmp-12"):
        with pytest.raises(InputError, match=f"{RECORD} is gitool's record") as err:
            Outputs().file(tmp_path / name, "TSV", field="out")
        assert err.value.field == "out"
    store = tmp_path / "store"
    store.mkdir()
    (store / "manifest.yaml").write_text("x")
    record([(store / "manifest.yaml", store / "manifest.yaml")])
    assert stray_entry(store, {"manifest.yaml": None}) is None
    (store / "notes.txt").write_text("mine")
    assert stray_entry(store, {"manifest.yaml": None}) == store / "notes.txt"


def _record_many(folder: str, prefix: str, count: int, rounds: int) -> None:
    """``count`` files, each rewritten ``rounds`` times (stale lines: compactions)."""
    for round_ in range(rounds):
        for i in range(count):
            path = Path(folder) / f"{prefix}{i}.tsv"
            path.write_text(f"{prefix}{i} {round_}\n" * (round_ + 1))
            record([(path, path)])


def test_runs_recording_in_one_folder_at_once_lose_no_line(tmp_path):
    """Three processes appending and compacting one record: every file stays gitool's
    (without the lock, a line appended during another's compaction was lost)."""
    context = multiprocessing.get_context("fork")
    workers = [
        context.Process(target=_record_many, args=(str(tmp_path), prefix, 40, 6))
        for prefix in ("a", "b", "c")
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
        assert worker.exitcode == 0
    made = [p for p in tmp_path.glob("*.tsv") if made_by_gitool(p)]
    assert len(made) == 120


def test_the_record_is_shared_as_the_umask_allows_and_a_failure_is_one_warning(tmp_path, capsys):
    old = os.umask(0o002)  # a group project folder
    try:
        path = tmp_path / "p.tsv"
        path.write_text("x\n")
        record([(path, path)])
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / RECORD).stat().st_mode) == 0o664
    other = tmp_path / "other"
    (other / RECORD).mkdir(parents=True)  # cannot be written
    for name in ("a.tsv", "b.tsv"):
        (other / name).write_text("x\n")
        record([(other / name, other / name)])
    err = capsys.readouterr().err
    assert err.count("could not record") == 1 and "--force will refuse" in err
    assert not made_by_gitool(other / "a.tsv")


def _rerun(paths, value: int) -> None:
    """One run of a command writing ``paths`` together, with --force."""
    outputs = Outputs(force=True)
    for path in paths:
        outputs.file(path, "TSV")
    with committed_together():
        for path in paths:
            write_tsv(pd.DataFrame({"x": [value]}), path)


def test_many_files_replaced_again_and_again_stay_gitools(tmp_path):
    """The record is compacted before a run's lines are written, never after: compacting
    after them dropped every line of a run replacing more than 32 files."""
    paths = [tmp_path / f"t{i}.tsv" for i in range(40)]
    for value in range(4):
        _rerun(paths, value)
        assert all(made_by_gitool(p) for p in paths), value
    one = [tmp_path / "one.tsv"]
    for value in range(80):
        _rerun(one, value)
    assert made_by_gitool(one[0])
    assert len((tmp_path / RECORD).read_text().splitlines()) <= 2 * 41 + 64 + 1


def test_a_file_a_stopped_rerun_did_not_reach_stays_gitools(tmp_path, monkeypatch):
    a, b = tmp_path / "a.tsv", tmp_path / "b.tsv"
    _rerun([a, b], 0)
    interrupt_before(b, monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        _rerun([a, b], 1)
    monkeypatch.undo()
    assert made_by_gitool(a) and made_by_gitool(b)
    _rerun([a, b], 2)  # the next --force replaces both
    assert b.read_text() == "x\n2\n"
