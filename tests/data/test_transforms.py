"""Coverage → targets: every sum_stat, scale, clip and clip_soft against a plain reference."""

from __future__ import annotations

import numpy as np
import pyBigWig
import pytest

from gitool.config import BuildOptions
from gitool.data.build import build_store
from gitool.data.store import Store
from gitool.data.tracks import Track, clip_bins, pool_bins, untransform
from gitool.errors import InputError

from conftest import write_bigwig, write_tracks

GEOMETRY = dict(seq_length=400, bin_size=8, target_length=25)


def reference_targets(raw: np.ndarray, target_start: int, sum_stat, scale, clip_soft, clip):
    """The recipe written out step by step, one window at a time, in float64."""
    v = np.nan_to_num(raw[target_start : target_start + 200].astype(np.float64)) * scale
    bins = v.reshape(25, 8)
    if sum_stat == "max":
        pooled = bins.max(1)
    else:
        pooled = bins.sum(1) if sum_stat.startswith("sum") else bins.mean(1)
        if sum_stat.endswith("_sqrt"):  # Basenji's sqrt(1 + x) - 1 (coverage here is >= 0)
            pooled = np.sqrt(1 + pooled) - 1
    if clip_soft is not None:
        pooled = np.where(
            pooled > clip_soft, clip_soft + np.sqrt(np.maximum(pooled - clip_soft, 0)), pooled
        )
    if clip is not None:
        pooled = np.clip(pooled, -clip, clip)
    return np.clip(pooled, -65504, 65504).astype(np.float16)


CASES = [
    ("sum", 1.0, None, None),
    ("sum", 3.0, 40.0, 60.0),
    ("mean", 0.5, 1.0, 3.0),
    ("max", 2.0, 10.0, None),
    ("max", -1.0, None, None),
    ("sum_sqrt", 1.0, None, 5.0),
    ("mean_sqrt", 4.0, 2.0, None),
]


@pytest.mark.parametrize("sum_stat,scale,clip_soft,clip", CASES)
@pytest.mark.parametrize("sparse", [False, True])
def test_targets_match_reference(tiny, sum_stat, scale, clip_soft, clip, sparse):
    d = tiny["dir"]
    raw = tiny["values"]["sparse" if sparse else "dense"]
    file = "sparse.bw" if sparse else "dense.bw"
    if scale < 0:  # a minus-strand track stored negative, made positive by scale -1
        raw = {c: -v for c, v in raw.items()}
        file = write_bigwig(d / "negative.bw", tiny["sizes"], raw).name
    tracks = write_tracks(
        d / "one.txt",
        [dict(identifier="t", file=file, sum_stat=sum_stat,
              scale=scale, clip_soft="" if clip_soft is None else clip_soft,
              clip="" if clip is None else clip)],
    )  # fmt: skip
    build_store(
        BuildOptions(str(tiny["genome"]), str(tracks), out=str(d / "s"), workers=1, **GEOMETRY)
    )
    store = Store(d / "s")
    checked = 0
    for split in ("train", "valid", "test"):
        targets = store.targets(split)
        for row, w in store.windows(split).iterrows():
            expect = reference_targets(
                raw[w.chrom], w.target_start, sum_stat, scale, clip_soft, clip
            )
            np.testing.assert_allclose(
                targets[row, :, 0].astype(np.float64),
                expect.astype(np.float64),
                rtol=2e-3,
                atol=1e-3,
            )
            checked += 1
    assert checked > 20


def _build_one(tiny, tmp_path, file, scale=1.0, **more):
    tracks = write_tracks(
        tmp_path / "t.txt", [dict(identifier="t", file=str(file), sum_stat="sum", scale=scale)]
    )
    options = dict(out=str(tmp_path / "s"), workers=1, **GEOMETRY, **more)
    return build_store(BuildOptions(str(tiny["genome"]), str(tracks), **options))


