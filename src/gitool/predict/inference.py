"""Tiled, batched inference over genomic regions (``gitool predict``).

:func:`predict_regions` checks every input up front, then returns a lazy
:class:`Prediction`: iterating it reads the FASTA chunk by chunk, runs the model on batches
of windows and yields the stitched bins in genome order, a batch at a time, so memory stays
bounded however large the regions (a whole chromosome streams). :func:`predict` writes them
to one bigWig (or bedGraph) per track.

Per window, the predictions of every requested variant — input shifted by ``s`` bp for
each ``s`` in ``shifts``, times forward and (with ``rc``) reverse complement — are summed
in a fixed order and divided by their number, so results do not depend on ``batch_size``.
A reverse-complement prediction is mapped back before averaging: bins reversed, and each
stranded track swapped with its ``strand_pair`` (from the manifest of the dataset the head
was trained on). All of that happens on the device, on the selected tracks only: what
travels to the host is float32 ``(bins, selected tracks)`` per window, once, not every
variant of every track of the head (on CUDA into pinned memory, copied while the next batch
runs). The FASTA is read and each batch's input built in a background thread, ahead of the
model. Inference runs in eval mode under ``torch.no_grad`` (bf16 autocast on CUDA); the
model's training flag and device are restored afterwards (tangermeme's
``_preserve_model_state``). Default batch: :func:`default_batch_size` (32 windows on CUDA,
8 on a CPU).

:func:`predict` writes with :class:`gitool.predict.writer.TrackSetWriter`: in the
background (a writer thread, and one writer process per group of at most 256 tracks for
larger heads), never holding more than 256 output files open in one process.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from contextlib import closing, nullcontext
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from torch import nn

from gitool.background import prefetched
from gitool.config.predict import PredictOptions
from gitool.console import info, progress
from gitool.data.genome import Genome, reverse_complement
from gitool.data.tracks import Track, per_base, select_tracks, untransform
from gitool.data.windows import Geometry
from gitool.errors import InputError, opt
from gitool.files import Outputs
from gitool.predict.bigwig import output_paths
from gitool.predict.model import (
    Oriented,
    PreparedModel,
    default_batch_size,
    genome_files,
    open_genome,
    parse_shifts,
    prepare_model,
    strand_permutation,
    untransform_tracks,
)
from gitool.predict.tiling import (
    Region,
    SequenceReader,
    Window,
    read_regions,
    regions_from_intervals,
    sequence_interval,
    tile_regions,
    window_count,
)
from gitool.predict.writer import TrackSetWriter
from gitool.runs import (
    autocast_for,
    check_which,
    default_run,
    evaluating,
    pinned_for,
    resolve_device,
)

# --------------------------------------------------------------------------- results


class Chunk(NamedTuple):
    """Predicted bins of ``chrom:start-end``: ``values`` float32 ``(n_bins, n_tracks)``.

    Bin ``j`` is ``[start + j·bin_size, start + (j+1)·bin_size)``, the last one clipped to
    ``end`` at a chromosome end.
    """

    chrom: str
    start: int
    end: int
    values: np.ndarray


@dataclass
class Prediction:
    """Lazy predictions over regions, plus what they are.

    Iterate once for :class:`Chunk` pieces in genome order (contiguous within a region,
    at most one batch of windows each); :meth:`by_region` joins them into one chunk per
    merged region (memory ∝ region size).

    Attributes:
        identifiers: selected tracks' identifiers, the columns of ``values``.
        indices: their column indices in the head's output.
        bin_size: bp per bin.
        regions: merged, bin-snapped regions, in genome order.
        sizes: the genome's chromosome sizes in FASTA order (the bigWig header).
        head, label: model head and a short name of the model.
        geometry: the model's window geometry.
        n_windows: model windows (forward passes: × ``len(shifts)``, × 2 with ``rc``).
        shifts, rc, untransformed, batch_size: the options used.
        inputs: the files and folders it reads (run, checkpoint, genome and its indexes,
            regions, the stores the head was trained on and their sources), which
            :func:`predict` never writes over.
    """

    identifiers: list[str]
    indices: list[int]
    bin_size: int
    regions: list[Region]
    sizes: dict[str, int]
    head: str
    label: str
    geometry: Geometry
    n_windows: int
    shifts: tuple[int, ...]
    rc: bool
    untransformed: bool
    batch_size: int = 8
    inputs: list[Path] = field(default_factory=list)
    _chunks: Iterator[Chunk] | None = field(default=None, repr=False)
    _genome: Genome | None = field(default=None, repr=False)  # opened here: closed with it

    def close(self) -> None:
        """Release what an unread (or part-read) prediction holds: the genome it opened.
        Reading every chunk releases it too."""
        if self._chunks is not None:
            self._chunks.close()  # type: ignore[attr-defined]
        if self._genome is not None:
            self._genome.close()

    def __iter__(self) -> Iterator[Chunk]:
        if self._chunks is None:
            raise RuntimeError("a Prediction can be iterated only once; call predict_regions again")
        chunks, self._chunks = self._chunks, None
        return chunks

    def by_region(self) -> Iterator[Chunk]:
        """One chunk per merged region, in genome order."""
        parts: list[Chunk] = []
        for chunk in self:
            if parts and (chunk.chrom != parts[-1].chrom or chunk.start != parts[-1].end):
                yield _join(parts)
                parts = []
            parts.append(chunk)
        if parts:
            yield _join(parts)

    @property
    def bp(self) -> int:
        """Base pairs covered by the regions."""
        return sum(r.end - r.start for r in self.regions)


def _join(parts: list[Chunk]) -> Chunk:
    values = np.concatenate([p.values for p in parts]) if len(parts) > 1 else parts[0].values
    return Chunk(parts[0].chrom, parts[0].start, parts[-1].end, values)


@dataclass
class PredictionSummary:
    """What :func:`predict` wrote."""

    paths: list[Path]
    identifiers: list[str]
    head: str
    label: str
    n_regions: int
    bp: int
    n_bins: int
    n_windows: int
    seconds: float
    device: str
    batch_size: int = 8
    writing: dict = field(default_factory=dict)
    """:attr:`gitool.predict.writer.TrackSetWriter.stats` (writer processes, files open,
    where the time went) and ``claim_s``, the seconds spent checking the output paths."""


# --------------------------------------------------------------------------- prediction


def predict_regions(
    model_or_run: str | Path | nn.Module | None,
    genome: str | Path | Genome | None,
    regions: str | Path | Iterable[tuple[str, int, int]],
    *,
    head: str | None = None,
    tracks: Sequence[str | int] | str | None = None,
    batch_size: int | None = None,
    device: str | torch.device | None = None,
    rc: bool = False,
    shifts: str | Iterable[int] = (0,),
    untransform: bool = False,
    which: str = "best",
    manifest: dict | None = None,
    show_progress: bool = True,
) -> Prediction:
    """Predict every bin of some regions with a trained model.

    Args:
        model_or_run: run folder (``RUN/checkpoints/{best,last}.pt``, see ``which``), a
            checkpoint file, or a model (``model(x, head)``: ``(B, seq_length, 4)`` →
            ``(B, target_length, n_tracks)``; ``model.config`` gives ``seq_length``,
            ``target_length``, ``bin_size`` and ``heads``). ``None``: the newest run under
            ``runs/`` (:func:`gitool.runs.default_run`, which prints it).
        genome: FASTA (path or :class:`Genome`) of the assembly the model was trained on.
            ``None``: the one the head's store was built from (:func:`recorded_genome`,
            which prints it).
        regions: BED path, or ``(chrom, start, end)`` intervals (0-based, half-open).
            Regions are merged, snapped to the genome-wide bin grid and, past a chromosome
            end, clipped with a warning (see :mod:`gitool.predict.tiling`).
        head: model head; default the model's only head.
        tracks: identifiers or 0-based indices (a list or comma-separated text); default all.
        batch_size: model inputs per forward pass (window × shift × strand variants);
            default :func:`default_batch_size` of the device (printed).
        device: ``cpu``, ``cuda``, ``cuda:N``; default CUDA when available (bf16 autocast).
        rc: also predict the reverse complement and average (bins reversed, stranded tracks
            swapped through ``strand_pair``).
        shifts: input shifts in bp (``"0,1,-1"``), each smaller than the model's bin size;
            predictions are averaged, targets kept.
        untransform: undo soft clip, ``*_sqrt`` and scale (:func:`gitool.data.tracks.untransform`)
            and give per-base coverage (:func:`gitool.data.tracks.per_base`): bigWig units.
        which: ``best`` (falls back to ``last``) or ``last`` checkpoint of a run folder.
        manifest: the dataset manifest of ``head`` when ``model_or_run`` is a model (track
            identifiers, ``strand_pair``, transform); checkpoints carry their own.
        show_progress: progress bar on stderr (a terminal only).

    Returns:
        A lazy :class:`Prediction` (iterate once for :class:`Chunk` pieces in genome order).
        Nothing runs and the model is untouched until it is iterated.

    Raises:
        InputError: bad option, checkpoint, head, tracks, genome or regions — all checked
        before any inference.
    """
    check_which(which)
    chosen = batch_size is None
    if not chosen and (
        isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1
    ):
        raise InputError(f"must be an integer >= 1, got {batch_size!r}", field="batch_size")
    dev = resolve_device(device)
    if model_or_run is None:
        model_or_run = default_run()
    spec = prepare_model(model_or_run, head, which, manifest)
    shift_values = parse_shifts(shifts, spec.geometry.bin_size)
    columns = select_tracks(spec.rows, tracks, field="tracks")
    perm = strand_permutation(spec.rows, spec.label) if rc else None
    undo = untransform_tracks(spec, columns) if untransform else None
    given, genome = genome, open_genome(spec, genome)
    owned = genome if genome is not given else None  # closed when the chunks are done
    bin_size = spec.geometry.bin_size
    inputs = [*spec.inputs, *genome_files(genome.path)]
    try:
        if isinstance(regions, (str, Path)):
            merged = read_regions(regions, genome.sizes, bin_size)
            inputs.append(Path(regions))
        else:
            merged = regions_from_intervals(
                [(r.chrom, r.start, r.end) if isinstance(r, Region) else r for r in regions],
                genome.sizes,
                bin_size,
            )
    except BaseException:
        if owned is not None:
            owned.close()
        raise
    n_windows = window_count(merged, spec.geometry)
    if chosen:
        batch_size = default_batch_size(dev)
        info(f"batch size {batch_size} (the default on {dev.type}; {opt('batch_size')} to change)")
    # Forward for every shift, then (with rc) the reverse complement for every shift.
    variants = [(s, strand) for strand in ((False, True) if rc else (False,)) for s in shift_values]
    chunks = _stream(
        spec, SequenceReader(genome), merged, variants, batch_size, dev, columns, perm, undo,
        n_windows if show_progress else None, owned,
    )  # fmt: skip
    return Prediction(
        identifiers=[str(spec.rows[c]["identifier"]) for c in columns],
        indices=columns,
        bin_size=bin_size,
        regions=merged,
        sizes=dict(genome.sizes),
        head=spec.head,
        label=spec.label,
        geometry=spec.geometry,
        n_windows=n_windows,
        shifts=shift_values,
        rc=rc,
        untransformed=untransform,
        batch_size=batch_size,
        inputs=inputs,
        _chunks=chunks,
        _genome=owned,
    )


class _Slot:
    """A window whose variant predictions are being summed (on the device)."""

    __slots__ = ("window", "total", "remaining")

    def __init__(self, window: Window, n_variants: int):
        self.window, self.total, self.remaining = window, None, n_variants


def _stream(
    spec: PreparedModel,
    reader: SequenceReader,
    regions: list[Region],
    variants: list[tuple[int, bool]],
    batch_size: int,
    device: torch.device,
    columns: list[int],
    perm: np.ndarray | None,
    undo: list[Track] | None,
    total: int | None,
    owned: Genome | None = None,
) -> Iterator[Chunk]:
    """The inference loop behind :class:`Prediction` (a generator: runs when iterated).

    On the device: the selected tracks are taken from the model's output, reverse-complement
    rows flipped back (bins reversed, strand pairs swapped), and each window's variants
    summed in a fixed order and divided by their number; only then do the selected tracks
    travel to the host (float32; on CUDA into pinned memory, asynchronously).

    One batch stays in flight: batch k's averaging and copy are queued on the device before
    batch k+1's forward pass, and batch k's chunks are yielded (to the writer) while that
    pass runs. The FASTA is read and the inputs built in a background thread, at most three
    batches ahead (two queued, one being built; on CUDA in pinned memory); a reading error
    is raised here, at the batch it hit, and closing this generator stops the thread.
    """
    model, head, geometry = spec.model, spec.head, spec.geometry
    n_variants = len(variants)
    pending: deque[_Slot] = deque()  # windows in flight, in genome order
    # One-hot as a lookup on the device: uint8 codes (1 B/bp) travel, not float32 (16 B/bp).
    eye = torch.cat([torch.eye(4), torch.zeros(1, 4)]).to(device)
    orient = Oriented(columns, perm, len(spec.rows), device)
    # A tensor, not a Python number: CUDA divides by a CPU scalar as a product with its
    # reciprocal, which can differ from the division in the last bit.
    divisor = torch.tensor(float(n_variants), dtype=torch.float32, device=device)
    cuda = device.type == "cuda"

    def batches() -> Iterator[tuple[list[_Slot], list[tuple[_Slot, bool]], torch.Tensor]]:
        """Batches of uint8 codes, with the windows each starts and the owner of each row.

        Runs in the prefetch thread, ahead of the consumer: the new windows travel with
        their batch, and only the consumer queues them in ``pending``.
        """
        slots: list[_Slot] = []
        owners: list[tuple[_Slot, bool]] = []
        inputs: list[np.ndarray] = []
        for window in tile_regions(regions, geometry):
            slot = _Slot(window, n_variants)
            slots.append(slot)
            for shift, rc in variants:
                start, end = sequence_interval(window.target_start, geometry, shift, rc)
                codes = reader.codes(window.chrom, start, end)
                inputs.append(reverse_complement(codes) if rc else codes)
                owners.append((slot, rc))
                if len(inputs) == batch_size:
                    yield slots, owners, pack(inputs)
                    slots, owners, inputs = [], [], []
        if inputs:
            yield slots, owners, pack(inputs)

    def pack(inputs: list[np.ndarray]) -> torch.Tensor:
        return pinned_for(torch.from_numpy(np.stack(inputs)), device)  # launch() copies async

    def launch(codes: torch.Tensor) -> torch.Tensor:
        x = eye[codes.to(device, non_blocking=True).long()]  # (B, L, 4)
        with torch.no_grad(), autocast_for(device):
            return model(x, head)  # (B, T, n_tracks), possibly bf16

    def collect(owners: list[tuple[_Slot, bool]], out: torch.Tensor) -> None:
        y = orient(out, [i for i, (_, rc) in enumerate(owners) if rc])
        for row, (slot, _) in enumerate(owners):  # a fold in variant order, as documented
            slot.total = y[row] if slot.total is None else slot.total + y[row]
            slot.remaining -= 1

    def finished() -> list[tuple[list[_Slot], int]]:
        """Completed windows at the front of the queue, joined per region: (slots, windows)."""
        groups: list[list[_Slot]] = []
        while pending and pending[0].remaining == 0:
            slot = pending.popleft()
            if not groups or slot.window.region != groups[-1][-1].window.region:
                groups.append([])
            groups[-1].append(slot)
        return [(group, len(group)) for group in groups]

    def emit(group: list[_Slot]) -> tuple[str, int, int, torch.Tensor]:
        """A region's completed windows, averaged, on their way to the host."""
        parts = [s.total[: s.window.n_bins] for s in group]
        values = torch.cat(parts) if len(parts) > 1 else parts[0]  # (n_bins, selected)
        if n_variants > 1:
            values = values / divisor
        if cuda:
            host = torch.empty(values.shape, dtype=torch.float32, pin_memory=True)
            host.copy_(values, non_blocking=True)
            values = host
        first, last = group[0].window, group[-1].window
        return first.chrom, first.target_start, last.end, values

    def to_chunk(chrom: str, start: int, end: int, values: torch.Tensor) -> Chunk:
        array = values.numpy()
        if undo is not None:  # the bigWigs' units: per-base coverage
            bin_size = spec.geometry.bin_size
            last = end - (start + (len(array) - 1) * bin_size)  # short at a chromosome end
            array = per_base(untransform(array, undo), undo, bin_size, last)
        return Chunk(chrom, start, end, np.ascontiguousarray(array))

    bar = progress("predicting windows", total) if total is not None else nullcontext(None)
    reading = closing(prefetched(batches(), depth=2, name="gitool-predict-inputs"))
    done = closing(owned) if owned is not None else nullcontext()  # the genome this opened
    with done, evaluating(model, device), bar as advance, reading as ahead:
        in_flight = None
        for batch in chain(ahead, [None]):  # None: drain the last batch
            ready: list = []
            if in_flight is not None:  # queued on the device before the next batch
                collect(*in_flight)
                ready = [(emit(group), n) for group, n in finished()]
            copied = torch.cuda.current_stream(device).record_event() if cuda and ready else None
            if batch is None:
                in_flight = None
            else:
                slots, owners, codes = batch
                pending.extend(slots)  # genome order: batches arrive in order
                in_flight = (owners, launch(codes))
            if copied is not None:
                copied.synchronize()  # batch k on the host; batch k+1 still running
            for (chrom, start, end, values), n in ready:
                if advance is not None:
                    advance(n)
                yield to_chunk(chrom, start, end, values)


