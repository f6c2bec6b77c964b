"""Options of ``gitool predict``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from gitool.config.base import Options, option


@dataclass
class PredictOptions(Options):
    """Everything ``gitool predict`` takes.

    ``regions`` is a BED path or, from Python, ``(chrom, start, end)`` intervals. ``shifts``
    are checked against the model's bin size once the model is loaded (each must be smaller).
    """

    regions: str | Sequence[tuple[str, int, int]]
    out: str
    model: str | None = None  # None: the newest run under runs/
    genome: str | None = None  # None: the genome the run's store was built from
    head: str | None = None  # None: the model's only head
    tracks: str | None = None  # None: all tracks of the head
    batch_size: int | None = option(None, ge=1)  # None: 32 on CUDA, 8 on a CPU
    device: str | None = None  # None: cuda when available, else cpu
    rc: bool = False
    shifts: str = "0"
    untransform: bool = False
    bedgraph: bool = False
    which: str = "best"
    force: bool = False
