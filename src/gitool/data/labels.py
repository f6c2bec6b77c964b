"""Sequence-classification stores: fixed-length sequences with binary labels per task.

What ``gitool synth-motifs`` writes and ``gitool train`` reads for the ``can`` models (the
GLIFAC paper), beside the coverage stores of :mod:`gitool.data.store`. Layout::

    motifs/
      manifest.yaml        format gitool-labels, seq_length, tasks, split sizes, source
      train/ valid/ test/
        sequences.npy      uint8 (N, seq_length)  A=0 C=1 G=2 T=3 N=4
        labels.npy         uint8 (N, n_tasks)     0/1
        ids.npy            int64 (N,)             row in the whole generated set
      interactions.tsv     ground-truth task pairs (task_a, task_b, kind), if known
      motifs.jaspar        the motifs (JASPAR format), if the tasks are motifs
      instances.tsv        embedded motif instances (synthetic data)

Written into a hidden sibling folder and renamed into place, so a failed write leaves
nothing behind; ``force`` replaces only an earlier label store (or an empty folder).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import yaml

from gitool import __version__
from gitool.data.npy import load_array
from gitool.data.store import Store, read_manifest
from gitool.data.windows import SPLITS
from gitool.errors import InputError
from gitool.files import Outputs, staged_folder

LABEL_FORMAT = 1
FORMAT_NAME = "gitool-labels"
# Everything a label store holds (what ``force`` may replace: :func:`gitool.files.stray_entry`).
LAYOUT = {
    **dict.fromkeys(("manifest.yaml", "interactions.tsv", "instances.tsv", "motifs.jaspar")),
    **{split: dict.fromkeys(("sequences.npy", "labels.npy", "ids.npy"))
       for split in ("train", "valid", "test")},
}  # fmt: skip
INTERACTION_KINDS = ("and", "xor")


@dataclass(frozen=True)
class Interaction:
    """A ground-truth interaction between two tasks: ``kind`` ``"and"`` (cooperative) or
    ``"xor"`` (mutual inhibition)."""

    a: str
    b: str
    kind: str


def write_label_store(
    out: str | Path,
    codes: np.ndarray,
    labels: np.ndarray,
    split: np.ndarray,
    tasks: list[str] | tuple[str, ...],
    *,
    interactions: tuple[Interaction, ...] = (),
    motifs_jaspar: str | None = None,
    instances: pd.DataFrame | None = None,
    source: dict | None = None,
    force: bool = False,
    existed: bool | None = None,
) -> Path:
    """Write a label store (layout in the module docstring) atomically.

    Args:
        codes: uint8 ``(n, seq_length)``.
        labels: ``(n, n_tasks)`` 0/1.
        split: uint8 ``(n,)``: 0 train, 1 valid, 2 test.
        tasks: one name per label column.
        interactions: ground truth written to ``interactions.tsv``.
        motifs_jaspar: JASPAR-format text written to ``motifs.jaspar``.
        instances: table written to ``instances.tsv`` (adds ``split`` and ``index`` columns
            when it has a ``sequence`` column of global rows).
        source: recorded under ``source`` in the manifest.
        force: replace an existing folder, only if it is empty or an earlier label store.
        existed: whether ``out`` existed when it was claimed (the value
            :func:`check_label_store_output` returned before the sequences were made); a
            folder that appeared since is kept and :class:`InputError` raised. None: now.
    """
    out = Path(out)
    now = check_label_store_output(out, force)
    n, length = codes.shape
    if labels.shape != (n, len(tasks)) or split.shape != (n,):
        raise ValueError(f"shapes disagree: codes {codes.shape}, labels {labels.shape}")
    with staged_folder(out, now if existed is None else existed) as tmp:
        splits = {}
        position = np.zeros(n, dtype=np.int64)  # row of each sequence within its split
        for s, name in enumerate(SPLITS):
            rows = np.flatnonzero(split == s)
            position[rows] = np.arange(rows.size)
            (tmp / name).mkdir()
            np.save(tmp / name / "sequences.npy", np.ascontiguousarray(codes[rows], np.uint8))
            np.save(tmp / name / "labels.npy", np.ascontiguousarray(labels[rows], np.uint8))
            np.save(tmp / name / "ids.npy", rows.astype(np.int64))
            splits[name] = {
                "sequences": int(rows.size),
                "positives": [int(v) for v in labels[rows].sum(0)],
            }
        if interactions:
            pd.DataFrame(
                [(i.a, i.b, i.kind) for i in interactions], columns=["task_a", "task_b", "kind"]
            ).to_csv(tmp / "interactions.tsv", sep="\t", index=False)
        if motifs_jaspar is not None:
            (tmp / "motifs.jaspar").write_text(motifs_jaspar)
        if instances is not None:
            table = instances.copy()
            if "sequence" in table:
                rows = table["sequence"].to_numpy()
                table.insert(1, "split", np.asarray(SPLITS)[split[rows]])
                table.insert(2, "index", position[rows])
            table.to_csv(tmp / "instances.tsv", sep="\t", index=False)
        manifest = {
            "format": FORMAT_NAME,
            "version": LABEL_FORMAT,
            "gitool_version": __version__,
            "seq_length": int(length),
            "n_tasks": len(tasks),
            "tasks": list(tasks),
            "splits": splits,
            "source": source or {},
        }
        (tmp / "manifest.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
    return out


def check_label_store_output(out: str | Path, force: bool, inputs=()) -> bool:
    """Claim ``out`` (field ``out``) for a label store: new, or with ``force`` an empty
    folder or an earlier label store, never a coverage store or anything else, nor one of
    ``inputs`` (:class:`gitool.files.Outputs`). Returns whether it exists now (pass it to
    :func:`write_label_store` as ``existed``)."""
    out = Path(out)
    Outputs(force, inputs=inputs).folder(
        out,
        is_label_store,
        "a label store from `gitool synth-motifs`",
        field="out",
        layout=LAYOUT,
    )
    return out.exists()


def is_label_store(path: Path) -> bool:
    """Whether ``path`` holds a label store (its manifest names the label-store format)."""
    try:
        manifest = yaml.safe_load((path / "manifest.yaml").read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return False
    return isinstance(manifest, dict) and manifest.get("format") == FORMAT_NAME


class LabelStore:
    """An opened label store: manifest, per-split memory maps, ground truth and motifs."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        manifest = self.path / "manifest.yaml"
        if not manifest.is_file():
            raise InputError(f"{self.path} is not a gitool store (no manifest.yaml)")
        try:
            self.manifest = yaml.safe_load(manifest.read_text())
        except (yaml.YAMLError, UnicodeDecodeError):
            raise InputError(f"{manifest}: not valid YAML; regenerate the store") from None
        if not isinstance(self.manifest, dict) or self.manifest.get("format") != FORMAT_NAME:
            raise InputError(f"{manifest}: not a label store (format {FORMAT_NAME})")
        if self.manifest.get("version") != LABEL_FORMAT:
            raise InputError(
                f"{manifest}: label store version {self.manifest.get('version')!r} is not "
                f"{LABEL_FORMAT}; regenerate it with this gitool"
            )
        try:
            self.tasks: list[str] = [str(t) for t in self.manifest["tasks"]]
            for split in SPLITS:
                int(self.manifest["splits"][split]["sequences"])
            int(self.manifest["seq_length"])
        except (KeyError, TypeError, ValueError) as err:
            raise InputError(
                f"{manifest}: damaged label-store manifest (tasks, splits or seq_length: "
                f"{type(err).__name__} {err}); regenerate the store with `gitool synth-motifs`"
            ) from None

    @property
    def seq_length(self) -> int:
        return int(self.manifest["seq_length"])

    def count(self, split: str) -> int:
        self._check_split(split)
        return int(self.manifest["splits"][split]["sequences"])

    def sequences(self, split: str) -> np.ndarray:
        """uint8 memmap ``(N, seq_length)``."""
        self._check_split(split)
        return load_array(self.path / split / "sequences.npy")

    def check_arrays(self, split: str) -> None:
        """The split's arrays must hold what the manifest says.

        Raises:
            InputError: naming the first missing, damaged or truncated array file.
        """
        n = self.count(split)
        for name, shape in (
            ("sequences.npy", (n, self.seq_length)),
            ("labels.npy", (n, len(self.tasks))),
        ):
            array = load_array(self.path / split / name)
            if array.shape != shape:
                raise InputError(
                    f"{self.path / split / name} holds {array.shape}, but the manifest says "
                    f"{shape}; the store is damaged, regenerate it with `gitool synth-motifs`"
                )

    def labels(self, split: str) -> np.ndarray:
        """uint8 memmap ``(N, n_tasks)``."""
        self._check_split(split)
        return load_array(self.path / split / "labels.npy")

    def interactions(self) -> tuple[Interaction, ...]:
        """The ground-truth task interactions (empty when the store records none).

        Raises:
            InputError: ``interactions.tsv`` lacks a column, or a line names a task the store
                does not have or a kind other than and/xor; the message names file and line.
        """
        path = self.path / "interactions.tsv"
        if not path.is_file():
            return ()
        fix = "fix it or regenerate the store with `gitool synth-motifs`"
        with path.open(encoding="utf-8", errors="replace", newline="") as handle:
            reader = csv.reader(handle, delimiter="\t")
            header = next(reader, [])
            columns = ("task_a", "task_b", "kind")
            missing = [c for c in columns if c not in header]
            if missing:
                raise InputError(
                    f"{path}:1: no column(s) {', '.join(missing)}; expected a tab-separated "
                    f"header task_a, task_b, kind; {fix}"
                )
            index = [header.index(c) for c in columns]
            pairs = []
            for row in reader:
                where = f"{path}:{reader.line_num}"
                if not any(field.strip() for field in row):
                    continue
                if len(row) != len(header):
                    raise InputError(
                        f"{where}: {len(row)} fields, the header has {len(header)}; {fix}"
                    )
                a, b, kind = (row[i].strip() for i in index)
                unknown = [name for name in (a, b) if name not in self.tasks]
                if unknown:
                    raise InputError(
                        f"{where}: {', '.join(map(repr, unknown))} is not among the store's tasks "
                        f"({', '.join(self.tasks)}); {fix}"
                    )
                if kind not in INTERACTION_KINDS:
                    raise InputError(f"{where}: kind {kind!r} is not 'and' or 'xor'; {fix}")
                pairs.append(Interaction(a, b, kind))
        return tuple(pairs)

    def motif_file(self) -> Path | None:
        """``motifs.jaspar`` when the store ships its motifs."""
        path = self.path / "motifs.jaspar"
        return path if path.is_file() else None

    def _check_split(self, split: str) -> None:
        if split not in SPLITS:
            raise InputError(
                f"{split!r} is unknown; choose from {', '.join(SPLITS)}", field="split"
            )


