"""Models for prediction and variant tests: a tiny random ``cnn-maxpool`` saved as a run
folder, and a model whose output is known from the FASTA alone (bin ``j`` counts the A,
C, G and T of the ``j``-th bin of the target span)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from gitool.data.tracks import read_tracks
from gitool.data.windows import Geometry
from gitool.models.registry import create_model
from gitool.runs import save_checkpoint

BASES = "ACGT"
# 400 bp → 25 bins of 8 bp (200-bp target span, 100 bp of context each side).
TINY_MODEL = dict(seq_length=400, target_length=25, bin_size=8, stem_channels=8, channels=16,
                  divisible_by=4, heads={"tiny": 4})  # fmt: skip


@dataclass
class CountsConfig:
    seq_length: int = 400
    target_length: int = 25
    bin_size: int = 8
    heads: dict = field(default_factory=lambda: {"bases": 4})


class BaseCounts(nn.Module):
    """Bin ``j`` = counts of A, C, G, T in the ``j``-th bin of the target span.

    Its output for a genome bin is known from the FASTA alone, so any offset in the tiling
    shows (Basenji #221), and it is reverse-complement equivariant by construction when
    the tracks are paired A↔T, C↔G: counting the reverse complement's bins gives the same
    bins reversed with complementary bases.
    """

    def __init__(self, config: CountsConfig):
        super().__init__()
        self.config = config
        self.one = nn.Parameter(torch.ones(()))  # a parameter, so the model has a device

    def forward(self, x: torch.Tensor, head: str | None = None) -> torch.Tensor:
        g = Geometry(self.config.seq_length, self.config.bin_size, self.config.target_length)
        target = x[:, g.context_left : g.context_left + g.target_span]  # (B, span, 4)
        bins = target.reshape(len(x), g.target_length, g.bin_size, 4).sum(2)  # (B, T, 4)
        return bins * self.one


def counts_manifest(stranded: bool = True) -> dict:
    pairs = [3, 2, 1, 0] if stranded else [0, 1, 2, 3]
    rows = [{"index": i, "identifier": b, "strand_pair": pairs[i]} for i, b in enumerate(BASES)]
    return {"tracks": rows}


def tiny_manifest(tiny, **geometry) -> dict:
    rows = [t.as_row() for t in read_tracks(tiny["tracks"])]  # plus ↔ minus stranded
    values = {"seq_length": 400, "bin_size": 8, "target_length": 25, **geometry}
    return {**values, "n_tracks": len(rows), "tracks": rows, "transform": {"version": 1}}


def make_run(tiny, seed: int = 0) -> tuple[nn.Module, Path]:
    """A run folder with a hand-made checkpoint of a tiny random ``cnn-maxpool``."""
    torch.manual_seed(seed)
    model = create_model("cnn-maxpool", **TINY_MODEL)
    folder = tiny["dir"] / f"run{seed}"
    save_checkpoint(
        folder / "checkpoints" / "best.pt",
        {"model_name": "cnn-maxpool", "preset": "cnn-maxpool",
         "model_config": dataclasses.asdict(model.config), "model": model.state_dict(),
         "step": 0, "data": [{"path": "store", "head": "tiny", "manifest": tiny_manifest(tiny)}]},
    )  # fmt: skip
    return model.eval(), folder
