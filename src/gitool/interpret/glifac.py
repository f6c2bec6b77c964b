"""GLIFAC and the SATORI-style local baseline, model-free (GLIFAC paper appendix C, §3).

This module owns the computations that turn filter activations and attention maps into
filter-filter and motif-motif interaction maps, and the filter labelling they need:

- :class:`PairAccumulator` streams batches of ``activations (B, L, F)`` and head-reduced
  attention and accumulates, in float64 on the CPU and for several attention thresholds at
  once, the sums behind GLIFAC's Pearson correlations and the local baseline's counts;
  :meth:`PairAccumulator.result` gives one :class:`InteractionMaps` per threshold (its
  docstring defines both maps).
- :func:`symmetrise`, :func:`motif_map` and :func:`score_map` turn a filter map into a motif
  map and score it against the ground-truth interactions (AUROC, AUPR, SNR).
- :class:`FilterPPMs`, :func:`match_motifs` and :func:`label_filters` label each filter with
  its best-matching motif.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as nnf

from gitool.errors import InputError
from gitool.metrics import auroc, average_precision, pr_curve_area, snr, snr_top_negatives

__all__ = [
    "FilterPPMs",
    "InteractionMaps",
    "MotifMatches",
    "PairAccumulator",
    "RANDOM_MODES",
    "SCORINGS",
    "full_index",
    "label_filters",
    "match_motifs",
    "motif_map",
    "pearson_from_sums",
    "random_pairs",
    "distance_matched_pairs",
    "score_filter_pairs",
    "score_map",
    "symmetrise",
]

RANDOM_MODES = ("sample", "distance", "expected", "none")
"""How the random pairs are added (:class:`PairAccumulator` ``random``)."""
_SUMS = ("n", "sx", "sy", "sxx", "syy", "sxy")
RANDOM_CHUNK = 1 << 20
"""Random pairs are drawn and gathered this many at a time (bounded memory)."""


# --------------------------------------------------------------------------------------
# Pairs and accumulation
# --------------------------------------------------------------------------------------


def full_index(length: int) -> torch.Tensor:
    """Token index of full attention: ``(1, length)`` int64 ``[[0, 1, …, length − 1]]``."""
    return torch.arange(length, dtype=torch.int64)[None]


def _check_threshold(value: float) -> float:
    t = float(value)
    if not 0.0 <= t <= 1.0:  # also rejects NaN
        raise InputError(f"must be 0 to 1, got {value}", field="threshold")
    return t


_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _mix(x: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser: a bijective hash of uint64 values (wraps modulo 2^64)."""
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def random_pairs(
    counts: torch.Tensor | Sequence[int],
    length: int,
    seed: int,
    stream: int = 0,
    first_sequence: int = 0,
    chunk: int = RANDOM_CHUNK,
) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Random ordered token pairs, ``counts[b]`` of them for sequence ``b``.

    Each pair ``(i, j)`` is uniform over the ``length · (length − 1)`` ordered pairs of
    distinct tokens. The ``p``-th pair of sequence ``first_sequence + b`` is a hash of
    ``(seed, stream, first_sequence + b, p)`` (counter-based, SplitMix64), so it does not
    depend on how the sequences are batched, on the device, or on what else is drawn.
    Pairs come in chunks of at most ``chunk``, sequence by sequence.

    Args:
        counts: ``(B,)`` number of pairs per sequence.
        length: tokens per sequence ``L``.
        seed: the draw's seed.
        stream: tells independent draws over the same sequences apart (a threshold, a
            model block).
        first_sequence: global index of sequence ``b = 0``.
        chunk: most pairs per yielded chunk.

    Yields:
        ``(seq, i, j)``: three ``(n,)`` int64 CPU tensors (batch row, first and second token).
    """
    counts = torch.as_tensor(counts, dtype=torch.int64).cpu()
    total = int(counts.sum())
    if total and length < 2:
        raise ValueError(f"cannot draw pairs of distinct tokens from {length} token(s)")
    ends = torch.cumsum(counts, 0)
    starts = (ends - counts).numpy()
    for lo in range(0, total, chunk):
        hi = min(lo + chunk, total)
        seq = torch.searchsorted(ends, torch.arange(lo, hi), right=True)
        b = seq.numpy()
        h = _pair_hash(seed, stream, b + first_sequence, np.arange(lo, hi) - starts[b])
        with np.errstate(over="ignore"):
            i = (h >> np.uint64(32)) % np.uint64(length)
            j = (h & np.uint64(0xFFFFFFFF)) % np.uint64(length - 1)
        i, j = torch.from_numpy(i.astype(np.int64)), torch.from_numpy(j.astype(np.int64))
        yield seq, i, j + (j >= i)


def _pair_hash(seed: int, stream: int, sequence: np.ndarray, ordinal: np.ndarray) -> np.ndarray:
    """uint64 hash of ``(seed, stream, sequence, ordinal)`` per element (SplitMix64)."""
    with np.errstate(over="ignore"):
        base = _mix(_mix(np.uint64(seed % 2**64) ^ _GOLDEN) ^ np.uint64(stream % 2**64))
        key = _mix(base ^ _mix(np.asarray(sequence).astype(np.uint64) * _GOLDEN))
        return _mix(key ^ (np.asarray(ordinal).astype(np.uint64) * _GOLDEN + _GOLDEN))


def distance_matched_pairs(
    seq: torch.Tensor,
    offset: torch.Tensor,
    length: int,
    seed: int,
    stream: int = 0,
    ordinal: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One random pair per attended pair, at the same signed distance.

    For attended pair ``p`` of sequence ``seq[p]`` with ``offset[p] = j − i`` (key minus
    query token), the random pair is ``(i', i' + offset[p])`` with ``i'`` uniform over the
    ``length − |offset[p]|`` starts that keep both tokens in the sequence: the random pairs
    then have exactly the attended pairs' distance distribution, and only *where* they lie is
    random. Counter-based like :func:`random_pairs` (keyed by ``seq`` and ``ordinal``, the
    pair's number within its sequence), so batching does not change the draw.

    Args:
        seq: ``(n,)`` int64 global sequence index of every attended pair.
        offset: ``(n,)`` int64 ``j − i``, nonzero, ``|offset| < length``.
        length: tokens per sequence.
        seed, stream: as in :func:`random_pairs`.
        ordinal: ``(n,)`` the pair's number within its sequence (default ``0 … n − 1``).

    Returns:
        ``(i, j)``: two ``(n,)`` int64 CPU tensors.
    """
    seq_np = seq.cpu().numpy()
    d = offset.cpu().numpy().astype(np.int64)
    if d.size and (np.abs(d).max() >= length or (d == 0).any()):
        raise ValueError(f"offsets must be nonzero and shorter than the {length} tokens")
    ords = np.arange(len(d)) if ordinal is None else ordinal.cpu().numpy()
    h = _pair_hash(seed, stream, seq_np, ords)
    starts = (length - np.abs(d)).astype(np.uint64)
    with np.errstate(over="ignore"):
        i = (h >> np.uint64(32)) % starts
    i = i.astype(np.int64) + np.maximum(-d, 0)
    return torch.from_numpy(i), torch.from_numpy(i + d)


