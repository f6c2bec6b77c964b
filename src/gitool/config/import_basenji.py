"""Options of ``gitool import-basenji``."""

from __future__ import annotations

from dataclasses import dataclass

from gitool.config.base import Options, option

ORGANISMS = ("human", "mouse")


@dataclass
class ImportBasenjiOptions(Options):
    """Everything ``gitool import-basenji`` takes. Lengths as in ``build-dataset``: the
    defaults crop each release record to the Genomic Interpreter paper's BasenjiSmall."""

    source: str
    out: str = "data"
    genome: str | None = None  # human or mouse; None: the folder's only organism
    seq_length: int = option(17712, ge=1)
    target_length: int = option(80, ge=1)
    compression: str = "auto"  # auto, zlib, gzip or none
    workers: int | None = option(None, ge=1)  # None: all cores, at most one per file
    resume: bool = False
    force: bool = False


# Fields that do not change the store's bytes (left out of the manifest).
IMPORT_RUNTIME_ONLY = ("out", "workers", "resume", "force")
