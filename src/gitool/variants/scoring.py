"""Score variants with a trained model: reference and alternate predicted together, compared
per track (``gitool variants``; :func:`score_variants` from Python).

For each variant and each ensemble member — input shifted by ``s`` bp for each ``s`` in
``shifts``, forward and (with ``rc``) reverse complement — the reference and alternate
inputs of :mod:`gitool.variants.alleles` go through the model in the same batch. A
reverse-complement prediction is mapped back as ``gitool predict`` does (bins reversed,
stranded tracks swapped through ``strand_pair``), the members are averaged, and then, per
variant × selected track, over the target bins ``j``:

- ``sum``: ``Σ alt_j − Σ ref_j`` (Basenji's SAD);
- ``log2fc``: ``log2(Σ alt_j + c) − log2(Σ ref_j + c)`` with pseudocount ``c``
  (NaN where a sum plus ``c`` is not positive);
- ``max_abs``: ``max |alt_j − ref_j|``;
- ``l2``: ``sqrt(Σ (alt_j − ref_j)²)``.

Swapping REF and ALT negates ``sum`` and ``log2fc`` exactly and leaves the others as they
are. All of it runs on the device, on the selected tracks only; what reaches the host is
one float32 ``(stats, tracks)`` row per variant. Variants sharing a position (the alleles
of a multi-allelic record, the three alternatives of an ISM base) share one reference
prediction. Sequences are read and built in a background thread while the model runs, and
variants stream through in batches, so memory does not grow with the VCF.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from contextlib import closing, nullcontext
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from gitool.background import prefetched
from gitool.console import info, progress
from gitool.data.genome import Genome
from gitool.data.tracks import Track, select_tracks, untransform
from gitool.data.windows import Geometry
from gitool.errors import InputError, opt
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
from gitool.predict.tiling import SequenceReader
from gitool.runs import (
    autocast_for,
    check_which,
    default_run,
    evaluating,
    resolve_device,
    to_device,
)
from gitool.variants.alleles import allele_inputs, replaced_bases, target_start, window_status
from gitool.variants.vcf import (
    OK,
    REF_MISMATCH,
    SCORED,
    TOO_LONG,
    Variant,
    read_vcf,
    variants_from_table,
)

STATS = ("sum", "log2fc", "max_abs", "l2")
"""The statistics :func:`variant_stats` computes (see the module docstring)."""
ID_COLUMNS = ["id", "chrom", "pos", "ref", "alt", "status"]
MAX_PENDING = 4096
"""Variants (scored or not) held in one batch at most: skipped variants flow through too."""


def parse_stats(stats: str | Sequence[str]) -> tuple[str, ...]:
    """``"sum,log2fc"`` (or a sequence) → the statistics, in the order given.

    Raises:
        InputError: an unknown name or none.
    """
    items = [s.strip() for s in (stats.split(",") if isinstance(stats, str) else stats)]
    items = [s for s in items if s]
    unknown = [s for s in items if s not in STATS]
    if unknown or not items:
        raise InputError(
            f"{','.join(unknown) or repr(stats)}: choose from {', '.join(STATS)} (comma-separated)",
            field="stats",
        )
    return tuple(dict.fromkeys(items))


def variant_stats(
    ref: torch.Tensor, alt: torch.Tensor, stats: Sequence[str], pseudocount: float
) -> torch.Tensor:
    """``(V, len(stats), K)`` float32 scores of reference and alternate predictions
    ``(V, T, K)`` (see the module docstring for each statistic)."""
    ref, alt = ref.float(), alt.float()
    out = []
    # sums over bins in float64: a float32 Σ alt − Σ ref would round away small effects
    sums = (ref.double().sum(1), alt.double().sum(1)) if "log2fc" in stats else None
    diff = alt - ref  # per bin: exact where alt and ref are close
    for stat in stats:
        if stat == "sum":
            out.append(diff.double().sum(1).float())
        elif stat == "log2fc":
            a, r = sums[1] + pseudocount, sums[0] + pseudocount
            value = torch.log2(a.clamp_min(1e-30)) - torch.log2(r.clamp_min(1e-30))
            out.append(torch.where((a > 0) & (r > 0), value, torch.nan).float())
        elif stat == "max_abs":
            out.append(diff.abs().amax(1))
        else:
            out.append(torch.linalg.vector_norm(diff, dim=1))
    return torch.stack(out, 1)


# --------------------------------------------------------------------------- batches


@dataclass
class _Batch:
    """Variants in file order; the scored ones have model inputs in ``codes``.

    ``ref_rows`` ``(U, E)`` and ``alt_rows`` ``(V, E)``: rows of ``codes`` of each distinct
    locus's reference (position and REF) and each scored variant's alternate, per member;
    ``loci[v]``: the position of scored variant ``v``; ``reverse``: rows to flip back.
    """

    variants: list[Variant]
    scored: list[int] = field(default_factory=list)
    loci: list[int] = field(default_factory=list)
    ref_rows: list[list[int]] = field(default_factory=list)
    alt_rows: list[list[int]] = field(default_factory=list)
    codes: list[np.ndarray] = field(default_factory=list)
    reverse: list[int] = field(default_factory=list)
    last_locus: tuple | None = None


def _batches(
    variants: Iterable[Variant],
    geometry: Geometry,
    reader: SequenceReader,
    members: list[tuple[int, bool]],
    batch_size: int,
    allow_ref_mismatch: bool,
) -> Iterator[_Batch]:
    """Group variants into batches of at most ``batch_size`` model inputs (a variant's
    reference and alternate always together), deciding each one's final status."""
    sizes = reader.genome.sizes
    n_members = len(members)
    batch = _Batch([])
    for variant in variants:
        status = variant.status
        if status == OK or (status == REF_MISMATCH and allow_ref_mismatch):
            replaced = replaced_bases(variant, reader)
            window = window_status(variant, geometry, sizes, members, replaced)
            if window == TOO_LONG or status == OK:
                status = window
        scored = status in SCORED or (status == REF_MISMATCH and allow_ref_mismatch)
        if status != variant.status:
            variant = dataclasses.replace(variant, status=status)
        if scored:
            locus = (variant.chrom, variant.start, variant.ref, replaced)  # the reference input
            new = locus != batch.last_locus
            needed = n_members * (2 if new else 1)
            if batch.scored and len(batch.codes) + needed > batch_size:
                yield batch
                batch, new = _Batch([]), True
            rows, alt_rows = [], []
            for shift, rc in members:
                ref, alt = allele_inputs(variant, geometry, reader, shift, rc, replaced)
                if new:
                    rows.append(len(batch.codes))
                    batch.codes.append(ref)
                    if rc:
                        batch.reverse.append(rows[-1])
                batch.codes.append(alt)
                if rc:
                    batch.reverse.append(len(batch.codes) - 1)
                alt_rows.append(len(batch.codes) - 1)
            batch.alt_rows.append(alt_rows)
            if new:
                batch.ref_rows.append(rows)
                batch.last_locus = locus
            batch.loci.append(len(batch.ref_rows) - 1)
            batch.scored.append(len(batch.variants))
        batch.variants.append(variant)
        if len(batch.variants) >= MAX_PENDING:
            yield batch
            batch = _Batch([])
    if batch.variants:
        yield batch


