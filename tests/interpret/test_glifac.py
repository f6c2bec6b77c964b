"""GLIFAC, the local baseline, motif maps, scoring and filter labelling (gitool.interpret.glifac)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from gitool.errors import InputError
from gitool.interpret.glifac import (
    FilterPPMs,
    PairAccumulator,
    _threshold_stream,
    distance_matched_pairs,
    full_index,
    label_filters,
    match_motifs,
    motif_map,
    random_pairs,
    score_filter_pairs,
    score_map,
    symmetrise,
)
from gitool.interpret.motifs import load_builtin_motifs, ppm, sample_instances


def explicit_pairs(attn: np.ndarray, token_index: np.ndarray, threshold: float) -> list:
    """(b, i, j) of every attended slot pair, by plain loops."""
    pairs = []
    n_seq, n_win, w, _ = attn.shape
    for b in range(n_seq):
        for n in range(n_win):
            for s in range(w):
                for t in range(w):
                    i, j = token_index[n, s], token_index[n, t]
                    if i >= 0 and j >= 0 and i != j and attn[b, n, s, t] >= threshold:
                        pairs.append((b, i, j))
    return pairs


def corr(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Pearson of every column of x against every column of y."""
    f = x.shape[1]
    return np.corrcoef(x.T, y.T)[:f, f:]


def planted_batch(rng: np.random.Generator, n_seq: int = 400, length: int = 20, n_f: int = 6):
    """Filter 1 high at token i and filter 4 high at token j, with attention i -> j, in 3/4 of
    the sequences; activations otherwise iid; attention elsewhere diffuse (< 0.1)."""
    x = rng.exponential(1.0, (n_seq, length, n_f))
    attn = rng.uniform(0.0, 0.08, (n_seq, length, length))
    for b in range(n_seq):
        if b % 4 == 3:
            continue
        i, j = rng.choice(length, 2, replace=False)
        h = rng.uniform(3.0, 6.0)
        x[b, i, 1] = h
        x[b, j, 4] = h + rng.normal(0.0, 0.3)
        attn[b, i, j] = 0.6
    return torch.tensor(x), torch.tensor(attn)[:, None]


def test_planted_interaction_is_the_strongest_entry():
    x, attn = planted_batch(np.random.default_rng(0))
    acc = PairAccumulator(6, [0.1, 0.9], seed=3)
    acc.update(x[:250], attn[:250], full_index(20))  # two batches
    acc.update(x[250:], attn[250:], full_index(20))
    low, high = acc.result()
    assert (low.threshold, low.pairs, low.random_pairs, low.sequences) == (0.1, 300, 300, 400)
    g = low.glifac
    np.testing.assert_array_equal(g, g.T)
    np.testing.assert_array_equal(np.diag(g), 0.0)
    f, h = np.unravel_index(np.abs(g).argmax(), g.shape)
    assert {f, h} == {1, 4}
    assert g[1, 4] > 0.5
    others = np.abs(g[~np.isin(np.arange(6), [1, 4])[:, None] | ~np.isin(np.arange(6), [1, 4])])
    assert others.max() < 0.2
    # directed: the query is filter 1, the key filter 4
    assert low.glifac_directed[1, 4] > 0.5 > abs(low.glifac_directed[4, 1])
    # no attention reaches 0.9: no pairs, an all-zero map
    assert (high.pairs, high.random_pairs) == (0, 0)
    np.testing.assert_array_equal(high.glifac, 0.0)
    assert low.local is None


