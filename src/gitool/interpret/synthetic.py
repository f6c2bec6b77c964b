"""The GLIFAC synthetic motif-interaction benchmark (GLIFAC paper appendix A).

``n`` random sequences (uniform i.i.d. A/C/G/T background, default 200 bp), each with 1 to
5 motif instances: motifs chosen uniformly with replacement, each instance sampled base by
base from the motif's PPM and written on either strand (probability 0.5 each; on the minus
strand the sampled instance is reverse complemented). Instances do not overlap and there is
at least 1 bp between instances and between an instance and either end; the placement is
uniform over all such arrangements of the (randomly ordered) instances.

Labels (one per motif, in ``motifs`` order) follow appendix A:

* "and" pairs (ELF1/SIX3, TAL1/GATA1): both labelled 1 only when both motifs are present;
* "xor" pairs (ESR1/FOXN3, IRF1/SPI1): each labelled 1 when present without its partner,
  neither when both are present (binding inhibited);
* every other motif (CEBPB, NFIB, TEAD1, YY1): labelled 1 when present.

:func:`save_store` writes the benchmark as a label store (:mod:`gitool.data.labels`) that
``gitool train`` reads: a seeded 70/10/20 train/valid/test split, the instance table, the
ground-truth interactions and the motifs used.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from gitool.config.synth_motifs import SynthMotifsOptions
from gitool.console import info, warn
from gitool.data.genome import reverse_complement
from gitool.data.labels import (
    INTERACTION_KINDS,
    Interaction,
    LabelStore,
    check_label_store_output,
    write_label_store,
)
from gitool.data.windows import parse_fractions
from gitool.errors import InputError, opt
from gitool.interpret.motifs import (
    Motif,
    best_scan_scores,
    format_jaspar,
    information_content,
    load_builtin_motifs,
    motifs_from_option,
    sample_instances,
)
from gitool.metrics import auroc

__all__ = [
    "DETECTABLE_AUROC",
    "INSTANCE_DTYPE",
    "INTERACTIONS",
    "SPLIT_NAMES",
    "Interaction",
    "SyntheticData",
    "detectability",
    "generate",
    "labels_from_presence",
    "parse_interactions",
    "save_store",
    "split_assignment",
    "synth_motifs",
]


INTERACTIONS: tuple[Interaction, ...] = (
    Interaction("ELF1", "SIX3", "and"),
    Interaction("TAL1", "GATA1", "and"),
    Interaction("ESR1", "FOXN3", "xor"),
    Interaction("IRF1", "SPI1", "xor"),
)

#: One row per embedded instance; ``start`` is 0-based on the forward strand.
INSTANCE_DTYPE = np.dtype(
    [("sequence", np.int64), ("motif", np.int16), ("start", np.int32), ("strand", "U1")]
)
SPLIT_NAMES = ("train", "valid", "test")
_CHUNK = 8192  # sequences per placement chunk (fixed: the random stream depends on it)


@dataclass(frozen=True, eq=False)
class SyntheticData:
    """A generated benchmark.

    ``codes`` ``(n, length)`` uint8 (A=0 C=1 G=2 T=3); ``labels`` ``(n, n_motifs)`` uint8;
    ``instances`` a structured array of :data:`INSTANCE_DTYPE` sorted by sequence then start;
    ``motifs`` name the label columns and ``instances['motif']`` indices.
    """

    codes: np.ndarray
    labels: np.ndarray
    instances: np.ndarray
    motifs: tuple[Motif, ...]
    interactions: tuple[Interaction, ...]
    seed: int

    @property
    def motif_names(self) -> tuple[str, ...]:
        return tuple(m.name for m in self.motifs)

    def presence(self) -> np.ndarray:
        """``(n, n_motifs)`` uint8: 1 where the sequence holds at least one instance."""
        out = np.zeros(self.labels.shape, dtype=np.uint8)
        out[self.instances["sequence"], self.instances["motif"]] = 1
        return out


def resolve_interactions(
    names: tuple[str, ...], interactions: tuple[Interaction, ...]
) -> tuple[Interaction, ...]:
    """``interactions`` checked against the motif ``names`` and spelled as they are: a name
    matches exactly or, failing that, in another case (``elf1`` is ``ELF1``, as
    ``--motifs elf1`` is).

    Raises:
        InputError: a name that is no motif's, a kind not 'and'/'xor', a motif paired with
            itself or in two pairs (field ``interactions``).
    """
    folded: dict[str, list[str]] = {}
    for name in names:
        folded.setdefault(name.casefold(), []).append(name)

    def spelled(name: str) -> str | None:
        if name in names:
            return name
        matches = folded.get(name.casefold(), [])
        return matches[0] if len(matches) == 1 else None

    seen: set[str] = set()
    out = []
    for item in interactions:
        a, b = spelled(item.a), spelled(item.b)
        missing = [given for given, found in ((item.a, a), (item.b, b)) if found is None]
        if missing:
            raise InputError(
                f"{item.a}/{item.b} names motif(s) {', '.join(missing)} that are not among the "
                f"motifs ({', '.join(names)}); give {opt('interactions')} for these motifs, or "
                f"{opt('interactions')} none",
                field="interactions",
            )
        if item.kind not in INTERACTION_KINDS:
            raise InputError(
                f"{item.a}/{item.b}: kind {item.kind!r} is not 'and' or 'xor'",
                field="interactions",
            )
        if a == b:
            raise InputError(
                f"{item.a}/{item.b}: a motif cannot pair with itself", field="interactions"
            )
        if a in seen or b in seen:
            twice = a if a in seen else b
            raise InputError(
                f"{item.a}/{item.b}: {twice} is already in a pair; a motif may be in at most "
                "one pair",
                field="interactions",
            )
        seen.update((a, b))
        out.append(Interaction(a, b, item.kind))
    return tuple(out)


def _check_interactions(
    names: tuple[str, ...], interactions: tuple[Interaction, ...]
) -> list[tuple[int, int, str]]:
    index = {n: i for i, n in enumerate(names)}
    return [(index[i.a], index[i.b], i.kind) for i in resolve_interactions(names, interactions)]


def parse_interactions(text: str | None) -> tuple[Interaction, ...]:
    """``"ELF1/SIX3:and,ESR1/FOXN3:xor"`` → interactions; ``None``: the GLIFAC paper's four;
    ``"none"``: no interactions (every motif labelled when present)."""
    if text is None:
        return INTERACTIONS
    if text.strip().lower() == "none":
        return ()
    out = []
    for item in text.split(","):
        pair, _, kind = item.strip().partition(":")
        a, _, b = pair.partition("/")
        if not (a and b and kind):
            raise InputError(
                f"{item.strip()!r}: expected MOTIF_A/MOTIF_B:and or :xor, "
                "e.g. ELF1/SIX3:and,ESR1/FOXN3:xor (or 'none')",
                field="interactions",
            )
        out.append(Interaction(a.strip(), b.strip(), kind.strip().lower()))
    return tuple(out)


def labels_from_presence(
    presence: np.ndarray,
    names: tuple[str, ...] | list[str],
    interactions: tuple[Interaction, ...] = INTERACTIONS,
) -> np.ndarray:
    """Labels ``(n, n_motifs)`` uint8 from motif presence ``(n, n_motifs)`` (appendix A logic)."""
    names = tuple(names)
    present = np.asarray(presence).astype(bool)
    if present.ndim != 2 or present.shape[1] != len(names):
        raise InputError(f"presence must have shape (n, {len(names)}), got {present.shape}")
    labels = present.copy()
    for a, b, kind in _check_interactions(names, tuple(interactions)):
        if kind == "and":
            both = present[:, a] & present[:, b]
            labels[:, a] = both
            labels[:, b] = both
        else:
            labels[:, a] = present[:, a] & ~present[:, b]
            labels[:, b] = present[:, b] & ~present[:, a]
    return labels.astype(np.uint8)


def _check_generate(
    motifs: list[Motif],
    interactions: tuple[Interaction, ...],
    n: int,
    seed: int,
    length: int,
    min_instances: int,
    max_instances: int,
) -> None:
    """:func:`generate`'s arguments; the messages name the ``gitool synth-motifs`` options."""
    names = tuple(m.name for m in motifs)
    if not motifs:
        raise InputError("names no motifs; give built-in names or a JASPAR/MEME file",
                         field="motifs")  # fmt: skip
    if len(set(names)) != len(names):
        raise InputError(f"motif names must be unique, got {', '.join(names)}", field="motifs")
    resolve_interactions(names, interactions)
    SynthMotifsOptions(
        sequences=n, length=length, min_instances=min_instances, max_instances=max_instances,
        seed=seed,
    )  # fmt: skip
    longest = max(m.length for m in motifs)
    needed = max_instances * longest + max_instances + 1
    if length < needed:
        raise InputError(
            f"{length} is too short for {max_instances} instances of the longest motif "
            f"({longest} bp) with 1-bp gaps: give {opt('length')} >= {needed} (or a lower "
            f"{opt('max_instances')})",
            field="length",
        )


