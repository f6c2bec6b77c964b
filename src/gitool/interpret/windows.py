"""The model inputs that ``gitool attention`` and ``gitool attribute`` look inside: windows of a
store split, of BED regions tiled as ``gitool predict`` tiles them, or of FASTA sequences;
and which of them a command's options choose."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from torch import nn

from gitool.console import info
from gitool.data.genome import Genome
from gitool.data.labels import LabelStore, open_any_store
from gitool.data.store import store_inputs
from gitool.data.windows import Geometry, locus
from gitool.errors import InputError, opt
from gitool.interpret.layers import model_seq_length
from gitool.predict.tiling import SequenceReader, read_regions, sequence_interval, tile_regions
from gitool.runs import shown_path, training_store


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
                yield AttentionWindow(locus(name, start, start + seq_length), name, start, codes)
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
                locus(window.chrom, window.target_start, window.end),
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
    """``"0,3,5-7"`` → ``[0, 3, 5, 6, 7]`` (``None``: all); an index given twice counts
    once (``"0,0"`` exported the window twice)."""
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
    return list(dict.fromkeys(out))


# --------------------------------------------------------------------------- choosing the input

DEFAULT_WINDOWS = 4
"""Windows of the run's own store used when no input is given."""


def input_paths(o, run: Path, data: str | Path | None) -> list[Path | str | None]:
    """``o``: options with ``regions``, ``genome``, ``fasta`` and ``which`` (those of
    ``gitool attention`` and ``gitool attribute``). What the command reads (never written over): the run, genome, regions, FASTA and
    their indexes, the store and the files it was built from (the run's own store too)."""
    paths: list[Path | str | None] = [run, o.regions]
    for fasta in (o.genome, o.fasta):
        if fasta is not None:
            paths += [fasta, f"{fasta}.fai", f"{fasta}.gzi"]
    stores = [data] if data is not None else []
    with contextlib.suppress(InputError, OSError):  # a run that records no (usable) store
        stores.append(training_store(run, o.which))
    for store in stores:
        paths += store_inputs(store)
    return paths


def open_windows(
    o, model: nn.Module, data: str | Path | None, index: str | None
) -> tuple[Iterable[AttentionWindow], int | None]:
    """The input ``o`` chose (``regions``, ``fasta``, or the store ``data`` with ``o.split``
    and ``index``) as windows, with their number when known."""
    seq_length = model_seq_length(model)
    if index is not None and (o.regions is not None or o.fasta is not None):
        given = opt("regions") if o.regions is not None else opt("fasta")
        raise InputError(
            f"chooses windows of a store; with {given} every window is used, so leave "
            f"{opt('index')} out (or cut the input down)",
            field="index",
        )
    if o.regions is not None:
        return windows_from_regions(model, o.regions, o.genome), None
    if o.fasta is not None:
        return windows_from_fasta(o.fasta, seq_length), None
    check_store_length(data, seq_length)
    indices = parse_indices(index)
    count = len(indices) if indices is not None else open_any_store(data).count(o.split)
    return windows_from_store(data, o.split, indices), count


def default_store_windows(
    run: Path, which: str, split: str, index: str | None, verb: str = "exporting"
) -> tuple[Path, str]:
    """No input given: the run's training store, and ``index`` or its first windows (a status
    line says which: "``verb`` test windows 0-3 of data/")."""
    store = training_store(run, which)
    shown = f"{shown_path(store).rstrip('/')}/"
    if index is not None:
        info(
            f"{verb} {split} windows {index} of {shown} (the run's store; give {opt('data')} "
            "to choose)"
        )
        return store, index
    count = open_any_store(store).count(split)
    if count == 0:
        raise InputError(
            f"the {split} split of {shown}, the run's store, has no windows; choose the input "
            f"with {opt('split')}, {opt('data')}/{opt('index')}, {opt('regions')} or "
            f"{opt('fasta')}"
        )
    last = min(DEFAULT_WINDOWS, count) - 1
    chosen = "0" if last == 0 else f"0-{last}"
    info(
        f"{verb} {split} window{'s' if last else ''} {chosen} of {shown} (default; give "
        f"{opt('data')}/{opt('index')}, {opt('regions')} or {opt('fasta')} to choose)"
    )
    return store, chosen


def check_store_length(data: str | Path, seq_length: int) -> None:
    opened = open_any_store(data)
    store_length = (
        opened.seq_length if isinstance(opened, LabelStore) else opened.geometry.seq_length
    )
    if store_length != seq_length:
        raise InputError(
            f"{data}: windows of {store_length:,} bp but the model takes {seq_length:,} bp; "
            "use the store the model was trained on",
            field="data",
        )