# --------------------------------------------------------------------------- results


@dataclass
class VariantScores:
    """Lazy scores of a stream of variants, plus what they are.

    Iterate once for one DataFrame per batch, in the variants' order: :data:`ID_COLUMNS`
    (``pos`` 1-based, as in the VCF) then one column per statistic × track, named
    ``STAT:IDENTIFIER`` (NaN for a variant not scored; its ``status`` says why, see
    :data:`gitool.variants.vcf.STATUSES`). ``counts`` fills in as it goes (variants per
    status), ``profiles`` with the per-bin predictions of the variants asked for.

    Attributes:
        identifiers: selected tracks' identifiers; ``stats``: the statistics.
        head, label, geometry: the model's head, a short name, its window geometry.
        shifts, rc, pseudocount, untransformed, batch_size: the options used.
        inputs: files it reads (run, checkpoint, genome and its indexes, the VCF, the
            stores the head was trained on), which outputs never write over.
    """

    identifiers: list[str]
    stats: tuple[str, ...]
    head: str
    label: str
    geometry: Geometry
    shifts: tuple[int, ...]
    rc: bool
    pseudocount: float
    untransformed: bool
    batch_size: int
    inputs: list[Path] = field(default_factory=list)
    counts: Counter = field(default_factory=Counter)
    profiles: list[dict] = field(default_factory=list)
    _frames: Iterator[pd.DataFrame] | None = field(default=None, repr=False)

    @property
    def columns(self) -> list[str]:
        """The score columns, statistic-major: ``sum:t0, sum:t1, ..., log2fc:t0, ...``."""
        return [f"{s}:{t}" for s in self.stats for t in self.identifiers]

    def __iter__(self) -> Iterator[pd.DataFrame]:
        if self._frames is None:
            raise RuntimeError("VariantScores can be iterated only once; score again")
        frames, self._frames = self._frames, None
        return frames

    def frame(self) -> pd.DataFrame:
        """Every batch joined into one DataFrame (memory grows with the variants)."""
        frames = list(self)
        return pd.concat(frames, ignore_index=True) if frames else self.empty()

    def empty(self) -> pd.DataFrame:
        return pd.DataFrame(columns=ID_COLUMNS + self.columns)

    def long(self, frame: pd.DataFrame) -> pd.DataFrame:
        """``frame`` in long form: one row per variant × track, a column per statistic."""
        n, k = len(frame), len(self.identifiers)
        out = frame[ID_COLUMNS].loc[frame.index.repeat(k)].reset_index(drop=True)
        out.insert(len(ID_COLUMNS), "track", np.tile(np.array(self.identifiers, object), n))
        values = frame[self.columns].to_numpy(np.float32).reshape(n, len(self.stats), k)
        for i, stat in enumerate(self.stats):
            out[stat] = values[:, i, :].reshape(-1)
        return out


