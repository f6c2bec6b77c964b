"""``gitool evaluate``: per-track metrics of a trained run on a store split.

The metric is Genomic Interpreter's (§4.1, Table 1, Fig. 2): for each track, the Pearson
correlation between predicted and observed values over **every bin of every window** of
the split — the ``N × target_length`` values of a track pooled into one vector. It is not
a per-window correlation averaged afterwards, and not a correlation across tracks (the
axis mistake of enformer-pytorch #36). R² (``1 − SSE/SST``) and the mean Poisson loss are
computed the same way (:class:`gitool.metrics.TrackMetrics`).

Outputs (default ``RUN/eval/``; every file claimed before any inference — an existing one
is replaced only with ``force`` and only when gitool made it (:mod:`gitool.made`), the
inputs never — and
written through a temporary sibling + rename):

    <split>.tsv              per track: index, identifier, group, description, pearson, r2, poisson
    <split>.summary.tsv      Genomic Interpreter Table 1 layout: one row per model, mean
                             Pearson per group column (DNASE/ATAC, CHIP, CAGE, other) and
                             OVERALL
    <split>.compare.<name>.tsv   with ``compare``: each other run's per-track table
    <split>.compare.<name>.png   with ``compare``: paired per-track Pearson scatter of the run
                                 against each other run (Genomic Interpreter Fig. 2)
    <split>.window<N>.png    with ``plot_window``: predicted vs observed tracks (Fig. 3)

A checkpoint other than ``best.pt`` adds its name: ``test.last.tsv``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import torch

from gitool.config.evaluate import EvaluateOptions
from gitool.console import info, progress, warn
from gitool.data.genome import one_hot
from gitool.data.labels import LabelStore, open_any_store
from gitool.data.store import Store
from gitool.data.tracks import select_tracks
from gitool.data.windows import SPLITS
from gitool.errors import InputError, opt
from gitool.evaluate.labels import LabelEvaluation, evaluate_labels
from gitool.evaluate.outputs import tsv_path
from gitool.evaluate.plots import pearson_scatter, window_tracks
from gitool.evaluate.tables import (
    group_column,
    group_summary,
    summary_table,
    track_table,
)
from gitool.files import Outputs, committed_together, write_tsv
from gitool.metrics import TrackMetrics
from gitool.runs import (
    autocast_for,
    check_which,
    choose_head,
    default_run,
    default_store,
    load_run,
    resolve_device,
    run_label,
)

if TYPE_CHECKING:
    from rich.table import Table

MAX_PLOT_TRACKS = 8
"""Tracks drawn by ``plot_window`` when ``plot_tracks`` is not given (the first ones)."""


@dataclass
class EvaluationResult:
    """What :func:`evaluate` computed and wrote.

    Attributes:
        tracks: per-track metrics of the run, columns
            :data:`~gitool.evaluate.tables.TRACK_COLUMNS`, one row per
            store track in store order.
        summary: Genomic Interpreter Table 1 layout (see :func:`group_summary`): one row for
            the run, then one per ``compare`` run.
        paths: files written, by kind: ``tracks``, ``summary``, ``window_plot`` when asked
            for, and per compared run ``compare_tracks:<name>`` and ``compare_plot:<name>``.
        name, split, head: the run's label, the split and the model head evaluated.
        n_windows, target_length: the split's windows and bins per window (each track's
            Pearson is over ``n_windows × target_length`` values).
        compared: each compared run's per-track table (same columns), by its label.
    """

    tracks: pd.DataFrame
    summary: pd.DataFrame
    paths: dict[str, Path]
    name: str
    split: str
    head: str
    n_windows: int
    target_length: int
    compared: dict[str, pd.DataFrame] = field(default_factory=dict)
    other_groups: list[str] = field(default_factory=list)

    def table(self) -> Table:
        """The grouped summary as a rich table (what ``gitool evaluate`` prints)."""
        return summary_table(self.summary, caption=self.caption())

    def caption(self) -> str:
        """One line saying what the numbers are."""
        text = (
            f"mean per-track Pearson on the {self.split} split: each track over all "
            f"{self.n_windows:,} windows × {self.target_length} bins"
        )
        if self.other_groups:
            text += f"; other = {', '.join(self.other_groups)}"
        return text


@dataclass
class _Subject:
    """One model to evaluate: its label, model (on CPU until it runs) and chosen head."""

    run: Path
    name: str
    model: torch.nn.Module
    head: str
    checkpoint: Path


# --------------------------------------------------------------------------- checks


def open_store(data: str | Path, split: str) -> Store:
    """Open ``data`` and check ``split`` exists and has windows.

    Raises:
        InputError: missing folder, not a store, unknown or empty split, missing arrays.
    """
    path = Path(data)
    if not path.exists():
        raise InputError(
            f"{path}: no such folder; give a store made by `gitool build-dataset`", field="data"
        )
    if not path.is_dir():
        raise InputError(
            f"{path} is a file, not a store folder; give a store made by `gitool build-dataset`",
            field="data",
        )
    store = Store(path)
    if split not in SPLITS:
        raise InputError(f"{split!r} is unknown; choose from {', '.join(SPLITS)}", field="split")
    for name in ("sequences.npy", "targets.npy", "windows.bed"):
        if not (path / split / name).is_file():
            raise InputError(
                f"store {path} is incomplete: {split}/{name} is missing; rebuild it with "
                "`gitool build-dataset --force`"
            )
    if store.count(split) == 0:
        raise InputError(
            f"the {split} split of {path} has no windows; choose another {opt('split')}"
        )
    return store


def _identifiers(tracks: Sequence[dict]) -> list[str]:
    return [str(t["identifier"]) for t in tracks]


def head_for_store(
    heads: dict[str, int],
    trained_on: Sequence[dict],
    store: Store,
    head: str | None,
    label: str,
) -> str:
    """The model head to evaluate on ``store``.

    ``head`` if given; else the head of the training dataset whose track identifiers equal
    the store's; else the model's only head.

    Args:
        heads: the model's heads, name → track count.
        trained_on: the checkpoint's ``data`` entries (``{"path", "head", "manifest"}``).

    Raises:
        InputError: unknown head (listing the model's), or several heads and no way to choose.
    """
    if head is not None or len(heads) == 1:
        return choose_head(heads, head, label)
    wanted = _identifiers(store.tracks)
    matches = []
    for entry in trained_on or []:
        manifest = entry.get("manifest") or {}
        name = entry.get("head")
        if name in heads and _identifiers(manifest.get("tracks", [])) == wanted:
            matches.append(name)
    matches = list(dict.fromkeys(matches))
    if len(matches) == 1:
        return matches[0]
    listing = ", ".join(f"{h} ({n} tracks)" for h, n in heads.items())
    raise InputError(
        f"{label} has several heads ({listing}) and the tracks of {store.path} do not pick "
        f"one; choose it with {opt('head')}"
    )


def check_compatible(model: torch.nn.Module, head: str, store: Store, label: str) -> None:
    """The model's input length, output bins, bin size and head width must fit the store.

    Raises:
        InputError: naming the mismatching quantity, both values and what to do.
    """
    config = model.config
    heads = getattr(config, "heads", None)
    if not heads or not hasattr(config, "target_length"):
        raise InputError(
            f"{label} is a {type(model).__name__}, not a coverage-track model; "
            "evaluate takes swin, enformer and cnn-* runs"
        )
    m = store.manifest
    for key, what, flag in (
        ("seq_length", "-bp input windows", "--seq-length"),
        ("target_length", " output bins per window", "--target-length"),
        ("bin_size", "-bp bins", "--bin-size"),
    ):
        ours, theirs = getattr(config, key, None), m[key]
        if ours is not None and int(ours) != int(theirs):
            raise InputError(
                f"{label} was built for {ours:,}{what} ({key}) but {store.path} has "
                f"{theirs:,}; evaluate on a store built with {flag} {ours}"
            )
    n_model, n_store = int(heads[head]), int(m["n_tracks"])
    if n_model != n_store:
        raise InputError(
            f"head {head!r} of {label} predicts {n_model} tracks but {store.path} has "
            f"{n_store} tracks; evaluate on the store it was trained on (or pick "
            f"{opt('head')})"
        )


def _prepare(
    run: str | Path, which: str, store: Store, head: str | None, option: str, explicit: bool
) -> _Subject:
    model, state, ckpt = load_run(run, which, option)
    label = run_label(ckpt)
    heads = dict(getattr(model.config, "heads", None) or {})
    if not heads:
        check_compatible(model, "", store, label)  # raises: not a track model
    if head is not None and not explicit and head not in heads:
        head = None  # --head names this run's head; the compared run chooses its own
    chosen = head_for_store(heads, state.get("data") or [], store, head, label)
    check_compatible(model, chosen, store, label)
    trained = {
        e.get("head"): _identifiers((e.get("manifest") or {}).get("tracks", []))
        for e in state.get("data") or []
    }
    ours, theirs = trained.get(chosen), _identifiers(store.tracks)
    if ours and ours != theirs:
        if sorted(ours) == sorted(theirs) and len(set(ours)) == len(ours):
            info(
                f"{label}: {store.path} lists head {chosen!r}'s tracks in another order; "
                "matching them by identifier"
            )
            model = InStoreOrder(model, [ours.index(t) for t in theirs])
        else:
            warn(
                f"{label}: head {chosen!r} was trained on other tracks than those of "
                f"{store.path} (same count, different identifiers); each column is compared "
                "with the store's track in its place"
            )
    return _Subject(Path(run), label, model, chosen, ckpt)


class InStoreOrder(torch.nn.Module):
    """A model whose output columns are put in a store's track order: ``order[j]`` is the
    model's column for the store's track ``j`` (the same tracks, listed in another order)."""

    def __init__(self, model: torch.nn.Module, order: list[int]):
        super().__init__()
        self.model, self.config = model, model.config
        self.register_buffer("order", torch.as_tensor(order, dtype=torch.long), persistent=False)

    def forward(self, x: torch.Tensor, head: str | None = None) -> torch.Tensor:
        return self.model(x, head).index_select(-1, self.order)


# --------------------------------------------------------------------------- inference


def split_metrics(
    model: torch.nn.Module,
    store: Store,
    split: str,
    head: str,
    batch_size: int = 8,
    device: str | torch.device = "cpu",
    description: str = "evaluating",
) -> dict[str, np.ndarray]:
    """Per-track metrics of ``model`` over all windows and bins of ``split``.

    Reads the split in order, ``batch_size`` windows at a time (one-hot ``(B, L, 4)``),
    predicts ``(B, T, n_tracks)`` in eval mode under ``torch.no_grad`` (bf16 autocast on
    CUDA) and accumulates :class:`TrackMetrics`.

    Returns:
        ``pearson``, ``r2``, ``poisson``, ``n`` — float64 arrays ``(n_tracks,)``.
    """
    device = torch.device(device)
    sequences, targets = store.sequences(split), store.targets(split)
    n = len(sequences)
    metrics = TrackMetrics(targets.shape[-1], device=device)
    model = model.to(device).eval()
    with torch.no_grad(), progress(description, n) as advance:
        for start in range(0, n, batch_size):
            stop = min(start + batch_size, n)
            x = torch.from_numpy(one_hot(np.asarray(sequences[start:stop]))).to(device)
            y = torch.from_numpy(np.asarray(targets[start:stop], dtype=np.float32)).to(device)
            with autocast_for(device):
                pred = model(x, head)
            metrics.update(pred.float(), y)
            advance(stop - start)
    return metrics.compute()


def predict_windows(
    model: torch.nn.Module,
    store: Store,
    split: str,
    head: str,
    indices: Sequence[int],
    device: str | torch.device = "cpu",
) -> np.ndarray:
    """Predictions for some windows of a split: float32 ``(len(indices), T, n_tracks)``."""
    device = torch.device(device)
    codes = np.asarray(store.sequences(split)[np.asarray(indices, dtype=np.int64)])
    model = model.to(device).eval()
    with torch.no_grad(), autocast_for(device):
        pred = model(torch.from_numpy(one_hot(codes)).to(device), head)
    return pred.float().cpu().numpy()


# --------------------------------------------------------------------------- outputs


def _file_tag(name: str) -> str:
    """A run label made safe for a file name."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name).strip("._") or "run"


def _sibling(tsv: Path, suffix: str) -> Path:
    stem = tsv.name[: -len(".tsv")] if tsv.name.lower().endswith(".tsv") else tsv.name
    return tsv.with_name(stem + suffix)


# --------------------------------------------------------------------------- steps


def _is_label_store(data: str | Path) -> bool:
    """Whether ``data`` is a label store (``gitool synth-motifs``) rather than a coverage one."""
    return (Path(data) / "manifest.yaml").is_file() and isinstance(open_any_store(data), LabelStore)


def _plot_columns(
    store: Store, split: str, plot_window: int | None, plot_tracks: Sequence[str | int] | None
) -> list[int]:
    """The store columns ``plot_window`` draws (none without it); checks the window index."""
    if plot_window is None:
        return []
    n_windows = store.count(split)
    if not 0 <= plot_window < n_windows:
        raise InputError(
            f"{plot_window} is out of range: the {split} split has {n_windows} windows "
            f"(0–{n_windows - 1})",
            field="plot_window",
        )
    return select_tracks(
        store.tracks, plot_tracks, field="plot_tracks", of=str(store.path),
        default=MAX_PLOT_TRACKS,
    )  # fmt: skip


def _load_subjects(
    run: str | Path,
    compare: str | Path | Sequence[str | Path] | None,
    which: str,
    store: Store,
    head: str | None,
) -> list[_Subject]:
    """The run, then each ``compare`` run (a repeated label gets its path appended)."""
    subjects = [_prepare(run, which, store, head, "model", explicit=True)]
    others = [] if compare is None else [compare] if isinstance(compare, (str, Path)) else compare
    for other in others:
        subject = _prepare(other, which, store, head, "compare", explicit=False)
        if subject.name in {s.name for s in subjects}:
            subject.name = f"{subject.name} ({other})"
        subjects.append(subject)
    return subjects


def _plan_outputs(tsv: Path, subjects: list[_Subject], plot_window: int | None) -> dict[str, Path]:
    """Every file :func:`evaluate` writes, by kind (the keys of ``EvaluationResult.paths``)."""
    paths = {"tracks": tsv, "summary": _sibling(tsv, ".summary.tsv")}
    tags: set[str] = set()
    for subject in subjects[1:]:
        tag = base = _file_tag(subject.name)
        for n in range(2, len(subjects) + 2):  # labels that clean up to one file name
            if tag not in tags:
                break
            tag = f"{base}-{n}"
        tags.add(tag)
        paths[f"compare_tracks:{subject.name}"] = _sibling(tsv, f".compare.{tag}.tsv")
        paths[f"compare_plot:{subject.name}"] = _sibling(tsv, f".compare.{tag}.png")
    if plot_window is not None:
        paths["window_plot"] = _sibling(tsv, f".window{plot_window}.png")
    return paths


def run_inputs(subject: _Subject) -> list[Path]:
    """What of a run :func:`evaluate` reads: its checkpoint and the run's checkpoints/."""
    inputs = [subject.checkpoint, subject.checkpoint.parent]
    return inputs if subject.checkpoint.parent.name == "checkpoints" else inputs[:1]


def _claim(paths: dict[str, Path], subjects: list[_Subject], store: Store, force: bool) -> None:
    """Claim every output (see the module docstring) before any inference."""
    inputs = [store.path, *store.sources()]
    for subject in subjects:
        inputs += run_inputs(subject)
    outputs = Outputs(force, inputs=inputs)
    for path in paths.values():
        outputs.file(path, "PNG" if path.suffix == ".png" else "TSV", field="out")


def _compute(
    subjects: list[_Subject],
    store: Store,
    split: str,
    batch_size: int,
    device: torch.device,
    plot_window: int | None,
    columns: list[int],
) -> tuple[list[pd.DataFrame], dict[str, np.ndarray]]:
    """Every subject's per-track table, and its predictions for ``plot_window`` (the drawn
    ``columns`` only), by subject name. The models go back to the CPU afterwards."""
    tables = []
    for subject in subjects:
        metrics = split_metrics(
            subject.model, store, split, subject.head, batch_size, device,
            description=f"evaluating {subject.name} on {split}",
        )  # fmt: skip
        tables.append(track_table(store, metrics))
    window_predictions = {}
    if plot_window is not None:
        for subject in subjects:
            pred = predict_windows(subject.model, store, split, subject.head, [plot_window], device)
            window_predictions[subject.name] = pred[0][:, columns]
    for subject in subjects:
        subject.model.to("cpu")
    return tables, window_predictions


def _write_tables(
    paths: dict[str, Path], tables: list[pd.DataFrame], subjects: list[_Subject], split: str
) -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
    """Write the run's per-track TSV, the summary, and per compared run its TSV and the
    paired scatter, to ``paths``. Returns ``(summary, compared tables by name)``."""
    summary = pd.concat([group_summary(t, s.name) for t, s in zip(tables, subjects, strict=True)])
    write_tsv(tables[0], paths["tracks"])
    write_tsv(summary, paths["summary"], index=True)
    compared = {}
    for table, subject in zip(tables[1:], subjects[1:], strict=True):
        compared[subject.name] = table
        write_tsv(table, paths[f"compare_tracks:{subject.name}"])
        pearson_scatter(
            tables[0], table, subjects[0].name, subject.name,
            paths[f"compare_plot:{subject.name}"], split=split,
        )  # fmt: skip
    return summary, compared


def _plot_window(
    store: Store,
    split: str,
    plot_window: int,
    columns: list[int],
    predicted: dict[str, np.ndarray],
    path: Path,
) -> Path:
    """Predicted vs observed tracks of one window, beside the TSV."""
    window = store.windows(split).iloc[plot_window]
    observed = np.asarray(store.targets(split)[plot_window], dtype=np.float32)[:, columns]
    return window_tracks(
        chrom=str(window["chrom"]),
        target_start=int(window["target_start"]),
        bin_size=int(store.manifest["bin_size"]),
        observed=observed,
        predicted=predicted,
        labels=[str(store.tracks[c]["identifier"]) for c in columns],
        descriptions=[str(store.tracks[c].get("description", "")) for c in columns],
        path=path,
        title=f"{split} window {plot_window}",
    )


# --------------------------------------------------------------------------- entry point


def evaluate(options: EvaluateOptions) -> EvaluationResult | LabelEvaluation:
    """Evaluate a run on a store split (``gitool evaluate``).

    A label store (``gitool synth-motifs``) gives the per-task AUPR/AUROC of a ``can-*``
    run instead (:func:`gitool.evaluate.labels.evaluate_labels`, a
    :class:`~gitool.evaluate.labels.LabelEvaluation`); ``compare``, ``plot_window``,
    ``plot_tracks`` and ``head`` apply to coverage stores only.

    Options (:class:`~gitool.config.evaluate.EvaluateOptions`):
        model: run folder (``RUN/checkpoints/{best,last}.pt``) or a checkpoint file;
            default the newest run under ``runs/``.
        data: store folder made by ``gitool build-dataset`` (or ``gitool synth-motifs``);
            default the store the run was trained on
            (:func:`~gitool.runs.training_store`).
        split: ``train``, ``valid`` or ``test``.
        head: model head; default: the head trained on a dataset with this store's track
            identifiers, else the model's only head.
        batch_size: windows per forward pass (default 8; label-store sequences: 256).
        device: ``cpu``, ``cuda``, ``cuda:N``; default CUDA when available (bf16 autocast).
        out: per-track TSV path when it ends in ``.tsv``, else a folder (created) for
            ``<split>.tsv``; default ``RUN/eval/<split>.tsv``. The summary and plots go
            next to it (see the module docstring).
        compare: other runs evaluated on the same data and split; each adds its row to
            the summary (Genomic Interpreter Table 1 with several models) and writes its
            per-track TSV and the paired per-track scatter against the run (Genomic
            Interpreter Fig. 2).
        plot_window: draw predicted vs observed for this window (0-based row of the split's
            ``windows.bed``) as a PNG (Genomic Interpreter Fig. 3), for ``plot_tracks``
            (comma-separated identifiers or indices; default the first
            :data:`MAX_PLOT_TRACKS`).
        which: ``best`` (falls back to ``last``) or ``last`` checkpoint of a run folder.
        force: replace the outputs of an earlier evaluation (files gitool made and nobody
            changed since: :mod:`gitool.made`).

    Every input is checked and every output claimed before any inference: store, split,
    both models' geometry and heads against the store, the output files.

    Raises:
        InputError: bad data folder, split, checkpoint, head, device, option or output.
    """
    check_which(options.which)
    run = options.model if options.model is not None else default_run()
    data = options.data if options.data is not None else default_store(run, options.which)
    if _is_label_store(data):
        return _evaluate_labels(options, run, data)
    store = open_store(data, options.split)
    plot_tracks = options.plot_tracks.split(",") if options.plot_tracks else None
    columns = _plot_columns(store, options.split, options.plot_window, plot_tracks)
    dev = resolve_device(options.device)
    subjects = _load_subjects(run, options.compare, options.which, store, options.head)
    tsv = tsv_path(subjects[0].run, subjects[0].checkpoint, options.split, options.out)
    paths = _plan_outputs(tsv, subjects, options.plot_window)
    _claim(paths, subjects, store, options.force)

    tables, window_predictions = _compute(
        subjects, store, options.split, options.batch_size or 8, dev, options.plot_window,
        columns,
    )  # fmt: skip
    with committed_together():  # all the tables and plots, or none
        summary, compared = _write_tables(paths, tables, subjects, options.split)
        if options.plot_window is not None:
            _plot_window(
                store, options.split, options.plot_window, columns, window_predictions,
                paths["window_plot"],
            )  # fmt: skip
    others = sorted({g for g in tables[0]["group"] if group_column(g) == "other"})
    return EvaluationResult(
        tracks=tables[0],
        summary=summary,
        paths=paths,
        name=subjects[0].name,
        split=options.split,
        head=subjects[0].head,
        n_windows=store.count(options.split),
        target_length=int(store.manifest["target_length"]),
        compared=compared,
        other_groups=others,
    )


def _evaluate_labels(options: EvaluateOptions, run: str | Path, data: str | Path):
    """The label-store branch of :func:`evaluate`."""
    coverage_only = ("compare", "plot_window", "plot_tracks", "head")
    if any(getattr(options, name) not in (None, (), []) for name in coverage_only):
        names = ", ".join(opt(name) for name in coverage_only)
        raise InputError(
            f"{names} apply to coverage stores; {data} is a label store, which gives the "
            "per-task AUPR/AUROC table"
        )
    return evaluate_labels(
        run, LabelStore(data), options.split, batch_size=options.batch_size or 256,
        device=options.device, out=options.out, which=options.which, force=options.force,
    )  # fmt: skip
