"""PNG figures for ``gitool evaluate``, after Genomic Interpreter Fig. 2 and Fig. 3.

:func:`pearson_scatter` pairs two runs' per-track Pearson; :func:`window_tracks` draws one
window's predicted and observed tracks along the genome (``chrom`` position in bp). matplotlib
(Agg backend, no display needed) is imported on first use through :func:`gitool.plots.pyplot`
so that importing gitool stays light; figures are written atomically
(:func:`gitool.plots.save_png`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from gitool.data.windows import locus
from gitool.evaluate.tables import GROUP_COLUMNS, group_column
from gitool.plots import pyplot, save_png

if TYPE_CHECKING:
    import pandas as pd


def pearson_scatter(
    this: pd.DataFrame,
    other: pd.DataFrame,
    this_name: str,
    other_name: str,
    path: str | Path,
    split: str = "test",
) -> Path:
    """Paired per-track Pearson (Genomic Interpreter Fig. 2): this run (y) against the other (x).

    One panel per summary column that has tracks (DNASE/ATAC, CHIP, CAGE, other), a
    diagonal reference line (points above it: ``this_name`` is better on that track) and
    both runs' mean Pearsons in each panel's title. Tracks with an undefined Pearson in
    either run are left out.

    Args:
        this, other: per-track tables (``group``, ``pearson``) of the same store, same order.
    """
    plt = pyplot()
    if list(this["identifier"]) != list(other["identifier"]):
        raise ValueError("the two per-track tables are not of the same tracks")
    columns = this["group"].map(group_column).to_numpy()
    y_all = this["pearson"].to_numpy(dtype=np.float64)
    x_all = other["pearson"].to_numpy(dtype=np.float64)
    finite = np.isfinite(x_all) & np.isfinite(y_all)
    panels = [c for c in GROUP_COLUMNS if np.any(finite & (columns == c))] or ["all"]
    values = np.concatenate([x_all[finite], y_all[finite]]) if finite.any() else np.zeros(1)
    lo = min(0.0, float(values.min())) - 0.02
    hi = min(1.0, max(float(values.max()), 0.1)) + 0.02

    fig, axes = plt.subplots(1, len(panels), figsize=(3.8 * len(panels), 4.2), squeeze=False)
    for ax, col in zip(axes[0], panels, strict=True):
        mask = finite if col == "all" else finite & (columns == col)
        x, y = x_all[mask], y_all[mask]
        alpha = 0.7 if len(x) < 300 else 0.3
        ax.plot([lo, hi], [lo, hi], color="0.5", lw=1, ls="--", zorder=1)
        ax.scatter(x, y, s=10, alpha=alpha, color="tab:blue", edgecolors="none", zorder=2)
        ax.set_xlim(lo, hi)
        ax.set_ylim(lo, hi)
        ax.set_aspect("equal")
        above = int(np.sum(y > x))
        if len(x):
            title = (
                f"{col} ({len(x)} track{'s' if len(x) != 1 else ''}, {above} above)\n"
                f"mean r: {this_name} {y.mean():.3f}, {other_name} {x.mean():.3f}"
            )
        else:
            title = f"{col}: no tracks with a defined Pearson"
        ax.set_title(title, fontsize=9)
        ax.set_xlabel(f"{other_name} Pearson r")
        ax.set_ylabel(f"{this_name} Pearson r")
    fig.suptitle(
        f"per-track Pearson over all bins of the {split} split; above the line: {this_name} better",
        fontsize=10,
    )
    return save_png(fig, path)


def window_tracks(
    chrom: str,
    target_start: int,
    bin_size: int,
    observed: np.ndarray,
    predicted: dict[str, np.ndarray],
    labels: Sequence[str],
    path: str | Path,
    descriptions: Sequence[str] | None = None,
    title: str = "",
) -> Path:
    """Predicted vs observed coverage of one window (Genomic Interpreter Fig. 3), one row per track.

    Bins are drawn as steps over their genomic extent: bin ``i`` covers
    ``target_start + i·bin_size`` to ``target_start + (i+1)·bin_size`` on ``chrom``.

    Args:
        observed: float ``(T, k)`` targets of the ``k`` tracks drawn (store scale).
        predicted: model name → float ``(T, k)`` predictions of the same tracks.
        labels: ``k`` track identifiers (row labels).
        descriptions: ``k`` track descriptions (row titles), optional.
    """
    plt = pyplot()
    observed = np.asarray(observed, dtype=np.float64)
    n_bins, k = observed.shape
    edges = target_start + np.arange(n_bins + 1, dtype=np.int64) * bin_size
    fig, axes = plt.subplots(k, 1, figsize=(10, 1.6 + 1.5 * k), sharex=True, squeeze=False)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for row, ax in enumerate(axes[:, 0]):
        ax.stairs(observed[:, row], edges, fill=True, color="0.75", label="observed")
        for n, (name, pred) in enumerate(predicted.items()):
            ax.stairs(
                np.asarray(pred, dtype=np.float64)[:, row],
                edges,
                color=colours[n % len(colours)],
                lw=1.3,
                label=f"{name} (predicted)",
            )
        ax.set_ylabel(labels[row], fontsize=8)
        if descriptions is not None and descriptions[row] != labels[row]:
            ax.set_title(descriptions[row], fontsize=8, loc="left")
        ax.margins(x=0)
    axes[0, 0].legend(fontsize=8, loc="upper right", frameon=False)
    last = axes[-1, 0]
    last.set_xlabel(f"{chrom} position (bp, {bin_size}-bp bins)")
    last.xaxis.set_major_formatter(lambda v, _: f"{int(v):,}")  # bp, thousands separated
    end = int(edges[-1])
    fig.suptitle(f"{title}: {locus(chrom, target_start, end)}".lstrip(": "), fontsize=10)
    fig.tight_layout()
    return save_png(fig, path)