@pytest.mark.parametrize("add_random", [False, True])
def test_sums_match_an_explicit_pair_list(add_random):  # random "none" and "sample"
    rng = np.random.default_rng(1)
    n_seq, length, n_f = 3, 6, 3
    # overlapping windows (tokens 2, 3 in two windows), a repeated token (5) and padding
    tok = np.array([[0, 1, 2, 3], [2, 3, 4, 5], [5, 0, 5, -1]])
    attn = rng.uniform(0, 1, (n_seq, 3, 4, 4))
    x = rng.normal(size=(n_seq, length, n_f))
    acc = PairAccumulator(n_f, [0.3], seed=7, random="sample" if add_random else "none")
    acc.update(torch.tensor(x), torch.tensor(attn), torch.tensor(tok))
    (maps,) = acc.result()

    pairs = explicit_pairs(attn, tok, 0.3)
    assert maps.pairs == len(pairs)
    assert all(i != j for _, i, j in pairs)
    b, i, j = np.array(pairs).T
    if add_random:  # the documented draw: keyed on (seed, threshold, sequence, ordinal)
        counts = np.bincount(b, minlength=n_seq)
        drawn = list(random_pairs(counts, length, 7, _threshold_stream(0.3, 0)))
        rb, ri, rj = (torch.cat(parts).numpy() for parts in zip(*drawn, strict=True))
        assert (ri != rj).all() and np.array_equal(np.bincount(rb, minlength=n_seq), counts)
        b, i, j = np.r_[b, rb], np.r_[i, ri], np.r_[j, rj]
    assert maps.random_pairs == (len(pairs) if add_random else 0)
    expected = corr(x[b, i], x[b, j])
    np.testing.assert_allclose(maps.glifac_directed, expected, atol=1e-12)
    np.testing.assert_allclose(maps.glifac, symmetrise(expected), atol=1e-12)


def test_expected_random_pairs_weight_every_pair():
    """random="expected": the attended pairs (weight 1) plus every ordered pair i ≠ j of each
    sequence with weight n_b / (L (L − 1)) — a weighted Pearson, checked by brute force; and
    the sampled map converges to it."""
    rng = np.random.default_rng(4)
    n_seq, length, n_f = 6, 8, 3
    x = rng.normal(size=(n_seq, length, n_f)) + np.arange(n_f)
    attn = rng.uniform(0, 0.3, (n_seq, 1, length, length))
    tok = full_index(length).numpy()
    acc = PairAccumulator(n_f, [0.2], random="expected")
    acc.update(torch.tensor(x), torch.tensor(attn), torch.tensor(tok))
    (maps,) = acc.result()
    pairs = explicit_pairs(attn, tok, 0.2)
    counts = np.bincount([b for b, _, _ in pairs], minlength=n_seq)
    rows = [(b, i, j, 1.0) for b, i, j in pairs]
    rows += [(b, i, j, counts[b] / (length * (length - 1)))
             for b in range(n_seq) for i in range(length) for j in range(length) if i != j]  # fmt: skip
    b, i, j, w = (np.array(c) for c in zip(*rows, strict=True))
    xs, ys = x[b, i], x[b, j]
    mx, my = np.average(xs, axis=0, weights=w), np.average(ys, axis=0, weights=w)
    cov = ((xs - mx) * w[:, None]).T @ (ys - my) / w.sum()
    sd_x = np.sqrt(np.average((xs - mx) ** 2, axis=0, weights=w))
    sd_y = np.sqrt(np.average((ys - my) ** 2, axis=0, weights=w))
    np.testing.assert_allclose(maps.glifac_directed, cov / np.outer(sd_x, sd_y), atol=1e-12)
    assert maps.random_pairs == maps.pairs == len(pairs)
    # many sampled copies of the same sequences approach the expectation
    many = PairAccumulator(n_f, [0.2], seed=1)
    for copy in range(300):
        many.update(torch.tensor(x), torch.tensor(attn), torch.tensor(tok), first_sequence=0,
                    stream=copy)  # fmt: skip
    np.testing.assert_allclose(many.result()[0].glifac_directed, maps.glifac_directed, atol=0.02)
    with pytest.raises(
        InputError, match="^random_pairs 'all': choose sample, distance, expected, none"
    ):
        PairAccumulator(n_f, [0.2], random="all")


def test_windowed_attention_equals_the_full_matrix():
    rng = np.random.default_rng(2)
    n_seq, length, n_f = 5, 10, 4
    # windows in scrambled slot order, covering each token once, padding slots with high weight
    tok = np.array([[3, 0, 2, 1], [7, 4, 6, 5], [9, -1, 8, -1]])
    attn_w = rng.uniform(0, 1, (n_seq, 3, 4, 4))
    full = np.zeros((n_seq, 1, length, length))
    for n in range(3):
        for s in range(4):
            for t in range(4):
                if tok[n, s] >= 0 and tok[n, t] >= 0:
                    full[:, 0, tok[n, s], tok[n, t]] = attn_w[:, n, s, t]
    x = torch.tensor(rng.exponential(1.0, (n_seq, length, n_f)))
    active = torch.full((n_f,), 1.0)
    results = []
    for attn, index in ((attn_w, torch.tensor(tok)), (full, full_index(length))):
        acc = PairAccumulator(n_f, [0.2, 0.5], seed=11, active_threshold=active)
        acc.update(x, torch.tensor(attn, dtype=torch.float32), index)
        results.append(acc.result())
    for windowed, whole in zip(*results, strict=True):
        assert windowed.pairs == whole.pairs > 0
        np.testing.assert_allclose(windowed.glifac, whole.glifac, atol=1e-12)
        np.testing.assert_array_equal(windowed.local, whole.local)


