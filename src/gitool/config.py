"""Option dataclasses shared by the CLI, the library and YAML configs.

Library functions take these; the CLI fills them from its flags.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class BuildOptions:
    """Everything ``gitool build-dataset`` takes. Lengths in bp unless named otherwise."""

    genome: str
    tracks: str
    out: str = "data"
    seq_length: int = 17712
    bin_size: int = 128
    target_length: int = 80
    stride: int | None = None  # None: the target span, so targets do not overlap
    chroms: str | None = None  # None: primary chromosomes (see data.genome.select_chroms)
    max_n_frac: float = 0.1
    blacklist: str | None = None
    max_blacklist_frac: float = 0.0
    regions: str | None = None
    valid_chroms: str | None = None
    test_chroms: str | None = None
    split_fractions: str | None = None
    seed: int = 0
    workers: int | None = None  # None: all cores
    force: bool = False


# BuildOptions fields that do not change the store's bytes (left out of the manifest).
BUILD_RUNTIME_ONLY = ("out", "workers", "force")
