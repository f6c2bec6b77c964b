"""Options of ``gitool attribute``."""

from __future__ import annotations

from dataclasses import dataclass

from gitool.config.attention import check_one_input
from gitool.config.base import Options, option
from gitool.errors import InputError, opt

METHODS = ("saliency", "integrated-gradients", "deepliftshap", "ism")
BASELINES = ("zeros", "uniform")


@dataclass
class AttributeOptions(Options):
    """Everything ``gitool attribute`` takes (see :func:`gitool.attribution.attribute.attribute`).

    At most one input, as ``gitool attention`` takes them: ``regions`` (with ``genome``),
    ``data`` (with ``split``, ``index``) or ``fasta``; none: windows of the run's own store.
    """

    out: str
    method: str = "integrated-gradients"
    model: str | None = None  # None: the newest run under runs/
    regions: str | None = None
    genome: str | None = None
    data: str | None = None
    split: str = "test"
    index: str | None = None
    fasta: str | None = None
    head: str | None = None  # None: the model's only head
    tracks: str | None = None  # None: all tracks of the head (at most 8)
    bins: str | None = None  # None: each window's own bins
    steps: int = option(32, ge=1, le=1024)  # integrated-gradients
    baseline: str = "zeros"  # integrated-gradients
    shuffles: int = option(20, ge=1, le=1000)  # deepliftshap references
    batch_size: int = option(8, ge=1)
    device: str | None = None
    seed: int = option(0, ge=0)
    bigwig: str | None = None
    logos: int = option(0, ge=0, le=50)
    logos_out: str | None = None  # None: OUT-stem.logos.png
    which: str = "best"
    force: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.method not in METHODS:
            raise InputError(f"{self.method!r}: choose from {', '.join(METHODS)}", field="method")
        if self.baseline not in BASELINES:
            raise InputError(
                f"{self.baseline!r}: choose zeros (all N) or uniform (0.25 at each known base, 0 at N)",
                field="baseline",
            )
        check_one_input(self)
        if self.bigwig is not None and self.regions is None:
            raise InputError(
                f"needs genome regions: {opt('regions')} BED with {opt('genome')} FASTA",
                field="bigwig",
            )