def _threshold_stream(threshold: float, stream: int) -> int:
    """The random-pair stream of one threshold: its float64 bits mixed with ``stream``."""
    bits = int(np.float64(threshold).view(np.uint64))
    return bits ^ (int(stream) * 0x9E3779B97F4A7C15 % 2**64)


def pearson_from_sums(
    n: float,
    sx: np.ndarray,
    sy: np.ndarray,
    sxx: np.ndarray,
    syy: np.ndarray,
    sxy: np.ndarray,
) -> np.ndarray:
    """Pearson correlation of every ``x_f`` against every ``y_g`` from their sums.

    Args:
        n: number of observations.
        sx, sxx: ``(F,)`` Σx and Σx² of the first variables.
        sy, syy: ``(G,)`` Σy and Σy² of the second variables.
        sxy: ``(F, G)`` Σ x_f·y_g.

    Returns:
        ``(F, G)`` float64 correlations in [−1, 1]; 0 where either variable has zero
        variance (or ``n == 0``).
    """
    sxy = np.asarray(sxy, dtype=np.float64)
    if n <= 0:
        return np.zeros_like(sxy)
    mx, my = np.asarray(sx) / n, np.asarray(sy) / n
    exx, eyy = np.asarray(sxx) / n, np.asarray(syy) / n
    vx, vy = exx - mx**2, eyy - my**2
    # Variance that is rounding error of E[x²] − E[x]² counts as zero.
    ok_x = vx > 1e-12 * np.maximum(exx, np.finfo(np.float64).tiny)
    ok_y = vy > 1e-12 * np.maximum(eyy, np.finfo(np.float64).tiny)
    cov = sxy / n - np.outer(mx, my)
    den = np.sqrt(np.outer(np.where(ok_x, vx, 1.0), np.where(ok_y, vy, 1.0)))
    r = np.where(np.outer(ok_x, ok_y), cov / den, 0.0)
    return np.clip(r, -1.0, 1.0)


@dataclass
class InteractionMaps:
    """Filter-filter interaction maps at one attention threshold.

    Attributes:
        threshold: the attention threshold.
        glifac: ``(F, F)`` symmetrised GLIFAC Pearson map, diagonal 0 (``random="distance"``:
            its excess over the distance-matched null map, see :class:`PairAccumulator`).
        glifac_directed: ``(F, F)`` the map before symmetrising: query filter × key filter.
        local: ``(F, F)`` symmetrised local-baseline counts (float64, diagonal 0), or None
            when no ``active_threshold`` was given.
        pairs: number of attended pairs.
        random_pairs: number of random pairs added (equal to ``pairs`` unless disabled).
        sequences: number of sequences seen (one past the highest sequence index).
    """

    threshold: float
    glifac: np.ndarray
    glifac_directed: np.ndarray
    local: np.ndarray | None
    pairs: int
    random_pairs: int
    sequences: int


