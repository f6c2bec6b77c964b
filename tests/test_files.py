"""Outputs appear whole or not at all."""

from __future__ import annotations

import errno
import os

import pandas as pd
import pytest

from gitool.files import staged_folder, write_tsv
from gitool.made import RECORD, made_by_gitool


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
    assert sorted(p.name for p in out.iterdir()) == [RECORD, "b.txt"]  # b.txt is gitool's
    assert made_by_gitool(out / "b.txt")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_write_tsv(tmp_path):
    path = write_tsv(pd.DataFrame({"x": [1.23456789, 2.0]}), tmp_path / "sub" / "t.tsv")
    assert path.read_text() == "x\n1.23457\n2\n"
    assert sorted(p.name for p in path.parent.iterdir()) == ["t.tsv"]


def test_check_writable_names_the_field_and_folder(tmp_path, monkeypatch):
    import tempfile

    from gitool.errors import InputError
    from gitool.files import check_writable

    out = tmp_path / "new" / "deeper" / "out"
    check_writable(out)  # tmp_path is writable: nothing to say
    assert list(tmp_path.iterdir()) == []  # the probe is gone
    with pytest.raises(InputError, match="cannot write in /proc") as err:
        check_writable("/proc/out.bw", "track_out")
    assert err.value.field == "track_out"
    (tmp_path / "f").write_text("x")
    with pytest.raises(InputError, match="is a file, not a folder"):
        check_writable(tmp_path / "f" / "out")

    # root writes anywhere, so a read-only folder is simulated where the probe is made
    def refuse(**kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    with pytest.raises(InputError, match=rf"^out {out}: cannot write in {tmp_path} "):
        check_writable(out)


def test_force_replaces_only_a_file_gitool_made_and_nobody_changed(tmp_path):
    from gitool.errors import InputError
    from gitool.files import Outputs
    from gitool.made import record

    text = tmp_path / "notes.txt"
    text.write_text("mine")
    # a file of the user's: refused as such at once, without suggesting a --force that
    # would be refused too
    for force in (False, True):
        with pytest.raises(InputError, match="exists and gitool did not make it") as err:
            Outputs(force=force).file(text, "bigWig")
        assert "pass force" not in str(err.value)
    # a bigWig of the user's own (a real header, same name as an output would have)
    old = tmp_path / "old.bw"
    old.write_bytes(b"\x26\xfc\x8f\x88" + bytes(60))
    with pytest.raises(InputError, match=r"did not make it .*\.gitool-made\.jsonl beside it"):
        Outputs(force=True).file(old, "bigWig")
    record([(old, old)])  # as gitool records each file it puts in place
    with pytest.raises(InputError, match="already exists; pass force") as err:
        Outputs().file(old, "bigWig")  # gitool's own: --force would replace it
    assert err.value.fields == ["out", "force"]
    assert Outputs(force=True).file(old, "bigWig") == old
    old.write_bytes(b"\x26\xfc\x8f\x88" + bytes(61))  # changed since: the user's now
    with pytest.raises(InputError, match="did not make it"):
        Outputs(force=True).file(old, "bigWig")
    with pytest.raises(ValueError, match="unknown output kind"):
        Outputs().file(tmp_path / "x.bw", "bigwig")
    with pytest.raises(InputError, match="uncompressed"):
        Outputs().file(tmp_path / "new.tsv.gz", "TSV")
    link = tmp_path / "link.bw"
    link.symlink_to(old)
    with pytest.raises(InputError, match="is a symbolic link"):
        Outputs(force=True).file(link, "bigWig")
    assert Outputs().file(tmp_path / "new.bw", "bigWig") == tmp_path / "new.bw"
    with pytest.raises(InputError, match="is a folder"):
        Outputs(force=True).file(tmp_path, "bigWig")


def test_outputs_never_touch_inputs_even_with_force(tmp_path):
    from gitool.errors import InputError
    from gitool.files import Outputs

    genome = tmp_path / "g.fa"
    genome.write_text(">c\nACGT\n")
    store = tmp_path / "store"
    (store / "train").mkdir(parents=True)
    outputs = Outputs(force=True, inputs=[genome, store, None])
    with pytest.raises(InputError, match="is one of this command's inputs"):
        outputs.file(genome, "bigWig")
    other = tmp_path / "t.bw"
    other.write_bytes(b"\x26\xfc\x8f\x88")
    outputs.protect(other)
    with pytest.raises(InputError, match=r"inputs \(.*t\.bw\)"):  # names the right input
        outputs.file(other, "bigWig")
    link = tmp_path / "link.fa"
    os.link(genome, link)
    with pytest.raises(InputError, match="is one of this command's inputs"):
        outputs.file(link, "text")  # a hard link is the same file
    sym = tmp_path / "sym.fa"
    sym.symlink_to(genome)
    with pytest.raises(InputError, match="is one of this command's inputs"):
        outputs.file(sym, "text")
    with pytest.raises(InputError, match="lies inside .*store"):
        outputs.file(store / "train" / "x.bw", "bigWig")
    with pytest.raises(InputError, match="holds .*g.fa"):
        outputs.folder(tmp_path, lambda p: True, "a previous output")
    assert genome.read_text() == ">c\nACGT\n"


def test_a_target_that_appears_meanwhile_is_kept(tmp_path):
    from gitool.errors import InputError
    from gitool.files import staged_file

    path = tmp_path / "out.tsv"
    with pytest.raises(InputError, match="appeared while gitool was"), staged_file(path) as tmp:
        tmp.write_text("ours")
        path.write_text("theirs")  # another run finished first
    assert path.read_text() == "theirs"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.tsv"]
    out = tmp_path / "folder"
    with pytest.raises(InputError, match="appeared while"), staged_folder(out) as tmp:
        (tmp / "a").write_text("ours")
        out.mkdir()
        (out / "b").write_text("theirs")
    assert sorted(p.name for p in out.iterdir()) == ["b"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folder", "out.tsv"]


def test_stale_stages_of_dead_runs_are_cleaned(tmp_path):
    out = tmp_path / "data"
    dead = tmp_path / ".data.partial-999999999"
    dead.mkdir()
    alive = tmp_path / f".data.partial-{os.getpid()}x"  # not a stage name: kept
    alive.mkdir()
    with staged_folder(out) as tmp:
        (tmp / "a").write_text("x")
    assert not dead.exists() and alive.exists() and (out / "a").exists()


def test_two_outputs_of_one_command_never_share_a_path(tmp_path):
    from gitool.errors import InputError
    from gitool.files import Outputs

    outputs = Outputs()
    outputs.folder(tmp_path / "export", lambda p: False, "an export")
    with pytest.raises(InputError, match="collides with .*export, another output") as err:
        outputs.file(tmp_path / "export" / "index.json", "bigWig", "track_out")
    assert err.value.field == "track_out"
    outputs.file(tmp_path / "a.bw", "bigWig")
    with pytest.raises(InputError, match="collides with"):
        outputs.file(tmp_path / "." / "a.bw", "bigWig")
    with pytest.raises(InputError, match="collides with"):
        outputs.folder(tmp_path, lambda p: False, "a folder")


def test_an_output_folder_given_as_a_symbolic_link_is_refused(tmp_path):
    """Replacing it with --force moved the link aside and then failed to delete it (an
    internal error, and a stray .old link left behind)."""
    from gitool.errors import InputError
    from gitool.files import Outputs

    real = tmp_path / "real"
    real.mkdir()
    (real / "manifest.yaml").write_text("format: gitool-store\n")
    link = tmp_path / "link"
    link.symlink_to(real)
    with pytest.raises(InputError, match="is a symbolic link") as err:
        Outputs(force=True).folder(link, lambda p: True, "a store")
    assert str(real) in str(err.value)
    assert (real / "manifest.yaml").exists() and link.is_symlink()


def test_a_target_that_appears_after_it_was_claimed_is_kept(tmp_path):
    """Claimed free, then made by someone else before the command wrote it: kept (exit 2),
    not replaced as if it had been there, and claimed, from the start."""
    from gitool.errors import InputError
    from gitool.files import Outputs, staged_file

    path = tmp_path / "table.tsv"
    Outputs(force=True).file(path, "TSV")
    path.write_text("mine\tdata\n1\t2\n")  # appears while the command computes
    with pytest.raises(InputError, match="appeared while"), staged_file(path) as tmp:
        tmp.write_text("ours\n")
    assert path.read_text() == "mine\tdata\n1\t2\n"
    # an earlier output of gitool, claimed with force: replaced, and again by the same run
    ours = tmp_path / "ours.tsv"
    Outputs().file(ours, "TSV")
    with staged_file(ours) as tmp:
        tmp.write_text("earlier\n")
    Outputs(force=True).file(ours, "TSV")
    for text in ("first\n", "second\n"):
        with staged_file(ours) as tmp:
            tmp.write_text(text)
        assert ours.read_text() == text


def test_outputs_committed_together_appear_all_or_none(tmp_path):
    from gitool.errors import InputError
    from gitool.files import Outputs, committed_together, staged_file
    from gitool.made import RECORD, record

    a, b = tmp_path / "a.tsv", tmp_path / "b.png"
    a.write_text("old a\n")
    record([(a, a)])  # an earlier output of gitool
    outputs = Outputs(force=True)
    outputs.file(a, "text")
    outputs.file(b, "PNG")
    with pytest.raises(KeyboardInterrupt), committed_together():
        write_tsv(pd.DataFrame({"x": [1]}), a)
        assert a.read_text() == "old a\n"  # not yet: at the block's end
        raise KeyboardInterrupt  # Ctrl-C before the second file
    assert a.read_text() == "old a\n" and not b.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [RECORD, "a.tsv"]  # no temporaries
    # one target appeared meanwhile: neither is put in place
    with pytest.raises(InputError, match="b.png appeared"), committed_together():
        write_tsv(pd.DataFrame({"x": [1]}), a)
        with staged_file(b) as tmp:
            tmp.write_bytes(b"ours")
        b.write_bytes(b"theirs")
    assert a.read_text() == "old a\n" and b.read_bytes() == b"theirs"
    b.unlink()
    outputs = Outputs(force=True)
    outputs.file(a, "text")
    outputs.file(b, "PNG")
    with committed_together():
        write_tsv(pd.DataFrame({"x": [1]}), a)
        with staged_file(b) as tmp:
            tmp.write_bytes(b"new")
    assert a.read_text() == "x\n1\n" and b.read_bytes() == b"new"
    assert sorted(p.name for p in tmp_path.iterdir()) == [RECORD, "a.tsv", "b.png"]
    # one path staged twice would share its temporary file: refused, nothing put in place
    with pytest.raises(ValueError, match="staged twice"), committed_together():
        write_tsv(pd.DataFrame({"x": [2]}), a)
        write_tsv(pd.DataFrame({"x": [3]}), a)
    assert a.read_text() == "x\n1\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == [RECORD, "a.tsv", "b.png"]


def test_stray_entry_names_what_the_layout_does_not(tmp_path):
    from gitool.files import record_folder, stray_entry

    layout = {"manifest.yaml": None, "train": {"*.npy": None}}
    (tmp_path / "train").mkdir()
    (tmp_path / "manifest.yaml").write_text("x")
    (tmp_path / "train" / "a.npy").write_text("x")
    assert stray_entry(tmp_path, layout) is None  # no record: an older gitool's, by layout
    (tmp_path / RECORD).write_text("")  # a record that does not list manifest.yaml
    assert stray_entry(tmp_path, layout) == tmp_path / "manifest.yaml"  # not gitool's
    record_folder(tmp_path)
    assert stray_entry(tmp_path, layout) is None
    (tmp_path / "train" / "notes.txt").write_text("x")
    assert stray_entry(tmp_path, layout) == tmp_path / "train" / "notes.txt"
    (tmp_path / "train" / "notes.txt").unlink()
    (tmp_path / "train" / "b.npy").mkdir()  # a folder where a file belongs
    assert stray_entry(tmp_path, layout) == tmp_path / "train" / "b.npy"
    (tmp_path / "train" / "b.npy").rmdir()
    (tmp_path / "link").symlink_to(tmp_path / "manifest.yaml")
    assert stray_entry(tmp_path, layout) == tmp_path / "link"
    (tmp_path / "link").unlink()
    (tmp_path / "train" / "a.npy").write_text("edited")
    assert stray_entry(tmp_path, layout) == tmp_path / "train" / "a.npy"  # changed since


def test_a_failed_staged_file_leaves_no_folder_it_made_and_names_a_full_disk(tmp_path):
    """`gitool variants bad.vcf -o new/deeper/x.tsv` left `new/deeper/` behind; a full disk
    said "a file gitool needed" (a write() error carries no file name)."""
    from gitool.files import committed_together, staged_file

    target = tmp_path / "new" / "deeper" / "x.tsv"
    with pytest.raises(ValueError), staged_file(target) as tmp:
        tmp.write_text("half")
        raise ValueError("bad input on line 4")
    assert list(tmp_path.iterdir()) == []

    with pytest.raises(OSError) as caught, staged_file(target) as tmp:
        raise OSError(errno.ENOSPC, "No space left on device")
    assert caught.value.errno == errno.ENOSPC and caught.value.filename == str(target)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(OSError) as caught, staged_file(target) as tmp:
        raise OSError(errno.EIO, "Input/output error")
    assert caught.value.filename is None  # only a full disk or quota is named
    with pytest.raises(OSError) as caught, staged_folder(tmp_path / "new" / "store"):
        raise OSError(errno.EDQUOT, "Disk quota exceeded")  # (a store's arrays)
    assert caught.value.filename == str(tmp_path / "new" / "store")
    assert list(tmp_path.iterdir()) == []
    # two files written at once: a failed write() does not say which, so both are named
    with (
        pytest.raises(OSError) as caught,
        committed_together(),
        staged_file(tmp_path / "t.tsv"),
        staged_file(tmp_path / "p.png"),
    ):
        raise OSError(errno.ENOSPC, "No space left on device")
    assert caught.value.filename == f"{tmp_path / 't.tsv'} or {tmp_path / 'p.png'}"

    (tmp_path / "new").mkdir()
    (tmp_path / "new" / "mine.txt").write_text("the user's")
    with pytest.raises(KeyboardInterrupt), committed_together():
        with staged_file(tmp_path / "new" / "a" / "x.tsv") as tmp:
            tmp.write_text("done")
        with staged_file(tmp_path / "b" / "y.tsv") as tmp:
            tmp.write_text("done")
        raise KeyboardInterrupt
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["mine.txt", "new"]
    with committed_together(), staged_file(tmp_path / "b" / "y.tsv") as tmp:
        tmp.write_text("done")
    assert (tmp_path / "b" / "y.tsv").read_text() == "done"


def test_a_checkpoint_on_a_full_disk_is_a_full_disk_error(tmp_path, monkeypatch):
    """PyTorch's writer fails on a full disk with "RuntimeError: [enforce fail at
    inline_container.cc] unexpected pos", which `gitool train` reported as an internal error."""
    import torch

    import gitool.errors
    from gitool.runs import save_checkpoint

    def full(obj, f, *args, **kwargs):
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 704 vs 598")

    monkeypatch.setattr(torch, "save", full)
    target = tmp_path / "run" / "checkpoints" / "last.pt"
    monkeypatch.setattr(gitool.errors, "LOW_SPACE", 1 << 62)  # this disk is full
    with pytest.raises(OSError) as caught:
        save_checkpoint(target, {"step": 1})
    assert caught.value.errno == errno.ENOSPC and caught.value.filename == str(target)
    assert list(tmp_path.iterdir()) == []
    monkeypatch.setattr(gitool.errors, "LOW_SPACE", 0)  # space left: PyTorch's error stands
    with pytest.raises(RuntimeError, match="unexpected pos"):
        save_checkpoint(target, {"step": 1})