@pytest.mark.parametrize("bad", [1.5, -0.1, float("nan")])
def test_threshold_outside_unit_interval_is_an_input_error(bad):
    with pytest.raises(InputError, match=r"^threshold must be 0 to 1, got"):
        PairAccumulator(4, [0.1, bad])


def test_shape_mismatches_raise_value_error():
    acc = PairAccumulator(3, [0.1])
    x = torch.zeros(2, 5, 3)
    with pytest.raises(ValueError, match="activations"):
        acc.update(torch.zeros(2, 5, 4), torch.zeros(2, 1, 5, 5), full_index(5))
    with pytest.raises(ValueError, match="attn"):
        acc.update(x, torch.zeros(3, 1, 5, 5), full_index(5))
    with pytest.raises(ValueError, match="token_index"):
        acc.update(x, torch.zeros(2, 1, 5, 5), full_index(4))
    with pytest.raises(ValueError, match="token_index values"):
        acc.update(x, torch.zeros(2, 1, 5, 5), full_index(5) + 1)


def test_local_counts_by_hand():
    # token:   0       1       2
    x = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]])
    attn = torch.zeros(1, 1, 3, 3)
    attn[0, 0, 0, 1] = 0.9  # query 0 {f0} -> key 1 {f1}: count[0, 1] += 1
    attn[0, 0, 2, 0] = 0.5  # query 2 {f0, f1} -> key 0 {f0}: count[0, 0], count[1, 0] += 1
    attn[0, 0, 1, 2] = 0.4  # query 1 {f1} -> key 2 {f0, f1}: count[1, 0], count[1, 1] += 1
    attn[0, 0, 2, 2] = 1.0  # self-pair: never counted
    # at 0.5 the pair with attention exactly 0.5 counts (attention >= threshold)
    acc = PairAccumulator(2, [0.3, 0.5], active_threshold=torch.tensor([0.5, 0.5]))
    acc.update(x, attn, full_index(3))
    low, high = acc.result()
    assert low.pairs == 3 and high.pairs == 2
    # directed [[1, 1], [2, 1]] -> symmetrised, diagonal removed
    np.testing.assert_array_equal(low.local, [[0, 2], [2, 0]])
    # directed [[1, 1], [1, 0]]
    np.testing.assert_array_equal(high.local, [[0, 1], [1, 0]])


def test_random_pairs_are_uniform_distinct_and_reproducible():
    counts = torch.tensor([0, 3000, 5, 2000])
    draw = list(random_pairs(counts, 4, 0, chunk=1000))
    assert len(draw) == 6  # 5005 pairs in chunks of 1000
    seq, i, j = (torch.cat(parts) for parts in zip(*draw, strict=True))
    np.testing.assert_array_equal(torch.bincount(seq, minlength=4), counts)
    assert (i != j).all() and i.min() >= 0 and j.max() <= 3
    freq = torch.bincount(i * 4 + j, minlength=16).reshape(4, 4).double() / len(i)
    assert (freq.diagonal() == 0).all()
    off = freq[~torch.eye(4, dtype=torch.bool)]
    assert (off - 1 / 12).abs().max() < 0.02  # 12 ordered pairs, each ~1/12
    # the same pairs whatever the chunking; another seed or stream gives others
    (one,) = random_pairs(counts, 4, 0, chunk=10_000)
    assert all(torch.equal(a, b) for a, b in zip((seq, i, j), one, strict=True))
    assert not torch.equal(next(random_pairs(counts, 4, 1))[1], one[1])
    assert not torch.equal(next(random_pairs(counts, 4, 0, stream=1))[1], one[1])
    # sequence 3's pairs are keyed on its global index, not on its row in the batch
    (tail,) = random_pairs(counts[3:], 4, 0, first_sequence=3)
    assert torch.equal(tail[1], i[seq == 3]) and torch.equal(tail[2], j[seq == 3])


