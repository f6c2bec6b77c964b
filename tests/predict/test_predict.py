"""``gitool predict``: tiling arithmetic, stitched bins against direct model calls, rc/shift
averaging (on the device, only the selected tracks reaching the host), batch-size
independence and the default batch per device, the bigWig/bedGraph writer (read back with
pyBigWig AND pybbi, UCSC's library) with its bounded open files (more tracks than the
open-file limit), writer thread and processes, and every bad-input path."""

from __future__ import annotations

import dataclasses
import errno
import gzip
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import bbi
import numpy as np
import pyBigWig
import pytest
import torch
from torch import nn

import gitool.errors
from gitool.config.predict import PredictOptions
from gitool.console import run_reporting_errors
from gitool.data.genome import encode, one_hot, reverse_complement
from gitool.data.tracks import Track, untransform
from gitool.data.windows import Geometry
from gitool.errors import InputError
from gitool.made import RECORD
from gitool.predict import inference, writer
from gitool.predict.bigwig import TrackWriter, output_paths
from gitool.predict.inference import predict_regions
from gitool.predict.tiling import (
    Region,
    SequenceReader,
    regions_from_intervals,
    sequence_interval,
    tile_regions,
)

from fixture_models import (
    BaseCounts,
    CountsConfig,
    counts_manifest,
    make_run,
    tiny_manifest,
)
from helpers import assert_input_error, run_cli

GEOMETRY = Geometry(400, 8, 25)


# --------------------------------------------------------------------------- helpers


def padded_codes(seq: str, start: int, end: int) -> np.ndarray:
    """Codes of ``seq[start:end]`` with N beyond both ends (independent of Genome.codes)."""
    out = np.full(end - start, 4, dtype=np.uint8)
    lo, hi = max(start, 0), min(end, len(seq))
    if hi > lo:
        out[lo - start : hi - start] = encode(seq[lo:hi])
    return out


def expected_counts(seq: str, start: int, end: int, shift: int = 0) -> np.ndarray:
    """Base counts of every 8-bp genome bin of ``[start, end)`` (last bin clipped at the
    chromosome end, but counted over 8 bp of input like the model does), input shifted."""
    n = -(-(end - start) // 8)
    codes = padded_codes(seq, start + shift, start + shift + n * 8).reshape(n, 8)
    return np.stack([(codes == b).sum(1) for b in range(4)], axis=1).astype(np.float32)


def direct_windows(model, seq: str, region: Region, head: str, rc: bool = False) -> np.ndarray:
    """The model's own output for the windows covering ``region``, computed here: bins of
    ``(n_bins, n_tracks)`` (reverse complement: the raw output, bins reversed back)."""
    g = GEOMETRY
    parts = []
    for ts in range(region.start, region.end, g.target_span):
        left = g.context_right if rc else g.context_left
        codes = padded_codes(seq, ts - left, ts - left + g.seq_length)
        if rc:
            codes = reverse_complement(codes)
        with torch.no_grad():
            y = model(torch.from_numpy(one_hot(codes[None])), head)[0].numpy()
        parts.append(y[::-1] if rc else y)
    return np.concatenate(parts)[: region.n_bins(8)]


def write_bed(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines))
    return path


def bigwig_bins(path: Path, chrom: str) -> list[tuple[int, int, float]]:
    """Per-bin entries from pyBigWig, checked equal to UCSC's library (pybbi)."""
    bw = pyBigWig.open(str(path))
    ours = [(s, e, v) for s, e, v in (bw.intervals(chrom) or [])]
    bw.close()
    theirs = [(s, e, v) for _, s, e, v in bbi.fetch_intervals(str(path), chrom, 0, -1)]
    assert ours == theirs
    return ours


def predict(model, genome, regions, out, *, manifest=None, **options):
    """:func:`gitool.predict.inference.predict` with the options as arguments; ``model`` a
    run folder, checkpoint or module."""
    module = model if isinstance(model, nn.Module) else None
    if not isinstance(regions, (str, Path)):
        regions = list(regions)
    options = PredictOptions(
        regions=str(regions) if isinstance(regions, Path) else regions, out=str(out),
        model=None if module is not None or model is None else str(model),
        genome=None if genome is None else str(genome), **options,
    )  # fmt: skip
    return inference.predict(options, module=module, manifest=manifest)


def outputs(folder: Path) -> list[str]:
    """The files in ``folder`` (hidden temporaries included) but gitool's record of them."""
    if not folder.exists():
        return []
    return sorted(p.name for p in folder.iterdir() if p.name != RECORD)


# --------------------------------------------------------------------------- tiling


def test_regions_merge_snap_clip_and_windows(tiny):
    sizes = tiny["sizes"]
    regions = regions_from_intervals(
        [("chr2", 5, 9), ("chr1", 100, 150), ("chr1", 150, 170), ("chr1", 171, 180),
         ("chr1", 140, 160), ("chrM", 470, 900), ("chr1", 3000, 3003)],
        sizes, 8,
    )  # fmt: skip
    # Genome order; touching/overlapping merge; 171-180 shares bin 168-176 → merged after
    # snapping; chrM clipped to its end (500, not a bin edge); a 3-bp region → one bin.
    assert regions == [
        Region("chr1", 96, 184),
        Region("chr1", 3000, 3008),
        Region("chr2", 0, 16),
        Region("chrM", 464, 500),
    ]
    assert [r.n_bins(8) for r in regions] == [11, 1, 2, 5]
    long = Region("chr1", 96, 96 + 200 * 2 + 16)  # two full windows and 2 bins
    windows = list(tile_regions([long], GEOMETRY))
    assert [(w.target_start, w.first_bin, w.n_bins, w.end) for w in windows] == [
        (96, 0, 25, 296),
        (296, 25, 25, 496),
        (496, 50, 2, 512),
    ]
    assert sequence_interval(96, GEOMETRY) == (-4, 396)  # N-padded before the start
    assert sequence_interval(96, GEOMETRY, shift=-3) == (-7, 393)
    odd = Geometry(401, 8, 25)  # contexts 100 / 101: the rc window swaps them
    assert sequence_interval(800, odd) == (700, 1101)
    assert sequence_interval(800, odd, rc=True) == (699, 1100)


