"""Options of ``gitool synth-motifs``."""

from __future__ import annotations

from dataclasses import dataclass

from gitool.config.base import Options, option
from gitool.errors import InputError, opt


@dataclass
class SynthMotifsOptions(Options):
    """Everything ``gitool synth-motifs`` takes (see
    :func:`gitool.interpret.synthetic.synth_motifs`); defaults follow the GLIFAC paper."""

    out: str = "motifs"
    sequences: int = option(100_000, ge=1)
    length: int = option(200, ge=1)  # bp
    motifs: str | None = None  # None: the 12 JASPAR 2024 motifs of the GLIFAC paper
    interactions: str | None = None  # None: the GLIFAC paper's four pairs
    min_instances: int = option(1, ge=1)
    max_instances: int = option(5, ge=1)
    split_fractions: str = "0.7,0.1,0.2"
    seed: int = option(0, ge=0)
    force: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.min_instances > self.max_instances:
            raise InputError(
                f"{self.min_instances} is more than {opt('max_instances')} "
                f"{self.max_instances}; give {opt('min_instances')} <= {opt('max_instances')}",
                field="min_instances",
            )
