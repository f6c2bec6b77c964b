"""``gitool evaluate`` on a label store: per-task AUPR and AUROC of a CAN run (the model of
the GLIFAC paper).

AUPR is the average precision (sklearn's definition) and AUROC the Mann-Whitney area, per
task over every sequence of the split (:mod:`gitool.metrics`). Two summaries: the **mean**
over tasks (what training monitors and the benchmark reports), and the **pooled** score, every
task's sequences ranked together as one binary problem. The pooled score is what the GLIFAC
paper's "classification AUPR 0.95-0.97" is: its authors' code reports Keras' ``AUC(curve='PR')``,
which flattens the label matrix. Pooled, the frequent independent tasks dominate, so a model
that never learns a rare "and" task (GATA1/TAL1, 4.5 % positives) still scores about 0.95;
the per-task rows and their mean show it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from rich.table import Table

from gitool.console import progress
from gitool.data.dataset import codes_to_one_hot
from gitool.data.labels import LabelStore
from gitool.errors import InputError, opt
from gitool.evaluate.outputs import tsv_path
from gitool.files import Outputs, write_tsv
from gitool.metrics import auroc_columns, average_precision_columns
from gitool.models.can import CAN
from gitool.runs import autocast_for, check_which, load_run, resolve_device, run_label


@dataclass
class LabelEvaluation:
    tasks: pd.DataFrame  # task, sequences, positives, aupr, auroc
    name: str
    split: str
    path: Path
    pooled_aupr: float  # every task's sequences ranked together (Keras' AUC default)
    pooled_auroc: float

    @property
    def paths(self) -> dict[str, Path]:
        """The files written (as :attr:`EvaluationResult.paths`): the per-task TSV."""
        return {"tasks": self.path}

    @property
    def mean_aupr(self) -> float:
        """Mean over the tasks that have both classes in the split (NaN if none has)."""
        return _mean_defined(self.tasks["aupr"])

    @property
    def mean_auroc(self) -> float:
        return _mean_defined(self.tasks["auroc"])

    def table(self) -> Table:
        table = Table(title=f"{self.name} on {self.split}: per-task classification")
        for column in ("task", "positives", "AUPR", "AUROC"):
            table.add_column(column, justify="left" if column == "task" else "right")
        for row in self.tasks.itertuples():
            table.add_row(row.task, f"{row.positives:,}", f"{row.aupr:.3f}", f"{row.auroc:.3f}")
        table.add_row("mean", "", f"{self.mean_aupr:.3f}", f"{self.mean_auroc:.3f}", style="bold")
        table.add_row(
            "pooled", f"{int(self.tasks['positives'].sum()):,}", f"{self.pooled_aupr:.3f}",
            f"{self.pooled_auroc:.3f}",
        )  # fmt: skip
        table.caption = (
            "mean: over tasks; pooled: every task's sequences ranked together (Keras' "
            "AUC, the GLIFAC authors' classification score)"
        )
        return table


def _mean_defined(values) -> float:
    values = np.asarray(values, dtype=np.float64)
    defined = values[~np.isnan(values)]
    return float(defined.mean()) if defined.size else float("nan")


@torch.no_grad()
def predict_labels(
    model: torch.nn.Module, store: LabelStore, split: str, batch_size: int, device
) -> np.ndarray:
    """Probabilities ``(N, n_tasks)`` of ``model`` for every sequence of ``split``."""
    device = torch.device(device)
    model = model.to(device).eval()
    sequences = store.sequences(split)
    n = store.count(split)
    out = np.empty((n, len(store.tasks)), dtype=np.float32)
    with progress(f"predicting {split}", n) as advance:
        for lo in range(0, n, batch_size):
            codes = torch.from_numpy(np.array(sequences[lo : lo + batch_size])).to(device)
            with autocast_for(device):
                logits = model(codes_to_one_hot(codes), logits=True)
            # sigmoid in float32: bf16 probabilities would tie near 0 and 1 (AUPR/AUROC)
            out[lo : lo + len(codes)] = torch.sigmoid(logits.float()).cpu().numpy()
            advance(len(codes))
    return out


def _check_tasks(name: str, state: dict, store) -> None:
    """The model's outputs are the tasks of the store it was trained on, in its order: a
    store with as many tasks under other names or in another order (the SP1 motif set in
    place of SPI1) would score output k against another task."""
    trained = [
        list(entry["manifest"]["tasks"])
        for entry in state.get("data") or ()
        if isinstance(entry.get("manifest"), dict) and "tasks" in entry["manifest"]
    ]
    if not trained or list(trained[0]) == list(store.tasks):
        return  # a checkpoint without the record (not trained by gitool) is taken as it is
    own = trained[0]
    k = next(i for i, (a, b) in enumerate(zip(own, store.tasks, strict=True)) if a != b)
    raise InputError(
        f"{store.path}: task {k} is {store.tasks[k]}, but {name}'s output {k} was trained on "
        f"{own[k]}; evaluate on a store with the model's tasks in its order "
        f"({', '.join(own)})",
        field="data",
    )


def evaluate_labels(
    run: str | Path,
    store: LabelStore,
    split: str = "test",
    batch_size: int = 256,
    device: str | torch.device | None = None,
    out: str | Path | None = None,
    which: str = "best",
    force: bool = False,
) -> LabelEvaluation:
    """Per-task AUPR/AUROC of ``run`` on ``split``; writes ``RUN/eval/<split>.tsv`` (or
    ``out``: a ``.tsv`` path or a folder), claimed before any inference: an existing file
    is replaced only with ``force`` and only when it is a text file, never the run's
    checkpoints or the store."""
    check_which(which)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InputError(f"must be an integer >= 1, got {batch_size!r}", field="batch_size")
    n = store.count(split)
    if n == 0:
        raise InputError(f"{split}: {store.path} has no sequences in it", field="split")
    model, state, ckpt = load_run(run, which, "model")
    name = run_label(ckpt)
    config = model.config
    if not isinstance(model, CAN):
        raise InputError(
            f"{name}: a {type(model).__name__} predicts coverage; a label store "
            "evaluates sequence classifiers (can-*)",
            field="model",
        )
    if config.seq_length != store.seq_length or config.n_tasks != len(store.tasks):
        raise InputError(
            f"{name} takes {config.seq_length}-bp sequences with {config.n_tasks} tasks but "
            f"{opt('data')} {store.path} has {store.seq_length} bp and {len(store.tasks)} "
            "tasks; use the store the model was trained on",
            field="model",
        )
    _check_tasks(name, state, store)
    path = tsv_path(run, ckpt, split, out)
    inputs = [ckpt, ckpt.parent if ckpt.parent.name == "checkpoints" else None, store.path]
    Outputs(force, inputs=inputs).file(path, "TSV", field="out")
    probs = predict_labels(model, store, split, batch_size, resolve_device(device))
    labels = np.asarray(store.labels(split), dtype=np.float64)
    tasks = pd.DataFrame(
        {
            "task": store.tasks,
            "sequences": n,
            "positives": labels.sum(0).astype(np.int64),
            "aupr": average_precision_columns(probs, labels),
            "auroc": auroc_columns(probs, labels),
        }
    )
    flat_probs, flat_labels = probs.reshape(-1, 1), labels.reshape(-1, 1)
    return LabelEvaluation(
        tasks, name, split, write_tsv(tasks, path),
        pooled_aupr=float(average_precision_columns(flat_probs, flat_labels)[0]),
        pooled_auroc=float(auroc_columns(flat_probs, flat_labels)[0]),
    )  # fmt: skip