def _embed(
    codes: np.ndarray,
    motifs: list[Motif],
    seq_of: np.ndarray,
    motif_of: np.ndarray,
    starts: np.ndarray,
    minus: np.ndarray,
    rng: np.random.Generator,
    pseudocount: float,
) -> None:
    """Write the instances into ``codes`` in place, motif by motif: each sampled from its
    motif's PPM and reverse complemented where ``minus``."""
    for m, motif in enumerate(motifs):
        rows = np.flatnonzero(motif_of == m)
        if rows.size == 0:
            continue
        sampled = sample_instances(motif, rows.size, rng, pseudocount)
        flip = minus[rows]
        sampled[flip] = reverse_complement(sampled[flip])
        cols = starts[rows, None] + np.arange(motif.length)
        codes[seq_of[rows, None], cols] = sampled


def _instance_table(
    seq_of: np.ndarray, motif_of: np.ndarray, starts: np.ndarray, minus: np.ndarray
) -> np.ndarray:
    """The instances as a structured array of :data:`INSTANCE_DTYPE`."""
    instances = np.empty(len(seq_of), dtype=INSTANCE_DTYPE)
    instances["sequence"] = seq_of
    instances["motif"] = motif_of
    instances["start"] = starts
    instances["strand"] = np.where(minus, "-", "+")
    return instances


