"""Options of ``gitool marginalize``."""

from __future__ import annotations

from dataclasses import dataclass

from gitool.config.base import Options, option

PAIR_SPACINGS = "0,5,10,20,50"  # default --spacings of a pair
PAIR_ORIENTATIONS = "++,+-,-+,--"  # default --orientations of a pair


@dataclass
class MarginalizeOptions(Options):
    """Everything ``gitool marginalize`` takes.

    ``motif`` and ``motif2``: a DNA sequence (ACGT; other IUPAC letters resolved to their
    first base in A, C, G, T order, N keeps the background's base), a built-in motif name
    (``gitool.interpret.motifs``) or a JASPAR/MEME file holding one motif, whose consensus
    (most likely base per position) is inserted. ``spacings`` and ``orientations`` are
    checked against the motifs and the model's input length once the model is loaded.
    """

    motif: str
    out: str
    motif2: str | None = None
    spacings: str | None = None  # None: 0,5,10,20,50 for a pair; a single motif takes none
    orientations: str | None = None  # None: ++,+-,-+,-- for a pair, + for a single motif
    n_backgrounds: int = option(64, ge=1, le=100_000)
    seed: int = option(0, ge=0)
    model: str | None = None  # None: the newest run under runs/
    genome: str | None = None  # None: the genome the run's store was built from
    head: str | None = None  # None: the model's only head
    tracks: str | None = None  # None: all tracks of the head
    batch_size: int | None = option(None, ge=1)  # None: 32 on CUDA, 8 on a CPU
    device: str | None = None  # None: cuda when available, else cpu
    which: str = "best"
    force: bool = False