# --------------------------------------------------------------------------- entry point


def predict(
    options: PredictOptions, *, module: nn.Module | None = None, manifest: dict | None = None
) -> PredictionSummary:
    """Predict regions and write one bigWig (or bedGraph) per track (``gitool predict``).

    Args:
        options: what to predict and where to write it. ``out``: one track: the file;
            several: ``OUT.<identifier>.bw``, or ``DIR/<identifier>.bw`` when ``out`` ends
            with ``/`` or is a folder (:func:`gitool.predict.bigwig.output_paths`);
            ``bedgraph``: bedGraph text (``chrom start end value`` per bin) instead. The
            others: as :func:`predict_regions` (``model`` None: the newest run under
            ``runs/``; ``genome`` None: the genome its store was built from).
        module: a model to use instead of ``options.model`` (as :func:`predict_regions`
            takes one), with the dataset ``manifest`` of its head.

    Every output is claimed before any inference (:class:`gitool.files.Outputs`): an
    existing file is replaced only with ``options.force`` and only when gitool made it and
    nobody changed it since (:mod:`gitool.made`); the inputs — run, checkpoint, genome
    and its indexes, regions, the stores the head was trained on and every file they were
    built from — never, even with ``force``. Files appear only when all are complete; on
    any error none is left behind, nor a folder the run created.

    Raises:
        InputError: as :func:`predict_regions`, or an unusable or refused output path —
        all before any inference.
    """
    began = time.perf_counter()
    prediction = predict_regions(
        module if module is not None else options.model, options.genome, options.regions,
        head=options.head, tracks=options.tracks, batch_size=options.batch_size,
        device=options.device, rc=options.rc, shifts=options.shifts,
        untransform=options.untransform, which=options.which, manifest=manifest,
    )  # fmt: skip
    claimed = time.perf_counter()
    try:
        paths = claim_outputs(options, prediction)
        claimed = time.perf_counter() - claimed
        writer = TrackSetWriter(paths, prediction.sizes, prediction.bin_size, options.bedgraph)
    except BaseException:  # refused before any window was read: the genome is closed
        prediction.close()
        raise
    with writer, closing(iter(prediction)) as chunks:
        if writer.stats["processes"] > 1:
            info(
                f"writing {len(paths):,} files in {writer.stats['processes']} writer processes "
                f"(at most {writer.stats['max_open']} open files each)"
            )
        for chunk in chunks:
            writer.add(chunk.chrom, chunk.start, chunk.end, chunk.values)
    return PredictionSummary(
        paths=paths,
        identifiers=prediction.identifiers,
        head=prediction.head,
        label=prediction.label,
        n_regions=len(prediction.regions),
        bp=prediction.bp,
        n_bins=writer.bins_written,
        n_windows=prediction.n_windows,
        seconds=time.perf_counter() - began,
        device=str(resolve_device(options.device)),
        batch_size=prediction.batch_size,
        writing={"claim_s": claimed, **writer.stats},
    )


def claim_outputs(options: PredictOptions, prediction: Prediction) -> list[Path]:
    """The file of every selected track, each claimed for writing (see :func:`predict`)."""
    paths = output_paths(options.out, prediction.identifiers, options.bedgraph)
    outputs = Outputs(options.force, inputs=prediction.inputs)
    kind = "bedGraph" if options.bedgraph else "bigWig"
    return [outputs.file(path, kind, field="out") for path in paths]
