"""Option definitions shared by several commands (one help text each, as deepTools' parent
parsers share theirs). A command uses them as parameter annotations::

    def predict_command(model: options.Model, device: options.Device = None): ...
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from gitool.config.base import Options


def ranged(options: type[Options], name: str, text: str) -> str:
    """``text`` (an option's help) followed by the range its options dataclass allows."""
    allowed = options.range_of(name)
    if allowed is None:
        raise KeyError(f"{options.__name__}.{name} has no range")
    return f"{text} Range: {allowed}."


RUN_HELP = (
    "Run folder made by `gitool train` (uses its checkpoints/best.pt; see --which) or a "
    "checkpoint .pt file."
)

Model = Annotated[Path, typer.Option("--model", "-m", help=RUN_HELP)]
"""A trained run (or checkpoint) given as ``--model/-m``."""

NewestModel = Annotated[
    Path | None,
    typer.Option(
        "--model",
        "-m",
        help=RUN_HELP
        + " Default: the newest run under runs/ (by the time of its checkpoints/best.pt or "
        "last.pt).",
    ),
]
"""``--model/-m`` that may be left out: the command then uses the newest run under runs/."""

Device = Annotated[
    str | None,
    typer.Option(
        help="cpu, cuda or cuda:N. Default: cuda when available, else cpu. Predictions on a "
        "GPU run under bf16 autocast unless the command says otherwise."
    ),
]

Which = Annotated[
    str,
    typer.Option(
        help="Checkpoint of a run folder: best (best valid score; falls back to last) or last."
    ),
]

Split = Annotated[str, typer.Option(help="Split of the store to read: train, valid or test.")]

Head = Annotated[str | None, typer.Option(help="Model head. Default: the model's only head.")]
"""``--head`` of the commands that run a trained coverage model on sequences."""

RecordedGenome = Annotated[
    Path | None,
    typer.Option(
        "--genome",
        "-g",
        help="Genome FASTA (plain or bgzip) of the assembly the model was trained on. Default: "
        "the genome the run's store was built from (recorded in its manifest), if it is still "
        "there with the chromosome sizes recorded.",
    ),
]
"""``--genome/-g`` that may be left out: the genome the run's store recorded."""