@pytest.mark.parametrize("seq_length", [400, 401])
def test_bins_are_genome_bins_forward_rc_and_shifts(tiny, seq_length):
    """Every written bin is the genome bin it claims to be (no tiling offset), at chromosome
    starts and ends (N padding, clipped last bin), across an N run, with odd contexts."""
    model = BaseCounts(CountsConfig(seq_length=seq_length))
    seqs = tiny["seqs"]
    intervals = [("chr1", 10, 1013), ("chr2", 900, 1700), ("chrM", 0, 500), ("chr3", 2990, 3000)]
    kwargs = dict(manifest=counts_manifest(), device="cpu", batch_size=5)

    def run(**options):
        prediction = predict_regions(model, tiny["genome"], intervals, **kwargs, **options)
        return list(prediction.by_region())

    forward = run()
    assert [(c.chrom, c.start, c.end) for c in forward] == [
        ("chr1", 8, 1016), ("chr2", 896, 1704), ("chr3", 2984, 3000), ("chrM", 0, 500)
    ]  # fmt: skip
    for chunk in forward:
        want = expected_counts(seqs[chunk.chrom], chunk.start, chunk.end)
        np.testing.assert_array_equal(chunk.values, want)
    assert forward[3].values[-1].sum() == 4  # chrM's last bin: 496-500, then N
    assert forward[1].values[(1000 - 896) // 8 + 1 : (1600 - 896) // 8].sum() == 0  # N run

    # Strand-symmetric by construction: --rc changes nothing (A↔T, C↔G swapped back).
    for a, b in zip(run(rc=True), forward, strict=True):
        np.testing.assert_allclose(a.values, b.values, rtol=0, atol=1e-6)

    # Shifts: inputs move, targets stay: the mean of the shifted bins' counts.
    for chunk in run(shifts="0,3,-5"):
        seq = seqs[chunk.chrom]
        want = np.mean(
            [expected_counts(seq, chunk.start, chunk.end, s) for s in (0, 3, -5)], axis=0
        )
        np.testing.assert_allclose(chunk.values, want, rtol=1e-6)

    # Without the strand pairs, rc would average A with T: proof the swap is wired.
    unstranded = predict_regions(
        model, tiny["genome"], intervals[:1], **{**kwargs, "manifest": counts_manifest(False)},
        rc=True,
    )  # fmt: skip
    values = next(unstranded.by_region()).values
    want = forward[0].values
    np.testing.assert_allclose(values[:, 0], (want[:, 0] + want[:, 3]) / 2, atol=1e-6)


# --------------------------------------------------------------------------- a real model


@pytest.fixture
def run(tiny):
    return make_run(tiny)


def test_bigwigs_equal_the_models_own_windows(tiny, run):
    model, folder = run
    bed = write_bed(tiny["dir"] / "r.bed", [
        "track name=regions", "chr1\t50\t700", "chr1\t600\t650", "chr1\t5990\t6100",
        "chrM\t470\t480", "chr3\t0\t5",
    ])  # fmt: skip
    out = tiny["dir"] / "pred" / "out.bw"
    summary = predict(folder, tiny["genome"], bed, out, device="cpu", batch_size=3)
    names = ["plus", "minus", "dense", "sparse"]
    assert summary.paths == [out.with_name(f"out.{n}.bw") for n in names]
    assert outputs(out.parent) == sorted(f"out.{n}.bw" for n in names)  # no temp file left
    regions = [Region("chr1", 48, 704), Region("chr1", 5984, 6000), Region("chr3", 0, 8),
               Region("chrM", 464, 480)]  # fmt: skip
    assert summary.n_regions == 4 and summary.n_bins == sum(r.n_bins(8) for r in regions)
    for k, name in enumerate(names):
        path = out.with_name(f"out.{name}.bw")
        bw = pyBigWig.open(str(path))
        assert list(bw.chroms().items()) == list(tiny["sizes"].items())  # all, FASTA order
        bw.close()
        assert bbi.chromsizes(str(path)) == tiny["sizes"]
        for chrom in tiny["sizes"]:
            got = bigwig_bins(path, chrom)
            mine = [r for r in regions if r.chrom == chrom]
            want_bins = [(s, min(s + 8, r.end)) for r in mine for s in range(r.start, r.end, 8)]
            assert [(s, e) for s, e, _ in got] == want_bins  # sorted, contiguous, no overlap
            if not mine:
                continue
            want = np.concatenate(
                [direct_windows(model, tiny["seqs"][chrom], r, "tiny")[:, k] for r in mine]
            )
            np.testing.assert_allclose([v for _, _, v in got], want, rtol=1e-5, atol=1e-6)


def test_batch_size_independence_rc_shifts_and_model_state(tiny, run):
    model, folder = run
    intervals = [("chr1", 0, 6000), ("chr2", 3950, 4000)]  # a whole chromosome; an end
    options = dict(device="cpu", rc=True, shifts=[0, 1, -1])
    results = [
        list(predict_regions(folder, tiny["genome"], intervals, batch_size=b, **options))
        for b in (1, 4, 17)
    ]
    joined = [np.concatenate([c.values for c in r]) for r in results]
    for other in joined[1:]:
        np.testing.assert_allclose(other, joined[0], rtol=1e-5, atol=1e-6)
    # Chunks stream a batch at a time, in genome order, contiguous within a region.
    chunks = results[1]
    assert len(chunks) > 2 and chunks[0].start == 0 and chunks[-1].end == 4000
    assert all(a.end == b.start for a, b in zip(chunks, chunks[1:], strict=False)
               if a.chrom == b.chrom)  # fmt: skip

    # A model handed in stays as found: training mode and weights.
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    prediction = predict_regions(
        model, tiny["genome"], intervals, manifest=tiny_manifest(tiny), batch_size=6, **options
    )
    assert model.training  # nothing runs before iteration
    values = np.concatenate([c.values for c in prediction])
    assert model.training
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, before[key])
    np.testing.assert_allclose(values, joined[0], rtol=1e-5, atol=1e-6)  # eval mode inside
    with pytest.raises(RuntimeError, match="only once"):
        list(prediction)