def test_maps_do_not_depend_on_batching_or_the_other_thresholds():
    rng = np.random.default_rng(5)
    n_seq, length, n_f = 7, 10, 3
    x = torch.tensor(rng.normal(size=(n_seq, length, n_f)))
    attn = torch.tensor(rng.dirichlet(np.ones(length), size=(n_seq, 1, length)))
    tok = full_index(length)

    def run(thresholds, batch):
        acc = PairAccumulator(n_f, thresholds, seed=3)
        for lo in range(0, n_seq, batch):
            acc.update(x[lo : lo + batch], attn[lo : lo + batch], tok)
        return {m.threshold: m for m in acc.result()}

    alone, sweep = run([0.1], 7), run([0.2, 0.1], 3)
    assert alone[0.1].random_pairs == alone[0.1].pairs > 0
    # the same pairs; batching only changes the order of the float64 sums
    np.testing.assert_allclose(alone[0.1].glifac_directed, sweep[0.1].glifac_directed, atol=1e-12)
    assert sweep[0.1].sequences == 7
    # two blocks over the same sequences (a swin layer's regular and shifted attention)
    acc = PairAccumulator(n_f, [0.1], seed=3)
    for block in (0, 1):
        acc.update(x, attn, tok, first_sequence=0, stream=block)
    (both,) = acc.result()
    assert both.sequences == 7 and both.random_pairs == 2 * alone[0.1].random_pairs


def test_symmetrise_keeps_the_larger_magnitude_with_its_sign():
    # (1, 2) vs (2, 1): an exact tie of magnitudes goes to the positive entry
    m = np.array([[5.0, 0.2, -0.7], [-0.3, 1.0, 0.4], [0.6, -0.4, 2.0]])
    expected = np.array([[0.0, -0.3, -0.7], [-0.3, 0.0, 0.4], [-0.7, 0.4, 0.0]])
    np.testing.assert_array_equal(symmetrise(m), expected)


def test_motif_map_takes_the_strongest_filter_pair():
    m = np.array(
        [
            # f0(a0) f1(a1) f2(a1) f3(--) f4(a2)
            [0.0, 0.3, -0.8, 0.99, 0.1],
            [0.2, 0.0, 0.95, 0.0, -0.5],
            [0.1, 0.9, 0.0, 0.0, 0.45],
            [0.99, 0.0, 0.0, 0.0, 0.99],
            [0.05, 0.6, 0.0, 0.99, 0.0],
        ]
    )
    labels = np.array([0, 1, 1, -1, 2])
    out = motif_map(m, labels, n_motifs=4)
    nan = np.nan
    expected = np.array(
        [
            [nan, -0.8, 0.1, nan],  # (0, 1): m[0, 2]; (0, 2): m[0, 4]
            [-0.8, nan, 0.6, nan],  # (1, 2): m[4, 1]; (1, 1) is the diagonal
            [0.1, 0.6, nan, nan],
            [nan, nan, nan, nan],  # motif 3 has no filter; filter 3 is unlabelled
        ]
    )
    np.testing.assert_array_equal(out, expected)


def test_score_map_on_a_hand_made_motif_map():
    mm = np.array(
        [
            [np.nan, 0.9, -0.2, np.nan],
            [0.9, np.nan, 0.5, -0.6],
            [-0.2, 0.5, np.nan, 0.1],
            [np.nan, -0.6, 0.1, np.nan],
        ]
    )
    # ranked |values| of the 6 pairs: .9 (+), .6, .5, .2, .1 (+), NaN -> 0
    got = score_map(mm, [(1, 0), (2, 3)])
    assert got["positives"] == 2 and got["negatives"] == 4
    assert got["auroc"] == pytest.approx((4 + 1) / 8)
    assert got["aupr"] == pytest.approx(0.5 * 1 + 0.5 * 2 / 5)
    assert got["snr"] == pytest.approx(((0.9 + 0.1) / 2) / ((0.6 + 0.5 + 0.2 + 0.0) / 4))
    with pytest.raises(ValueError, match="truth pairs"):
        score_map(mm, [(1, 1)])