def score_variants(
    model: str | Path | nn.Module | None,
    genome: str | Path | Genome | None,
    variants: str | Path | Iterable | pd.DataFrame,
    **options,
) -> pd.DataFrame:
    """Score variants and return one DataFrame (see :class:`VariantScores` for its columns).

    Args:
        model, genome, variants, options: as :func:`iter_variant_scores`.
    """
    return iter_variant_scores(model, genome, variants, **options).frame()


def iter_variant_scores(
    model: str | Path | nn.Module | None,
    genome: str | Path | Genome | None,
    variants: str | Path | Iterable | pd.DataFrame,
    *,
    head: str | None = None,
    tracks: Sequence[str | int] | str | None = None,
    stats: str | Sequence[str] = ("sum",),
    pseudocount: float = 1.0,
    rc: bool = False,
    shifts: str | Iterable[int] = (0,),
    batch_size: int | None = None,
    device: str | torch.device | None = None,
    bf16: bool = False,
    untransform: bool = False,
    allow_ref_mismatch: bool = False,
    profiles: Iterable[str] | None = None,
    which: str = "best",
    manifest: dict | None = None,
    show_progress: bool = True,
    total: int | None = None,
) -> VariantScores:
    """Score variants lazily (nothing runs until the result is iterated).

    Args:
        model: run folder, checkpoint, or a model (as :func:`gitool.predict.inference.
            predict_regions` takes; or a :class:`~gitool.predict.model.PreparedModel`);
            ``None``: the newest run under ``runs/``.
        genome: FASTA of the assembly; ``None``: the one the head's store was built from.
        variants: a VCF path (plain or bgzip; BCF), or ``(chrom, pos, ref, alt[, id])``
            rows / a DataFrame with those columns (``pos`` 1-based).
        head, tracks: the head and its tracks (identifiers or 0-based indices; default all).
        stats: statistics of :data:`STATS` (a comma-separated string or a sequence).
        pseudocount: added to both sums by ``log2fc``.
        rc, shifts: the ensemble (as ``gitool predict``): reverse complement too, and input
            shifts in bp, each smaller than the bin size.
        batch_size: model inputs per forward pass (a variant's reference and alternate are
            always in the same one); default 32 on CUDA, 8 on a CPU, or two per ensemble
            member when that is more.
        device: ``cpu``, ``cuda``, ``cuda:N``; default CUDA when available.
        bf16: run the model under bf16 autocast on CUDA (about 3 significant digits per
            prediction, so effects below about 1 % of it become rounding noise); default
            float32.
        untransform: undo the store's transform per bin before scoring (bigWig units).
        allow_ref_mismatch: also score variants whose REF differs from the genome (status
            stays ``ref_mismatch``; its REF is put in the reference input).
        profiles: IDs of variants whose per-bin reference and alternate predictions to keep
            (in :attr:`VariantScores.profiles`).
        which, manifest: as :func:`gitool.predict.inference.predict_regions`.
        total: the number of variants, for the progress bar, when known.

    Raises:
        InputError: a bad option, model, genome or VCF header — before any inference; a
        malformed VCF record or chromosome naming mismatch while streaming, before the
        scores of that batch are returned.
    """
    check_which(which)
    chosen = batch_size is None
    if not chosen and (
        isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1
    ):
        raise InputError(f"must be an integer >= 1, got {batch_size!r}", field="batch_size")
    if not (isinstance(pseudocount, (int, float)) and pseudocount >= 0):
        raise InputError(f"must be a number >= 0, got {pseudocount!r}", field="pseudocount")
    chosen_stats = parse_stats(stats)
    dev = resolve_device(device)
    if isinstance(model, PreparedModel):
        spec = model
    else:
        spec = prepare_model(model if model is not None else default_run(), head, which, manifest)
    shift_values = parse_shifts(shifts, spec.geometry.bin_size)
    columns = select_tracks(spec.rows, tracks, field="tracks")
    perm = strand_permutation(spec.rows, spec.label) if rc else None
    undo = untransform_tracks(spec, columns) if untransform else None
    opened = open_genome(spec, genome)
    inputs = [*spec.inputs, *genome_files(opened.path)]
    if isinstance(variants, (str, Path)):
        records = read_vcf(variants, opened)
        inputs.append(Path(variants))
    else:
        records = variants_from_table(variants, opened)
    members = [(s, strand) for strand in ((False, True) if rc else (False,)) for s in shift_values]
    if bf16 and dev.type != "cuda":
        info(f"{opt('bf16')} applies on a CUDA GPU only: scoring in float32 on {dev.type}")
    if chosen:
        # a variant's reference and alternate of every ensemble member share a batch
        batch_size = max(default_batch_size(dev), 2 * len(members))
        info(f"batch size {batch_size} (the default on {dev.type}; {opt('batch_size')} to change)")
    if batch_size < 2 * len(members):
        raise InputError(
            f"{batch_size} is too small for {len(members)} ensemble member(s): a variant's "
            f"reference and alternate go through the model together, so give at least "
            f"{2 * len(members)}",
            field="batch_size",
        )
    result = VariantScores(
        identifiers=[str(spec.rows[c]["identifier"]) for c in columns],
        stats=chosen_stats,
        head=spec.head,
        label=spec.label,
        geometry=spec.geometry,
        shifts=shift_values,
        rc=rc,
        pseudocount=float(pseudocount),
        untransformed=untransform,
        batch_size=batch_size,
        inputs=inputs,
    )
    chunk = max(16 * spec.geometry.seq_length, 1 << 16)
    reader = SequenceReader(opened, chunk=chunk, margin=spec.geometry.seq_length)
    batches = _batches(records, spec.geometry, reader, members, batch_size, allow_ref_mismatch)
    result._frames = _score(
        spec, batches, result, dev, bf16, columns, perm, undo, _ids(profiles),
        total if show_progress else None, show_progress,
    )  # fmt: skip
    return result