def test_rc_averages_the_swapped_reverse_prediction_and_untransform(tiny, run):
    model, folder = run
    seq = tiny["seqs"]["chr1"]
    region = Region("chr1", 400, 1000)
    forward = direct_windows(model, seq, region, "tiny")
    reverse = direct_windows(model, seq, region, "tiny", rc=True)[:, [1, 0, 2, 3]]
    # The random model is not strand-symmetric, so the swap matters.
    assert np.abs(reverse - forward).max() > 1e-3
    got = next(predict_regions(folder, tiny["genome"], [tuple(vars(region).values())],
                               device="cpu", rc=True).by_region())  # fmt: skip
    np.testing.assert_allclose(got.values, (forward + reverse) / 2, rtol=1e-5, atol=1e-6)

    # --untransform: soft clip, *_sqrt and scale undone with the head's manifest rows.
    prediction = predict_regions(
        folder, tiny["genome"], [("chr1", 400, 1000)], device="cpu", untransform=True,
        tracks="dense,sparse",
    )  # fmt: skip
    assert prediction.identifiers == ["dense", "sparse"] and prediction.untransformed
    got = next(prediction.by_region()).values
    rows = tiny_manifest(tiny)["tracks"]
    tracks = [Track(**{f.name: rows[i][f.name] for f in dataclasses.fields(Track)})
              for i in (2, 3)]  # fmt: skip
    np.testing.assert_allclose(got, untransform(forward[:, 2:], tracks), rtol=1e-5, atol=1e-6)
    assert not np.allclose(got, forward[:, 2:])  # scale 0.5 and 2 did something
    # a sum track's bin sum becomes per-base coverage, as its bigWig holds it
    plus = predict_regions(folder, tiny["genome"], [("chr1", 400, 1000)], device="cpu",
                           untransform=True, tracks="plus")  # fmt: skip
    got = next(plus.by_region()).values
    plus_track = Track(**{f.name: rows[0][f.name] for f in dataclasses.fields(Track)})
    assert plus_track.sum_stat == "sum"
    np.testing.assert_allclose(got, untransform(forward[:, :1], [plus_track]) / 8, rtol=1e-5)
    # ... also in a last bin a chromosome end clips (chrM: 496-500, 4 bp of sum, not 8)
    end = [("chrM", 0, 500)]
    raw = next(
        predict_regions(folder, tiny["genome"], end, device="cpu", tracks="plus").by_region()
    )
    per_bp = predict_regions(
        folder, tiny["genome"], end, device="cpu", untransform=True, tracks="plus"
    )
    got = next(per_bp.by_region()).values
    bases = np.array([8.0] * (len(got) - 1) + [4.0], dtype=np.float32)[:, None]
    np.testing.assert_allclose(got, untransform(raw.values, [plus_track]) / bases, rtol=1e-5)


# --------------------------------------------------------------------------- outputs


def test_track_selection_output_names_and_bedgraph(tiny, run):
    _, folder = run
    bed = write_bed(tiny["dir"] / "r.bed", ["chrM\t0\t500"])
    d = tiny["dir"]
    one = predict(folder, tiny["genome"], bed, d / "one.bw", tracks=["minus"], device="cpu")
    assert one.paths == [d / "one.bw"] and one.identifiers == ["minus"]
    two = predict(folder, tiny["genome"], bed, d / "two.bigwig", tracks="dense,0", device="cpu")
    assert two.paths == [d / "two.dense.bigwig", d / "two.plus.bigwig"]
    folder_out = predict(folder, tiny["genome"], bed, f"{d}/bws/", tracks=[3, 1], device="cpu")
    assert folder_out.paths == [d / "bws" / "sparse.bw", d / "bws" / "minus.bw"]
    graph = predict(folder, tiny["genome"], bed, d / "g.bedgraph", tracks=["minus", "plus"],
                    bedgraph=True, device="cpu")  # fmt: skip
    assert graph.paths == [d / "g.minus.bedgraph", d / "g.plus.bedgraph"]
    rows = [line.split("\t") for line in graph.paths[0].read_text().splitlines()]
    entries = bigwig_bins(d / "one.bw", "chrM")  # same track, same bins as the bigWig
    assert len(rows) == len(entries) == 63
    assert [(r[0], int(r[1]), int(r[2])) for r in rows] == [("chrM", s, e) for s, e, _ in entries]
    assert rows[-1][1:3] == ["496", "500"]  # the last bin clipped to the chromosome end
    np.testing.assert_allclose([float(r[3]) for r in rows], [v for _, _, v in entries], rtol=1e-6)
    assert output_paths(d / "x.bw", ["a/b", "c d"]) == [d / "x.a_b.bw", d / "x.c_d.bw"]


def test_a_killed_runs_temporary_files_of_other_tracks_are_removed(tiny, run):
    """A killed predict left `.OUT.TRACK.bw.tmp-PID` for every track; a later run with fewer
    tracks removed only its own tracks' and left the others' (some GB at 5,313 tracks)."""
    import subprocess
    import sys

    _, folder = run
    bed = write_bed(tiny["dir"] / "r.bed", ["chrM\t0\t500"])
    d = tiny["dir"]
    killed, other = (subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                                    capture_output=True, text=True, check=True).stdout.strip()
                     for _ in range(2))  # fmt: skip
    for name in ("dense.bigwig", "plus.bigwig", "minus.bigwig", "sparse.bigwig", "minus.bg"):
        (d / f".two.{name}.tmp-{killed}").write_bytes(b"partial")
    unrelated = [d / f".two.sparse.bigwig.tmp-{other}", d / f".notes.txt.tmp-{killed}",
                 d / f".two.minus.bigwig.tmp-{os.getpid()}"]  # fmt: skip
    for path in unrelated:
        path.write_bytes(b"not that run's")
    two = predict(folder, tiny["genome"], bed, d / "two.bigwig", tracks="dense,plus", device="cpu")
    assert two.paths == [d / "two.dense.bigwig", d / "two.plus.bigwig"]
    assert not list(d.glob(f".two.*.tmp-{killed}"))
    assert all(path.exists() for path in unrelated)


def test_writer_batches_sorting_and_clipped_last_bin(tmp_path):
    sizes = {"a": 30, "b": 16}
    paths = [tmp_path / "t0.bw", tmp_path / "t1.bw"]
    values = np.arange(8, dtype=np.float32).reshape(4, 2)
    with TrackWriter(paths, sizes, 8, flush_bins=3) as writer:
        writer.add("a", 0, 16, values[:2])  # two pieces of one run, flushed mid-run
        writer.add("a", 16, 30, values[2:])  # ends in the clipped last bin 24-30
        writer.add("b", 8, 16, values[:1])
        with pytest.raises(ValueError, match="sorted and non-overlapping"):
            writer.add("a", 24, 30, values[:1])
        with pytest.raises(ValueError, match="off the chromosome"):
            writer.add("b", 16, 24, values[:1])
    assert bigwig_bins(paths[1], "a") == [(0, 8, 1.0), (8, 16, 3.0), (16, 24, 5.0), (24, 30, 7.0)]
    assert bigwig_bins(paths[0], "b") == [(8, 16, 0.0)]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t0.bw", "t1.bw"]
    with pytest.raises(RuntimeError), TrackWriter([tmp_path / "gone.bw"], sizes, 8) as writer:
        writer.add("a", 0, 8, values[:1, :1])
        raise RuntimeError("disk full")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t0.bw", "t1.bw"]  # nothing partial


