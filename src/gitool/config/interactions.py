"""Options of ``gitool interactions``."""

from __future__ import annotations

from dataclasses import dataclass

from gitool.config.base import Options, option
from gitool.errors import InputError

RANDOM_PAIRS = ("auto", "sample", "distance", "expected", "none")


@dataclass
class InteractionsOptions(Options):
    """Everything ``gitool interactions`` takes (see
    :func:`gitool.interpret.interactions.interactions_from_run`)."""

    model: str
    data: str | None = None  # None: the store the run was trained on
    out: str = "interactions"
    split: str = "test"
    # the GLIFAC paper's 0.1; several thresholds come from one pass
    threshold: tuple[float, ...] = option((0.1,), ge=0, le=1)
    layer: int | None = option(None, ge=1)  # None: the model's last attention layer
    motifs: str | None = None  # None: the store's motifs.jaspar, else the 12 built-in ones
    # Untrained (Glorot-initialised) CAN filters against the 12 built-in motifs: median 0.53,
    # 1.7 % reach 0.7, 0.1 % reach 0.75 (768 filters of 24 models,
    # `experiments/motif_interactions/filter_null.py`). 0.7 keeps random labels rare while
    # labelling motif detectors that learned a motif only partly (0.70-0.75).
    min_similarity: float = option(0.7, gt=0, le=1)
    sequences: int | None = option(None, ge=1)  # None: all of the split
    batch_size: int | None = option(None, ge=1)  # None: 256 for can, 8 for swin/enformer
    device: str | None = None
    seed: int = option(0, ge=0)
    random_pairs: str = "auto"  # CAN: sample (the paper); swin, enformer: distance
    plot: bool = True
    which: str = "best"
    force: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.threshold:
            raise InputError("needs at least one value", field="threshold")
        self.threshold = tuple(float(t) for t in self.threshold)
        shown = [f"{t:g}" for t in self.threshold]  # as the output files name them
        if len(set(shown)) != len(shown):
            raise InputError(f"values repeat: {', '.join(shown)}", field="threshold")
        if self.random_pairs not in RANDOM_PAIRS:
            raise InputError(
                f"{self.random_pairs!r}: choose {', '.join(RANDOM_PAIRS)}", field="random_pairs"
            )