def test_score_filter_pairs_counts_every_filter_pair():
    # filters 0, 1 -> motif 0; 2 -> motif 1; 3 -> motif 2; 4 unlabelled
    labels = np.array([0, 0, 1, 2, -1])
    fm = np.zeros((5, 5))
    for (a, b), v in {(0, 2): 0.8, (1, 2): -0.4, (0, 3): 0.3, (1, 3): 0.1, (2, 3): 0.6,
                      (0, 1): 0.99, (2, 4): 0.95}.items():  # fmt: skip
        fm[a, b] = fm[b, a] = v
    got = score_filter_pairs(fm, labels, [(1, 0)])
    # samples: (0,2) .8 +, (1,2) .4 +, (0,3) .3, (1,3) .1, (2,3) .6; same-motif and unlabelled out
    assert got["positives"] == 2 and got["negatives"] == 3
    assert got["auroc"] == pytest.approx(5 / 6)  # .4 is beaten by .6 only
    assert got["aupr"] == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)
    assert got["snr"] == pytest.approx(((0.8 + 0.4) / 2) / ((0.3 + 0.1 + 0.6) / 3))
    # the motif map keeps one sample per motif pair: (0,1) -> .8, (0,2) -> .3, (1,2) -> .6
    one_per_pair = score_map(motif_map(fm, labels, 3), [(1, 0)])
    assert one_per_pair["positives"] == 1 and one_per_pair["auroc"] == pytest.approx(1.0)


def test_authors_scoring_ranks_signed_values_and_keeps_unlabelled_filters():
    """The GLIFAC authors' ``glifac_stats``: signed ranking, unlabelled filters as one more
    label, trapezoid PR area, SNR over the 100 highest positive negatives (hand-computed)."""
    labels = np.array([0, 0, 1, 2, -1])
    fm = np.zeros((5, 5))
    for (a, b), v in {(0, 2): 0.8, (1, 2): -0.4, (0, 3): 0.3, (1, 3): 0.1, (2, 3): 0.6,
                      (0, 1): 0.99, (2, 4): 0.95}.items():  # fmt: skip
        fm[a, b] = fm[b, a] = v
    got = score_filter_pairs(fm, labels, [(1, 0)], scoring="authors")
    # positives .8, -.4; negatives .3 .1 .6 and the unlabelled filter's .95 0 0 0
    assert got["positives"] == 2 and got["negatives"] == 7
    assert got["auroc"] == pytest.approx(6 / 14)  # -.4 ranks last: a negative r counts low
    # PR points (recall, precision): (0, 1) (0, 0) (.5, 1/2) ... (.5, 1/8) (1, 2/9)
    assert got["aupr"] == pytest.approx(0.5 * 0.5 / 2 + 0.5 * (1 / 8 + 2 / 9) / 2)
    assert got["snr"] == pytest.approx(0.2 / np.mean([0.95, 0.6, 0.3, 0.1]))
    with pytest.raises(ValueError, match="scoring"):
        score_filter_pairs(fm, labels, [(1, 0)], scoring="paper")


def brute_ppm_counts(codes, act, threshold, width):
    n_seq, length, n_f = act.shape
    left = (width - 1) // 2
    counts = np.zeros((n_f, width, 4))
    for b, p, f in zip(*np.nonzero(act > threshold), strict=True):
        for c in range(width):
            q = p - left + c
            if 0 <= q < length and codes[b, q] < 4:
                counts[f, c, codes[b, q]] += 1
    return counts


@pytest.mark.parametrize("width", [9, 8])
def test_filter_ppms_recover_a_planted_kmer(width):
    rng = np.random.default_rng(3)
    kmer = np.array([2, 0, 3, 3, 0, 1, 0])  # GATTACA
    n_seq, length = 30, 40
    codes = rng.integers(0, 4, (n_seq, length)).astype(np.uint8)
    codes[rng.random((n_seq, length)) < 0.05] = 4  # some N
    act = rng.uniform(0.0, 0.5, (n_seq, length, 2))
    starts = [0, length - 7] + [10] * (n_seq - 2)  # at both ends, then mid-sequence
    left = (width - 1) // 2
    for b, s in enumerate(starts):
        codes[b, s : s + 7] = kmer
        act[b, s + left - 1, 0] = 1.0  # window column 1 = first k-mer base
    act[0, 20, 0] = 0.5  # equal to the threshold: not a site
    fp = FilterPPMs(2, width)
    thr = torch.tensor([0.5, 0.9])
    fp.update(torch.tensor(codes[:10]), torch.tensor(act[:10]), thr)
    fp.update(torch.tensor(codes[10:]), torch.tensor(act[10:]), thr)
    np.testing.assert_array_equal(fp.sites(), [n_seq, 0])
    np.testing.assert_array_equal(fp.counts.numpy(), brute_ppm_counts(codes, act, 0.5, width))
    p = fp.ppms()
    np.testing.assert_array_equal(p[0, 1:8], np.eye(4)[kmer])
    np.testing.assert_allclose(p[0].sum(-1), 1.0)
    np.testing.assert_array_equal(p[1], 0.25)  # never active: uniform


