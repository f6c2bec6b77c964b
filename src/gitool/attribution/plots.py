"""Sequence logos of contributions (logomaker): the windows with the largest contributions,
each drawn over the stretch where they concentrate."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gitool.data.windows import locus
from gitool.plots import pyplot, save_png

LOGO_BP = 60
"""Width of each logo: the stretch with the largest summed |contribution| of its window."""


def top_stretches(observed: np.ndarray, n: int, width: int = LOGO_BP) -> list[tuple[int, int]]:
    """``(window, start)`` of the ``n`` windows with the largest summed |contribution|
    (``observed``: ``(N, L)``), each with the ``width``-bp stretch holding the most of it."""
    magnitude = np.nan_to_num(np.abs(observed))
    width = min(width, magnitude.shape[1])
    order = np.argsort(-magnitude.sum(1), kind="stable")[:n]
    kernel = np.ones(width)
    out = []
    for i in order:
        rolling = np.convolve(magnitude[i], kernel, mode="valid")
        out.append((int(i), int(np.argmax(rolling))))
    return out


def logos_figure(result, n: int, path: str | Path, track: int = 0) -> Path:
    """Logos of the observed contributions toward ``track`` of the top ``n`` windows of an
    :class:`gitool.attribution.attribute.Attributions`."""
    import logomaker
    import pandas as pd

    plt = pyplot()
    observed = result.observed[:, track]  # (N, L)
    chosen = top_stretches(observed, n)
    width = min(LOGO_BP, observed.shape[1])
    fig, axes = plt.subplots(len(chosen), 1, figsize=(12, 1.6 * len(chosen)), squeeze=False)
    for ax, (i, start) in zip(axes[:, 0], chosen, strict=True):
        codes = result.sequence[i, start : start + width]
        values = np.zeros((width, 4), dtype=np.float32)
        known = codes < 4
        values[np.flatnonzero(known), codes[known]] = np.nan_to_num(
            observed[i, start : start + width][known]
        )
        frame = pd.DataFrame(values, columns=list("ACGT"))
        logomaker.Logo(frame, ax=ax, color_scheme="classic")
        window = result.windows[i]
        ax.set_title(
            f"{window.name}: {locus(window.chrom, window.start + start, window.start + start + width)} "
            f"({result.method}, {result.tracks[track]})",
            fontsize=9,
        )
        ax.set_xticks([])
    return save_png(fig, path)