def test_a_bigwig_cut_short_on_close_is_an_error_not_an_output(tmp_path, monkeypatch):
    """libBigWig writes a bigWig's index on close and reports a failed write (a full disk, a
    file-size limit) only on stderr: the file is checked, and the run stops with nothing
    put in place."""
    import errno
    import os

    from gitool.predict import bigwig

    sizes = {"a": 4000}
    values = np.random.default_rng(0).random((500, 1)).astype(np.float32)
    good = tmp_path / "good.bw"
    with TrackWriter([good], sizes, 8) as writer:
        writer.add("a", 0, 4000, values)
    bigwig.check_complete(good)  # a whole file passes
    cut = tmp_path / "cut.bw"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(OSError, match="could not be completed") as err:
        bigwig.check_complete(cut)
    assert err.value.errno == errno.ENOSPC and err.value.filename == str(cut)
    zeros = tmp_path / "zeros.bw"
    zeros.write_bytes(bytes(good.stat().st_size))  # the header never written
    with pytest.raises(OSError):
        bigwig.check_complete(zeros)

    close = bigwig.pyBigWig.open  # the writer's files end cut short on close

    def opened(path, mode="r"):
        handle = close(path, mode)
        if mode != "w":
            return handle

        class Cut:
            def __getattr__(self, name):
                return getattr(handle, name)

            def close(self):
                handle.close()
                with open(path, "r+b") as f:
                    f.truncate(os.path.getsize(path) // 2)

        return Cut()

    monkeypatch.setattr(bigwig.pyBigWig, "open", opened)
    out = tmp_path / "out.bw"
    with (
        pytest.raises(OSError, match="could not be completed"),
        TrackWriter([out], sizes, 8) as writer,
    ):
        writer.add("a", 0, 4000, values)
    assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]


# --------------------------------------------------------------------------- bad input


def test_bad_regions_and_options(tiny, run, monkeypatch):
    _, folder = run
    d, genome = tiny["dir"], tiny["genome"]
    (d / "cwd").mkdir()
    monkeypatch.chdir(d / "cwd")  # where -o "" used to write
    out = d / "bad" / "out.bw"
    cases = [
        (["# only a comment", ""], "no intervals in it"),
        (["chr1\t10"], r"r\.bed line 1: expected 'chrom<TAB>start<TAB>end'"),
        (["chr1\t1\t5", "chr1\tten\t20"], "line 2: start/end must be integers"),
        (["1\t0\t10"], "line 1: chromosome '1' is not in the genome .*names it 'chr1'"),
        (["MT\t0\t10"], "line 1: chromosome 'MT' is not in the genome .*names it 'chrM'"),
        (["CHR2\t0\t10"], "line 1: chromosome 'CHR2' is not in the genome .*names it 'chr2'"),
        (["chrZ\t0\t10"], "chromosome 'chrZ' is not in the genome"),
        (["chr1\t20\t10"], "empty or negative"),
        (["chr1\t-5\t10"], "empty or negative"),
        (["chrM\t600\t700"], "past its chromosome's end"),
    ]
    for lines, message in cases:
        bed = write_bed(d / "r.bed", lines)
        with pytest.raises(InputError, match=message):
            predict(folder, genome, bed, out, device="cpu")
    bed = write_bed(d / "r.bed", ["chr1\t0\t100"])
    for options, message in [
        (dict(tracks="nope"), "^tracks 'nope' is neither"),
        (dict(tracks="9"), "index 0–3"),
        (dict(shifts="0,x"), "^shifts '0,x': give comma-separated integer"),
        (dict(shifts="0,8"), r"^shifts 8: .*smaller than the model's 8-bp bin \(\|shift\| ≤ 7"),
        (dict(shifts="-100000"), "^shifts -100000"),
        (dict(batch_size=0), "^batch_size must be >= 1, got 0"),
        (dict(head="mouse"), "^head 'mouse' is not a head of run0"),
        (dict(which="first"), "^which 'first'"),
        (dict(device="gpu0"), "^device 'gpu0'"),
    ]:
        with pytest.raises(InputError, match=message):
            predict(folder, genome, bed, out, **{"device": "cpu", **options})
    with pytest.raises(InputError, match="no such file"):
        predict(folder, genome, d / "missing.bed", out, device="cpu")
    # a bigWig given as the BED printed its bytes; a folder was "no such file"
    with pytest.raises(InputError, match=r"plus\.bw: a bigWig, not a BED text file"):
        predict(folder, genome, d / "plus.bw", out, device="cpu")
    with pytest.raises(InputError, match=r"nul\.bed: binary data, not a BED"):
        predict(folder, genome, write_bed(d / "nul.bed", ["chr1\t0\t1\x00"]), out, device="cpu")
    with pytest.raises(InputError, match="cwd: a folder; give a BED file"):
        predict(folder, genome, d / "cwd", out, device="cpu")
    with pytest.raises(InputError, match="no such run folder"):
        predict(d / "norun", genome, bed, out, device="cpu")
    with pytest.raises(InputError, match="^genome not given, and run0 records no genome for"):
        predict(folder, None, bed, out, device="cpu")  # its manifest has no genome entry
    with pytest.raises(InputError, match="is a file, not a folder"):
        predict(folder, genome, bed, tiny["genome"] / "x.bw", device="cpu")
    with pytest.raises(InputError, match="^untransform needs the manifest"):
        predict_regions(BaseCounts(CountsConfig()), genome, bed, untransform=True, device="cpu")
    for target, options, message in [
        ("", {}, "^out is empty; give a value$"),
        ("  ", {"tracks": "0"}, "^out is empty"),
        (out, {"bedgraph": True}, r"out\.bw: \.bw names a bigWig .*end out with \.bedgraph"),
        (d / "bad" / "o.bigWig", {"bedgraph": True, "tracks": "0"}, "or drop bedgraph"),
        (d / "bad" / "o.bedGraph", {}, r"\.bedGraph names a bedGraph .*add bedgraph"),
        (d / "bad" / "o.bg", {"tracks": "0"}, r"or end out with \.bw"),
    ]:
        with pytest.raises(InputError, match=message):
            predict(folder, genome, bed, target, device="cpu", **options)
    assert outputs(out.parent) == outputs(d / "cwd") == []  # nothing written on any error