def embed(q: np.ndarray, width: int, offset: int) -> np.ndarray:
    """A uniform (width, 4) PPM with q's columns from `offset` (cut at the edges)."""
    out = np.full((width, 4), 0.25)
    for j in range(len(q)):
        if 0 <= offset + j < width:
            out[offset + j] = q[j]
    return out


def test_match_motifs_finds_strand_offset_and_ranks_unrelated_lower():
    motifs = load_builtin_motifs()
    names = [m.name for m in motifs]
    ppms = [ppm(m) for m in motifs]
    gata, foxn3, yy1 = (ppms[names.index(n)] for n in ("GATA1", "FOXN3", "YY1"))
    soft = 0.25 + 0.4 * (gata - 0.25)  # a fuzzier copy: same shape, less information
    filters = np.stack(
        [
            embed(gata, 19, 5),
            embed(foxn3[::-1, ::-1], 19, 3),  # reverse complement
            embed(soft, 19, 8),  # reaches the last column (GATA1: 11 bp)
            embed(yy1, 19, -3),  # cut: only 9 of 12 columns
            np.full((19, 4), 0.25),  # no information
        ]
    )
    got = match_motifs(filters, ppms)
    assert [names[k] for k in got.best[:4]] == ["GATA1", "FOXN3", "GATA1", "YY1"]
    np.testing.assert_allclose(got.similarity[:3], 1.0)
    np.testing.assert_array_equal(got.offset[:4], [5, 3, 8, -3])
    np.testing.assert_array_equal(got.strand[:4], [1, -1, 1, 1])
    assert 0.3 < got.similarity[3] < 0.95  # partial coverage costs
    assert got.similarity[4] == 0.0
    # an unrelated motif scores lower
    alone = match_motifs(filters[:1], [yy1, gata])
    unrelated = match_motifs(filters[:1], [yy1])
    assert alone.best[0] == 1 and unrelated.similarity[0] < 0.6
    # min_overlap: the cut YY1 filter cannot be compared over 9 columns with min_overlap 10
    assert match_motifs(filters[3:4], [yy1], min_overlap=10).similarity[0] < got.similarity[3]
    labels = label_filters(got.similarity, got.best, 0.9)
    assert labels.tolist() == [
        names.index("GATA1"),
        names.index("FOXN3"),
        names.index("GATA1"),
        -1,
        -1,
    ]
    with pytest.raises(InputError, match="^min_similarity must be > 0 and <= 1"):
        label_filters(got.similarity, got.best, 0.0)


