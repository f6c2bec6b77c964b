"""In-silico marginalization (``gitool marginalize``): a motif, or a pair of motifs at chosen
spacings and orientations, substituted into shuffled genome backgrounds, and the predicted
change per track (with the motif(s) minus without).

Backgrounds: ``n_backgrounds`` windows of the model's input length drawn at random (seeded)
from the genome's primary chromosomes (:func:`gitool.data.genome.select_chroms`), free of N
and at least :data:`END_MARGIN` bp (less on short sequences) from a chromosome's ends, each
dinucleotide-shuffled once with :func:`tangermeme.ersatz.dinucleotide_shuffle` (so the
genome's base and dinucleotide composition stay and its motifs are broken up). Motifs are
written over the background with :func:`tangermeme.ersatz.substitute` (the input keeps its
length): motif 1 centred in the middle target bin (bin ``target_length // 2``; its centre
base at the bin's middle, so a motif shorter than a bin lies in that one bin), motif 2
``spacing`` bp after motif 1's end; ``-`` inserts the reverse complement.

For a pair, each arrangement is also predicted with either motif alone (in the same place and
orientation), which gives the interaction: ``pair − motif 1 alone − motif 2 alone +
background`` (zero when the two effects add up).

Memory stays bounded by the number of backgrounds: the predictions of each background are
reduced (to the insertion bin, the sum over bins and per-bin running sums) as soon as all of
its inputs are predicted. :func:`insertion_predictions` is the pure core: a model, one-hot
backgrounds and the insertions → every prediction.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from gitool.config.marginalize import PAIR_ORIENTATIONS, PAIR_SPACINGS, MarginalizeOptions
from gitool.console import info, progress, warn
from gitool.data.genome import N_CODE, Genome, one_hot, select_chroms
from gitool.errors import InputError, opt
from gitool.files import Outputs, committed_together, staged_file

__all__ = [
    "END_MARGIN",
    "Arrangement",
    "Backgrounds",
    "InsertedMotif",
    "MarginalizeSummary",
    "Plan",
    "insertion_predictions",
    "iter_insertion_predictions",
    "marginalize",
    "parse_orientations",
    "parse_spacings",
    "plan_insertions",
    "resolve_motif",
    "shuffled_backgrounds",
]

END_MARGIN = 10_000  # bp kept clear of each chromosome end (a quarter of the slack if less)
MAX_PLOTTED = 6  # tracks in the PNG
MAX_PROFILE_BYTES = 2 << 30  # per-bin running sums held on the host
Insertion = tuple[str, int]  # (sequence as inserted, 0-based start in the input)

# IUPAC code → the bases it allows; a code is resolved to its first base in A, C, G, T order.
_IUPAC = {
    "A": "A", "C": "C", "G": "G", "T": "T", "R": "AG", "Y": "CT", "S": "CG", "W": "AT",
    "K": "GT", "M": "AC", "B": "CGT", "D": "AGT", "H": "ACT", "V": "ACG", "N": "N",
}  # fmt: skip
_DNA = re.compile(f"[{''.join(_IUPAC)}]+", re.IGNORECASE)
_COMPLEMENT = str.maketrans("ACGTN", "TGCAN")


# --------------------------------------------------------------------------- motifs


@dataclass(frozen=True)
class InsertedMotif:
    """A motif as inserted: ``sequence`` (A, C, G, T; N keeps the background's base) in its
    forward orientation, the ``name`` given and where it came from (``source``)."""

    name: str
    sequence: str
    source: str
    note: str = ""  # a warning about how the text was read, shown once the checks pass

    @property
    def length(self) -> int:
        return len(self.sequence)

    def oriented(self, strand: str) -> str:
        """The sequence for ``+`` (forward) or ``-`` (reverse complement)."""
        return self.sequence if strand == "+" else self.sequence.translate(_COMPLEMENT)[::-1]

    def describe(self) -> str:
        if self.source == "sequence":
            return self.sequence
        return f"{self.name} ({self.source}) as {self.sequence}"


def resolve_motif(text: str, field: str = "motif") -> InsertedMotif:
    """``text`` → the motif to insert: a built-in motif name (case-insensitive), a motif of
    the built-in JASPAR 2024 fungi collection by name or matrix ID, a DNA
    sequence (IUPAC letters resolved to their first base in A, C, G, T order, with a
    warning; N keeps the background's base) or a JASPAR/MEME file holding one motif. A
    matrix is inserted as its consensus: the most likely base of each position (the first
    in A, C, G, T order on a tie).

    Raises:
        InputError: empty text, a name or file that is none of these, a file with several
        motifs, a sequence of N only — naming ``field``.
    """
    from gitool.interpret.motifs import (
        BUILTIN_MOTIF_NAMES,
        EXTRA_MOTIF_NAMES,
        load_builtin_motifs,
        read_motif_file,
    )

    names = BUILTIN_MOTIF_NAMES + EXTRA_MOTIF_NAMES
    text = text.strip()
    kinds = (
        f"a DNA sequence (A, C, G, T; IUPAC codes allowed), a built-in motif name "
        f"({', '.join(names)}), a JASPAR 2024 fungi name or matrix ID (e.g. REB1, "
        f"MA0363.3) or a JASPAR/MEME file with one motif"
    )
    if not text:
        raise InputError(f"is empty; give {kinds}", field=field)
    if text.upper() in names:
        motif = load_builtin_motifs([text])[0]
        return InsertedMotif(motif.name, _consensus(motif.counts), f"built-in {motif.matrix_id}")
    jaspar = _jaspar_fungi(text)
    if jaspar is not None:
        return InsertedMotif(
            jaspar.name, _consensus(jaspar.counts), f"JASPAR 2024 fungi {jaspar.matrix_id}"
        )
    if _DNA.fullmatch(text):
        given = text.upper()
        sequence = "".join(_IUPAC[b][0] for b in given)
        if set(sequence) == {"N"}:
            raise InputError(
                f"{text!r} is all N, which inserts nothing; give A, C, G or T", field=field
            )
        ambiguous = sorted({b for b in given if b not in "ACGTN"})
        note = ""
        if ambiguous:
            note = (
                f"{opt(field)} {text}: IUPAC code(s) {', '.join(ambiguous)} resolved to the "
                f"first of their bases in A, C, G, T order, inserting {sequence}; give "
                "A, C, G or T to choose"
            )
        return InsertedMotif(given, sequence, "sequence", note)
    path = Path(text)
    if path.is_dir():
        raise InputError(f"{text} is a folder; give {kinds}", field=field)
    if not path.is_file():
        raise InputError(f"{text!r} is neither {kinds}", field=field)
    try:
        motifs = read_motif_file(path)
    except InputError as err:
        raise InputError(err.template, field=field) from None
    if len(motifs) != 1:
        shown = ", ".join(m.name for m in motifs[:5]) + (", ..." if len(motifs) > 5 else "")
        raise InputError(
            f"{path} holds {len(motifs)} motifs ({shown}); give a file with the one to insert",
            field=field,
        )
    motif = motifs[0]
    return InsertedMotif(motif.name, _consensus(motif.counts), f"{motif.matrix_id} of {path}")


def _jaspar_fungi(text: str):
    """The motif of the built-in JASPAR 2024 CORE fungi collection (``gitool modisco``'s)
    named ``text`` (case-insensitive) or with that matrix ID (``MA0363.3``, or ``MA0363``
    for its latest version), else None."""
    from gitool.attribution.motif_db import load_builtin_database

    key = text.upper()
    for motif in load_builtin_database().motifs:
        matrix = motif.matrix_id.upper()
        if key in (motif.name.upper(), matrix, matrix.split(".")[0]):
            return motif
    return None


def _consensus(counts: np.ndarray) -> str:
    return "".join("ACGT"[i] for i in np.argmax(np.asarray(counts), axis=1))


def parse_orientations(text: str | None, pair: bool) -> tuple[str, ...]:
    """``"++,+-"`` → unique orientations in the order given: two signs each for a pair
    (motif 1 then motif 2), one for a single motif; ``+`` forward, ``-`` reverse complement.
    None: ``++,+-,-+,--`` for a pair, ``+`` for a single motif."""
    given = text if text is not None else (PAIR_ORIENTATIONS if pair else "+")
    items = [s.strip() for s in given.split(",") if s.strip()]
    width = 2 if pair else 1
    example = "++,+-,-+,-- (motif 1 then motif 2)" if pair else "+ or +,-"
    for item in items or [""]:
        if not re.fullmatch(f"[+-]{{{width}}}", item):
            what = "two signs for a pair" if pair else "one sign for a single motif"
            raise InputError(
                f"{item!r}: give comma-separated orientations, {what} (+ forward, - reverse "
                f"complement), e.g. {example}",
                field="orientations",
            )
    return tuple(dict.fromkeys(items))


def parse_spacings(text: str | None, pair: bool) -> tuple[int, ...]:
    """``"0,5,10"`` → unique spacings in bp (between motif 1's end and motif 2's start),
    ascending; None: ``0,5,10,20,50`` for a pair. A single motif takes none."""
    if not pair:
        if text is not None:
            raise InputError(
                f"applies to a pair of motifs; give {opt('motif2')} too, or leave it out",
                field="spacings",
            )
        return ()
    given = text if text is not None else PAIR_SPACINGS
    items = [s.strip() for s in given.split(",") if s.strip()]
    if not items or not all(re.fullmatch(r"[+-]?\d+", s) for s in items):
        raise InputError(
            f"{given!r}: give comma-separated spacings in bp, e.g. 0,5,10,20,50", field="spacings"
        )
    values = [int(s) for s in items]
    negative = [v for v in values if v < 0]
    if negative:
        raise InputError(
            f"{negative[0]}: a spacing is the bp between the end of motif 1 and the start of "
            f"motif 2, so 0 or more; to put motif 2 upstream swap {opt('motif')} and "
            f"{opt('motif2')}",
            field="spacings",
        )
    return tuple(sorted(set(values)))


# --------------------------------------------------------------------------- the plan


@dataclass(frozen=True)
class Arrangement:
    """One row group of the table: a spacing (None for a single motif) and orientation,
    what is inserted, and the indices of its condition and (pairs) each motif alone."""

    spacing: int | None
    orientation: str
    insertions: tuple[Insertion, ...]
    condition: int
    alone1: int | None = None
    alone2: int | None = None


@dataclass(frozen=True)
class Plan:
    """Every input variant of a background: ``conditions[0]`` is the background itself."""

    conditions: list[tuple[Insertion, ...]]
    arrangements: list[Arrangement]
    insertion_bin: int  # target bin holding motif 1's centre
    centre: int  # input position of motif 1's centre (the middle of the middle target bin)
    notes: tuple[str, ...] = ()  # warnings, shown once every check has passed


def plan_insertions(
    motif1: InsertedMotif,
    motif2: InsertedMotif | None,
    spacings: Sequence[int],
    orientations: Sequence[str],
    seq_length: int,
    bin_size: int,
    target_length: int,
) -> Plan:
    """Place the motifs in a ``seq_length`` input (see the module docstring).

    Raises:
        InputError: a motif longer than the input, or a spacing that puts motif 2 past its
        end (saying the largest that fits).
    """
    for motif, name in ((motif1, "motif"), (motif2, "motif2")):
        if motif is not None and motif.length > seq_length:
            raise InputError(
                f"is {motif.length} bp, longer than the model's {seq_length}-bp input",
                field=name,
            )
    # motif 1 is centred in the middle target bin, so that a motif shorter than a bin lies in
    # one bin (centred on the input instead, it would straddle two when target_length is even)
    context_left = (seq_length - target_length * bin_size) // 2
    insertion_bin = target_length // 2
    centre = context_left + insertion_bin * bin_size + bin_size // 2
    start1 = centre - motif1.length // 2
    conditions: dict[tuple[Insertion, ...], int] = {(): 0}

    def index(insertions: tuple[Insertion, ...]) -> int:
        return conditions.setdefault(insertions, len(conditions))

    arrangements = []
    if motif2 is None:
        for o in orientations:
            one = ((motif1.oriented(o), start1),)
            arrangements.append(Arrangement(None, o, one, index(one)))
        return Plan(list(conditions), arrangements, insertion_bin, centre)
    largest = seq_length - (start1 + motif1.length) - motif2.length
    for s in spacings:
        if s > largest:
            fits = (
                f"the largest spacing that fits is {largest}"
                if largest >= 0
                else "motif 2 does not fit even at spacing 0; give shorter motifs"
            )
            raise InputError(
                f"{s}: motif 2 ({motif2.length} bp) would end at bp {start1 + motif1.length + s + motif2.length} "
                f"of the model's {seq_length}-bp input (motif 1, {motif1.length} bp, is centred "
                f"at {start1}-{start1 + motif1.length}); {fits}",
                field="spacings",
            )
    target_end = context_left + target_length * bin_size
    outside = [s for s in spacings if start1 + motif1.length + s + motif2.length > target_end]
    notes = []
    if outside:
        notes.append(
            f"at spacing {outside[0]} and more, motif 2 reaches into the input's context, "
            "beyond the predicted bins (still a valid test: the model sees its context)"
        )
    for s in spacings:
        start2 = start1 + motif1.length + s
        for o in orientations:
            one = (motif1.oriented(o[0]), start1)
            two = (motif2.oriented(o[1]), start2)
            arrangements.append(
                Arrangement(s, o, (one, two), index((one, two)), index((one,)), index((two,)))
            )
    return Plan(list(conditions), arrangements, insertion_bin, centre, tuple(notes))


# --------------------------------------------------------------------------- backgrounds


@dataclass
class Backgrounds:
    """Shuffled genome windows: ``codes`` ``(n, seq_length)`` uint8 (A=0 C=1 G=2 T=3) of
    the shuffles, the windows they came from and each one's shuffle seed."""

    codes: np.ndarray
    chroms: list[str]
    starts: np.ndarray
    seeds: np.ndarray

    def one_hot(self) -> torch.Tensor:
        """float32 ``(n, 4, seq_length)``, tangermeme's layout."""
        return torch.from_numpy(one_hot(self.codes)).transpose(1, 2).contiguous()


def shuffled_backgrounds(genome: Genome, seq_length: int, n: int, seed: int = 0) -> Backgrounds:
    """``n`` windows of ``seq_length`` bp drawn at random (seeded, chromosomes weighted by
    the windows they hold) from the primary chromosomes of ``genome``, with no N and at least
    :data:`END_MARGIN` bp (a quarter of the slack on short sequences) from either end, each
    dinucleotide-shuffled once by tangermeme with its own seed (so a background does not
    depend on how many others are drawn).

    Raises:
        InputError: no sequence long enough, or too few N-free windows found (``genome``).
    """
    from tangermeme.ersatz import dinucleotide_shuffle

    try:
        chroms = select_chroms(genome.names, None)
    except InputError:
        chroms = genome.names
    spans = []
    for chrom in chroms:
        slack = genome.sizes[chrom] - seq_length
        if slack >= 0:
            margin = min(END_MARGIN, slack // 4)
            spans.append((chrom, margin, slack - margin))  # first and last start allowed
    if not spans:
        raise InputError(
            f"{genome.path}: no chromosome is {seq_length:,} bp long (the model's input); "
            "give the genome the model was trained on",
            field="genome",
        )
    weights = np.array([last - first + 1 for _, first, last in spans], dtype=np.float64)
    rng = np.random.default_rng(seed)
    chosen_chroms: list[str] = []
    starts, codes, seeds = [], [], []
    tries = 50 * n + 1000
    for _ in range(tries):
        if len(codes) == n:
            break
        chrom, first, last = spans[rng.choice(len(spans), p=weights / weights.sum())]
        start = int(rng.integers(first, last + 1))
        window = genome.codes(chrom, start, start + seq_length)
        if (window == N_CODE).any():
            continue
        chosen_chroms.append(chrom)
        starts.append(start)
        codes.append(window)
        seeds.append(int(rng.integers(0, 2**31 - 1)))  # drawn here: a prefix of a larger draw
    if len(codes) < n:
        raise InputError(
            f"{genome.path}: found only {len(codes)} of {n} windows of {seq_length:,} bp free "
            f"of N in {tries:,} random draws; give a genome with more N-free sequence or "
            f"fewer {opt('n_backgrounds')}",
            field="genome",
        )
    seeds = np.array(seeds, dtype=np.int64)
    windows = torch.from_numpy(one_hot(np.stack(codes))).transpose(1, 2).contiguous()
    shuffled = dinucleotide_shuffle(windows, n=1, random_state=seeds)[:, 0]
    return Backgrounds(
        shuffled.argmax(1).numpy().astype(np.uint8),
        chosen_chroms,
        np.array(starts, dtype=np.int64),
        seeds,
    )


# --------------------------------------------------------------------------- the model


def _build_inputs(
    backgrounds: torch.Tensor,
    conditions: Sequence[Sequence[Insertion]],
    batch: Sequence[tuple[int, int]],
) -> torch.Tensor:
    """``(B, 4, L)`` float inputs of ``(background, condition)`` items, through tangermeme."""
    from tangermeme.ersatz import substitute

    x = backgrounds[[i for i, _ in batch]].float()
    for c in dict.fromkeys(c for _, c in batch):
        if not conditions[c]:
            continue
        rows = [r for r, (_, cc) in enumerate(batch) if cc == c]
        part = x[rows]
        for sequence, start in conditions[c]:
            part = substitute(part, sequence, start=start, ignore=["N"])
        x[rows] = part.float()
    return x


def _check_conditions(conditions: Sequence[Sequence[Insertion]], length: int) -> None:
    for condition in conditions:
        for sequence, start in condition:
            if not re.fullmatch("[ACGTN]+", sequence):
                raise InputError(f"insertion {sequence!r}: use A, C, G, T and N only")
            if start < 0 or start + len(sequence) > length:
                raise InputError(
                    f"insertion {sequence!r} at {start} runs off the {length}-bp input"
                )


def iter_insertion_predictions(
    model: nn.Module,
    backgrounds: torch.Tensor,
    conditions: Sequence[Sequence[Insertion]],
    head: str | None = None,
    columns: Sequence[int] | None = None,
    batch_size: int = 8,
    device: str | torch.device | None = None,
    advance: Callable[[int], None] | None = None,
) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(i, predictions)`` for each background ``i`` in order: float32
    ``(n_conditions, target_length, tracks)``, condition ``c`` being background ``i`` with
    ``conditions[c]`` (``(sequence, start)`` pairs, N keeping the background's base)
    substituted. Inputs go through the model background by background, every condition of
    a background next to each other, so a batch holds a background with and without its
    motif(s). Eval mode, ``torch.no_grad``, bf16 autocast on CUDA; the model's training
    flag and device are restored afterwards.

    Args:
        model: ``model(x, head)``: ``(B, L, 4)`` one-hot (A, C, G, T) →
            ``(B, target_length, tracks)``.
        backgrounds: one-hot ``(n, 4, L)`` (tangermeme's layout).
        columns: tracks to keep (default all).
        advance: called with the number of inputs of each batch (a progress bar).
    """
    from gitool.runs import autocast_for, evaluating, resolve_device

    if backgrounds.ndim != 3 or backgrounds.shape[1] != 4:
        raise InputError(
            f"backgrounds must be one-hot (n, 4, length), got {tuple(backgrounds.shape)}"
        )
    _check_conditions(conditions, backgrounds.shape[-1])
    dev = device if isinstance(device, torch.device) else resolve_device(device)
    n_conditions = len(conditions)
    items = [(i, c) for i in range(len(backgrounds)) for c in range(n_conditions)]
    index = None if columns is None else torch.tensor(list(columns), dtype=torch.long)
    buffers: dict[int, np.ndarray] = {}
    filled: dict[int, int] = {}
    with evaluating(model, dev):
        for k in range(0, len(items), batch_size):
            batch = items[k : k + batch_size]
            x = _build_inputs(backgrounds, conditions, batch).transpose(1, 2).contiguous()
            with torch.no_grad(), autocast_for(dev):
                out = model(x.to(dev), head)
            if index is not None:
                out = out.index_select(2, index.to(out.device))
            y = out.float().cpu().numpy()
            for row, (i, c) in enumerate(batch):
                if i not in buffers:
                    buffers[i] = np.empty((n_conditions, *y.shape[1:]), dtype=np.float32)
                    filled[i] = 0
                buffers[i][c] = y[row]
                filled[i] += 1
            if advance is not None:
                advance(len(batch))
            for i in [i for i in buffers if filled[i] == n_conditions]:
                del filled[i]
                yield i, buffers.pop(i)


def insertion_predictions(
    model: nn.Module,
    backgrounds: torch.Tensor,
    conditions: Sequence[Sequence[Insertion]],
    head: str | None = None,
    columns: Sequence[int] | None = None,
    batch_size: int = 8,
    device: str | torch.device | None = None,
) -> np.ndarray:
    """Every prediction of :func:`iter_insertion_predictions` as one float32 array
    ``(n_conditions, n_backgrounds, target_length, tracks)`` (for a few tracks: it holds
    them all). ``conditions=[(), (("GATAAG", 197),)]`` gives the backgrounds without and
    with GATAAG at 197; the change is ``out[1] - out[0]``."""
    parts = dict(
        iter_insertion_predictions(
            model, backgrounds, conditions, head, columns, batch_size, device
        )
    )
    return np.stack([parts[i] for i in range(len(backgrounds))], axis=1)


# --------------------------------------------------------------------------- the command


@dataclass
class MarginalizeSummary:
    """What ``gitool marginalize`` wrote and found; ``table`` is the TSV's content."""

    paths: list[Path]
    table: pd.DataFrame
    motif1: InsertedMotif
    motif2: InsertedMotif | None
    n_backgrounds: int
    n_inputs: int
    head: str
    label: str
    device: str
    seconds: float
    plotted: list[str] = field(default_factory=list)

    def strongest(self) -> str:
        """``largest change at the insertion bin: dense +1.23 ± 0.05 (spacing 10, +-)``."""
        if self.table.empty:
            return ""
        row = self.table.loc[self.table["change"].abs().idxmax()]
        where = f"orientation {row.orientation}"
        if self.motif2 is not None:
            where = f"spacing {row.spacing}, {row.orientation}"
        se = "" if pd.isna(row.se) else f" ± {row.se:.3g}"
        return f"largest change at the insertion bin: {row.track} {row.change:+.3g}{se} ({where})"


class _Reducer:
    """Per-background reductions of the predictions, filled as backgrounds complete."""

    def __init__(self, plan: Plan, n: int, target_length: int, n_tracks: int, pair: bool):
        rows = len(plan.arrangements)
        self.plan, self.pair, self.n = plan, pair, n
        self.at_bin = np.zeros((rows, n, n_tracks))
        self.total = np.zeros((rows, n, n_tracks))
        self.alone1 = np.zeros((rows, n, n_tracks)) if pair else None
        self.alone2 = np.zeros((rows, n, n_tracks)) if pair else None
        self.background_at_bin = np.zeros((n, n_tracks))
        self.background_total = np.zeros((n, n_tracks))
        self.sums = np.zeros((rows, target_length, n_tracks))
        self.squares = np.zeros((rows, target_length, n_tracks))

    def add(self, i: int, predictions: np.ndarray) -> None:
        p = predictions.astype(np.float64)
        b = self.plan.insertion_bin
        base = p[0]
        self.background_at_bin[i] = base[b]
        self.background_total[i] = base.sum(0)
        for r, a in enumerate(self.plan.arrangements):
            change = p[a.condition] - base
            self.at_bin[r, i] = change[b]
            self.total[r, i] = change.sum(0)
            self.sums[r] += change
            self.squares[r] += change * change
            if self.pair:
                self.alone1[r, i] = p[a.alone1][b] - base[b]
                self.alone2[r, i] = p[a.alone2][b] - base[b]

    @property
    def interaction(self) -> np.ndarray | None:
        return None if not self.pair else self.at_bin - self.alone1 - self.alone2

    def profile(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-bin mean change and its standard error, ``(rows, target_length, tracks)``."""
        n = self.n
        mean = self.sums / n
        if n < 2:
            return mean, np.full_like(mean, np.nan)
        variance = np.maximum(self.squares - n * mean * mean, 0.0) / (n - 1)
        return mean, np.sqrt(variance / n)


def _se(values: np.ndarray) -> np.ndarray:
    """Standard error of the mean along axis 1 (NaN for a single background)."""
    n = values.shape[1]
    if n < 2:
        return np.full(values.shape[::2], np.nan)
    return values.std(axis=1, ddof=1) / math.sqrt(n)


TABLE_COLUMNS = [
    "spacing", "orientation", "track", "bin", "change", "se", "change_total", "se_total",
    "background", "change_motif1", "change_motif2", "interaction", "se_interaction",
    "n_backgrounds", "motif1", "start1", "sequence1", "motif2", "start2", "sequence2",
]  # fmt: skip


def _table(
    plan: Plan, reduced: _Reducer, identifiers: list[str], m1: InsertedMotif,
    m2: InsertedMotif | None,
) -> pd.DataFrame:  # fmt: skip
    mean = reduced.at_bin.mean(axis=1)
    se = _se(reduced.at_bin)
    total, se_total = reduced.total.mean(axis=1), _se(reduced.total)
    background = reduced.background_at_bin.mean(axis=0)
    interaction = reduced.interaction
    records = []
    for r, a in enumerate(plan.arrangements):
        (seq1, start1), *second = a.insertions
        seq2, start2 = second[0] if second else (None, None)
        for k, track in enumerate(identifiers):
            pair = interaction is not None
            records.append({
                "spacing": a.spacing, "orientation": a.orientation, "track": track,
                "bin": plan.insertion_bin, "change": mean[r, k], "se": se[r, k],
                "change_total": total[r, k], "se_total": se_total[r, k],
                "background": background[k],
                "change_motif1": reduced.alone1[r, :, k].mean() if pair else None,
                "change_motif2": reduced.alone2[r, :, k].mean() if pair else None,
                "interaction": interaction[r, :, k].mean() if pair else None,
                "se_interaction": _se(interaction[r : r + 1, :, k : k + 1])[0, 0] if pair else None,
                "n_backgrounds": reduced.n, "motif1": m1.name, "start1": start1,
                "sequence1": seq1, "motif2": m2.name if m2 else None, "start2": start2,
                "sequence2": seq2,
            })  # fmt: skip
    frame = pd.DataFrame.from_records(records, columns=TABLE_COLUMNS)
    for name in ("spacing", "start2"):
        frame[name] = frame[name].astype("Int64")
    return frame


def _sibling(path: Path, suffix: str) -> Path:
    """``out.tsv`` → ``out<suffix>``."""
    return path.with_name((path.stem if path.suffix else path.name) + suffix)


def marginalize(
    options: MarginalizeOptions, model: nn.Module | None = None, manifest: dict | None = None
) -> MarginalizeSummary:
    """Run ``gitool marginalize`` (see the module docstring): the TSV at ``options.out``, and
    beside it ``OUT-stem.png`` (the plot) and ``OUT-stem.npz`` (per-background values).

    ``model`` (with the dataset ``manifest`` of its head, for track names) replaces
    ``options.model`` from Python.

    Raises:
        InputError: a bad motif, spacing, orientation, track, run, genome or output — all
        before any prediction.
    """
    from gitool.data.tracks import select_tracks
    from gitool.predict.model import default_batch_size, genome_files, open_genome, prepare_model
    from gitool.runs import check_which, default_run, resolve_device

    began = time.perf_counter()
    motif1 = resolve_motif(options.motif, "motif")
    motif2 = None if options.motif2 is None else resolve_motif(options.motif2, "motif2")
    pair = motif2 is not None
    spacings = parse_spacings(options.spacings, pair)
    orientations = parse_orientations(options.orientations, pair)
    check_which(options.which)
    dev = resolve_device(options.device)
    source = model if model is not None else options.model or default_run()
    spec = prepare_model(source, options.head, options.which, manifest)
    columns = select_tracks(spec.rows, options.tracks, field="tracks")
    identifiers = [str(spec.rows[c]["identifier"]) for c in columns]
    g = spec.geometry
    plan = plan_insertions(
        motif1, motif2, spacings, orientations, g.seq_length, g.bin_size, g.target_length
    )
    held = 2 * 8 * len(plan.arrangements) * g.target_length * len(columns)
    if held > MAX_PROFILE_BYTES:
        raise InputError(
            f"all {len(columns):,} tracks × {len(plan.arrangements)} arrangements × "
            f"{g.target_length} bins would hold {held / 2**30:.1f} GiB of per-bin profiles; "
            f"choose tracks with {opt('tracks')} (or fewer {opt('spacings')}/"
            f"{opt('orientations')})",
            field="tracks",
        )
    genome = open_genome(spec, options.genome)
    motif_files = [Path(t) for t in (options.motif, options.motif2) if t and Path(t).is_file()]
    outputs = Outputs(
        options.force, inputs=[*spec.inputs, *genome_files(genome.path), *motif_files]
    )
    out = outputs.file(options.out, "TSV", field="out")
    png = outputs.file(_sibling(out, ".png"), "PNG", field="out")
    npz = outputs.file(_sibling(out, ".npz"), "npz", field="out")
    batch_size = options.batch_size
    if batch_size is None:
        batch_size = default_batch_size(dev)
        info(f"batch size {batch_size} (the default on {dev.type}; {opt('batch_size')} to change)")
    try:
        backgrounds = shuffled_backgrounds(
            genome, g.seq_length, options.n_backgrounds, options.seed
        )
    finally:
        genome.close()
    for note in (motif1.note, motif2.note if motif2 else "", *plan.notes):
        if note:
            warn(note)
    info(
        f"motif 1: {motif1.describe()}, centred at input bp {plan.centre} (bin {plan.insertion_bin})"
    )
    if motif2 is not None:
        info(
            f"motif 2: {motif2.describe()}, at spacings {', '.join(map(str, spacings))} bp after motif 1"
        )

    reduced = _Reducer(plan, options.n_backgrounds, g.target_length, len(columns), pair)
    n_inputs = options.n_backgrounds * len(plan.conditions)
    with progress("predicting with and without the motif(s)", n_inputs) as advance:
        for i, predictions in iter_insertion_predictions(
            spec.model, backgrounds.one_hot(), plan.conditions, spec.head, columns, batch_size,
            dev, advance,
        ):  # fmt: skip
            reduced.add(i, predictions)
    table = _table(plan, reduced, identifiers, motif1, motif2)
    plotted = identifiers[:MAX_PLOTTED]
    with (
        committed_together(),  # all three, or none
        staged_file(out) as tmp_tsv,
        staged_file(npz) as tmp_npz,
        staged_file(png) as tmp_png,
    ):
        table.to_csv(tmp_tsv, sep="\t", index=False, float_format="%.6g", na_rep="NA")
        with open(tmp_npz, "wb") as handle:
            _write_npz(handle, plan, reduced, backgrounds, identifiers, g.bin_size)
        _plot(tmp_png, table, reduced, plan, identifiers[:MAX_PLOTTED], motif1, motif2,
              g.bin_size, spec.label)  # fmt: skip
    if len(identifiers) > MAX_PLOTTED:
        info(f"the plot shows the first {MAX_PLOTTED} of {len(identifiers)} tracks")
    return MarginalizeSummary(
        [out, png, npz], table, motif1, motif2, options.n_backgrounds, n_inputs, spec.head,
        spec.label, str(dev), time.perf_counter() - began, plotted,
    )  # fmt: skip


def _write_npz(
    handle, plan: Plan, reduced: _Reducer, backgrounds: Backgrounds, identifiers: list[str],
    bin_size: int,
) -> None:  # fmt: skip
    """The per-background values behind the table (see docs/marginalize.md)."""
    mean, se = reduced.profile()
    rows = plan.arrangements
    pair = reduced.pair
    empty = np.zeros((0,) + reduced.at_bin.shape[1:])
    np.savez_compressed(
        handle,
        tracks=np.array(identifiers),
        spacing=np.array([-1 if a.spacing is None else a.spacing for a in rows], dtype=np.int64),
        orientation=np.array([a.orientation for a in rows]),
        sequence1=np.array([a.insertions[0][0] for a in rows]),
        start1=np.array([a.insertions[0][1] for a in rows], dtype=np.int64),
        sequence2=np.array([a.insertions[1][0] if pair else "" for a in rows]),
        start2=np.array([a.insertions[1][1] if pair else -1 for a in rows], dtype=np.int64),
        insertion_bin=np.int64(plan.insertion_bin),
        bin_size=np.int64(bin_size),
        change_at_bin=reduced.at_bin.astype(np.float32),
        change_total=reduced.total.astype(np.float32),
        change_motif1=(reduced.alone1 if pair else empty).astype(np.float32),
        change_motif2=(reduced.alone2 if pair else empty).astype(np.float32),
        background_at_bin=reduced.background_at_bin.astype(np.float32),
        background_total=reduced.background_total.astype(np.float32),
        profile_mean=mean.astype(np.float32),
        profile_se=se.astype(np.float32),
        backgrounds=backgrounds.codes,
        chrom=np.array(backgrounds.chroms),
        start=backgrounds.starts,
        seed=backgrounds.seeds,
    )


def _plot(
    path: Path, table: pd.DataFrame, reduced: _Reducer, plan: Plan, tracks: list[str],
    m1: InsertedMotif, m2: InsertedMotif | None, bin_size: int, label: str,
) -> None:  # fmt: skip
    from gitool.plots import pyplot, save_png

    plt = pyplot()
    ncols = min(3, len(tracks))
    nrows = math.ceil(len(tracks) / ncols)
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(4.6 * ncols, 3.3 * nrows), squeeze=False, layout="constrained"
    )
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    if m2 is None:
        mean, se = reduced.profile()
        x = (np.arange(mean.shape[1]) - plan.insertion_bin) * bin_size
        for k, track in enumerate(tracks):
            ax = axes.flat[k]
            for r, a in enumerate(plan.arrangements):
                colour = colours[r % len(colours)]
                ax.plot(x, mean[r, :, k], color=colour, lw=1.2, label=f"{a.orientation} strand")
                if reduced.n > 1:
                    ax.fill_between(
                        x, mean[r, :, k] - se[r, :, k], mean[r, :, k] + se[r, :, k],
                        color=colour, alpha=0.25, lw=0,
                    )  # fmt: skip
            ax.axhline(0, color="0.6", lw=0.6)
            ax.axvline(0, color="0.6", lw=0.6, ls=":")
            ax.set_title(track, fontsize=9)
            ax.set_xlabel("bp from the insertion bin (bin starts)", fontsize=8)
            ax.set_ylabel("predicted change", fontsize=8)
        title = (
            f"{label}: {m1.name} inserted ({m1.sequence}); mean ± s.e. over {reduced.n} backgrounds"
        )
    else:
        for k, track in enumerate(tracks):
            ax = axes.flat[k]
            rows = table[table["track"] == track]
            for r, (orientation, part) in enumerate(rows.groupby("orientation", sort=False)):
                colour = colours[r % len(colours)]
                spacing = part["spacing"].to_numpy(dtype=float)
                ax.errorbar(
                    spacing, part["change"], yerr=part["se"].fillna(0), color=colour,
                    marker="o", ms=3, lw=1.2, capsize=2, label=orientation,
                )  # fmt: skip
                additive = part["change_motif1"] + part["change_motif2"]
                ax.plot(spacing, additive, color=colour, lw=0.8, ls="--")
            ax.axhline(0, color="0.6", lw=0.6)
            ax.set_title(track, fontsize=9)
            ax.set_xlabel("spacing (bp, motif 1's end to motif 2's start)", fontsize=8)
            ax.set_ylabel("change at the insertion bin", fontsize=8)
        title = (
            f"{label}: {m1.name} + {m2.name}, mean ± s.e. over {reduced.n} backgrounds "
            "(dashed: sum of each motif alone)"
        )
    for ax in list(axes.flat)[len(tracks) :]:
        ax.set_visible(False)
    axes.flat[0].legend(fontsize=7, frameon=False, loc="best")
    fig.suptitle(title, fontsize=9)
    save_png(fig, path)
