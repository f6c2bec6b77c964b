"""PNG heatmaps of exported attention, after Genomic Interpreter Fig. 4 and appendix C.

- ``*_layers.png`` (Fig. 4a): the head-averaged map of every exported layer (the
  reassembled token × token matrix; a windowed layer too large for it shows its first window).
- ``*_heads_L{k}.{block}.png`` (Fig. 4b): each head of one layer (default: the last windowed
  layer, else the last layer).
- ``*_windows_L{k}.{block}.png`` (appendix C): every window of that layer, head-averaged (a
  shifted block's last window wraps around, so its ticks jump back to the sequence start).

Panels are square, laid out in a grid of at most :data:`MAX_COLUMNS` columns, each with its
own colour bar (attention weight; the scale differs between panels). Axes are genome
coordinates on the window's chromosome (kb, or bp for windows under 2 kb): query tokens
down the rows (y), key tokens along the columns (x). :func:`layers_figure`,
:func:`heads_figure` and :func:`windows_figure` build the figures, :func:`plot_export`
writes them; :func:`plot_interactions` draws GLIFAC's motif × motif maps. matplotlib is
imported on first use (:func:`gitool.plots.pyplot`).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from gitool.plots import pyplot, save_png

MAX_PANEL_WINDOWS = 16
MAX_COLUMNS = 5
PANEL_IN = (3.6, 3.3)  # inches per grid cell (width: the square map plus its colour bar)
KB_FROM = 2000  # windows spanning at least this many bp get kb axes


def _map(arrays: dict, key: str, record: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(head-mean matrix, row bp starts, column bp starts) of one record for a layer panel."""
    starts = arrays[f"{key}/token_start"]
    if not record["windowed"]:
        return arrays[f"{key}/head_mean"], starts, starts
    if record["full"]:
        return arrays[f"{key}/full"].mean(0), starts, starts
    index = arrays[f"{key}/token_index"][0]
    slots = starts[index[index >= 0]]
    window = arrays[f"{key}/head_mean"][0][index >= 0][:, index >= 0]
    return window, slots, slots