def generate(
    n: int = 100_000,
    seed: int = 0,
    motifs: list[Motif] | None = None,
    length: int = 200,
    min_instances: int = 1,
    max_instances: int = 5,
    interactions: tuple[Interaction, ...] = INTERACTIONS,
    pseudocount: float = 0.0,
) -> SyntheticData:
    """Generate the benchmark; deterministic given all arguments (``seed`` included).

    Raises:
        InputError: an argument is out of range; the message names its ``gitool synth-motifs``
            option (``n`` is ``--sequences``).
    """
    motifs = load_builtin_motifs() if motifs is None else list(motifs)
    interactions = tuple(interactions)
    _check_generate(motifs, interactions, n, seed, length, min_instances, max_instances)
    names = tuple(m.name for m in motifs)
    interactions = resolve_interactions(names, interactions)
    widths = np.array([m.length for m in motifs], dtype=np.int64)

    # The draws, in this order (the random stream depends on it): background, instance
    # counts, motifs, strands, placement, then the instances' bases motif by motif.
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, 4, size=(n, length), dtype=np.uint8)
    counts = rng.integers(min_instances, max_instances + 1, size=n)
    total = int(counts.sum())
    seq_of = np.repeat(np.arange(n, dtype=np.int64), counts)
    motif_of = rng.integers(0, len(motifs), size=total).astype(np.int16)
    minus = rng.random(total) < 0.5
    # rank of each instance within its sequence (order along the sequence)
    first = np.cumsum(counts) - counts
    rank = np.arange(total) - np.repeat(first, counts)
    starts = _place(rng, counts, widths[motif_of], rank, first, length, max_instances)
    _embed(codes, motifs, seq_of, motif_of, starts, minus, rng, pseudocount)

    presence = np.zeros((n, len(motifs)), dtype=bool)
    presence[seq_of, motif_of] = True
    return SyntheticData(
        codes=codes,
        labels=labels_from_presence(presence, names, interactions),
        instances=_instance_table(seq_of, motif_of, starts, minus),
        motifs=tuple(motifs),
        interactions=interactions,
        seed=seed,
    )


#: A motif whose instances a log-odds scan separates from sequences without it at a lower
#: AUROC than this is hard for any model to learn (the old latest-version GATA1 scored 0.90).
DETECTABLE_AUROC = 0.95
WARN_MIN_SEQUENCES = 100  # with and without a motif, for the detectability warning


def detectability(data: SyntheticData, max_sequences: int = 20_000) -> pd.DataFrame:
    """How well each motif stands out in the generated sequences: one row per motif.

    Scans the first ``max_sequences`` sequences with each motif's log-odds matrix (best
    score over positions and strands, :func:`~gitool.interpret.motifs.best_scan_scores`) and
    scores it against presence: ``scan_auroc``, and ``scan_recall`` — the fraction of
    sequences holding the motif that score above the 99th percentile of those without it.
    The sequences without it hold other motifs, so a motif that a similar one also matches
    scores low too. A near-ideal detector of presence, so low values mean no model can learn
    the motif from these sequences (and an "and" pair that needs it is unfindable).

    Columns: ``motif``, ``matrix_id``, ``width``, ``bits`` (information content),
    ``scan_auroc``, ``scan_recall``, ``present`` (scanned sequences holding the motif).
    """
    codes = data.codes[:max_sequences]
    present = data.presence()[:max_sequences].astype(bool)
    rows = []
    for m, motif in enumerate(data.motifs):
        scores = best_scan_scores(codes, motif)
        has, lacks = scores[present[:, m]], scores[~present[:, m]]
        usable = has.size > 0 and lacks.size > 0
        rows.append({
            "motif": motif.name,
            "matrix_id": motif.matrix_id,
            "width": motif.length,
            "bits": round(information_content(motif), 2),
            "scan_auroc": auroc(scores, present[:, m]) if usable else float("nan"),
            "scan_recall": float((has > np.quantile(lacks, 0.99)).mean()) if usable
            else float("nan"),
            "present": int(has.size),
        })  # fmt: skip
    return pd.DataFrame(rows)