def test_unwritable_outputs_are_input_errors(tmp_path):
    """pyBigWig.open crashes the process (SIGSEGV) on a file it cannot create; the writer
    creates each file first and names the output that cannot be written. In a child process, so
    that a regression fails this test instead of killing the test run."""
    (tmp_path / "afile").write_text("")
    bad = [tmp_path / "afile" / "x.bw", tmp_path / f"{'x' * 300}.bw"]  # a file as the folder;
    cases = [([bad[0]], False), ([bad[1]], False)]  # a name too long for the file system
    cases += [([tmp_path / "ok.bw", bad[0]], False), ([bad[0].with_suffix(".bg")], True)]
    child = """if True:
        import json, sys
        from gitool.errors import InputError
        from gitool.predict.bigwig import TrackWriter
        for paths, bedgraph in json.loads(sys.argv[1]):
            try:
                TrackWriter(paths, {"a": 30}, 8, bedgraph).open()
            except InputError as err:
                print(err)
    """
    text = json.dumps([([str(p) for p in paths], bedgraph) for paths, bedgraph in cases])
    done = subprocess.run([sys.executable, "-c", child, text], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr  # -11: the crash
    lines = done.stdout.splitlines()
    assert len(lines) == len(cases), done.stdout
    for line, (paths, _) in zip(lines, cases, strict=True):
        assert line.startswith(f"out {paths[-1]}: cannot be written (")
        assert line.endswith("choose another out, in a folder you can write to")
    assert outputs(tmp_path) == ["afile"]  # ok.bw's temporary file was removed


def test_gzipped_regions_read_like_plain(tiny, run):
    _, folder = run
    lines = ["track name=r", "chr1\t50\t700", "chr3\t0\t5"]
    plain = write_bed(tiny["dir"] / "r.bed", lines)
    packed = gzip.compress(plain.read_bytes())
    (tiny["dir"] / "r.bed.gz").write_bytes(packed)
    (tiny["dir"] / "unnamed.bed").write_bytes(packed)  # gzip detected by content, not name
    want = predict_regions(folder, tiny["genome"], plain, device="cpu").regions
    # a byte-order mark (a BED saved by a Windows editor) was part of the first chromosome
    (tiny["dir"] / "bom.bed").write_bytes(
        b"\xef\xbb\xbf" + plain.read_bytes()[len("track name=r\n") :]
    )
    (tiny["dir"] / "bom.bed.gz").write_bytes(gzip.compress((tiny["dir"] / "bom.bed").read_bytes()))
    for name in ("r.bed.gz", "unnamed.bed", "bom.bed", "bom.bed.gz"):
        got = predict_regions(folder, tiny["genome"], tiny["dir"] / name, device="cpu")
        assert got.regions == want


def test_clipping_warns_and_a_failure_mid_run_leaves_nothing(tiny, run, capsys):
    model, folder = run
    bed = write_bed(tiny["dir"] / "r.bed", ["chr3\t2900\t3500", "chrM\t700\t800"])
    out = tiny["dir"] / "w" / "out.bw"
    summary = predict(folder, tiny["genome"], bed, out, tracks="plus", device="cpu")
    err = " ".join(capsys.readouterr().err.split())  # rich wraps long lines
    assert "clipped" in err and "skipped" in err and "line 1" in err and "line 2" in err
    assert "".join(err.split()).count(str(bed)) == 2  # each warning names the file once
    assert [(s, e) for s, e, _ in bigwig_bins(summary.paths[0], "chr3")][-1] == (2992, 3000)
    other_assembly = {**tiny_manifest(tiny), "genome": {"chromosomes": {"chr1": 7000}}}
    predict_regions(model, tiny["genome"], bed, manifest=other_assembly, device="cpu")
    assert "chr1 is 6,000 bp but 7,000 bp" in " ".join(capsys.readouterr().err.split())

    class Failing(nn.Module):  # breaks on its third batch, after the writer has started
        def __init__(self):
            super().__init__()
            self.inner, self.config, self.calls = model, model.config, 0

        def forward(self, x, head=None):
            self.calls += 1
            if self.calls == 3:
                raise RuntimeError("CUDA out of memory (simulated)")
            return self.inner(x, head)

    out = tiny["dir"] / "fail" / "out.bw"
    with pytest.raises(RuntimeError, match="simulated"):
        predict(Failing(), tiny["genome"], [("chr1", 0, 6000)], out, batch_size=2,
                manifest=tiny_manifest(tiny), device="cpu")  # fmt: skip
    assert outputs(out.parent) == []


# --------------------------------------------------------------------------- command line


def test_cli(tiny, run, capsys):
    _, folder = run
    bed = write_bed(tiny["dir"] / "r.bed", ["chr1\t0\t1000", "chrM\t400\t500"])
    out = tiny["dir"] / "cli" / "p.bw"
    base = ["predict", bed, "--model", folder, "--genome", tiny["genome"], "--device", "cpu"]
    options = ["-o", out, "--tracks", "dense", "--rc", "--shifts", "-1,0,1", "--batch-size", "3"]
    code, _, err = run_cli([*base, *options], capsys)
    assert code == 0, err
    assert [(s, e) for s, e, _ in bigwig_bins(out, "chrM")][-1] == (496, 500)
    library = predict_regions(folder, tiny["genome"], bed, tracks="dense", rc=True,
                              shifts=[-1, 0, 1], device="cpu")  # fmt: skip
    want = np.concatenate([c.values[:, 0] for c in library])
    got = [v for chrom in ("chr1", "chrM") for _, _, v in bigwig_bins(out, chrom)]
    np.testing.assert_allclose(got, want, rtol=1e-6)
    code, _, err = run_cli([*base, "-o", f"{tiny['dir']}/cli2/", "--bedgraph"], capsys)
    assert code == 0, err
    names = sorted(["plus", "minus", "dense", "sparse"])
    assert outputs(tiny["dir"] / "cli2") == [f"{n}.bedgraph" for n in names]
    bad = write_bed(tiny["dir"] / "bad.bed", ["chrZ\t0\t10"])
    code, _, err = run_cli(["predict", bad, *base[2:], "-o", tiny["dir"] / "cli3" / "p.bw"], capsys)
    assert_input_error(code, err, "bad.bed line 1", "chrZ")
    assert not (tiny["dir"] / "cli3").exists()
    code, out_text, err = run_cli(["predict", "--help"], capsys)
    assert code == 0 and "clipped" in out_text + err


# --------------------------------------------------------------------------- output safety


def test_never_writes_over_its_inputs_even_with_force(tiny, run, capsys):
    """The store's bigWigs (identifiers equal their file names), the genome, the regions
    and the checkpoint are refused as outputs, with or without --force."""
    _, folder = run
    d = tiny["dir"]
    bed = write_bed(d / "r.bed", ["chr1\t0\t400"])
    before = {p.name: p.read_bytes() for p in d.iterdir() if p.is_file()}
    base = ["predict", bed, "-m", folder, "-g", tiny["genome"], "--device", "cpu"]
    for extra in (["-o", f"{d}/"], ["-o", tiny["genome"], "--tracks", "plus"],
                  ["-o", d / "plus.bw", "--tracks", "plus"],
                  ["-o", bed, "--tracks", "plus", "--bedgraph"],
                  ["-o", f"{tiny['genome']}.fai", "--tracks", "plus", "--bedgraph"],
                  ["-o", folder / "checkpoints" / "best.pt", "--tracks", "plus"]):  # fmt: skip
        for force in ([], ["--force"]):
            code, _, err = run_cli([*base, *extra, *force], capsys)
            assert_input_error(code, err, "-o ", "one of this command's inputs", "--force")
    assert {p.name: p.read_bytes() for p in d.iterdir() if p.is_file()} == before
    # a refused run closes the genome it opened (none of the 12 left it open)
    genome = str(Path(tiny["genome"]).resolve())
    fds = Path("/proc/self/fd")
    if fds.is_dir():
        held = [f for f in fds.iterdir() if os.path.realpath(f) == genome]
        assert held == [], "the genome is still open after refused runs"
    with pytest.raises(InputError, match="^out .*plus.bw is one of this command's inputs"):
        predict(folder, tiny["genome"], bed, f"{d}/", force=True, device="cpu")


def test_existing_outputs_need_force_and_are_replaced_only_when_gitools(tiny, run, capsys):
    _, folder = run
    d = tiny["dir"]
    bed = write_bed(d / "r.bed", ["chr1\t0\t400"])
    base = ["predict", bed, "-m", folder, "-g", tiny["genome"], "--device", "cpu"]
    notes = d / "out" / "notes.bw"
    notes.parent.mkdir()
    notes.write_text("my notes, not a bigWig")
    for force in ([], ["--force"]):  # the user's file: refused as such, --force or not
        code, _, err = run_cli([*base, "-o", notes, "--tracks", "plus", *force], capsys)
        assert_input_error(code, err, "notes.bw exists and gitool did not make it", "--force")
    assert notes.read_text() == "my notes, not a bigWig"

    # Its own earlier bigWig: refused without --force, replaced with it.
    out = d / "out" / "p.bw"
    code, _, err = run_cli([*base, "-o", out, "--tracks", "plus"], capsys)
    assert code == 0, err
    first = bigwig_bins(out, "chr1")
    bed = write_bed(d / "r.bed", ["chr1\t0\t800"])
    code, _, err = run_cli([*base, "-o", out, "--tracks", "plus"], capsys)
    assert_input_error(code, err, "already exists; pass --force")
    assert bigwig_bins(out, "chr1") == first
    code, _, err = run_cli([*base, "-o", out, "--tracks", "plus", "--force"], capsys)
    assert code == 0, err
    assert len(bigwig_bins(out, "chr1")) == 2 * len(first) == 100
    # A bedGraph of the user's, of the same name and format, is kept even with --force;
    # the one gitool wrote is replaced with --force (and only with it).
    graph = d / "out" / "p.bedgraph"
    graph.write_text("chr1\t0\t8\t1\n")
    as_graph = [*base, "-o", graph, "--tracks", "plus", "--bedgraph"]
    code, _, err = run_cli([*as_graph, "--force"], capsys)
    assert_input_error(code, err, "p.bedgraph exists and gitool did not make it", "--force")
    assert graph.read_text() == "chr1\t0\t8\t1\n"
    graph.unlink()
    code, _, err = run_cli(as_graph, capsys)
    assert code == 0, err
    code, _, err = run_cli(as_graph, capsys)
    assert_input_error(code, err, "already exists")
    code, _, err = run_cli([*as_graph, "--force"], capsys)
    assert code == 0, err
    assert len(graph.read_text().splitlines()) == 100
    assert outputs(d / "out") == ["notes.bw", "p.bedgraph", "p.bw"]
    assert [json.loads(line)["name"] for line in (d / "out" / RECORD).open()][:1] == ["p.bw"]


def test_out_of_range_options_name_the_flag(tiny, run, capsys):
    _, folder = run
    bed = write_bed(tiny["dir"] / "r.bed", ["chr1\t0\t400"])
    base = ["predict", bed, "-m", folder, "-g", tiny["genome"], "--device", "cpu"]
    out = tiny["dir"] / "new" / "p.bw"
    for options, needles in [
        (["--batch-size", "0"], ["--batch-size must be >= 1, got 0"]),
        (["--shifts", "0,8"], ["--shifts 8: each shift must be smaller than the model's 8-bp"]),
        (["--shifts", "1.5"], ["--shifts '1.5': give comma-separated integer shifts"]),
    ]:
        code, _, err = run_cli([*base, "-o", out, *options], capsys)
        assert_input_error(code, err, *needles)
    assert not out.parent.exists()


def test_a_failure_leaves_no_folder_it_created(tiny, run):
    model, _ = run

    class Failing(nn.Module):  # breaks on its second batch, after the files were opened
        def __init__(self):
            super().__init__()
            self.inner, self.config, self.calls = model, model.config, 0

        def forward(self, x, head=None):
            self.calls += 1
            if self.calls == 2:
                raise KeyboardInterrupt  # Ctrl-C; SIGTERM raises a BaseException too
            return self.inner(x, head)

    kept = tiny["dir"] / "kept"
    kept.mkdir()
    for out in (f"{tiny['dir']}/new/deeper/", kept / "sub" / "p.bw", kept / "p.bw"):
        with pytest.raises(KeyboardInterrupt):
            predict(Failing(), tiny["genome"], [("chr1", 0, 2000)], out, batch_size=2,
                    manifest=tiny_manifest(tiny), device="cpu")  # fmt: skip
    assert not (tiny["dir"] / "new").exists()
    assert outputs(kept) == []  # the folder that was there stays, empty


# --------------------------------------------------------------------------- heads of many tracks

MANY_TRACKS = """if True:
    import json, resource, sys
    from dataclasses import dataclass, field

    import torch
    from torch import nn

    # Fewer open files than tracks: one open bigWig per track cannot work here.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (48, hard))
    from gitool.config.predict import PredictOptions
    from gitool.predict.inference import predict

    @dataclass
    class Config:
        seq_length: int = 400
        target_length: int = 25
        bin_size: int = 8
        heads: dict = field(default_factory=lambda: {"many": 60})

    class Weighted(nn.Module):  # track k of a bin = its A, C, G, T counts @ W[:, k]
        def __init__(self):
            super().__init__()
            self.config = Config()
            self.w = nn.Parameter(torch.arange(1.0, 5.0)[:, None] * torch.arange(1.0, 61.0))

        def forward(self, x, head=None):
            target = x[:, 100:300].reshape(len(x), 25, 8, 4).sum(2)
            return target @ self.w

    import gc, os

    gc.disable()  # what is left open stays open: nothing is freed behind the test's back
    rows = [{"index": k, "identifier": f"k{k}", "strand_pair": k} for k in range(60)]
    fds = []
    for run, out in enumerate((sys.argv[2], sys.argv[2].rstrip("/") + "-again/")):
        options = PredictOptions(regions=json.loads(sys.argv[1]), out=out,
                                 genome=sys.argv[3], device="cpu", batch_size=3)
        result = predict(options, module=Weighted(), manifest={"tracks": rows})
        summary = summary if run else result
        fds.append(len(os.listdir("/proc/self/fd")))
    print(json.dumps({"writing": summary.writing, "paths": [str(p) for p in summary.paths],
                      "fds": fds}))
"""


def test_more_tracks_than_the_open_file_limit(tiny):
    """60 tracks under a limit of 48 open files: groups of 12 bigWigs (a quarter of the
    limit), one writer process each; every track complete and exact."""
    intervals = [["chr1", 10, 1013], ["chrM", 0, 500]]
    out = tiny["dir"] / "many"
    command = [
        sys.executable,
        "-c",
        MANY_TRACKS,
        json.dumps(intervals),
        f"{out}/",
        str(tiny["genome"]),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.splitlines()[-1])
    stats = result["writing"]
    assert stats["processes"] == 5 and stats["max_open"] == 12
    assert result["fds"][1] == result["fds"][0]  # a second run leaves no pipe or FASTA open
    assert stats["peak_fds"] < 48
    assert outputs(out) == sorted(f"k{k}.bw" for k in range(60))  # no temporary file left
    weights = np.arange(1.0, 5.0)[:, None] * np.arange(1.0, 61.0)
    regions = [Region("chr1", 8, 1016), Region("chrM", 0, 500)]
    for k in range(60):
        path = out / f"k{k}.bw"
        for region in regions:
            got = bigwig_bins(path, region.chrom)
            seq = tiny["seqs"][region.chrom]
            want = expected_counts(seq, region.start, region.end) @ weights[:, k]
            assert [(s, e) for s, e, _ in got][-1][1] == region.end
            np.testing.assert_array_equal([v for _, _, v in got], want.astype(np.float32))


def test_writer_processes_stop_cleanly(tiny, run, monkeypatch):
    """Writer processes (groups of 2 files): identical files to one writer process; Ctrl-C
    mid-run and a writer process that dies both leave nothing behind, with one error."""
    model, folder = run
    bed = write_bed(tiny["dir"] / "r.bed", ["chr1\t0\t6000", "chrM\t400\t500"])
    single = predict(folder, tiny["genome"], bed, tiny["dir"] / "one" / "p.bw", device="cpu")
    assert single.writing["processes"] == 1 and single.writing["max_open"] == 4
    monkeypatch.setattr(writer, "MAX_OPEN_FILES", 2)
    grouped = predict(folder, tiny["genome"], bed, tiny["dir"] / "two" / "p.bw", device="cpu")
    assert grouped.writing["processes"] == 2 and grouped.writing["max_open"] == 2
    for a, b in zip(single.paths, grouped.paths, strict=True):
        assert a.read_bytes() == b.read_bytes()

    class Interrupted(nn.Module):  # Ctrl-C on its third batch, once the processes write
        def __init__(self):
            super().__init__()
            self.inner, self.config, self.calls = model, model.config, 0

        def forward(self, x, head=None):
            self.calls += 1
            if self.calls == 3:
                raise KeyboardInterrupt
            return self.inner(x, head)

    with pytest.raises(KeyboardInterrupt):
        predict(Interrupted(), tiny["genome"], bed, tiny["dir"] / "ctrl-c" / "p.bw",
                batch_size=2, manifest=tiny_manifest(tiny), device="cpu")  # fmt: skip
    assert not (tiny["dir"] / "ctrl-c").exists()

    # A writer process killed mid-run (out of memory, say): one error naming its files.
    out = tiny["dir"] / "killed"
    paths = [out / f"t{k}.bw" for k in range(5)]
    values = np.ones((25, 5), dtype=np.float32)
    stopped = r"writer process for .*t2\.bw and 1 more stopped"
    sink = writer.TrackSetWriter(paths, tiny["sizes"], 8, max_open=2)
    with pytest.raises(RuntimeError, match=stopped), sink:
        assert sink.stats["processes"] == 3
        sink.add("chr1", 0, 200, values)
        deadline = time.monotonic() + 60
        while len(sink._children) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)  # the writer thread starts them while the caller goes on
        sink._children[1].proc.kill()
        sink._children[1].proc.wait()
        for start in range(200, 6000, 200):
            sink.add("chr1", start, start + 200, values)
    assert not out.exists()
    assert all(child.proc.poll() is not None for child in sink._children)


