"""The one matplotlib helper every figure goes through.

matplotlib is imported inside :func:`pyplot` (Agg backend, no display needed) so that
importing gitool stays light; figures are written through a temporary sibling + rename.
"""

from __future__ import annotations

from pathlib import Path

from gitool.files import staged_file


def pyplot():
    """``matplotlib.pyplot`` on the Agg backend (imported on first use: keeps gitool light)."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def save_png(fig, path: str | Path, dpi: int = 150) -> Path:
    """Write ``fig`` to ``path`` atomically and close it."""
    plt = pyplot()
    try:
        with staged_file(path) as tmp:
            fig.savefig(tmp, format="png", dpi=dpi, bbox_inches="tight")
    finally:
        plt.close(fig)
    return Path(path)
