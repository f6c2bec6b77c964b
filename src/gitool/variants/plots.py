"""The PNG of an ISM map: one heat map per track (rows A, C, G, T; columns the region's
bases; colour the score of changing that base to that letter, zero at the reference)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gitool.plots import pyplot, save_png

MAX_PANELS = 6
"""Tracks drawn at most (the ``.npz`` holds them all)."""


def ism_figure(maps, path: str | Path) -> Path:
    """Draw the first statistic of :class:`gitool.variants.ism.IsmMaps` ``maps`` for its
    first :data:`MAX_PANELS` tracks and write ``path``."""
    plt = pyplot()
    stat = maps.stats[0]
    grid = maps.maps[stat]
    n = min(len(maps.identifiers), MAX_PANELS)
    length = grid.shape[1]
    fig, axes = plt.subplots(n, 1, figsize=(min(4 + length / 25, 24), 1.2 + 1.1 * n), squeeze=False)
    region = maps.region
    for k, ax in enumerate(axes[:, 0]):
        values = grid[k].T  # (4, L)
        finite = np.abs(values[np.isfinite(values)])
        limit = float(finite.max()) if finite.size and finite.max() > 0 else 1.0
        image = ax.imshow(
            values, aspect="auto", cmap="RdBu_r", vmin=-limit, vmax=limit,
            interpolation="nearest", extent=(region.start + 0.5, region.end + 0.5, 3.5, -0.5),
        )  # fmt: skip
        ax.set_yticks(range(4), list("ACGT"))
        ax.set_ylabel(maps.identifiers[k], rotation=0, ha="right", va="center")
        fig.colorbar(image, ax=ax, pad=0.01, label=stat)
        if k < n - 1:
            ax.set_xticklabels([])
    axes[-1, 0].set_xlabel(f"{region.chrom} position (1-based)")
    more = len(maps.identifiers) - n
    title = f"in-silico saturation mutagenesis of {region}: {stat} (alt − ref)"
    if more > 0:
        title += f"; {more} more track(s) in the .npz"
    axes[0, 0].set_title(title)
    return save_png(fig, path)
