"""The model inputs whose attention is exported: windows of a store split, of BED regions
tiled as ``gitool predict`` tiles them, or of FASTA sequences."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from torch import nn

from gitool.data.genome import Genome
from gitool.data.labels import LabelStore, open_any_store
from gitool.data.windows import Geometry
from gitool.errors import InputError, opt
from gitool.predict.tiling import SequenceReader, read_regions, sequence_interval, tile_regions


@dataclass
class AttentionWindow:
    """One model input: ``codes`` uint8 ``(seq_length,)`` (A=0 C=1 G=2 T=3 N=4) taken from
    ``chrom:start-(start + seq_length)`` (``chrom`` is the sequence name for FASTA input,
    ``start`` 0). ``target_start``/``target_end``: the output bins' span (for tracks)."""

    name: str
    chrom: str
    start: int
    codes: np.ndarray
    target_start: int | None = None
    target_end: int | None = None


def windows_from_fasta(path: str | Path, seq_length: int) -> Iterator[AttentionWindow]:
    """Each FASTA record cut into consecutive windows of ``seq_length`` bp (a remainder shorter
    than ``seq_length`` is dropped; a record shorter than it is an error)."""
    genome = Genome(path, label="fasta")
    short = [(n, s) for n, s in genome.sizes.items() if s < seq_length]
    if short:
        name, size = short[0]
        genome.close()
        raise InputError(
            f"{path}: sequence {name!r} is {size:,} bp, too short for the model's "
            f"{seq_length:,}-bp input; give sequences of at least {seq_length:,} bp",
            field="fasta",
        )
    try:
        for name, size in genome.sizes.items():
            for start in range(0, size - seq_length + 1, seq_length):
                codes = genome.codes(name, start, start + seq_length)
                yield AttentionWindow(f"{name}:{start}-{start + seq_length}", name, start, codes)
    finally:
        genome.close()


def windows_from_regions(
    model: nn.Module, regions: str | Path, genome: str | Path
) -> Iterator[AttentionWindow]:
    """Model windows tiling the target spans of BED regions (as ``gitool predict`` tiles them:
    the input adds the model's context around each target span; N beyond chromosome ends)."""
    config = model.config
    bin_size = getattr(config, "bin_size", None)
    if not bin_size:
        raise InputError(
            f"a {type(model).__name__} model has no output bins to tile regions with; use "
            f"{opt('fasta')}",
            field="regions",
        )
    geometry = Geometry(int(config.seq_length), int(bin_size), int(config.target_length))
    fasta = Genome(genome)
    reader = SequenceReader(fasta)
    try:
        for window in tile_regions(read_regions(regions, fasta.sizes, geometry.bin_size), geometry):
            start, end = sequence_interval(window.target_start, geometry)
            codes = np.array(reader.codes(window.chrom, start, end))
            yield AttentionWindow(
                f"{window.chrom}:{window.target_start}-{window.end}",
                window.chrom,
                start,
                codes,
                window.target_start,
                window.end,
            )
    finally:
        fasta.close()


def windows_from_store(
    store: str | Path, split: str, indices: Sequence[int] | None
) -> Iterator[AttentionWindow]:
    """Windows ``indices`` (default: all) of a dataset split, with their coordinates (label
    stores: sequence ``SPLIT:i``, bp from 0)."""
    opened = open_any_store(store)
    count = opened.count(split)
    indices = list(range(count)) if indices is None else list(indices)
    bad = [i for i in indices if not 0 <= i < count]
    if bad:
        raise InputError(
            f"{bad[0]} is out of range; split {split!r} of {store} has {count} "
            f"windows (0-{count - 1})",
            field="index",
        )
    sequences = opened.sequences(split)
    if isinstance(opened, LabelStore):
        for i in indices:
            yield AttentionWindow(f"{split}:{i}", f"{split}:{i}", 0, np.asarray(sequences[i]))
        return
    table = opened.windows(split)
    for i in indices:
        row = table.iloc[i]
        yield AttentionWindow(
            f"{split}:{i}",
            str(row.chrom),
            int(row.start),
            np.asarray(sequences[i]),
            int(row.target_start),
            int(row.target_end),
        )


def parse_indices(text: str | None) -> list[int] | None:
    """``"0,3,5-7"`` → ``[0, 3, 5, 6, 7]`` (``None``: all)."""
    if text is None or not text.strip():
        return None
    out: list[int] = []
    try:
        for part in text.split(","):
            lo, _, hi = part.strip().partition("-")
            if hi and int(hi) < int(lo):
                raise InputError(
                    f"{text!r}: the range {part.strip()} runs backwards", field="index"
                )
            out.extend(range(int(lo), int(hi) + 1) if hi else [int(lo)])
    except ValueError:
        raise InputError(
            f"{text!r}: give comma-separated window indices or ranges, e.g. 0,3,5-7",
            field="index",
        ) from None
    return out
