"""Options of ``gitool variants``."""

from __future__ import annotations

from dataclasses import dataclass

from gitool.config.base import Options, option


@dataclass
class VariantOptions(Options):
    """Everything ``gitool variants`` takes: a VCF to score, or (``ism``) a region whose
    every base is mutated. ``shifts`` are checked against the model's bin size once the
    model is loaded."""

    out: str
    variants: str | None = None  # a VCF; exactly one of variants and ism
    ism: str | None = None  # CHROM:START-END, 1-based inclusive
    model: str | None = None  # None: the newest run under runs/
    genome: str | None = None  # None: the genome the run's store was built from
    head: str | None = None  # None: the model's only head
    tracks: str | None = None  # None: all tracks of the head
    stats: str = "sum"
    pseudocount: float = option(1.0, ge=0)
    rc: bool = False
    shifts: str = "0"
    batch_size: int | None = option(
        None, ge=2
    )  # None: 32 on CUDA, 8 on a CPU, at least 2 per member (a reference and its alternate)
    device: str | None = None  # None: cuda when available, else cpu
    bf16: bool = False  # bf16 autocast on CUDA (faster; rounds away small effects)
    untransform: bool = False
    allow_ref_mismatch: bool = False
    long: bool = False
    profiles: str | None = None  # comma-separated variant IDs
    which: str = "best"
    force: bool = False