def kill_a_writer(sink, paths, sizes, signum: int) -> None:
    """Start ``sink`` (a TrackSetWriter of 5 tracks, groups of 2), kill its second writer
    process with ``signum`` once it runs, and go on adding bins until the error surfaces."""
    values = np.ones((25, 5), dtype=np.float32)
    with sink:
        sink.add("chr1", 0, 200, values)
        deadline = time.monotonic() + 60
        while len(sink._children) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)  # the writer thread starts them while the caller goes on
        sink._children[1].proc.send_signal(signum)
        sink._children[1].proc.wait()
        for start in range(200, 6000, 200):
            sink.add("chr1", start, start + 200, values)


def test_a_writer_crashing_on_a_full_disk_is_a_full_disk_error(tiny, monkeypatch, capsys):
    """libBigWig crashes its process (segfault, double free) when a write fails on a full
    disk, which killed `gitool predict` itself: the writer processes take the crash, and
    the error names the files and says the disk is full (one line, exit 2)."""
    out = tiny["dir"] / "full"
    paths = [out / f"t{k}.bw" for k in range(5)]
    monkeypatch.setattr(gitool.errors, "LOW_SPACE", 1 << 62)  # every disk is full
    sink = writer.TrackSetWriter(paths, tiny["sizes"], 8, max_open=2)
    with pytest.raises(OSError) as caught:
        kill_a_writer(sink, paths, tiny["sizes"], signal.SIGSEGV)
    assert caught.value.errno == errno.ENOSPC
    assert caught.value.filename == f"{paths[2]} and 1 more"
    assert not out.exists()

    def report():
        raise caught.value

    with pytest.raises(SystemExit) as exited:
        run_reporting_errors(report)
    err = capsys.readouterr().err
    assert_input_error(exited.value.code, err, f"{paths[2]} and 1 more: no space left")
    monkeypatch.setattr(gitool.errors, "LOW_SPACE", 0)  # a crash with space left: not the disk
    sink = writer.TrackSetWriter(paths, tiny["sizes"], 8, max_open=2)
    with pytest.raises(RuntimeError, match=r"t2\.bw and 1 more stopped \(exit code -11\)"):
        kill_a_writer(sink, paths, tiny["sizes"], signal.SIGSEGV)


