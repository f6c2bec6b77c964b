"""PNG heatmaps of exported attention, after seed 000 Fig. 4 and appendix C.

- ``*_layers.png`` (Fig. 4a): the head-averaged map of every exported layer side by side
  (the reassembled token × token matrix; a windowed layer too large for it shows its first
  window).
- ``*_heads_L{k}.png`` (Fig. 4b): each head of one layer (default: the last swin layer).
- ``*_windows_L{k}.{block}.png`` (appendix C): every window of one windowed layer, head-averaged,
  ticks at the genomic start of the window's tokens (a shifted block's last window wraps
  around, so its ticks jump back to the sequence start).

Axes: query (rows, y) and key (columns, x) positions in bp. matplotlib is imported lazily
(Agg backend); files are written atomically (:func:`gitool.plots.save_png`).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from gitool.plots import pyplot, save_png

MAX_PANEL_WINDOWS = 16


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


def _heatmap(ax, matrix: np.ndarray, rows: np.ndarray, cols: np.ndarray, title: str) -> None:
    ordered = np.all(np.diff(rows) > 0) and np.all(np.diff(cols) > 0)
    if ordered and len(rows) > 1:
        step_r, step_c = rows[1] - rows[0], cols[1] - cols[0]
        extent = (cols[0], cols[-1] + step_c, rows[-1] + step_r, rows[0])
        ax.imshow(matrix, cmap="viridis", aspect="auto", extent=extent, interpolation="nearest")
    else:  # a wrapped window: slot axes with genomic tick labels
        ax.imshow(matrix, cmap="viridis", aspect="auto", interpolation="nearest")
        ticks = np.linspace(0, len(cols) - 1, min(5, len(cols))).astype(int)
        ax.set_xticks(ticks, [f"{cols[t]:,}" for t in ticks], fontsize=6)
        ax.set_yticks(ticks, [f"{rows[t]:,}" for t in ticks], fontsize=6)
    ax.set_title(title, fontsize=8)
    ax.tick_params(labelsize=6)
    ax.set_xlabel("key position (bp)", fontsize=7)
    ax.set_ylabel("query position (bp)", fontsize=7)


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
    """Write the three figures for the first ``windows`` windows of an export.

    Args:
        index_path: the export's ``index.json`` (or ``OUT.json``).
        windows: how many windows to plot.
        layer: the layer for the heads and per-window figures (default: the last exported
            windowed layer, else the last layer).
        out: folder for the PNGs (default: ``plots/`` beside the index).

    Returns:
        The PNG paths written.
    """
    plt = pyplot()
    index_path = Path(index_path)
    index = json.loads(index_path.read_text())
    folder = Path(out) if out else index_path.parent / "plots"
    written: list[Path] = []
    for entry in index["windows"][:windows]:
        arrays = _load(index_path, entry)
        records = entry["records"]
        if not records:
            continue
        stem = f"{entry['chrom']}_{entry['start']}-{entry['end']}".replace(":", "_")
        # Fig. 4a: layers side by side (one panel per record)
        fig, axes = plt.subplots(1, len(records), figsize=(2.6 * len(records), 2.6), squeeze=False)
        for ax, record in zip(axes[0], records, strict=True):
            matrix, rows, cols = _map(arrays, record["key"], record)
            _heatmap(ax, matrix, rows, cols, f"layer {record['layer']} {record['block']}\n"
                     f"{record['token_bp']} bp/token")  # fmt: skip
        fig.suptitle(f"{entry['name']}: head-averaged attention by layer", fontsize=9)
        fig.tight_layout()
        written.append(save_png(fig, folder / f"{stem}_layers.png"))
        # Fig. 4b: heads of one layer
        windowed = [r for r in records if r["windowed"]]
        if layer is not None:
            pick = [r for r in records if r["layer"] == layer] or records
        else:
            pick = windowed or records
        record = pick[-1]
        key = record["key"]
        weights = arrays[f"{key}/weights"]
        starts = arrays[f"{key}/token_start"]
        heads = record["heads"]
        fig, axes = plt.subplots(1, len(heads), figsize=(2.6 * len(heads), 2.6), squeeze=False)
        for h, (ax, head) in enumerate(zip(axes[0], heads, strict=True)):
            if not record["windowed"]:
                matrix, rows, cols = weights[h], starts, starts
            elif record["full"]:
                matrix, rows, cols = arrays[f"{key}/full"][h], starts, starts
            else:
                index = arrays[f"{key}/token_index"][0]
                valid = index >= 0
                matrix = weights[0, h][valid][:, valid]
                rows = cols = starts[index[valid]]
            _heatmap(ax, matrix, rows, cols, f"head {head}")
        fig.suptitle(
            f"{entry['name']}: layer {record['layer']} {record['block']} heads", fontsize=9
        )
        fig.tight_layout()
        written.append(save_png(fig, folder / f"{stem}_heads_{key}.png"))
        # appendix C: per-window view of a windowed layer
        if record["windowed"]:
            index = arrays[f"{key}/token_index"]
            mean = arrays[f"{key}/head_mean"]
            n = min(len(index), MAX_PANEL_WINDOWS)
            fig, axes = plt.subplots(1, n, figsize=(2.6 * n, 2.6), squeeze=False)
            for i, ax in enumerate(axes[0]):
                valid = index[i] >= 0
                slots = starts[index[i][valid]]
                title = f"window {i}" + (" (wraps)" if np.any(np.diff(slots) < 0) else "")
                _heatmap(ax, mean[i][valid][:, valid], slots, slots, title)
            fig.suptitle(
                f"{entry['name']}: layer {record['layer']} {record['block']}, per window",
                fontsize=9,
            )
            fig.tight_layout()
        written.append(save_png(fig, folder / f"{stem}_windows_{key}.png"))
    return written


def plot_interactions(result, k: int, path: str | Path) -> Path:
    """GLIFAC and local-attention maps at ``result.maps[k]``'s threshold, side by side (seed
    002 Fig. 2a/b): motif × motif when filters carry motif labels (ground-truth pairs
    outlined in white, scores in the titles, grey where no filter pair exists), else filter
    × filter."""
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