def open_any_store(path: str | Path, option: str = "data"):
    """A coverage :class:`~gitool.data.store.Store` or a :class:`LabelStore`, by manifest;
    ``option`` is the option (field name) it came from, named in errors."""
    path = Path(path)
    manifest = path / "manifest.yaml"
    if not path.exists():
        raise InputError(f"{path}: no such folder", field=option)
    if not manifest.is_file():
        raise InputError(
            f"{path} is not a gitool store (no manifest.yaml); build one with "
            "`gitool build-dataset` or `gitool synth-motifs`",
            field=option,
        )
    kind = read_manifest(manifest).get("format")
    return LabelStore(path) if kind == FORMAT_NAME else Store(path)


class LabelDataset:
    """A split of a label store as a torch dataset: ``(codes uint8 (L,), labels float32 (T,))``.

    No augmentation (label stores are used as stored). Memory maps open lazily per process.
    """

    def __init__(self, store: LabelStore, split: str):
        self.store, self.split = store, split
        self.n = store.count(split)
        self._codes = self._labels = None

    def set_epoch(self, epoch: int) -> None:  # the coverage dataset's interface; no draws here
        pass

    def __len__(self) -> int:
        return self.n

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_codes"] = state["_labels"] = None
        return state

    def __getitem__(self, index: int):
        if not 0 <= index < self.n:
            raise IndexError(f"index {index} out of range for {self.n} sequences")
        if self._codes is None:
            self._codes = self.store.sequences(self.split)
            self._labels = self.store.labels(self.split)
        codes = np.array(self._codes[index], dtype=np.uint8)
        labels = np.asarray(self._labels[index], dtype=np.float32)
        return torch.from_numpy(codes), torch.from_numpy(labels)