def test_bedgraph_writer_runs_in_its_own_thread_and_its_error_surfaces_once(tiny, run, monkeypatch):
    """(bigWigs are written by writer processes; one group of bedGraph text by a thread.)"""
    _, folder = run
    bed = write_bed(tiny["dir"] / "r.bed", ["chr1\t0\t6000"])
    threads, write = [], TrackWriter._write_bedgraph

    def full_disk(self, *args):
        threads.append(threading.current_thread())
        if len(threads) == 6:  # a write() refused: an OSError without a file name
            raise OSError(errno.ENOSPC, "No space left on device")
        write(self, *args)

    monkeypatch.setattr(TrackWriter, "_write_bedgraph", full_disk)
    monkeypatch.setattr(writer, "flush_bins_for", lambda n: 4)  # several writes per track
    out = tiny["dir"] / "full" / "p.bedgraph"
    with pytest.raises(OSError, match="No space left") as caught:
        predict(folder, tiny["genome"], bed, out, device="cpu", batch_size=2, bedgraph=True)
    assert re.fullmatch(r".*/full/p\.\w+\.bedgraph", caught.value.filename)  # named
    assert threads and threading.main_thread() not in threads  # written off the model's thread
    assert not out.parent.exists()


# --------------------------------------------------------------------------- input reading

