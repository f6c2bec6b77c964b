"""``gitool interactions``: motif interactions from a trained model's attention (GLIFAC and
the SATORI-style local baseline, :mod:`gitool.interpret.glifac`).

Two passes over a split of a store: each filter's maximum activation, then the attended
position pairs (every ``--threshold`` at once) and, for CAN models, the filters' position
probability matrices from the sites above half their maximum.

"Filters" are, for ``can`` models, the first convolution's filters after max pooling (as in
the GLIFAC paper); for ``swin`` and ``enformer`` the channels entering the chosen attention
layer (its normalised input; a swin layer's regular and shifted blocks both count). CAN
filters are labelled with their best-matching motif, which turns the filter maps into motif
maps; with a ground truth (label stores from ``gitool synth-motifs``) the motif maps are
scored by AUROC, AUPR and SNR (GLIFAC paper §4).

Output folder (written to a hidden sibling, then renamed)::

    filters.tsv                 filter, motif, best_match, matrix_id, similarity, strand,
                                offset, sites, max_activation
    filters.meme                the filters' PPMs (MEME format; Tomtom reads it)
    glifac_{filters,motifs}_t{T}.tsv   GLIFAC map at threshold T (motifs: labelled filters)
    local_{filters,motifs}_t{T}.tsv    local-attention counts
    interactions_t{T}.png       the maps as heatmaps, ground truth outlined
    scores.tsv                  method, scoring, level, threshold, auroc, aupr, snr,
                                positives, negatives, pairs (with a ground truth; level
                                "motif": the motif pairs; "filter": every pair of
                                differently labelled filters, the authors' unit; scoring
                                "gitool" or "authors": see glifac.score_filter_pairs)
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from gitool.config.interactions import InteractionsOptions
from gitool.console import info, progress, warn
from gitool.data.dataset import codes_to_one_hot
from gitool.data.labels import LabelStore, open_any_store
from gitool.data.store import store_inputs
from gitool.errors import InputError, opt
from gitool.files import Outputs, check_output_folder, staged_folder, write_tsv
from gitool.interpret.glifac import (
    FilterPPMs,
    InteractionMaps,
    PairAccumulator,
    full_index,
    label_filters,
    match_motifs,
    motif_map,
    score_filter_pairs,
    score_map,
)
from gitool.interpret.layers import LayerInfo, attention_layout, select_layers
from gitool.interpret.motifs import Motif, motifs_from_option, ppm, read_motif_file
from gitool.interpret.plots import plot_interactions
from gitool.models.base import capture_attention
from gitool.models.can import CAN
from gitool.runs import default_store, load_run, resolve_device, run_label

DEFAULT_THRESHOLDS = InteractionsOptions.threshold
# Why 0.7: see InteractionsOptions.min_similarity.
DEFAULT_MIN_SIMILARITY = InteractionsOptions.min_similarity
#: What the output folder may hold (module docstring): --force replaces only such a folder.
OUTPUT_FILES = ("filters.tsv", "filters.meme", "glifac_*_t*.tsv", "local_*_t*.tsv",
                "interactions_t*.png", "scores.tsv")  # fmt: skip
OUTPUT_LAYOUT = dict.fromkeys(OUTPUT_FILES)


@dataclass
class InteractionResult:
    """What :func:`find_interactions` computed (and wrote to ``out``)."""

    out: Path
    maps: list[InteractionMaps]
    filters: pd.DataFrame
    motif_names: list[str]
    glifac_motifs: list[np.ndarray] = field(default_factory=list)
    local_motifs: list[np.ndarray] = field(default_factory=list)
    scores: pd.DataFrame | None = None
    truth: list[tuple[int, int]] = field(default_factory=list)


# --------------------------------------------------------------------------- sources


class _Source:
    """How to get, for a one-hot batch, the filters' activations and their attention."""

    def __init__(self, model: torch.nn.Module, layer: int | None, label: str):
        self.model = model
        layout = attention_layout(model, label)
        self.is_can = isinstance(model, CAN)
        if layer is None:
            layer = layout[-1].layer
        self.modules: list[LayerInfo] = select_layers(layout, [layer], None)
        self.layer = layer
        attention = model.attention_layers()
        self.attention = [attention[info.module] for info in self.modules]
        if self.is_can:
            self.n_filters = int(model.config.filters)
            self.width = int(model.config.kernel_size)
        else:
            self.n_filters = int(self.attention[0].to_q.in_features)
            self.width = 0

    @contextmanager
    def _inputs(self) -> Iterator[list[torch.Tensor]]:
        """Capture each chosen attention module's input ``(B, L, C)``."""
        seen: list[torch.Tensor] = []
        hooks = [
            m.register_forward_pre_hook(lambda _m, args: seen.append(args[0].detach()))
            for m in self.attention
        ]
        try:
            yield seen
        finally:
            for h in hooks:
                h.remove()

    @torch.no_grad()
    def __call__(self, x: torch.Tensor):
        """``(conv (B, L, F) or None, [(activations (B, T, F), attn (B, nW, w, w),
        token_index (nW, w))] per attention module)``."""
        names = [info.module for info in self.modules]
        if self.is_can:
            conv = self.model.conv_activations(x)
            acts = self.model.pool_activations(conv)
            with capture_attention(self.model, names) as records:
                self.model(x)
            parts = []
            for record in records:
                attn = record.weights.float().amax(1)[:, None]  # heads → max: (B, 1, T, T)
                parts.append((acts, attn, full_index(acts.shape[1]).to(x.device)))
            return conv, parts
        with self._inputs() as seen, capture_attention(self.model, names) as records:
            self.model(x)
        parts = []
        for inputs, record in zip(seen, records, strict=True):
            if "token_index" in record.meta:  # swin windows (B, nW, H, w, w)
                attn = record.weights.float().amax(2)
                index = record.meta["token_index"].to(x.device)
                n = int(record.meta.get("n_tokens", inputs.shape[1]))
                # A shifted block attends over roll(x, -shift); token_index names original
                # tokens, so put its input back in token order.
                acts = torch.roll(inputs[:, :n], int(record.meta.get("shift", 0)), dims=1)
            else:  # full attention (B, H, T, T)
                attn = record.weights.float().amax(1)[:, None]
                index = full_index(inputs.shape[1]).to(x.device)
                acts = inputs
            parts.append((acts.float(), attn, index))
        return None, parts


