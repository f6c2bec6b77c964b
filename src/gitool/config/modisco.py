"""Options of ``gitool modisco``."""

from __future__ import annotations

from dataclasses import dataclass

from gitool.config.base import Options, option


@dataclass
class ModiscoOptions(Options):
    """Everything ``gitool modisco`` takes.

    ``attributions`` is the ``.npz`` that ``gitool attribute`` writes; ``out`` the output
    folder. The TF-MoDISco parameters (``sliding_window``, ``flank``, ``seqlet_fdr``,
    ``leiden_runs``, ``min_metacluster_size``, ``final_min_cluster_size``) keep
    modisco-lite's defaults; tests and quick looks lower ``leiden_runs``.
    """

    attributions: str
    out: str
    track: str | None = None  # None: the file's only track
    window: int | None = option(None, ge=10)  # None: each window's whole target span
    max_seqlets: int = option(2000, ge=1)  # per metacluster (positive, negative)
    motifs: str = "builtin"  # or a MEME/JASPAR file
    sliding_window: int = option(21, ge=4)
    flank: int = option(10, ge=0)
    seqlet_fdr: float = option(0.2, gt=0, lt=1)
    leiden_runs: int = option(50, ge=1)
    min_metacluster_size: int = option(100, ge=1)
    final_min_cluster_size: int = option(20, ge=1)
    trim_threshold: float = option(0.3, ge=0, lt=1)
    force: bool = False