def test_filters_planted_at_sampled_instances_are_labelled_with_their_motif():
    """End to end: per motif one filter active at sampled instances (both orientations)."""
    rng = np.random.default_rng(4)
    motifs = load_builtin_motifs()
    n_m, n_inst, length, width = len(motifs), 150, 40, 19
    codes = rng.integers(0, 4, (n_m * n_inst, length)).astype(np.uint8)
    act = np.zeros((n_m * n_inst, length, n_m))
    for m, motif in enumerate(motifs):
        inst = sample_instances(motif, n_inst, rng)
        if m % 2:
            inst = inst[:, ::-1].copy()
            inst[inst < 4] = 3 - inst[inst < 4]
        rows = slice(m * n_inst, (m + 1) * n_inst)
        codes[rows, 10 : 10 + motif.length] = inst
        act[rows, 10 + (motif.length - 1) // 2, m] = 1.0
    fp = FilterPPMs(n_m, width)
    fp.update(torch.tensor(codes), torch.tensor(act), torch.full((n_m,), 0.5))
    got = match_motifs(fp.ppms(), [ppm(m) for m in motifs])
    np.testing.assert_array_equal(got.best, np.arange(n_m))
    np.testing.assert_array_equal(got.strand, np.where(np.arange(n_m) % 2, -1, 1))
    assert got.similarity.min() > 0.9
    assert not math.isnan(got.similarity.sum())


def test_distance_matched_pairs_keep_each_offset_and_cover_every_start():
    seq = torch.tensor([0] * 4000 + [5] * 4000)
    offset = torch.tensor([3, -7] * 4000)
    i, j = distance_matched_pairs(seq, offset, 20, seed=1)
    assert torch.equal(j - i, offset)
    assert i.min() >= 0 and j.min() >= 0 and i.max() < 20 and j.max() < 20
    assert set(i[offset == 3].tolist()) == set(range(17))  # every start of a +3 pair
    assert set(i[offset == -7].tolist()) == set(range(7, 20))
    again = distance_matched_pairs(seq, offset, 20, seed=1)
    assert torch.equal(again[0], i)  # counter-based: the same draw
    assert not torch.equal(distance_matched_pairs(seq, offset, 20, seed=2)[0], i)
    with pytest.raises(ValueError, match="offsets"):
        distance_matched_pairs(torch.tensor([0]), torch.tensor([20]), 20, seed=0)


def _windowed_case(selective: bool, seed: int = 0):
    """Two filters on 64 sequences of 512 tokens, attention in windows of 16. Content-blind
    (``selective=False``): every pair of a window attended; the filters share a smooth
    component, so *near* tokens correlate across filters. Selective: sparse activations and
    attention only from an active filter-0 token to an active filter-1 token."""
    rng = np.random.default_rng(seed)
    n_seq, length, w = 64, 512, 16
    n_win = length // w
    tok = torch.arange(length).view(n_win, w)
    if not selective:

        def smooth(a):
            return np.apply_along_axis(lambda r: np.convolve(r, np.ones(9) / 9, "same"), -1, a)

        common = smooth(rng.normal(size=(n_seq, length)))
        x = np.stack([smooth(rng.normal(size=(n_seq, length))) + common for _ in range(2)], -1)
        return torch.tensor(x), torch.full((n_seq, n_win, w, w), 1.0 / w), tok
    x = (rng.random((n_seq, length, 2)) < 0.05).astype(np.float64)
    xw = x.reshape(n_seq, n_win, w, 2)
    attn = 0.5 * xw[..., 0][..., :, None] * xw[..., 1][..., None, :]
    return torch.tensor(x), torch.tensor(attn), tok


def test_distance_mode_removes_what_proximity_alone_gives():
    """Attention that ignores the content, over activations correlated between near tokens:
    uniform random pairs (GLIFAC as published) show a filter interaction that is only
    proximity; the distance-matched map is ~0. Attention that selects filter 0 → filter 1
    pairs shows up in both."""
    x, attn, tok = _windowed_case(selective=False)
    maps = {}
    for mode in ("sample", "distance"):
        acc = PairAccumulator(2, [0.05], random=mode)
        acc.update(x, attn, tok)
        maps[mode] = acc.result()[0]
    assert maps["sample"].glifac_directed[0, 1] > 0.08
    assert np.abs(maps["distance"].glifac_directed).max() < 0.03
    assert maps["distance"].random_pairs == maps["distance"].pairs == 64 * 32 * 16 * 15
    x, attn, tok = _windowed_case(selective=True)
    acc = PairAccumulator(2, [0.1], random="distance")
    acc.update(x, attn, tok)
    selected = acc.result()[0].glifac_directed
    assert selected[0, 1] > 0.8 and abs(selected[1, 0]) < 0.2


def test_distance_mode_does_not_depend_on_batching():
    x, attn, tok = _windowed_case(selective=True, seed=3)
    whole = PairAccumulator(2, [0.1], random="distance")
    whole.update(x, attn, tok)
    parts = PairAccumulator(2, [0.1], random="distance")
    for lo in (40, 0):  # out of order, with their global indices
        parts.update(x[lo : lo + 40], attn[lo : lo + 40], tok, first_sequence=lo)
    np.testing.assert_allclose(
        parts.result()[0].glifac_directed, whole.result()[0].glifac_directed, atol=1e-12
    )