@pytest.mark.parametrize(
    ("sign", "scale", "needle"),
    [
        (1, 1.0, "negative values (first at chr1:4, "),  # log ratios
        (-1, 1.0, "set its scale to -1"),  # a minus-strand track stored negative
        (1, -1.0, "positive values (first at chr1:1, "),  # scale -1 on positive coverage
    ],
)
def test_negative_coverage_is_refused_naming_track_position_and_fix(
    tmp_path, tiny, sign, scale, needle
):
    """A Poisson model needs counts >= 0: refused before anything is written."""
    sizes = tiny["sizes"]
    values = {c: sign * np.arange(1, n + 1, dtype=float) for c, n in sizes.items()}
    if sign > 0 and scale > 0:
        values["chr1"][3] = -2.5
    write_bigwig(tmp_path / "lfc.bw", sizes, values)
    with pytest.raises(InputError, match="track 't'") as err:
        _build_one(tiny, tmp_path, tmp_path / "lfc.bw", scale)
    assert needle in str(err.value) and "lfc.bw" in str(err.value)
    assert not (tmp_path / "s").exists()


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_reads_as_zero_and_infinity_is_refused(tmp_path, tiny, bad):
    """pyBigWig segfaults reading the header of a bigWig that stores NaN; neither file may
    crash the build: NaN is 0, infinity an error naming the file."""
    sizes = tiny["sizes"]
    bw = pyBigWig.open(str(tmp_path / "odd.bw"), "w")
    bw.addHeader(list(sizes.items()))
    for chrom, n in sizes.items():
        starts = list(range(0, n, 10))
        values = [1.0] * len(starts)
        values[12] = bad if chrom == "chr1" else 1.0
        bw.addEntries([chrom] * len(starts), starts, ends=[s + 10 for s in starts], values=values)
    bw.close()
    if bad != bad:  # NaN
        _build_one(tiny, tmp_path, tmp_path / "odd.bw")
        store = Store(tmp_path / "s")
        w = store.windows("train")
        row = int(np.flatnonzero((w.chrom == "chr1") & (w.target_start <= 120))[-1])
        first = int(w.target_start.iloc[row])
        assert store.targets("train")[row, (120 - first) // 8, 0] < 8  # the NaN bases are 0
    else:
        with pytest.raises(InputError, match="odd.bw holds inf values"):
            _build_one(tiny, tmp_path, tmp_path / "odd.bw")


@pytest.mark.parametrize("stride", [None, 100], ids=["on-grid", "off-grid"])
def test_saturated_bins_warn_with_a_scale_that_fits(tmp_path, tiny, capsys, stride):
    sizes = tiny["sizes"]
    write_bigwig(tmp_path / "big.bw", sizes, {c: np.full(n, 1e4) for c, n in sizes.items()})
    _build_one(tiny, tmp_path, tmp_path / "big.bw", **({"stride": stride} if stride else {}))
    err = " ".join(capsys.readouterr().err.split())
    assert "track 't':" in err and "bins exceed float16's maximum 65,504" in err
    # 8 bp × 1e4 = 80,000 per bin: scale 0.818 fits (65,504 / 80,000 = 0.8188)
    assert "scale 0.818 in the tracks file would fit them" in err
    assert Store(tmp_path / "s").targets("train").max() == np.float16(65504)


def test_the_scale_that_fits_is_rounded_towards_zero_for_negative_scales():
    from gitool.data.tracks import scale_that_fits

    for scale in (1.0, -1.0):  # a minus-strand track stored negative: scale -1
        track = Track(0, "t", "t.bw", None, None, scale, "sum", 0, "")
        fits = scale_that_fits(track, 102_424.0)  # the largest |bin|, as the build finds it
        assert np.sign(fits) == np.sign(scale) and abs(fits) == pytest.approx(0.639)
        assert abs(fits) * 102_424.0 <= 65_504


def test_saturation_counts_only_stored_bins(tmp_path, tiny, capsys):
    """A pile-up in a blacklisted stretch is read with its neighbours but never stored: no
    warning, and no scale that would shrink the real signal to fit it."""
    sizes = tiny["sizes"]
    values = {c: np.ones(n) for c, n in sizes.items()}
    values["chr1"][300:500] = 1e6
    write_bigwig(tmp_path / "pile.bw", sizes, values)
    (tmp_path / "bl.bed").write_text("chr1\t300\t500\n")
    _build_one(tiny, tmp_path, tmp_path / "pile.bw", blacklist=str(tmp_path / "bl.bed"))
    assert "exceed float16" not in capsys.readouterr().err
    store = Store(tmp_path / "s")
    assert max(float(np.max(store.targets(s))) for s in ("train", "valid", "test")) == 8.0


def test_float16_never_overflows():
    pooled = np.array([1e3, 7e4, 1e9, -1e9], dtype=np.float32)
    out = clip_bins(pooled, None, None)
    assert out.dtype == np.float16
    assert np.isfinite(out).all()
    assert out[1] == np.float16(65504) and out[3] == np.float16(-65504)


def test_pool_bins_scale_before_sqrt():
    v = np.arange(16, dtype=np.float32)
    got = pool_bins(v.copy(), 8, "sum_sqrt", 2.0)
    expect = np.sqrt(1 + 2 * v.reshape(2, 8).sum(1)) - 1
    np.testing.assert_allclose(got, expect, rtol=1e-6)


@pytest.mark.parametrize("sum_stat", ["sum", "sum_sqrt"])
def test_untransform_inverts_soft_clip_and_scale(sum_stat):
    track = Track(0, "t", "t.bw", None, 10.0, 0.25, sum_stat, 0, "t")
    raw = np.array([0.0, 3.0, 9.0, 50.0, 400.0], dtype=np.float32)
    pooled = pool_bins(np.repeat(raw, 4), 4, sum_stat, 0.25)
    stored = clip_bins(pooled, 10.0, None)
    back = untransform(stored[:, None], [track])[:, 0]
    expect = raw * 4  # sum over the 4-bp bin, in bigWig units
    # float16 storage (3 significant digits) is amplified by the squares of the inverse.
    np.testing.assert_allclose(back, expect, rtol=5e-3, atol=1e-2)