class PairAccumulator:
    """Streams activations and attention; accumulates GLIFAC and local-baseline statistics.

    **Attention layout.** Attention comes per batch in windowed form: ``attn (B, nW, w, w)``
    (query slot × key slot, already reduced over heads by max) with ``token_index (nW, w)``
    giving the token in ``[0, L)`` of every slot, or −1 for padding. Full attention is
    ``nW = 1`` with :func:`full_index`. An *attended pair* is a (sequence ``b``, query token
    ``i``, key token ``j``) slot pair with ``attn ≥ threshold``, both slots real and ``i ≠ j``
    (the reference code keeps the diagonal, whose pairs only correlate each token with
    itself). Slot pairs are never de-duplicated: a token that appears in two windows
    contributes its pairs from both.

    **GLIFAC** (GLIFAC paper appendix C). For every attended pair, ``x = activations[b, i]``
    (query) and ``y = activations[b, j]`` (key). To those the accumulator adds, per sequence,
    as many random ordered pairs ``(i, j)``, ``i ≠ j``, drawn uniformly over the sequence's
    tokens ``0 … L−1`` (the paper's "equal number"; the reference code's formula yields one).
    The map is the Pearson correlation of ``x_f`` against ``y_g`` over that union,
    ``(F, F)``, made symmetric by :func:`symmetrise`. A filter with zero variance correlates
    0 with everything. Random pairs are counter-based (:func:`random_pairs`), so a map is the
    same whatever the batch size, the device, or the other thresholds of a sweep.

    **Distance-matched GLIFAC** (``random="distance"``; for windowed or position-biased
    attention). A windowed model only attends to near tokens, and near tokens share sequence
    context, so the Pearson map over attended plus uniform pairs also holds the correlation of
    *any* near pair: a model whose attention ignored the content would still show it. Here the
    random pairs have the attended pairs' distances (:func:`distance_matched_pairs`), and the
    map is the Pearson over attended ∪ random pairs *minus* the Pearson over two more such
    random sets: the correlation attention adds beyond what the same distances give. It is 0
    in expectation for attention that ignores the content (whatever the activations' spatial
    correlation), and a map of the attention's selection otherwise.

    **Local baseline** (SATORI, GLIFAC paper §3). A filter is *active* at a token when its
    activation exceeds ``active_threshold[f]`` (the caller passes half of each filter's
    maximum over the set); every attended pair adds 1 to ``count[f, g]`` for each active
    query filter ``f`` and active key filter ``g``. The counts are symmetrised the same way.

    Args:
        n_filters: ``F``, channels of the activations.
        thresholds: attention thresholds in [0, 1]; one map set per threshold.
        seed: seed of the random pairs (:func:`random_pairs`).
        active_threshold: ``(F,)`` activation above which a filter is active (local
            baseline), or None to skip the local baseline.
        random: the equal number of random pairs (GLIFAC) — ``"sample"``: drawn
            (:func:`random_pairs`); ``"distance"``: one per attended pair at the same signed
            distance, anywhere in the sequence (:func:`distance_matched_pairs`; for windowed
            or position-biased attention, whose attended pairs are near each other, so that
            the map does not also measure proximity); ``"expected"``: every ordered pair ``i ≠ j`` of the
            sequence weighted ``n_b / (L (L − 1))``, the limit of infinitely many draws (no
            sampling noise, same total weight ``n_b``); ``"none"``: the attended pairs alone
            (an ablation).

    Raises:
        InputError: a threshold outside [0, 1], or no threshold.
    """

    def __init__(
        self,
        n_filters: int,
        thresholds: Sequence[float],
        seed: int = 0,
        active_threshold: torch.Tensor | np.ndarray | None = None,
        random: str = "sample",
    ) -> None:
        if isinstance(thresholds, (int, float)):
            thresholds = [thresholds]
        self.thresholds = tuple(_check_threshold(t) for t in thresholds)
        if not self.thresholds:
            raise InputError("needs at least one value", field="threshold")
        if n_filters < 1:
            raise ValueError(f"n_filters must be at least 1, got {n_filters}")
        self.n_filters = int(n_filters)
        if random not in RANDOM_MODES:
            raise InputError(f"{random!r}: choose {', '.join(RANDOM_MODES)}", field="random_pairs")
        self.random = random
        if active_threshold is None:
            self.active_threshold = None
        else:
            active = torch.as_tensor(active_threshold).detach().to("cpu", torch.float64)
            if active.shape != (n_filters,):
                raise ValueError(
                    f"active_threshold must have shape ({n_filters},), got {tuple(active.shape)}"
                )
            self.active_threshold = active
        self.seed = int(seed)
        n_t, f = len(self.thresholds), self.n_filters
        z = torch.float64
        self._n = torch.zeros(n_t, dtype=z)
        self._sx = torch.zeros(n_t, f, dtype=z)
        self._sy = torch.zeros(n_t, f, dtype=z)
        self._sxx = torch.zeros(n_t, f, dtype=z)
        self._syy = torch.zeros(n_t, f, dtype=z)
        self._sxy = torch.zeros(n_t, f, f, dtype=z)
        self._local = torch.zeros(n_t, f, f, dtype=z)
        self._pairs = torch.zeros(n_t, dtype=torch.int64)
        self._random = torch.zeros(n_t, dtype=torch.int64)
        # distance mode: sums over two more distance-matched random sets (the null map)
        self._null = None
        if random == "distance":
            self._null = {key: torch.zeros_like(getattr(self, f"_{key}"))
                          for key in ("n", "sx", "sy", "sxx", "syy", "sxy")}  # fmt: skip
        self.sequences = 0

    def _check(
        self, activations: torch.Tensor, attn: torch.Tensor, token_index: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = torch.as_tensor(activations)
        a = torch.as_tensor(attn)
        tok = torch.as_tensor(token_index)
        if x.ndim != 3 or x.shape[2] != self.n_filters:
            raise ValueError(f"activations must be (B, L, {self.n_filters}), got {tuple(x.shape)}")
        if a.ndim != 4 or a.shape[0] != x.shape[0] or a.shape[2] != a.shape[3]:
            raise ValueError(f"attn must be (B={x.shape[0]}, nW, w, w), got {tuple(a.shape)}")
        if tok.ndim != 2 or tuple(tok.shape) != tuple(a.shape[1:3]):
            raise ValueError(
                f"token_index must be (nW, w) = {tuple(a.shape[1:3])}, got {tuple(tok.shape)}"
            )
        if tok.dtype.is_floating_point or tok.dtype == torch.bool:
            raise ValueError(f"token_index must be an integer tensor, got {tok.dtype}")
        if tok.numel() and (int(tok.min()) < -1 or int(tok.max()) >= x.shape[1]):
            raise ValueError(
                f"token_index values must be -1 (padding) or in [0, {x.shape[1]}), "
                f"got [{int(tok.min())}, {int(tok.max())}]"
            )
        return x, a.to(x.device), tok.to(x.device, torch.int64)

    @torch.no_grad()
    def update(
        self,
        activations: torch.Tensor,
        attn: torch.Tensor,
        token_index: torch.Tensor,
        first_sequence: int | None = None,
        stream: int = 0,
    ) -> None:
        """Add one batch.

        Args:
            activations: ``(B, L, F)`` filter activations at the token positions.
            attn: ``(B, nW, w, w)`` head-max attention, query slot × key slot.
            token_index: ``(nW, w)`` int token of every slot, −1 for padding.
            first_sequence: global index of the batch's first sequence (keys the random
                pairs); default: the sequences seen so far, i.e. batches in order.
            stream: tells several updates over the same sequences apart (the attention
                blocks of one layer): each draws its own random pairs.

        Raises:
            ValueError: shapes that do not fit together, or tokens outside ``[-1, L)``.
        """
        x, attn, tok = self._check(activations, attn, token_index)
        n_seq, length, f = x.shape
        first = self.sequences if first_sequence is None else int(first_sequence)
        x64 = x.detach().to(torch.float64)
        real = tok >= 0
        pair_ok = real[:, :, None] & real[:, None, :] & (tok[:, :, None] != tok[:, None, :])
        slot_tok = tok.clamp(min=0)
        xw = x64[:, slot_tok]  # (B, nW, w, F); padding slots never enter a pair
        xw_flat = xw.reshape(-1, f)
        xw_sq = xw**2
        if self.active_threshold is not None:
            active = (x64 > self.active_threshold.to(x.device)).to(torch.float64)
            aw = active[:, slot_tok]
            aw_flat = aw.reshape(-1, f)
        for k, threshold in enumerate(self.thresholds):
            mask = (attn >= threshold) & pair_ok  # (B, nW, w, w)
            m = mask.to(torch.float64)
            per_seq = mask.flatten(1).sum(1)  # (B,)
            rows, cols = m.sum(-1), m.sum(-2)  # pairs per query slot / per key slot
            self._sx[k] += torch.einsum("bns,bnsf->f", rows, xw).cpu()
            self._sxx[k] += torch.einsum("bns,bnsf->f", rows, xw_sq).cpu()
            self._sy[k] += torch.einsum("bns,bnsf->f", cols, xw).cpu()
            self._syy[k] += torch.einsum("bns,bnsf->f", cols, xw_sq).cpu()
            # Σ_pairs x_f y_g = Σ_b,n X_bnᵀ M_bn Y_bn
            self._sxy[k] += (xw_flat.T @ torch.matmul(m, xw).reshape(-1, f)).cpu()
            if self.active_threshold is not None:
                self._local[k] += (aw_flat.T @ torch.matmul(m, aw).reshape(-1, f)).cpu()
            n_pairs = int(per_seq.sum())
            self._pairs[k] += n_pairs
            self._n[k] += n_pairs
            if self.random == "expected" and n_pairs:
                self._add_expected(k, x64, per_seq.to(torch.float64))
            elif self.random == "sample" and n_pairs:
                chunk = min(RANDOM_CHUNK, max(1024, (1 << 26) // f))  # ≤ 0.5 GB per array
                draws = random_pairs(
                    per_seq.cpu(), length, self.seed, _threshold_stream(threshold, stream),
                    first, chunk,
                )  # fmt: skip
                for seq, i, j in draws:
                    seq, i, j = seq.to(x.device), i.to(x.device), j.to(x.device)
                    self._add_random(k, x64[seq, i], x64[seq, j])
            elif self.random == "distance" and n_pairs:
                self._add_distance_matched(
                    k, x64, mask, tok, first, _threshold_stream(threshold, stream)
                )
        self.sequences = max(self.sequences, first + n_seq)

    def _add_random(self, k: int, xr: torch.Tensor, yr: torch.Tensor, null: bool = False) -> None:
        """Add random pairs with first-token activations ``xr`` and second ``yr``, ``(n, F)``
        (to the null sums with ``null``)."""
        sums = self._null if null else {key: getattr(self, f"_{key}") for key in _SUMS}
        sums["sx"][k] += xr.sum(0).cpu()
        sums["sxx"][k] += (xr**2).sum(0).cpu()
        sums["sy"][k] += yr.sum(0).cpu()
        sums["syy"][k] += (yr**2).sum(0).cpu()
        sums["sxy"][k] += (xr.T @ yr).cpu()
        sums["n"][k] += len(xr)
        if not null:
            self._random[k] += len(xr)

    def _add_distance_matched(
        self,
        k: int,
        x64: torch.Tensor,
        mask: torch.Tensor,
        tok: torch.Tensor,
        first: int,
        stream: int,
    ) -> None:
        """One random pair per attended pair of ``mask`` ``(B, nW, w, w)``, at its distance
        (:func:`distance_matched_pairs`); pairs are numbered per sequence in (window, query
        slot, key slot) order, so the draw does not depend on the batching. One sequence at a
        time, in chunks: memory stays bounded by one sequence's attended pairs."""
        length, f = x64.shape[1], x64.shape[2]
        chunk = min(RANDOM_CHUNK, max(1024, (1 << 26) // f))
        for row in range(mask.shape[0]):
            n, s, t = mask[row].nonzero(as_tuple=True)
            offset = tok[n, t] - tok[n, s]
            seq = torch.full_like(offset, first + row)
            for lo in range(0, len(offset), chunk):
                part = slice(lo, lo + chunk)
                ordinal = torch.arange(lo, lo + len(offset[part]), device=offset.device)
                for draw, null in ((0, False), (1, True), (2, True)):  # random set, null sets
                    i, j = distance_matched_pairs(
                        seq[part], offset[part], length, self.seed,
                        stream ^ (draw * 0x5851F42D4C957F2D), ordinal,
                    )  # fmt: skip
                    xr = x64[row, i.to(x64.device)]
                    yr = x64[row, j.to(x64.device)]
                    self._add_random(k, xr, yr, null)

    def _add_expected(self, k: int, x64: torch.Tensor, counts: torch.Tensor) -> None:
        """Add the expectation of ``counts[b]`` uniform random pairs of sequence ``b``: every
        ordered pair ``i ≠ j`` with weight ``w_b = counts[b] / (L (L − 1))``. Each token is
        the first (or second) member of ``L − 1`` pairs, so ``Σ x = w_b (L − 1) Σ_i x_i``,
        and ``Σ x yᵀ = w_b (S_b S_bᵀ − X_bᵀ X_b)`` with ``S_b = Σ_i x_i``."""
        n_seq, length, f = x64.shape
        w = counts.to(x64.device) / (length * (length - 1))  # (B,)
        per_token = (w * (length - 1))[:, None]
        s = x64.sum(1)  # (B, F)
        sq = (x64**2).sum(1)
        self._sx[k] += (per_token * s).sum(0).cpu()
        self._sy[k] += (per_token * s).sum(0).cpu()
        self._sxx[k] += (per_token * sq).sum(0).cpu()
        self._syy[k] += (per_token * sq).sum(0).cpu()
        weighted = w[:, None, None] * x64
        cross = (w[:, None] * s).T @ s - weighted.reshape(-1, f).T @ x64.reshape(-1, f)
        self._sxy[k] += cross.cpu()
        self._n[k] += float(counts.sum())
        self._random[k] += int(counts.sum())

    def result(self) -> list[InteractionMaps]:
        """One :class:`InteractionMaps` per threshold, in the order given."""
        out = []
        for k, threshold in enumerate(self.thresholds):
            directed = pearson_from_sums(
                float(self._n[k]),
                self._sx[k].numpy(),
                self._sy[k].numpy(),
                self._sxx[k].numpy(),
                self._syy[k].numpy(),
                self._sxy[k].numpy(),
            )
            if self._null is not None and self._null["n"][k] > 0:
                directed = directed - pearson_from_sums(
                    float(self._null["n"][k]),
                    *(self._null[key][k].numpy() for key in _SUMS[1:]),
                )
            local = None
            if self.active_threshold is not None:
                local = symmetrise(self._local[k].numpy())
            out.append(
                InteractionMaps(
                    threshold=threshold,
                    glifac=symmetrise(directed),
                    glifac_directed=directed,
                    local=local,
                    pairs=int(self._pairs[k]),
                    random_pairs=int(self._random[k]),
                    sequences=self.sequences,
                )
            )
        return out


# --------------------------------------------------------------------------------------
# Filter maps -> motif maps -> scores
# --------------------------------------------------------------------------------------


def symmetrise(m: np.ndarray | torch.Tensor) -> np.ndarray:
    """Keep the larger-magnitude entry of each mirrored pair; zero the diagonal.

    Args:
        m: ``(F, F)`` directed map.

    Returns:
        ``(F, F)`` float64 symmetric map: ``out[f, g]`` is whichever of ``m[f, g]`` and
        ``m[g, f]`` has the larger magnitude (the positive one on an exact tie, so the result
        is symmetric); ``out[f, f] = 0`` (self-pairs removed).
    """
    m = np.asarray(m, dtype=np.float64)
    if m.ndim != 2 or m.shape[0] != m.shape[1]:
        raise ValueError(f"map must be square (F, F), got {m.shape}")
    mag, mag_t = np.abs(m), np.abs(m.T)
    out = np.where(mag > mag_t, m, np.where(mag < mag_t, m.T, np.maximum(m, m.T)))
    np.fill_diagonal(out, 0.0)
    return out


def motif_map(filter_map: np.ndarray, labels: np.ndarray, n_motifs: int) -> np.ndarray:
    """Motif-motif map: per motif pair, the strongest filter-pair entry.

    For motifs ``a`` and ``b``, the entry of largest magnitude (sign kept; on an exact tie of
    magnitudes the positive one) among ``filter_map[f, g]`` and ``filter_map[g, f]`` over the
    filters ``f`` labelled ``a`` and ``g`` labelled ``b``, ``f ≠ g``; NaN entries of the
    filter map are ignored. Two filters with the same label give that motif's diagonal,
    which is nevertheless set to NaN: a motif with itself is not an interaction to score.

    Args:
        filter_map: ``(F, F)`` filter map (e.g. :attr:`InteractionMaps.glifac`).
        labels: ``(F,)`` int motif index per filter, −1 = unlabelled.
        n_motifs: ``M``.

    Returns:
        ``(M, M)`` float64 symmetric map, NaN where no filter pair exists and on the diagonal.
    """
    m = np.asarray(filter_map, dtype=np.float64)
    labels = np.asarray(labels)
    n_f = m.shape[0] if m.ndim == 2 else -1
    if m.ndim != 2 or m.shape[1] != n_f:
        raise ValueError(f"filter_map must be square (F, F), got {m.shape}")
    if labels.shape != (n_f,) or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be ({n_f},) integers, got {labels.shape} {labels.dtype}")
    if labels.size and (labels.min() < -1 or labels.max() >= n_motifs):
        raise ValueError(f"labels must be -1 or in [0, {n_motifs})")
    out = np.full((n_motifs, n_motifs), np.nan)
    labelled = labels >= 0
    use = labelled[:, None] & labelled[None, :] & ~np.eye(n_f, dtype=bool) & ~np.isnan(m)
    f, g = np.nonzero(use)
    if f.size:
        a = np.concatenate([labels[f], labels[g]])
        b = np.concatenate([labels[g], labels[f]])
        v = np.concatenate([m[f, g], m[f, g]])
        key = a * n_motifs + b
        order = np.lexsort((v, np.abs(v), key))  # by key, then |v|, then v
        key, v = key[order], v[order]
        last = np.concatenate([key[1:] != key[:-1], [True]])
        out.flat[key[last]] = v[last]
    np.fill_diagonal(out, np.nan)
    return out


def _scores(scores: np.ndarray, positive: np.ndarray) -> dict[str, float]:
    """AUROC, AUPR and SNR of ``scores`` against the boolean ``positive``, with the counts."""
    return {
        "auroc": auroc(scores, positive),
        "aupr": average_precision(scores, positive),
        "snr": snr(scores, positive),
        "positives": int(positive.sum()),
        "negatives": int((~positive).sum()),
    }


def score_map(motif_map: np.ndarray, truth: Sequence[tuple[int, int]]) -> dict[str, float]:
    """Score a motif map against the ground-truth interactions.

    The unordered motif pairs (upper triangle, diagonal excluded) are ranked by ``|value|``
    (NaN = no filter pair → 0); the positives are the pairs in ``truth`` (either order).

    Args:
        motif_map: ``(M, M)`` map from :func:`motif_map`.
        truth: ground-truth pairs of motif indices ``(a, b)``, ``a ≠ b``.

    Returns:
        ``{"auroc", "aupr", "snr", "positives", "negatives"}`` (see :mod:`gitool.metrics`).
    """
    mm = np.asarray(motif_map, dtype=np.float64)
    n = mm.shape[0] if mm.ndim == 2 else -1
    if mm.ndim != 2 or mm.shape[1] != n:
        raise ValueError(f"motif_map must be square (M, M), got {mm.shape}")
    pairs = np.asarray(list(truth), dtype=np.int64).reshape(-1, 2)
    if pairs.size and (pairs.min() < 0 or pairs.max() >= n or (pairs[:, 0] == pairs[:, 1]).any()):
        raise ValueError(f"truth pairs must be two different motif indices in [0, {n})")
    is_true = np.zeros((n, n), dtype=bool)
    is_true[pairs[:, 0], pairs[:, 1]] = True
    is_true[pairs[:, 1], pairs[:, 0]] = True
    upper = np.triu_indices(n, 1)
    scores = np.nan_to_num(np.abs(mm[upper]), nan=0.0)
    labels = is_true[upper]
    return _scores(scores, labels)


SCORINGS = ("gitool", "authors")
"""How :func:`score_filter_pairs` scores: gitool's or the GLIFAC authors' code's."""


def score_filter_pairs(
    filter_map: np.ndarray,
    labels: np.ndarray,
    truth: Sequence[tuple[int, int]],
    scoring: str = "gitool",
) -> dict[str, float]:
    """Score a filter map against the ground truth filter pair by filter pair.

    The unit the GLIFAC authors' code scores: every unordered pair of filters with two
    *different* labels is one sample, positive when its two motifs are a ground-truth pair.
    Unlike :func:`score_map` (one sample per motif pair, its strongest filter pair), every
    filter that learned a motif counts, so a motif learned by several filters weighs more and
    one spurious filter pair cannot decide a motif pair.

    ``scoring="gitool"`` ranks ``|value|`` (NaN → 0; a strong negative correlation is an
    interaction too), leaves unlabelled filters out, and reports AUROC, average precision
    (:func:`~gitool.metrics.average_precision`) and SNR = mean positive / mean negative.
    ``scoring="authors"`` is the GLIFAC authors' code (``glifac_stats``), to compare with the
    paper's figures: it ranks the *signed* value, keeps unlabelled filters as one more label
    (their pairs with labelled filters are negatives), and reports the trapezoid PR area
    (:func:`~gitool.metrics.pr_curve_area`) and SNR = mean positive / mean of the 100
    highest positive negatives (:func:`~gitool.metrics.snr_top_negatives`). AUROC is the
    same statistic in both.

    Args:
        filter_map: ``(F, F)`` filter map.
        labels: ``(F,)`` int motif index per filter, −1 = unlabelled.
        truth: ground-truth pairs of motif indices.
        scoring: ``"gitool"`` or ``"authors"``.

    Returns:
        ``{"auroc", "aupr", "snr", "positives", "negatives"}``.
    """
    if scoring not in SCORINGS:
        raise ValueError(f"scoring must be one of {SCORINGS}, got {scoring!r}")
    m = np.asarray(filter_map, dtype=np.float64)
    labels = np.asarray(labels)
    n_f = m.shape[0] if m.ndim == 2 else -1
    if m.ndim != 2 or m.shape[1] != n_f or labels.shape != (n_f,):
        raise ValueError(f"need a square (F, F) map and (F,) labels, got {m.shape}, {labels.shape}")
    true = {frozenset((int(a), int(b))) for a, b in truth}
    f, g = np.triu_indices(n_f, 1)
    keep = labels[f] != labels[g]
    if scoring == "gitool":
        keep &= (labels[f] >= 0) & (labels[g] >= 0)
    f, g = f[keep], g[keep]
    values = np.nan_to_num(m[f, g], nan=0.0)
    positive = np.array(
        [frozenset((int(a), int(b))) in true for a, b in zip(labels[f], labels[g], strict=True)],
        dtype=bool,
    )
    if scoring == "gitool":
        return _scores(np.abs(values), positive)
    return {
        "auroc": auroc(values, positive),
        "aupr": pr_curve_area(values, positive),
        "snr": snr_top_negatives(values, positive, k=100),
        "positives": int(positive.sum()),
        "negatives": int((~positive).sum()),
    }


# --------------------------------------------------------------------------------------
# Filter labelling
# --------------------------------------------------------------------------------------


class FilterPPMs:
    """Position probability matrices of filters from the sites where they are active.

    A site is a position ``p`` where ``conv_activations[b, p, f] > threshold[f]`` (the
    caller passes half the filter's maximum). With ``"same"`` padding (PyTorch's convention)
    position ``p`` covers bases ``p − (width − 1) // 2 … p − (width − 1) // 2 + width − 1`` (``p ± width//2``
    for odd widths); bases beyond the sequence ends and N add nothing to the counts.

    Args:
        n_filters: ``F``.
        width: filter width in bp.
    """

    def __init__(self, n_filters: int, width: int) -> None:
        if n_filters < 1 or width < 1:
            raise ValueError(f"n_filters and width must be >= 1, got {n_filters}, {width}")
        self.n_filters, self.width = int(n_filters), int(width)
        self.counts = torch.zeros(n_filters, width, 4, dtype=torch.float64)
        self._sites = torch.zeros(n_filters, dtype=torch.float64)

    @torch.no_grad()
    def update(
        self,
        codes: torch.Tensor,
        conv_activations: torch.Tensor,
        threshold: torch.Tensor,
    ) -> None:
        """Add one batch.

        Args:
            codes: ``(B, L)`` uint8 bases, A=0 C=1 G=2 T=3 N=4.
            conv_activations: ``(B, L, F)`` per-bp conv output after its activation.
            threshold: ``(F,)`` activation above which a position is a site.
        """
        act = torch.as_tensor(conv_activations)
        codes = torch.as_tensor(codes)
        thr = torch.as_tensor(threshold).to(act.device, torch.float64)
        n_seq, length = codes.shape if codes.ndim == 2 else (-1, -1)
        if act.shape != (n_seq, length, self.n_filters):
            raise ValueError(
                f"codes (B, L) and conv_activations (B, L, {self.n_filters}) do not fit: "
                f"{tuple(codes.shape)} and {tuple(act.shape)}"
            )
        if thr.shape != (self.n_filters,):
            raise ValueError(f"threshold must be ({self.n_filters},), got {tuple(thr.shape)}")
        codes = codes.to(act.device, torch.int64)
        if codes.numel() and (int(codes.min()) < 0 or int(codes.max()) > 4):
            raise ValueError("codes must be in 0..4 (A, C, G, T, N)")
        one_hot = torch.eye(5, 4, dtype=torch.float64, device=act.device)[codes]  # N -> 0
        left = (self.width - 1) // 2
        padded = nnf.pad(one_hot, (0, 0, left, self.width - 1 - left))  # (B, L + w - 1, 4)
        windows = padded.unfold(1, self.width, 1)  # (B, L, 4, w)
        active = (act.to(torch.float64) > thr).reshape(-1, self.n_filters).to(torch.float64)
        counts = active.T @ windows.reshape(n_seq * length, 4 * self.width)
        self.counts += counts.reshape(self.n_filters, 4, self.width).transpose(1, 2).cpu()
        self._sites += active.sum(0).cpu()

    def ppms(self) -> np.ndarray:
        """``(F, width, 4)`` PPMs: each position's base counts normalised; 0.25 without any."""
        counts = self.counts.numpy()
        total = counts.sum(-1, keepdims=True)
        return np.where(total > 0, counts / np.where(total > 0, total, 1.0), 0.25)

    def sites(self) -> np.ndarray:
        """``(F,)`` int64 number of sites of each filter."""
        return self._sites.numpy().astype(np.int64)


class MotifMatches(NamedTuple):
    """Best motif per filter (see :func:`match_motifs`); all arrays ``(F,)``."""

    best: np.ndarray  # int motif index
    similarity: np.ndarray  # float in [-1, 1]
    offset: np.ndarray  # int filter column aligned with column 0 of the (oriented) motif
    strand: np.ndarray  # int +1 (motif as given) or -1 (its reverse complement)


def _centred(ppm: np.ndarray) -> np.ndarray:
    """Columns minus their mean (0.25 for a normalised column): ``(..., k, 4)``."""
    return ppm - ppm.mean(-1, keepdims=True)


def match_motifs(
    filter_ppms: np.ndarray,
    motif_ppms: Sequence[np.ndarray],
    min_overlap: int = 5,
) -> MotifMatches:
    """Best-matching motif of every filter (a Tomtom-like comparison).

    **Similarity.** Both PPMs are centred column by column (``p̃ = p − 0.25``; the Pearson
    correlation of two columns is the cosine of their centred vectors). For a motif of length
    ``k``, a strand and an offset that aligns ``≥ min(min_overlap, k, w)`` columns::

        sim = Σ_overlap ⟨p̃_i, q̃_j⟩ / sqrt(Σ_overlap |p̃_i|² · Σ_all k motif columns |q̃_j|²)

    i.e. the cosine similarity of the centred filter window and the centred motif, with the
    filter taken as uniform (p̃ = 0) where it does not cover the motif. It is the column
    Pearson correlations weighted by how informative the columns are, so near-uniform columns
    (which have a noisy, ±1 Pearson correlation) barely count. It is 1 exactly when the
    filter window covers the whole motif and deviates from uniform in proportion to it
    (a softer copy of the motif scores 1); uncovered informative motif columns lower it, and
    filter columns outside the motif are ignored, as in Tomtom. A filter without any
    information scores 0 against everything. The reverse complement of a motif is
    ``ppm[::-1, ::-1]`` (A, C, G, T order).

    Args:
        filter_ppms: ``(F, w, 4)`` filter PPMs (:meth:`FilterPPMs.ppms`).
        motif_ppms: ``M`` motif PPMs, each ``(k_m, 4)``.
        min_overlap: fewest aligned columns (capped at the shorter of the two PPMs).

    Returns:
        :class:`MotifMatches` ``(best, similarity, offset, strand)``; ties go to the first
        motif, the + strand and the leftmost offset.
    """
    p = np.asarray(filter_ppms, dtype=np.float64)
    if p.ndim != 3 or p.shape[2] != 4:
        raise ValueError(f"filter_ppms must be (F, w, 4), got {p.shape}")
    if not motif_ppms:
        raise ValueError("match_motifs needs at least one motif")
    if min_overlap < 1:
        raise ValueError(f"min_overlap must be at least 1, got {min_overlap}")
    n_f, w, _ = p.shape
    pc = _centred(p)
    p_norm2 = (pc**2).sum(-1)  # (F, w)
    best = np.zeros(n_f, dtype=np.int64)
    best_sim = np.full(n_f, -np.inf)
    best_off = np.zeros(n_f, dtype=np.int64)
    best_strand = np.ones(n_f, dtype=np.int64)
    for m, motif in enumerate(motif_ppms):
        q = np.asarray(motif, dtype=np.float64)
        if q.ndim != 2 or q.shape[1] != 4 or q.shape[0] < 1:
            raise ValueError(f"motif {m} must be (k, 4) with k >= 1, got {q.shape}")
        k = q.shape[0]
        # diag[(i, j), o]: filter column i meets motif column j at offset o = i - j.
        i_idx, j_idx = np.meshgrid(np.arange(w), np.arange(k), indexing="ij")
        diag = np.zeros((w * k, w + k - 1))
        diag[np.arange(w * k), (i_idx - j_idx + k - 1).ravel()] = 1.0
        overlap = diag.sum(0)
        valid = overlap >= min(min_overlap, k, w)
        # filter information over each offset's overlap: (F, n_offsets)
        p_info = np.broadcast_to(p_norm2[:, :, None], (n_f, w, k)).reshape(n_f, -1) @ diag
        for strand, oriented in ((1, q), (-1, q[::-1, ::-1])):
            qc = _centred(oriented)
            q_info = float((qc**2).sum())
            dots = np.einsum("fic,jc->fij", pc, qc).reshape(n_f, -1) @ diag
            den = np.sqrt(p_info * q_info)
            sim = np.where(den > 1e-12, dots / np.where(den > 1e-12, den, 1.0), 0.0)
            sim[:, ~valid] = -np.inf
            o = sim.argmax(1)
            s = sim[np.arange(n_f), o]
            better = s > best_sim
            best[better] = m
            best_sim[better] = s[better]
            best_off[better] = o[better] - (k - 1)
            best_strand[better] = strand
    return MotifMatches(best, np.clip(best_sim, -1.0, 1.0), best_off, best_strand)


def label_filters(similarity: np.ndarray, best: np.ndarray, min_similarity: float) -> np.ndarray:
    """Motif label per filter: ``best`` where ``similarity ≥ min_similarity``, else −1.

    Args:
        similarity: ``(F,)`` from :func:`match_motifs`.
        best: ``(F,)`` motif index from :func:`match_motifs`.
        min_similarity: in (0, 1].

    Raises:
        InputError: ``min_similarity`` outside (0, 1].
    """
    t = float(min_similarity)
    if not 0.0 < t <= 1.0 or math.isnan(t):
        raise InputError(f"must be > 0 and <= 1, got {min_similarity}", field="min_similarity")
    similarity, best = np.asarray(similarity), np.asarray(best)
    if similarity.shape != best.shape:
        raise ValueError(f"similarity {similarity.shape} and best {best.shape} differ in shape")
    return np.where(similarity >= t, best, -1).astype(np.int64)