INPUT_THREAD = "gitool-predict-inputs"


def input_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == INPUT_THREAD]


def test_inputs_are_read_in_a_background_thread(tiny, run, monkeypatch):
    _, folder = run
    intervals = [("chr1", 0, 2000), ("chrM", 0, 500)]
    options = dict(device="cpu", rc=True, batch_size=3)
    want = np.concatenate([c.values for c in predict_regions(folder, tiny["genome"], intervals,
                                                             **options)])  # fmt: skip
    names, codes = [], SequenceReader.codes

    def recorded(self, *args):
        names.append(threading.current_thread().name)
        return codes(self, *args)

    monkeypatch.setattr(SequenceReader, "codes", recorded)
    got = np.concatenate([c.values for c in predict_regions(folder, tiny["genome"], intervals,
                                                            **options)])  # fmt: skip
    assert names and set(names) == {INPUT_THREAD}  # never the model's (main) thread
    np.testing.assert_array_equal(got, want)
    assert not input_threads()


def test_a_reading_error_surfaces_where_it_happened(tiny, run, monkeypatch):
    _, folder = run
    calls, codes = [], SequenceReader.codes

    def failing(self, *args):
        calls.append(args)
        if len(calls) == 11:  # the 6th batch of 2 windows
            raise OSError("FASTA truncated (simulated)")
        return codes(self, *args)

    monkeypatch.setattr(SequenceReader, "codes", failing)
    chunks = []
    prediction = predict_regions(folder, tiny["genome"], [("chr1", 0, 6000)], device="cpu",
                                 batch_size=2)  # fmt: skip
    with pytest.raises(OSError, match="simulated"):
        for chunk in prediction:
            chunks.append(chunk)
    assert [(c.start, c.end) for c in chunks] == [(k * 400, k * 400 + 400) for k in range(4)]
    assert not input_threads()

    calls.clear()
    out = tiny["dir"] / "unread" / "p.bw"
    with pytest.raises(OSError, match="simulated"):
        predict(folder, tiny["genome"], [("chr1", 0, 6000)], out, device="cpu", batch_size=2)
    assert not out.parent.exists()  # nothing left behind
    assert not input_threads()


def test_stopping_early_stops_the_reading_thread(tiny, run):
    _, folder = run
    prediction = predict_regions(folder, tiny["genome"], [("chr1", 0, 6000)], device="cpu",
                                 batch_size=2)  # fmt: skip
    chunks = iter(prediction)
    first = next(chunks)
    assert (first.chrom, first.start) == ("chr1", 0)
    assert input_threads()  # reading ahead while the caller holds the first chunk
    chunks.close()
    assert not input_threads()


def test_only_the_selected_averaged_tracks_reach_the_host(tiny, run, monkeypatch):
    """Selection, the reverse-complement flip and the averaging happen on the device: what is
    turned into numpy is (bins, selected tracks), never (batch, bins, every track)."""
    _, folder = run
    intervals = [("chr1", 0, 2000), ("chr2", 3950, 4000)]
    options = dict(device="cpu", rc=True, shifts="0,1", batch_size=3)
    full = np.concatenate([c.values for c in predict_regions(folder, tiny["genome"], intervals,
                                                             **options)])  # fmt: skip
    shapes, numpy = [], torch.Tensor.numpy

    def recorded(self, *args, **kwargs):
        shapes.append(tuple(self.shape))
        return numpy(self, *args, **kwargs)

    monkeypatch.setattr(torch.Tensor, "numpy", recorded)
    chosen = predict_regions(folder, tiny["genome"], intervals, tracks="minus,dense", **options)
    values = np.concatenate([c.values for c in chosen])
    np.testing.assert_array_equal(values, full[:, [1, 2]])  # partner "plus" not selected
    assert shapes and all(len(s) == 2 and s[1] == 2 for s in shapes), shapes
    assert sum(s[0] for s in shapes) == len(values)


def test_default_batch_per_device(tiny, run, capsys):
    _, folder = run
    assert inference.default_batch_size(torch.device("cuda")) == 32
    assert inference.default_batch_size(torch.device("cpu")) == 8
    prediction = predict_regions(folder, tiny["genome"], [("chr1", 0, 400)], device="cpu")
    assert prediction.batch_size == 8
    err = capsys.readouterr().err  # the option is named as the CLI or the library names it
    assert re.search(r"batch size 8 \(the default on cpu; (--batch-size|batch_size) to change", err)
    given = predict_regions(folder, tiny["genome"], [("chr1", 0, 400)], device="cpu", batch_size=5)
    assert given.batch_size == 5 and "batch size" not in capsys.readouterr().err
