"""Options of ``gitool evaluate``."""

from __future__ import annotations

from dataclasses import dataclass

from gitool.config.base import Options, option


@dataclass
class EvaluateOptions(Options):
    """Everything ``gitool evaluate`` takes."""

    model: str | None = None  # None: the newest run under runs/
    data: str | None = None  # None: the store the run was trained on
    split: str = "test"
    head: str | None = None  # None: the head trained on these tracks, else the only one
    batch_size: int | None = option(None, ge=1)  # None: 8 windows, 256 label sequences
    device: str | None = None  # None: cuda when available, else cpu
    out: str | None = None  # None: RUN/eval/SPLIT.tsv
    compare: tuple[str, ...] | None = None
    plot_window: int | None = option(None, ge=0)
    plot_tracks: str | None = None  # None: the first 8 tracks
    which: str = "best"
    force: bool = False