def _place(
    rng: np.random.Generator,
    counts: np.ndarray,
    widths: np.ndarray,
    rank: np.ndarray,
    first: np.ndarray,
    length: int,
    max_instances: int,
) -> np.ndarray:
    """0-based starts of the instances, uniform over non-overlapping layouts with >= 1-bp gaps.

    With ``k`` instances of total width ``W`` in order, the gaps ``g_0..g_k`` are >= 1 and sum
    to ``length - W``. Extra slack ``F = length - W - (k + 1)`` is split among ``k + 1`` gaps
    uniformly over compositions: choose ``k`` distinct slots out of ``F + k`` (sorted, minus
    their rank) as the extra bases before each instance.
    """
    n = counts.size
    # total width per sequence and width of the instances before each one
    seq_width = np.add.reduceat(widths, first) if n else np.zeros(0, np.int64)
    before = np.cumsum(widths) - widths
    before -= np.repeat(before[first], counts)
    slack = length - seq_width - (counts + 1)
    extra = np.empty(counts.sum(), dtype=np.int64)
    slots = np.arange(length + max_instances)
    for lo in range(0, n, _CHUNK):
        hi = min(lo + _CHUNK, n)
        keys = rng.random((hi - lo, slots.size))
        keys[slots[None, :] >= (slack[lo:hi] + counts[lo:hi])[:, None]] = 2.0  # invalid slots
        chosen = np.argpartition(keys, max_instances - 1, axis=1)[:, :max_instances]
        # keep each sequence's k smallest keys, then order the chosen slots along the sequence
        order = np.take_along_axis(keys, chosen, axis=1).argsort(axis=1)
        chosen = np.take_along_axis(chosen, order, axis=1)
        k = counts[lo:hi]
        chosen = np.where(np.arange(max_instances)[None, :] < k[:, None], chosen, slots.size)
        chosen.sort(axis=1)
        mask = np.arange(max_instances)[None, :] < k[:, None]
        extra[first[lo] : first[lo] + k.sum()] = (chosen - np.arange(max_instances))[mask]
    return (1 + rank + before + extra).astype(np.int64)


# --------------------------------------------------------------------------------------
# Split and file
# --------------------------------------------------------------------------------------


def split_assignment(
    n: int, seed: int = 0, fractions: tuple[float, float, float] = (0.7, 0.1, 0.2)
) -> np.ndarray:
    """uint8 ``(n,)``: 0 train, 1 valid, 2 test; train and valid get ``round(f * n)``
    sequences, test the rest; seeded shuffle."""
    if len(fractions) != 3 or min(fractions) < 0 or not np.isclose(sum(fractions), 1.0):
        raise InputError(
            f"split fractions must be three numbers >= 0 summing to 1, got {fractions}"
        )
    n_train = int(round(fractions[0] * n))
    n_valid = min(int(round(fractions[1] * n)), n - n_train)
    split = np.full(n, 2, dtype=np.uint8)
    order = np.random.default_rng([seed, 1]).permutation(n)
    split[order[:n_train]] = 0
    split[order[n_train : n_train + n_valid]] = 1
    return split


