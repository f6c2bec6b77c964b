"""The tables of ``gitool evaluate``: per-track metrics and the grouped summary laid out as
Genomic Interpreter Table 1 (mean Pearson per assay group and overall)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from rich.table import Table

if TYPE_CHECKING:
    from gitool.data.store import Store

GROUP_COLUMNS = ("DNASE/ATAC", "CHIP", "CAGE", "other")
"""Summary columns (Genomic Interpreter Table 1). ``other``: every group but DNASE, ATAC, CHIP, CAGE
(RNA and tracks whose description has no known ``GROUP:`` prefix)."""
OVERALL = "OVERALL"
TRACK_COLUMNS = ("index", "identifier", "group", "description", "pearson", "r2", "poisson")


def group_column(group: str) -> str:
    """The summary column of an assay group: DNASE and ATAC merge; RNA etc. → ``other``."""
    group = str(group).upper()
    if group in ("DNASE", "ATAC"):
        return "DNASE/ATAC"
    return group if group in ("CHIP", "CAGE") else "other"


def track_table(store: Store, metrics: dict[str, np.ndarray]) -> pd.DataFrame:
    """Per-track DataFrame (:data:`TRACK_COLUMNS`) from
    :func:`~gitool.evaluate.coverage.split_metrics`' output."""
    rows = pd.DataFrame(
        {
            "index": [int(t["index"]) for t in store.tracks],
            "identifier": [str(t["identifier"]) for t in store.tracks],
            "group": [str(t.get("group", "other")) for t in store.tracks],
            "description": [str(t.get("description", "")) for t in store.tracks],
        }
    )
    for key in ("pearson", "r2", "poisson"):
        rows[key] = np.asarray(metrics[key], dtype=np.float64)
    return rows


def group_summary(tracks: pd.DataFrame, name: str) -> pd.DataFrame:
    """Genomic Interpreter Table 1 for one model: a one-row DataFrame indexed by ``model``.

    Columns: ``DNASE/ATAC``, ``CHIP``, ``CAGE``, ``other`` (every other group: RNA, other),
    ``OVERALL`` — the mean of the per-track Pearsons in that column (NaN when it has no
    tracks; tracks whose Pearson is undefined, e.g. constant in the split, are left out) —
    and ``n_<column>``, the number of tracks averaged.
    """
    columns = tracks["group"].map(group_column)
    pearson = tracks["pearson"].to_numpy(dtype=np.float64)
    row: dict[str, Any] = {}
    counts: dict[str, int] = {}
    for col in (*GROUP_COLUMNS, OVERALL):
        values = pearson if col == OVERALL else pearson[(columns == col).to_numpy()]
        values = values[np.isfinite(values)]
        row[col] = float(values.mean()) if len(values) else float("nan")
        counts[f"n_{col}"] = len(values)
    frame = pd.DataFrame([{**row, **counts}], index=pd.Index([name], name="model"))
    return frame


def summary_table(summary: pd.DataFrame, caption: str | None = None) -> Table:
    """Render :func:`group_summary` rows as a rich table; empty groups show ``—``. The
    header counts the first row's tracks; a cell averaging another number (a model whose
    Pearson is undefined on some track) shows its own in parentheses."""
    first = summary.iloc[0]
    counts = {col: int(first.get(f"n_{col}", 0)) for col in (*GROUP_COLUMNS, OVERALL)}
    differs = any(
        int(row.get(f"n_{col}", 0)) != count
        for _, row in summary.iterrows()
        for col, count in counts.items()
    )
    if differs:
        note = "(n): tracks averaged, where not the header's (undefined Pearsons are left out)"
        caption = f"{caption}\n{note}" if caption else note
    table = Table(caption=caption, caption_justify="left")
    table.add_column("model")
    for col, count in counts.items():
        table.add_column(f"{col}\n({count} track{'s' if count != 1 else ''})", justify="right")
    for name, row in summary.iterrows():
        cells = []
        for col, count in counts.items():
            cell = f"{row[col]:.4f}" if np.isfinite(row[col]) else "—"
            own = int(row.get(f"n_{col}", 0))
            cells.append(cell if own == count else f"{cell} ({own})")
        table.add_row(str(name), *cells)
    return table
