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
    # None: MAX_N_FRAC, or no N filter with ``windows`` (see max_n_frac_of)
    max_n_frac: float | None = option(None, ge=0, le=1)
    blacklist: str | None = None
    max_blacklist_frac: float = option(0.0, ge=0, le=1)
    regions: str | None = None
    valid_chroms: str | None = None
    test_chroms: str | None = None
    split_fractions: str | None = None
    # A BED of the exact windows (Basenji's sequences.bed), resized to seq_length around
    # their centres, with their split labels; excludes the options that choose windows.
    windows: str | None = None
    split_column: int | None = option(None, ge=4)  # None: DEFAULT_SPLIT_COLUMN (4)
    seed: int = option(0, ge=0)
    workers: int | None = option(None, ge=1)  # None: all cores
    force: bool = False


MAX_N_FRAC = 0.1  # the N filter of tiled windows


def max_n_frac_of(options: BuildOptions) -> float:
    """The N filter a build applies: the option when given, else :data:`MAX_N_FRAC`, or 1
    (none) with ``windows`` (the BED's windows are taken as they are)."""
    if options.max_n_frac is not None:
        return options.max_n_frac
    return 1.0 if options.windows else MAX_N_FRAC


# BuildOptions fields that do not change the store's bytes (left out of the manifest).
BUILD_RUNTIME_ONLY = ("out", "workers", "force")