def save_store(
    path: str | Path,
    data: SyntheticData,
    split_seed: int | None = None,
    fractions: tuple[float, float, float] = (0.7, 0.1, 0.2),
    force: bool = False,
    existed: bool | None = None,
) -> Path:
    """Write ``data`` as a label store at ``path`` (atomically; see :mod:`gitool.data.labels`).

    The split is seeded by ``split_seed`` (default: the data's seed). ``instances.tsv`` lists
    every embedded instance (global ``sequence`` row, its ``split`` and ``index`` there,
    ``motif``, 0-based ``start``, ``end``, ``strand``); ``motifs.jaspar`` the motifs used.
    ``force`` replaces only an earlier label store; ``existed``: whether ``path`` existed when
    it was claimed (see :func:`~gitool.data.labels.write_label_store`).
    """
    split_seed = data.seed if split_seed is None else split_seed
    split = split_assignment(data.codes.shape[0], split_seed, fractions)
    # a split given a fraction > 0 but too few sequences to get one (0 is a choice)
    empty = [n for s, n in enumerate(SPLIT_NAMES) if fractions[s] > 0 and not (split == s).any()]
    if empty:
        warn(
            f"the {' and '.join(empty)} split{'s have' if len(empty) > 1 else ' has'} no "
            f"sequences ({data.codes.shape[0]:,} sequences, split fractions "
            f"{','.join(f'{f:g}' for f in fractions)}); give more {opt('sequences')}"
        )
    names = np.array(data.motif_names)
    widths = np.array([m.length for m in data.motifs])
    inst = data.instances
    instances = pd.DataFrame(
        {
            "sequence": inst["sequence"],
            "motif": names[inst["motif"]],
            "start": inst["start"],
            "end": inst["start"] + widths[inst["motif"]],
            "strand": inst["strand"],
        }
    )
    source = {
        "generator": "gitool synth-motifs (GLIFAC paper appendix A)",
        "sequences": int(data.codes.shape[0]),
        "seed": data.seed,
        "split_seed": split_seed,
        "split_fractions": list(fractions),
        "motifs": [{"name": m.name, "matrix_id": m.matrix_id} for m in data.motifs],
        "label_logic": "'and' pairs labelled only together; 'xor' pairs labelled when present "
        "alone, neither when both are present; the others when present",
    }
    return write_label_store(
        path,
        data.codes,
        data.labels,
        split,
        data.motif_names,
        interactions=data.interactions,
        motifs_jaspar=format_jaspar(data.motifs),
        instances=instances,
        source=source,
        force=force,
        existed=existed,
    )


# --------------------------------------------------------------------------------------
# The command
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SynthMotifsSummary:
    """What :func:`synth_motifs` wrote: ``out``, the sequences per split, the motif tasks
    and the interactions."""

    out: Path
    counts: dict[str, int]
    motifs: int
    interactions: int


def synth_motifs(options: SynthMotifsOptions) -> SynthMotifsSummary:
    """What ``gitool synth-motifs`` runs: claim ``out`` (new, or with ``force`` an earlier
    label store; never the motif file it reads), generate the benchmark, write it as a label
    store, and warn about motifs that hardly stand out from the background
    (:func:`detectability`)."""
    o = options
    motif_file = o.motifs if o.motifs is not None and Path(o.motifs).is_file() else None
    # claimed before the sequences are generated
    existed = check_label_store_output(o.out, o.force, inputs=[motif_file])
    fractions = parse_fractions(o.split_fractions)
    data = generate(
        o.sequences, seed=o.seed, motifs=motifs_from_option(o.motifs), length=o.length,
        min_instances=o.min_instances, max_instances=o.max_instances,
        interactions=parse_interactions(o.interactions),
    )  # fmt: skip
    store = LabelStore(save_store(o.out, data, fractions=fractions, force=o.force, existed=existed))
    counts = {s: store.count(s) for s in SPLIT_NAMES}
    summary = SynthMotifsSummary(Path(o.out), counts, len(data.motifs), len(data.interactions))
    shown = ", ".join(f"{s} {n:,}" for s, n in counts.items())
    info(
        f"[green]wrote[/] {o.out}: {o.sequences:,} sequences of {o.length} bp ({shown}), "
        f"{summary.motifs} motif tasks, {summary.interactions} interactions"
    )
    _warn_undetectable(data)
    return summary


def _warn_undetectable(data: SyntheticData) -> None:
    """One warning per motif that a log-odds scan hardly tells apart (models will not learn
    it either), judged on at least :data:`WARN_MIN_SEQUENCES` sequences with the motif and
    as many without (on fewer, a scan's AUROC is mostly chance)."""
    n = min(len(data.codes), 20_000)
    for row in detectability(data).itertuples():
        if min(row.present, n - row.present) < WARN_MIN_SEQUENCES:
            continue
        if row.scan_auroc < DETECTABLE_AUROC:
            warn(
                f"motif {row.motif} ({row.matrix_id}, {row.width} bp, {row.bits:.1f} bits): a "
                f"log-odds scan separates sequences with it from those without at AUROC "
                f"{row.scan_auroc:.3f} only (< {DETECTABLE_AUROC}), so models will hardly "
                "learn it; use a longer, more informative matrix, or drop a similar motif"
            )
