"""Options of ``gitool build-dataset``."""

from __future__ import annotations

from dataclasses import dataclass

from gitool.config.base import Options, option


@dataclass
class BuildOptions(Options):
    """Everything ``gitool build-dataset`` takes. Lengths in bp unless named otherwise."""

    genome: str
    tracks: str
    out: str = "data"
    seq_length: int = option(17712, ge=1)
    bin_size: int = option(128, ge=1)
    target_length: int = option(80, ge=1)
    stride: int | None = option(None, ge=1)  # None: the target span, so targets do not overlap
    chroms: str | None = None  # None: primary chromosomes (see data.genome.select_chroms)
    max_n_frac: float = option(0.1, ge=0, le=1)
    blacklist: str | None = None
    max_blacklist_frac: float = option(0.0, ge=0, le=1)
    regions: str | None = None
    valid_chroms: str | None = None
    test_chroms: str | None = None
    split_fractions: str | None = None
    seed: int = option(0, ge=0)
    workers: int | None = option(None, ge=1)  # None: all cores
    force: bool = False


# BuildOptions fields that do not change the store's bytes (left out of the manifest).
BUILD_RUNTIME_ONLY = ("out", "workers", "force")
