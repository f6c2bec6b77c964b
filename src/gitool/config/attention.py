"""Options of ``gitool attention``."""

from __future__ import annotations

from dataclasses import dataclass

from gitool.config.base import Options, option
from gitool.errors import InputError, opt

DTYPES = ("float32", "float16")


@dataclass
class AttentionOptions(Options):
    """Everything ``gitool attention`` takes (see :func:`gitool.interpret.attention_from_run`).

    At most one input: ``regions`` (with ``genome``), ``data`` (with ``split``, ``index``) or
    ``fasta``; none: windows of the run's own store. ``layer``/``head``: ``None`` exports all.
    """

    model: str | None = None  # None: the newest run under runs/
    out: str | None = None  # None: a new folder attention/ here
    regions: str | None = None
    genome: str | None = None
    data: str | None = None
    split: str = "test"
    index: str | None = None
    fasta: str | None = None
    layer: tuple[int, ...] | None = option(None, ge=1)
    head: tuple[int, ...] | None = option(None, ge=0)
    rollout: bool = False
    rollout_bp: int | None = option(None, ge=1)  # None: the last layer's token size
    full_max_tokens: int = option(1024, ge=0)
    dtype: str = "float32"
    track_out: str | None = None
    track_layer: int | None = option(None, ge=1)  # None: the last exported layer
    bedgraph: bool = False
    plot: bool = False
    batch_size: int = option(1, ge=1)
    device: str | None = None
    which: str = "best"
    force: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.dtype not in DTYPES:
            raise InputError(f"{self.dtype}: choose float32 or float16", field="dtype")
        if self.rollout_bp is not None and not self.rollout:
            raise InputError(f"needs {opt('rollout')}", field="rollout_bp")
        self._check_inputs()

    def _check_inputs(self) -> None:
        check_one_input(self)
        if self.track_out is not None and self.regions is None:
            raise InputError(
                f"needs genomic input: {opt('regions')} BED with {opt('genome')} FASTA",
                field="track_out",
            )
        if self.track_layer is not None and self.track_out is None:
            raise InputError(f"needs {opt('track_out')}", field="track_layer")
        if self.bedgraph and self.track_out is None:
            raise InputError(f"needs {opt('track_out')}", field="bedgraph")


def check_one_input(o) -> None:
    """At most one of ``o.regions`` (which needs ``o.genome``), ``o.data`` and ``o.fasta``
    (the inputs of ``gitool attention`` and ``gitool attribute``)."""
    given = [name for name in ("regions", "data", "fasta") if getattr(o, name) is not None]
    if len(given) > 1:
        raise InputError(
            f"give exactly one input: {opt('regions')} BED with {opt('genome')} FASTA, "
            f"{opt('data')} STORE (with {opt('split')} and {opt('index')}), or "
            f"{opt('fasta')} SEQS.fa; got {', '.join(opt(n) for n in given)}"
        )
    if o.regions is not None and o.genome is None:
        raise InputError(f"needs {opt('genome')} FASTA to read the sequences from",
                         field="regions")  # fmt: skip