def _head_map(arrays: dict, record: dict, h: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(matrix, row bp starts, column bp starts) of head ``h`` (its position in the record)."""
    key = record["key"]
    starts = arrays[f"{key}/token_start"]
    if not record["windowed"]:
        return arrays[f"{key}/weights"][h], starts, starts
    if record["full"]:
        return arrays[f"{key}/full"][h], starts, starts
    index = arrays[f"{key}/token_index"][0]
    valid = index >= 0
    slots = starts[index[valid]]
    return arrays[f"{key}/weights"][0, h][valid][:, valid], slots, slots


def _labels(positions, scale: int) -> list[str]:
    """Tick labels of bp ``positions`` in units of ``scale`` bp, as few decimals as exact."""
    values = np.asarray(positions, dtype=np.float64) / scale
    decimals = next(
        (d for d in range(4) if np.allclose(np.round(values, d), values, rtol=0, atol=1e-6)), 3
    )
    return [f"{v:,.{decimals}f}" for v in values]


def _heatmap(fig, ax, matrix, rows, cols, title: str, chrom: str, span: int) -> None:
    """``matrix`` as a square panel with genome-coordinate axes and its own colour bar.

    ``rows``/``cols`` are the bp starts of the query/key tokens; ``span`` the window's length
    (picks kb or bp for the axes)."""
    scale, unit = (1000, "kb") if span >= KB_FROM else (1, "bp")
    ordered = len(rows) > 1 and np.all(np.diff(rows) > 0) and np.all(np.diff(cols) > 0)
    if ordered:
        step_r, step_c = rows[1] - rows[0], cols[1] - cols[0]
        extent = (cols[0], cols[-1] + step_c, rows[-1] + step_r, rows[0])
        image = ax.imshow(
            matrix, cmap="viridis", aspect="auto", extent=extent, interpolation="nearest"
        )
        ax.locator_params(nbins=4)
        for axis, (lo, hi) in ((ax.xaxis, extent[:2]), (ax.yaxis, extent[:1:-1])):
            ticks = [t for t in axis.get_majorticklocs() if lo <= t <= hi]
            axis.set_ticks(ticks, _labels(ticks, scale))
    else:  # a wrapped window: slot axes with genomic tick labels
        image = ax.imshow(matrix, cmap="viridis", aspect="auto", interpolation="nearest")
        ticks = np.linspace(0, len(cols) - 1, min(4, len(cols))).astype(int)
        ax.set_xticks(ticks, _labels(cols[ticks], scale))
        ax.set_yticks(ticks, _labels(rows[ticks], scale))
    ax.set_box_aspect(1)
    ax.tick_params(labelsize=7)
    ax.set_title(title, fontsize=9)
    ax.set_xlabel(f"key position, {chrom} ({unit})", fontsize=8)
    ax.set_ylabel(f"query position, {chrom} ({unit})", fontsize=8)
    bar = fig.colorbar(image, ax=ax, fraction=0.046, pad=0.03)
    bar.ax.tick_params(labelsize=7)
    bar.set_label("attention weight", fontsize=7)


def _grid(n: int, title: str):
    """A figure of ``n`` panels, at most :data:`MAX_COLUMNS` to a row, about square overall."""
    plt = pyplot()
    columns = min(MAX_COLUMNS, math.ceil(math.sqrt(n)))
    rows = math.ceil(n / columns)
    fig, axes = plt.subplots(
        rows,
        columns,
        figsize=(PANEL_IN[0] * columns, PANEL_IN[1] * rows + 0.5),
        squeeze=False,
        layout="constrained",
    )
    for ax in axes.flat[n:]:
        fig.delaxes(ax)
    fig.suptitle(title, fontsize=11)
    return fig, list(axes.flat[:n])


def _where(entry: dict) -> str:
    return f"{entry['name']} ({entry['chrom']}:{entry['start']:,}-{entry['end']:,})"


def layers_figure(entry: dict, arrays: dict[str, np.ndarray]):
    """Fig. 4a: the head-averaged attention of every exported layer of one window.

    Args:
        entry: the window's entry in the export's index (``name``, ``chrom``, ``start``,
            ``end``, ``records``).
        arrays: the window's arrays, keyed ``{record key}/{array}``.

    Returns:
        The matplotlib Figure (one panel and one colour bar per record).
    """
    records = entry["records"]
    fig, axes = _grid(
        len(records), f"{_where(entry)}: head-averaged attention by layer (colour scale per panel)"
    )
    span = entry["end"] - entry["start"]
    for ax, record in zip(axes, records, strict=True):
        matrix, rows, cols = _map(arrays, record["key"], record)
        title = f"layer {record['layer']} {record['block']}, {record['token_bp']:,} bp/token"
        if record["windowed"] and not record["full"]:
            title += f"\nwindow 0 of {record['n_windows']}"
        _heatmap(fig, ax, matrix, rows, cols, title, entry["chrom"], span)
    return fig


def heads_figure(entry: dict, arrays: dict[str, np.ndarray], record: dict):
    """Fig. 4b: every exported head of ``record`` (one of ``entry['records']``)."""
    where = "" if not record["windowed"] or record["full"] else ", window 0"
    fig, axes = _grid(
        len(record["heads"]),
        f"{_where(entry)}: layer {record['layer']} {record['block']}, each head{where}",
    )
    span = entry["end"] - entry["start"]
    for h, (ax, head) in enumerate(zip(axes, record["heads"], strict=True)):
        matrix, rows, cols = _head_map(arrays, record, h)
        _heatmap(fig, ax, matrix, rows, cols, f"head {head}", entry["chrom"], span)
    return fig


def windows_figure(entry: dict, arrays: dict[str, np.ndarray], record: dict):
    """Appendix C: the first :data:`MAX_PANEL_WINDOWS` windows of a windowed ``record``,
    head-averaged."""
    key = record["key"]
    index = arrays[f"{key}/token_index"]
    mean = arrays[f"{key}/head_mean"]
    starts = arrays[f"{key}/token_start"]
    n = min(len(index), MAX_PANEL_WINDOWS)
    shown = f"{n} of {len(index)} windows" if n < len(index) else "each window"
    fig, axes = _grid(
        n, f"{_where(entry)}: layer {record['layer']} {record['block']}, {shown}, head mean"
    )
    span = entry["end"] - entry["start"]
    for i, ax in enumerate(axes):
        valid = index[i] >= 0
        slots = starts[index[i][valid]]
        title = f"window {i}" + (" (wraps around)" if np.any(np.diff(slots) < 0) else "")
        _heatmap(fig, ax, mean[i][valid][:, valid], slots, slots, title, entry["chrom"], span)
    return fig


def pick_record(records: list[dict], layer: int | None = None) -> dict:
    """The record the heads and windows figures show: the last of ``layer``'s (when given
    and exported), else the last windowed one, else the last."""
    if layer is not None:
        pick = [r for r in records if r["layer"] == layer] or records
    else:
        pick = [r for r in records if r["windowed"]] or records
    return pick[-1]


def _load(index_path: Path, entry: dict) -> dict[str, np.ndarray]:
    prefix = entry["prefix"]
    with np.load(index_path.parent / entry["file"]) as data:
        return {k[len(prefix) :]: data[k] for k in data.files if k.startswith(prefix)}


def plot_export(
    index_path: str | Path,
    windows: int = 1,
    layer: int | None = None,
    out: str | Path | None = None,
) -> list[Path]:
    """Write the figures for the first ``windows`` windows of an export.

    Args:
        index_path: the export's ``index.json`` (or ``OUT.json``).
        windows: how many windows to plot.
        layer: the layer for the heads and per-window figures (default: the last exported
            windowed layer, else the last layer).
        out: folder for the PNGs (default: ``plots/`` beside the index).

    Returns:
        The PNG paths written: per window the layers and heads figures, and the per-window
        figure when the picked layer is windowed.
    """
    index_path = Path(index_path)
    index = json.loads(index_path.read_text())
    folder = Path(out) if out else index_path.parent / "plots"
    written: list[Path] = []
    for entry in index["windows"][:windows]:
        if not entry["records"]:
            continue
        arrays = _load(index_path, entry)
        record = pick_record(entry["records"], layer)
        names = plot_names(entry["chrom"], entry["start"], entry["end"], entry["records"], layer)
        figures = [layers_figure(entry, arrays), heads_figure(entry, arrays, record)]
        if record["windowed"]:
            figures.append(windows_figure(entry, arrays, record))
        for fig, name in zip(figures, names, strict=True):
            written.append(save_png(fig, folder / name))
    return written


def plot_names(
    chrom: str, start: int, end: int, records: list[dict], layer: int | None = None
) -> list[str]:
    """The PNG names :func:`plot_export` gives one window's figures (layers, heads and, for
    a windowed layer, windows), from the window's span and its records (``key``,
    ``layer``, ``windowed``), so that they can be claimed before the export runs."""
    if not records:
        return []
    stem = f"{chrom}_{start}-{end}".replace(":", "_")
    record = pick_record(records, layer)
    names = [f"{stem}_layers.png", f"{stem}_heads_{record['key']}.png"]
    if record["windowed"]:
        names.append(f"{stem}_windows_{record['key']}.png")
    return names


def plot_interactions(result, k: int, path: str | Path) -> Path:
    """GLIFAC and local-attention maps at ``result.maps[k]``'s threshold, side by side (the
    GLIFAC paper's Fig. 2a/b), each with its colour bar: motif × motif when filters carry
    motif labels (ground-truth pairs outlined in white, scores in the titles, grey where no
    filter pair exists), else filter × filter."""
    plt = pyplot()
    maps = result.maps[k]
    if result.glifac_motifs:
        panels = [("GLIFAC", result.glifac_motifs[k]), ("local attention", result.local_motifs[k])]
        names = result.motif_names
    else:
        panels = [("GLIFAC", maps.glifac), ("local attention", maps.local)]
        names = list(result.filters["filter"])
    scores = {}
    if result.scores is not None:
        rows = result.scores[
            (result.scores["threshold"] == maps.threshold) & (result.scores["level"] == "motif")
        ]
        scores = {r.method: r for r in rows.itertuples()}
    fig, axes = plt.subplots(1, 2, figsize=(11, 5))
    for ax, (title, matrix), method in zip(axes, panels, ("glifac", "local"), strict=True):
        # grey: no value (a motif without a labelled filter, the diagonal)
        shown = np.ma.masked_invalid(np.abs(np.asarray(matrix, dtype=float)))
        cmap = plt.get_cmap("viridis").with_extremes(bad="lightgrey")
        image = ax.imshow(shown, cmap=cmap, interpolation="nearest")
        fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04,
                     label="|correlation|" if method == "glifac" else "active-pair count")  # fmt: skip
        for a, b in result.truth if result.glifac_motifs else ():
            for r, c in ((a, b), (b, a)):
                ax.add_patch(
                    plt.Rectangle((c - 0.5, r - 0.5), 1, 1, fill=False, ec="white", lw=1.5)
                )
        ticks = np.arange(len(names))
        small = 7 if len(names) <= 40 else 4
        ax.set_xticks(ticks, names, rotation=90, fontsize=small)
        ax.set_yticks(ticks, names, fontsize=small)
        if method in scores:
            s = scores[method]
            title += f"\nAUROC {s.auroc:.2f}  AUPR {s.aupr:.2f}  SNR {s.snr:.2f}"
        ax.set_title(f"{title} (threshold {maps.threshold:g})", fontsize=9)
    fig.tight_layout()
    return save_png(fig, path)