def _score(
    spec: PreparedModel,
    batches: Iterator[_Batch],
    result: VariantScores,
    device: torch.device,
    bf16: bool,
    columns: list[int],
    perm: np.ndarray | None,
    undo: list[Track] | None,
    wanted: set[str],
    total: int | None,
    show_progress: bool,
) -> Iterator[pd.DataFrame]:
    """The inference loop behind :class:`VariantScores` (runs when iterated).

    One batch stays in flight: batch k's scores are copied to the host (pinned memory on
    CUDA) and batch k+1 launched before batch k's table is built.
    """
    model, head = spec.model, spec.head
    eye = torch.cat([torch.eye(4), torch.zeros(1, 4)]).to(device)
    orient = Oriented(columns, perm, len(spec.rows), device)
    cuda = device.type == "cuda"
    n_columns = len(result.stats) * len(columns)

    def launch(batch: _Batch):
        if not batch.scored:
            return batch, None, None, None
        codes = to_device(np.stack(batch.codes), device)
        with torch.no_grad():
            with autocast_for(device, bf16):
                out = model(eye[codes.long()], head)  # (N, T, all tracks)
            y = orient(out, batch.reverse)
            ref_rows = to_device(batch.ref_rows, device, torch.long)
            alt_rows = to_device(batch.alt_rows, device, torch.long)
            loci = to_device(batch.loci, device, torch.long)
            ref = y[ref_rows].mean(1)[loci]  # (V, T, K): members averaged in a fixed order
            alt = y[alt_rows].mean(1)
            if undo is not None:
                ref = torch.from_numpy(untransform(ref.cpu().numpy(), undo))
                alt = torch.from_numpy(untransform(alt.cpu().numpy(), undo))
            scores = variant_stats(ref, alt, result.stats, result.pseudocount)
            keep = [i for i, v in enumerate(batch.scored) if batch.variants[v].id in wanted]
            kept = None
            if keep:
                index = torch.tensor(keep, dtype=torch.long, device=ref.device)
                kept = (keep, ref.index_select(0, index).cpu(), alt.index_select(0, index).cpu())
        if cuda:
            host = torch.empty(scores.shape, dtype=torch.float32, pin_memory=True)
            host.copy_(scores, non_blocking=True)
            return batch, host, torch.cuda.current_stream(device).record_event(), kept
        return batch, scores, None, kept

    def finish(batch: _Batch, scores, event, kept) -> pd.DataFrame:
        if event is not None:
            event.synchronize()
        values = np.full((len(batch.variants), n_columns), np.nan, dtype=np.float32)
        if scores is not None:
            values[batch.scored] = scores.numpy().reshape(len(batch.scored), n_columns)
        if kept is not None:
            for i, ref, alt in zip(kept[0], kept[1].numpy(), kept[2].numpy(), strict=True):
                variant = batch.variants[batch.scored[i]]
                ts = target_start(variant.start, spec.geometry)
                result.profiles.append(
                    {"variant": variant, "target_start": ts, "ref": ref, "alt": alt}
                )
        table = pd.DataFrame(
            [(v.id, v.chrom, v.pos, v.ref, v.alt, v.status) for v in batch.variants],
            columns=ID_COLUMNS,
        )
        table = pd.concat([table, pd.DataFrame(values, columns=result.columns)], axis=1)
        result.counts.update(v.status for v in batch.variants)
        return table

    bar = progress("scoring variants", total) if show_progress else nullcontext(None)
    reading = closing(prefetched(batches, name="gitool-variant-inputs"))
    with evaluating(model, device), bar as advance, reading as ahead:
        in_flight = None
        for batch in chain(ahead, [None]):  # None: finish the last batch
            launched = launch(batch) if batch is not None else None
            if in_flight is not None:
                table = finish(*in_flight)
                if advance is not None:
                    advance(len(table))
                yield table
            in_flight = launched


def _ids(profiles: Iterable[str] | str | None) -> set[str]:
    """Variant IDs from a list, or from comma-separated text."""
    if isinstance(profiles, str):
        profiles = profiles.split(",")
    return {p.strip() for p in profiles or () if p.strip()}
