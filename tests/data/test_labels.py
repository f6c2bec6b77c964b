"""Label stores (gitool.data.labels): reading them back checks what it reads."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gitool.data.labels import Interaction, LabelStore, write_label_store
from gitool.errors import InputError
from gitool.files import check_output_folder


@pytest.fixture
def store(tmp_path):
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 4, size=(20, 30), dtype=np.uint8)
    labels = rng.integers(0, 2, size=(20, 3), dtype=np.uint8)
    split = np.repeat(np.arange(3, dtype=np.uint8), [10, 5, 5])
    path = write_label_store(tmp_path / "s", codes, labels, split, ["A", "B", "C"],
                             interactions=(Interaction("A", "B", "xor"),))  # fmt: skip
    return LabelStore(path)


def test_interactions_round_trip(store):
    assert store.interactions() == (Interaction("A", "B", "xor"),)


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("garbage\nfoo\n", "interactions.tsv:1: no column(s) task_a, task_b, kind"),
        ("", "interactions.tsv:1: no column(s) task_a"),
        ("task_a\ttask_b\tkind\nA\tB\tbogus\n", "interactions.tsv:2: kind 'bogus' is not 'and'"),
        ("task_a\ttask_b\tkind\nA\tB\tand\n\nA\tNOPE\tand\n",
         "interactions.tsv:4: 'NOPE' is not among the store's tasks (A, B, C)"),
        ("task_a\ttask_b\tkind\nA\tB\n", "interactions.tsv:2: 2 fields, the header has 3"),
    ],
)  # fmt: skip
def test_bad_interactions_name_file_and_line(store, text, needle):
    (store.path / "interactions.tsv").write_text(text)
    with pytest.raises(InputError) as info:
        store.interactions()
    assert needle in str(info.value) and "regenerate the store" in str(info.value)


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("[1, 2]\n", "not a label store"),
        ("format: [unclosed\n", "not valid YAML"),
        (None, "damaged label-store manifest"),
    ],
)
def test_damaged_manifest_is_named(store, text, needle):
    import yaml

    manifest = store.path / "manifest.yaml"
    if text is None:  # a real label-store manifest that lost its splits
        data = yaml.safe_load(manifest.read_text())
        del data["splits"]
        text = yaml.safe_dump(data)
    manifest.write_text(text)
    with pytest.raises(InputError, match=needle):
        LabelStore(store.path)


@pytest.mark.parametrize("name", ["sequences", "labels"])
def test_truncated_array_is_named(store, name):
    path = store.path / "valid" / f"{name}.npy"
    path.write_bytes(path.read_bytes()[:-7])
    with pytest.raises(InputError, match=rf"valid/{name}\.npy is damaged.*rebuild it"):
        getattr(store, name)("valid")


def test_force_replaces_only_empty_folders_or_previous_outputs(store, tmp_path, monkeypatch):
    def never(path):
        return False

    check_output_folder(tmp_path / "new", False, never, "x")  # a new folder is fine
    with pytest.raises(InputError, match="already exists; pass force"):
        check_output_folder(store.path, False, lambda p: True, "x")  # a previous output
    with pytest.raises(InputError, match="not x; refusing to replace it even with force"):
        check_output_folder(store.path, False, never, "x")  # said at once, not "pass force"
    (tmp_path / "empty").mkdir()
    check_output_folder(tmp_path / "empty", True, never, "x")
    (tmp_path / "empty" / "mine.txt").write_text("keep")
    with pytest.raises(InputError, match="not a previous output; refusing to replace it even"):
        check_output_folder(tmp_path / "empty", True, never, "a previous output")
    with pytest.raises(InputError, match="is a file; give a folder"):
        check_output_folder(tmp_path / "empty" / "mine.txt", True, never, "x")
    monkeypatch.chdir(tmp_path / "empty")
    for out in (".", ".."):
        with pytest.raises(InputError, match="is the current folder or holds it"):
            check_output_folder(Path(out), True, lambda p: True, "x")


def test_a_label_store_that_appears_meanwhile_is_kept(store, tmp_path):
    """``existed`` is what the claim saw before the sequences were made: a store written
    there since (another run) is kept, even with force."""
    before = (store.path / "manifest.yaml").read_text()
    codes = np.zeros((3, 30), np.uint8)
    with pytest.raises(InputError, match="appeared while gitool was writing it"):
        write_label_store(store.path, codes, np.zeros((3, 3), np.uint8),
                          np.array([0, 1, 2], np.uint8), ["A", "B", "C"], force=True,
                          existed=False)  # fmt: skip
    assert (store.path / "manifest.yaml").read_text() == before
    assert not list(tmp_path.glob(".s.*"))