def _sequence_batches(
    sequences: np.ndarray, n: int, batch_size: int, device: torch.device
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    for lo in range(0, n, batch_size):
        codes = torch.from_numpy(np.array(sequences[lo : min(lo + batch_size, n)])).to(device)
        yield codes, codes_to_one_hot(codes)


# --------------------------------------------------------------------------- motifs


def _motifs(store, motifs: str | None) -> list[Motif]:
    """``--motifs`` if given, else the store's own motifs, else the 12 built-in ones."""
    if motifs is None and isinstance(store, LabelStore) and store.motif_file() is not None:
        return read_motif_file(store.motif_file())
    return motifs_from_option(motifs)


def _warn_unlearned(names, labels, truth, min_similarity) -> None:
    """One warning naming the motifs no filter matches: their interactions cannot show up
    in any map, whatever the attention does."""
    missing = [i for i in range(len(names)) if not (labels == i).any()]
    if not missing:
        return
    lost = [f"{names[a]}/{names[b]}" for a, b in truth if a in missing or b in missing]
    warn(
        f"no filter matches {', '.join(names[i] for i in missing)} ({opt('min_similarity')} "
        f"{min_similarity:g}), so the maps cannot show interactions involving "
        + ("them" if not lost else f"them ({', '.join(lost)} of the ground truth)")
        + "; the model has not learned those motifs (see filters.tsv: best_match, similarity)"
    )


def _truth(store, names: list[str]) -> list[tuple[int, int]]:
    """The store's ground-truth pairs as motif indices; a pair whose motif is not among
    ``--motifs`` cannot be scored, and says so."""
    if not isinstance(store, LabelStore):
        return []
    index = {n: i for i, n in enumerate(names)}
    pairs = store.interactions()
    dropped = [f"{i.a}/{i.b}" for i in pairs if i.a not in index or i.b not in index]
    if dropped:
        warn(
            f"ground-truth pair(s) {', '.join(dropped)} of {store.path} name motifs that "
            f"{opt('motifs')} does not include, so they are left out of the scores; pass motifs "
            "with those names (default: the store's own motifs.jaspar)"
        )
    return [(index[i.a], index[i.b]) for i in pairs if i.a in index and i.b in index]


def format_meme(ppms: np.ndarray, names: Sequence[str], sites: np.ndarray) -> str:
    """PPMs ``(F, w, 4)`` as a MEME motif file (A C G T)."""
    lines = ["MEME version 4", "", "ALPHABET= ACGT", "", "strands: + -", ""]
    lines += ["Background letter frequencies", "A 0.25 C 0.25 G 0.25 T 0.25", ""]
    for name, matrix, n in zip(names, ppms, sites, strict=True):
        lines.append(f"MOTIF {name}")
        lines.append(f"letter-probability matrix: alength= 4 w= {matrix.shape[0]} nsites= {int(n)}")
        lines += [" ".join(f"{v:.4f}" for v in row) for row in matrix]
        lines.append("")
    return "\n".join(lines)


# --------------------------------------------------------------------------- main


def _check_thresholds(thresholds: Sequence[float]) -> tuple[float, ...]:
    values = tuple(float(t) for t in thresholds) or DEFAULT_THRESHOLDS
    for t in values:
        if not 0.0 <= t <= 1.0:
            raise InputError(f"must be 0 to 1, got {t:g}", field="threshold")
    if len({threshold_tag(t) for t in values}) != len(values):  # they would share files
        listed = ", ".join(f"{t:g}" for t in values)
        raise InputError(f"values repeat: {listed}", field="threshold")
    return values


PREVIOUS = "the output of a previous `gitool interactions`"


def is_interactions_output(path: Path) -> bool:
    """Whether the folder ``path`` is an earlier output: it holds filters.tsv (the rest is
    checked against :data:`OUTPUT_LAYOUT`)."""
    return (path / "filters.tsv").is_file()


def _check_out(out: Path, force: bool) -> None:
    """``out``: new, or with ``force`` empty or a previous output, never a folder of other
    files (the inputs are refused by :meth:`Outputs.folder` before the passes)."""
    check_output_folder(out, force, is_interactions_output, PREVIOUS, layout=OUTPUT_LAYOUT)


def threshold_tag(threshold: float) -> str:
    """File-name tag of a threshold: ``0.1`` → ``t0.1``."""
    return f"t{threshold:g}"


def _check_options(min_similarity: float | None, batch_size: int | None) -> float:
    """``min_similarity`` (default :data:`DEFAULT_MIN_SIMILARITY`), with ``batch_size``."""
    if min_similarity is None:
        min_similarity = DEFAULT_MIN_SIMILARITY
    if not 0.0 < min_similarity <= 1.0:
        raise InputError(f"must be > 0 and <= 1, got {min_similarity:g}", field="min_similarity")
    if batch_size is not None and batch_size < 1:
        raise InputError(f"must be >= 1, got {batch_size}", field="batch_size")
    return min_similarity


def _open_store(data: str | Path, model: torch.nn.Module):
    """The store at ``data``, checked against the model's input length (a label store's
    ground truth is read now, so a damaged one fails before the passes)."""
    store = open_any_store(data)
    if isinstance(store, LabelStore):
        store.interactions()
    seq_length = int(model.config.seq_length)
    store_length = (
        store.seq_length if isinstance(store, LabelStore) else int(store.geometry.seq_length)
    )
    if store_length != seq_length:
        raise InputError(
            f"{data}: sequences of {store_length:,} bp but the model takes {seq_length:,} bp; "
            "use the store the model was trained on",
            field="data",
        )
    return store


def _sequence_count(store, split: str, sequences: int | None, data: str | Path) -> int:
    """How many of the split's sequences to use (``--sequences`` caps them)."""
    n = store.count(split)
    if sequences is not None:
        if sequences < 1:
            raise InputError(f"must be >= 1, got {sequences}", field="sequences")
        n = min(n, sequences)
    if n == 0:
        raise InputError(f"{split}: {data} has no sequences in it", field="split")
    return n


def _filter_maxima(
    source: _Source, codes_all: np.ndarray, n: int, batch_size: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pass 1: each filter's maximum activation, ``(conv_max, act_max)`` float64 ``(F,)``
    (``conv_max``: per bp of a CAN's first convolution; ``act_max``: per token)."""
    conv_max = torch.full((source.n_filters,), -torch.inf, dtype=torch.float64)
    act_max = torch.full((source.n_filters,), -torch.inf, dtype=torch.float64)
    with progress("interactions: filter maxima", n) as advance:
        for codes, x in _sequence_batches(codes_all, n, batch_size, device):
            conv, parts = source(x)
            if conv is not None:
                conv_max = torch.maximum(conv_max, conv.double().amax((0, 1)).cpu())
            for acts, _, _ in parts:
                act_max = torch.maximum(act_max, acts.double().amax((0, 1)).cpu())
            advance(len(codes))
    return conv_max, act_max


@dataclass
class _Pairs:
    """What pass 2 gathered."""

    maps: list[InteractionMaps]
    ppms: FilterPPMs | None
    candidates: int  # position pairs i ≠ j the attention could select
    width: int  # keys per attention row


def _attention_pairs(
    source: _Source,
    codes_all: np.ndarray,
    n: int,
    batch_size: int,
    device: torch.device,
    accumulator: PairAccumulator,
    conv_max: torch.Tensor,
) -> _Pairs:
    """Pass 2: the attended (and random) position pairs into ``accumulator`` and, for CAN
    models, the filters' PPMs from the sites above half their maximum."""
    ppms = FilterPPMs(source.n_filters, source.width) if source.is_can else None
    candidates, width = 0, 0
    with progress("interactions: attention pairs", n) as advance:
        for first, (codes, x) in zip(
            range(0, n, batch_size),
            _sequence_batches(codes_all, n, batch_size, device),
            strict=True,
        ):
            conv, parts = source(x)
            if ppms is not None:
                ppms.update(codes, conv, 0.5 * conv_max)
            for block, (acts, attn, index) in enumerate(parts):
                accumulator.update(acts, attn, index, first_sequence=first, stream=block)
                width = attn.shape[-1]
                candidates += attn[..., 0, 0].numel() * width * (width - 1)
            advance(len(codes))
    return _Pairs(accumulator.result(), ppms, candidates, width)


def _report_pairs(n: int, pairs: _Pairs) -> None:
    """Say how many pairs each threshold selected; warn when none or most of them."""
    maps = pairs.maps
    info(
        f"{n:,} sequences; attended pairs at threshold "
        + ", ".join(f"{m.threshold:g}: {m.pairs:,}" for m in maps)
    )
    empty = [f"{m.threshold:g}" for m in maps if m.pairs == 0]
    if empty:
        warn(
            f"no position pair reaches {opt('threshold')} {', '.join(empty)}: those maps are all zero "
            "(an untrained model spreads its attention evenly; try a lower threshold)"
        )
    crowded = [m for m in maps if m.pairs > 0.5 * pairs.candidates]
    if crowded:
        m, width = crowded[-1], pairs.width
        warn(
            f"{opt('threshold')} {', '.join(f'{c.threshold:g}' for c in crowded)} selects most position "
            f"pairs ({m.pairs:,} of {pairs.candidates:,} at {m.threshold:g}; even attention over "
            f"{width} keys is {1 / width:.3g}), so those maps measure co-occurrence more than "
            f"attention; add a higher {opt('threshold')}"
        )


def find_interactions(
    model: torch.nn.Module,
    data: str | Path,
    out: str | Path,
    *,
    split: str = "test",
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
    layer: int | None = None,
    motifs: str | None = None,
    min_similarity: float | None = None,
    sequences: int | None = None,
    batch_size: int | None = None,
    device: str | torch.device = "cpu",
    seed: int = 0,
    random_pairs: str = "auto",
    plot: bool = True,
    force: bool = False,
    outputs: Outputs | None = None,
    label: str = "",
) -> InteractionResult:
    """GLIFAC and the local-attention baseline for ``model`` on ``split`` of store ``data``.

    Args:
        model: a can, swin or enformer model (eval mode).
        data: a label store (can) or a coverage store (swin, enformer) with the model's
            input length.
        out: output folder (see the module docstring).
        thresholds: attention thresholds in [0, 1] (one set of maps each; the GLIFAC paper:
            0.1).
        layer: attention layer (Genomic Interpreter numbering; default the model's last).
        motifs: ``--motifs`` (built-in names or a JASPAR/MEME file); default the store's.
        min_similarity: a filter takes a motif label when its similarity reaches this
            (default :data:`DEFAULT_MIN_SIMILARITY`).
        sequences: use the split's first ``sequences`` only (default all).
        batch_size: sequences per forward pass (default 256 for can models, 8 otherwise).
        seed: seed of the random position pairs.
        random_pairs: ``"sample"`` (drawn uniformly, as GLIFAC does), ``"distance"`` (at
            the attended pairs' distances), ``"expected"`` (the expectation of ``sample``:
            no sampling noise), ``"none"`` (attended pairs only), or ``"auto"``: ``sample``
            for CAN, whose attention spans its whole pooled sequence as in the GLIFAC paper,
            ``distance`` for swin and enformer, whose attended pairs lie within a window or
            near each other (uniform pairs would make the map partly measure proximity);
            see :class:`~gitool.interpret.glifac.PairAccumulator`.
        plot: write the heatmap PNGs.
        force: replace ``out`` when it is empty or an earlier output.
        outputs: the claims of this run, with ``out`` claimed by the caller and its inputs
            (never written over); default: ``out`` claimed here, in ``Outputs(force)``.
        label: how errors name the model (a run's name).
    """
    thresholds = _check_thresholds(thresholds)
    out = Path(out)
    if outputs is None:  # else the caller claimed ``out``
        Outputs(force).folder(out, is_interactions_output, PREVIOUS, "out", OUTPUT_LAYOUT)
    min_similarity = _check_options(min_similarity, batch_size)
    source = _Source(model, layer, label)
    batch_size = batch_size or (256 if source.is_can else 8)
    random_pairs = _random_mode(random_pairs, source.is_can)
    store = _open_store(data, model)
    n = _sequence_count(store, split, sequences, data)
    motif_list = _motifs(store, motifs) if source.is_can else []
    device = torch.device(device)
    model = model.to(device).eval()
    codes_all = store.sequences(split)

    conv_max, act_max = _filter_maxima(source, codes_all, n, batch_size, device)
    accumulator = PairAccumulator(
        source.n_filters,
        thresholds,
        seed=seed,
        active_threshold=0.5 * act_max,
        random=random_pairs,
    )
    pairs = _attention_pairs(source, codes_all, n, batch_size, device, accumulator, conv_max)
    _report_pairs(n, pairs)
    return _finish(
        source, pairs.maps, pairs.ppms, conv_max, act_max, motif_list, min_similarity, store,
        out, plot, force,
    )  # fmt: skip


def _random_mode(random_pairs: str, is_can: bool) -> str:
    """Resolve ``"auto"`` (printed): uniform pairs for CAN, distance-matched otherwise."""
    if random_pairs != "auto":
        return random_pairs
    if is_can:
        info(
            f"random pairs: uniform over the sequence, as in GLIFAC ({opt('random_pairs')} sample)"
        )
        return "sample"
    info(f"random pairs: at the attended pairs' distances ({opt('random_pairs')} distance)")
    return "distance"


def _filter_table(
    source: _Source,
    ppms: FilterPPMs | None,
    conv_max: torch.Tensor,
    act_max: torch.Tensor,
    motif_list: list[Motif],
    min_similarity: float,
) -> tuple[pd.DataFrame, list[str], np.ndarray]:
    """``(filters.tsv table, filter names, motif label per filter (−1: none))``; CAN filters
    are labelled with their best-matching motif."""
    n_filters = source.n_filters
    prefix = "filter" if source.is_can else f"L{source.layer}.channel"
    filter_names = [f"{prefix}{f}" for f in range(n_filters)]
    table = pd.DataFrame({"filter": filter_names})
    motif_names = [m.name for m in motif_list]
    labels = np.full(n_filters, -1, dtype=np.int64)
    if ppms is not None and motif_list:
        matches = match_motifs(ppms.ppms(), [ppm(m, pseudocount=0.0) for m in motif_list])
        labels = label_filters(matches.similarity, matches.best, min_similarity)
        table["motif"] = [motif_names[i] if i >= 0 else "" for i in labels]
        table["best_match"] = [motif_names[i] for i in matches.best]
        table["matrix_id"] = [motif_list[i].matrix_id for i in matches.best]
        table["similarity"] = np.round(matches.similarity, 4)
        table["strand"] = np.where(matches.strand > 0, "+", "-")
        table["offset"] = matches.offset
        table["sites"] = ppms.sites()
        table["max_activation"] = conv_max.numpy()
    else:
        table["max_activation"] = act_max.numpy()
    return table, filter_names, labels


def _motif_maps(result: InteractionResult, labels: np.ndarray) -> None:
    """Fill ``result``'s motif maps (when some filter is labelled) and, with a ground truth,
    its scores: per method, at the motif level and over differently labelled filter pairs."""
    if not (labels >= 0).any():
        return
    n_motifs, truth = len(result.motif_names), result.truth
    rows = []
    for m in result.maps:
        g = motif_map(m.glifac, labels, n_motifs)
        loc = motif_map(m.local, labels, n_motifs)
        result.glifac_motifs.append(g)
        result.local_motifs.append(loc)
        if not truth:
            continue
        for method, by_motif, by_filter in (("glifac", g, m.glifac), ("local", loc, m.local)):
            for scoring, level, scores in (
                ("gitool", "motif", score_map(by_motif, truth)),
                ("gitool", "filter", score_filter_pairs(by_filter, labels, truth)),
                ("authors", "filter", score_filter_pairs(by_filter, labels, truth, "authors")),
            ):
                rows.append({"method": method, "scoring": scoring, "level": level,
                             "threshold": m.threshold, **scores, "pairs": m.pairs})  # fmt: skip
    if rows:
        result.scores = pd.DataFrame(rows)


def _finish(
    source, maps, ppms, conv_max, act_max, motif_list, min_similarity, store, out, plot, force
) -> InteractionResult:
    """Label the filters, build the motif maps and scores, and write everything."""
    table, filter_names, labels = _filter_table(
        source, ppms, conv_max, act_max, motif_list, min_similarity
    )
    motif_names = [m.name for m in motif_list]
    truth = _truth(store, motif_names)
    if ppms is not None and motif_list:
        _warn_unlearned(motif_names, labels, truth, min_similarity)
    result = InteractionResult(out, maps, table, motif_names, truth=truth)
    _motif_maps(result, labels)
    _write(result, filter_names, ppms, plot, force)
    return result


def _write(result: InteractionResult, filter_names, ppms, plot: bool, force: bool) -> None:
    _check_out(result.out, force)  # again: it may have appeared during the passes
    with staged_folder(result.out) as tmp:
        write_tsv(result.filters, tmp / "filters.tsv")
        if ppms is not None:
            (tmp / "filters.meme").write_text(format_meme(ppms.ppms(), filter_names, ppms.sites()))
        for k, m in enumerate(result.maps):
            tag = threshold_tag(m.threshold)
            frames = {
                "glifac_filters": (m.glifac, filter_names),
                "local_filters": (m.local, filter_names),
            }
            if result.glifac_motifs:
                frames["glifac_motifs"] = (result.glifac_motifs[k], result.motif_names)
                frames["local_motifs"] = (result.local_motifs[k], result.motif_names)
            for name, (matrix, axis) in frames.items():
                write_tsv(
                    pd.DataFrame(matrix, index=axis, columns=axis),
                    tmp / f"{name}_{tag}.tsv",
                    index=True,
                )
            if plot:
                plot_interactions(result, k, tmp / f"interactions_{tag}.png")
        if result.scores is not None:
            write_tsv(result.scores, tmp / "scores.tsv")


def interactions_from_run(options: InteractionsOptions) -> InteractionResult:
    """What ``gitool interactions`` runs: load the run, then :func:`find_interactions` on
    ``options.data`` (default: the store the run was trained on). The output folder is
    claimed first: never one of the inputs (the run, the store and the files it was built
    from, a motif file), and an existing one only with ``force`` and only when it is an
    earlier output."""
    o = options
    data = o.data if o.data is not None else default_store(o.model, o.which)
    outputs = Outputs(o.force, inputs=_inputs(o, data))
    outputs.folder(o.out, is_interactions_output, PREVIOUS, "out", OUTPUT_LAYOUT)
    model, _, ckpt = load_run(o.model, o.which, "model")
    return find_interactions(
        model, data, o.out, split=o.split, thresholds=o.threshold, layer=o.layer,
        motifs=o.motifs, min_similarity=o.min_similarity, sequences=o.sequences,
        batch_size=o.batch_size, device=resolve_device(o.device), seed=o.seed,
        random_pairs=o.random_pairs, plot=o.plot, force=o.force, outputs=outputs,
        label=run_label(ckpt),
    )  # fmt: skip


def _inputs(o: InteractionsOptions, data: str | Path) -> list[str | Path]:
    """The run, the store (with the files a coverage store was built from), a motif file."""
    paths: list[str | Path] = [o.model, *store_inputs(data)]
    if o.motifs is not None and Path(o.motifs).is_file():
        paths.append(o.motifs)
    return paths
