"""Attention export: npz + index, shift mapping, coordinates, rollout, bad input, defaults."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from gitool.errors import InputError
from gitool.interpret.attention import check_disk_space, extract_attention, load_window
from gitool.interpret.layers import attention_layout
from gitool.interpret.rollout import attention_rollout
from gitool.interpret.windows import (
    AttentionWindow,
    parse_indices,
    windows_from_fasta,
    windows_from_regions,
)
from gitool.made import RECORD
from gitool.models.base import capture_attention
from gitool.models.can import CAN, CANConfig
from gitool.models.enformer import Enformer, EnformerConfig
from gitool.models.registry import create_model
from gitool.models.swin import GenomicInterpreter, SwinConfig

# 500 bp, 16-bp bins: layers of 500, 250, 125, 63, 32 tokens (1, 2, 4, 8, 16 bp); windows
# 8, 8, 12, 16, 16; layers 1-4 pad their last window; layer 6 is the transformer block.
TINY = dict(
    seq_length=500,
    target_length=24,
    bin_size=16,
    dims=(8, 12, 16, 16, 24),
    windows=(8, 8, 12, 16, 16),
    attention_heads=(2, 2, 2, 2, 4),
    transformer_heads=2,
    transformer_key_dim=8,
    heads={"human": 3},
)
START = 1000


def codes(length: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 4, length).astype(np.uint8)


def inputs(n: int = 2, length: int = 500) -> list[AttentionWindow]:
    return [AttentionWindow(f"w{i}", "chr1", START + i * 7, codes(length, i)) for i in range(n)]


@pytest.fixture(scope="module")
def swin() -> GenomicInterpreter:
    torch.manual_seed(0)
    return GenomicInterpreter(SwinConfig(**TINY)).eval()


@pytest.fixture(scope="module")
def export(swin, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("attn") / "export"
    extract_attention(swin, inputs(), out, rollout=True, device="cpu", batch_size=2)
    return out / "index.json"


def windowed_keys(arrays: dict) -> list[str]:
    return [k[: -len("/token_index")] for k in arrays if k.endswith("/token_index")]


# --------------------------------------------------------------------------- layout, index


def test_layout_follows_genomic_interpreter_numbering(swin):
    layout = attention_layout(swin)
    assert [(i.layer, i.block, i.token_bp) for i in layout] == [
        *[(k, b, 2 ** (k - 1)) for k in range(1, 6) for b in ("regular", "shifted")],
        (6, "transformer", 16),
    ]
    enformer = Enformer(EnformerConfig(**ENFORMER))
    assert [(i.layer, i.token_bp) for i in attention_layout(enformer)] == [(6, 16), (7, 16)]
    assert [(i.layer, i.token_bp) for i in attention_layout(CAN(CANConfig(pool=4)))] == [(1, 4)]


def test_index_and_files(export):
    index = json.loads(export.read_text())
    assert index["format"] == "gitool-attention" and len(index["windows"]) == 2
    entry = index["windows"][1]
    assert (entry["chrom"], entry["start"], entry["end"]) == ("chr1", START + 7, START + 507)
    assert (export.parent / entry["file"]).is_file()
    keys = [r["key"] for r in entry["records"]]
    assert keys[:2] == ["L1.regular", "L1.shifted"] and keys[-1] == "L6.transformer"
    full = {r["key"]: r["full"] for r in entry["records"]}
    assert full["L5.shifted"] and full["L3.regular"] and full["L4.regular"]


# --------------------------------------------------------------------------- weights


def test_rows_sum_to_one_and_padded_keys_get_zero(export):
    arrays = load_window(export, 0)
    padded_layers = 0
    for key in windowed_keys(arrays):
        weights, index = arrays[f"{key}/weights"], arrays[f"{key}/token_index"]
        valid = index >= 0  # (nW, w)
        keys_pad = ~valid[:, None, None, :]
        if (~valid).any():
            padded_layers += 1
            assert (weights * keys_pad == 0).all(), key  # exactly zero
        rows = weights.sum(-1).transpose(1, 0, 2)[:, valid]  # (H, real rows)
        np.testing.assert_allclose(rows, 1.0, atol=1e-5, err_msg=key)
        np.testing.assert_allclose(arrays[f"{key}/head_mean"], weights.mean(1), atol=1e-6)
        np.testing.assert_array_equal(arrays[f"{key}/head_max"], weights.max(1))
        if f"{key}/full" in arrays:
            np.testing.assert_allclose(arrays[f"{key}/full"].sum(-1), 1.0, atol=1e-5)
    assert padded_layers == 8  # both blocks of layers 1-4
    transformer = arrays["L6.transformer/weights"]
    assert transformer.shape == (2, 24, 24)  # the paper's order: the 24 target tokens
    np.testing.assert_allclose(transformer.sum(-1), 1.0, atol=1e-5)


@pytest.mark.parametrize("module", ["trunk.layers.4.shifted.attn", "trunk.layers.2.regular.attn"])
def test_exported_weights_reproduce_the_layer_output(swin, tmp_path, module):
    """full (unshifted order) @ values (unshifted) == the attention's output (unshifted)."""
    attn = dict(swin.named_modules())[module]
    seen = {}
    hooks = [
        attn.register_forward_pre_hook(lambda m, args: seen.__setitem__("x", args[0])),
        attn.to_out.register_forward_pre_hook(lambda m, args: seen.__setitem__("o", args[0])),
    ]
    try:
        layer = attn.layer
        extract_attention(swin, inputs(1), tmp_path / "o.npz", layers=[layer], device="cpu")
    finally:
        for h in hooks:
            h.remove()
    arrays = load_window(tmp_path / "o.json", 0)
    key = f"L{layer}.{attn.block}"
    full, index = arrays[f"{key}/full"], arrays[f"{key}/token_index"]
    x = seen["x"]  # (1, n, C) as the block sees it (rolled for the shifted block)
    n, shift, w = x.shape[1], attn.shift, attn.window
    v = attn._split(attn.to_v(x))[0]  # (H, n, d), rolled order
    out = seen["o"].reshape(1, -1, attn.heads, attn.value_dim)[0, :n].transpose(0, 1)
    v, out = torch.roll(v, shift, 1), torch.roll(out, shift, 1)  # back to token order
    mine = torch.from_numpy(full).double() @ v.double()
    torch.testing.assert_close(mine, out.double(), atol=1e-5, rtol=1e-4)
    # the per-window form too: window i's weights over its slots' values
    weights = torch.from_numpy(arrays[f"{key}/weights"]).double()
    idx = torch.from_numpy(index).long()
    valid = idx >= 0
    vw = v.double()[:, idx.clamp_min(0)] * valid[None, :, :, None]  # (H, nW, w, d)
    per_window = torch.einsum("nhqk,hnkd->hnqd", weights, vw)
    torch.testing.assert_close(per_window[:, valid], out.double()[:, idx[valid]], atol=1e-5,
                               rtol=1e-4)  # fmt: skip
    assert w == index.shape[1]


def test_shift_mapping_wraps_around(export):
    """Layer 5: 32 tokens of 16 bp, windows of 16, shift 8. The shifted block's windows hold
    tokens 8-23 and 24-31 + 0-7: token 0 attends to the sequence's end and start."""
    arrays = load_window(export, 0)
    index = arrays["L5.shifted/token_index"]
    np.testing.assert_array_equal(index[0], np.arange(8, 24))
    np.testing.assert_array_equal(index[1], np.r_[24:32, 0:8])
    full = arrays["L5.shifted/full"]
    starts = arrays["L5.shifted/token_start"]
    for token, expected in ((0, np.r_[0:8, 24:32]), (31, np.r_[0:8, 24:32]), (8, np.r_[8:24])):
        attended = np.flatnonzero(full[:, token].sum(0) > 0)
        np.testing.assert_array_equal(attended, expected)
    # genomically: token 0 (bp START … START+16) attends to the last 128 bp of the input
    end_keys = starts[np.flatnonzero(full[:, 0].sum(0) > 0)]
    assert set(range(START + 384, START + 500, 16)) <= set(end_keys.tolist())
    regular = arrays["L5.regular/full"]
    np.testing.assert_array_equal(np.flatnonzero(regular[:, 0].sum(0) > 0), np.arange(16))


def test_token_coordinates(export):
    arrays = load_window(export, 1)
    start = START + 7
    for layer, n in zip(range(1, 6), (500, 250, 125, 63, 32), strict=True):
        bp = 2 ** (layer - 1)
        for block in ("regular", "shifted"):
            s, e = arrays[f"L{layer}.{block}/token_start"], arrays[f"L{layer}.{block}/token_end"]
            assert len(s) == n
            np.testing.assert_array_equal(s, start + np.arange(n) * bp)
            np.testing.assert_array_equal(e, np.minimum(s + bp, start + 500))
    # layer 4: 63 tokens of 8 bp; token 62 covers bp 496-500 (the input ends at 500)
    assert (arrays["L4.regular/token_start"][62], arrays["L4.regular/token_end"][62]) == (
        start + 496,
        start + 500,
    )
    # cropped first (the paper's order): tokens 4 … 27 of the 32, the 24 target bins
    np.testing.assert_array_equal(
        arrays["L6.transformer/token_start"], start + (4 + np.arange(24)) * 16
    )


# --------------------------------------------------------------------------- rollout


def test_rollout_rows_sum_to_one(export, swin):
    arrays = load_window(export, 0)
    roll = arrays["rollout"]
    assert roll.shape == (24, 32)  # target bins × the input's 16-bp bins
    assert (roll >= 0).all()
    np.testing.assert_allclose(roll.sum(1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(arrays["rollout/bin_start"], START + np.arange(32) * 16)
    with torch.no_grad(), capture_attention(swin) as records:
        swin(torch.from_numpy(np.eye(4, dtype=np.float32)[codes(500)])[None])
    nucleotides, bp, _ = attention_rollout(records, 500, resolution=1)
    assert nucleotides.shape == (24, 500) and bp == 16
    np.testing.assert_allclose(nucleotides.sum(1), 1.0, atol=1e-5)
    np.testing.assert_allclose(nucleotides.reshape(24, -1, 1).sum(-1), nucleotides, atol=0)


def identity(record):
    weights = record.weights
    if "token_index" in record.meta:
        valid = record.meta["token_index"] >= 0
        eye = torch.eye(weights.shape[-1]) * valid[:, None, :] * valid[:, :, None]
        weights = eye[None, :, None].expand_as(weights).clone()
    else:
        weights = torch.eye(weights.shape[-1]).expand_as(weights).clone()
    return dataclasses.replace(record, weights=weights)


@pytest.mark.parametrize("crop_first", [False, True])
def test_rollout_of_identity_attention_is_identity(crop_first):
    torch.manual_seed(0)
    model = GenomicInterpreter(SwinConfig(**TINY, crop_first=crop_first)).eval()
    with torch.no_grad(), capture_attention(model) as records:
        model(torch.from_numpy(np.eye(4, dtype=np.float32)[codes(500)])[None])
    roll, bp, first = attention_rollout([identity(r) for r in records], 500)
    rows = 24 if crop_first else 32
    assert bp == 16 and first == (4 if crop_first else 0)
    expected = np.zeros((rows, 32))
    expected[np.arange(rows), first + np.arange(rows)] = 1
    np.testing.assert_allclose(roll, expected, atol=1e-6)
    # at 1-bp resolution each token's mass spreads evenly over its 16 bp
    fine, _, _ = attention_rollout([identity(r) for r in records], 500, resolution=1)
    np.testing.assert_allclose(fine[0, 16 * first : 16 * first + 16], 1 / 16, atol=1e-6)
    np.testing.assert_allclose(fine.sum(1), 1.0, atol=1e-6)


# --------------------------------------------------------------------------- other models

ENFORMER = dict(channels=48, attention_heads=4, key_dim=8, divisible_by=8, depth=2,
                num_downsamples=4, bin_size=16, seq_length=256, target_length=9,
                heads={"human": 5})  # fmt: skip


@pytest.mark.parametrize("kind", ["enformer", "can"])
def test_full_attention_models(tmp_path, kind):
    torch.manual_seed(0)
    if kind == "enformer":
        model, length, key, tokens, bp = Enformer(EnformerConfig(**ENFORMER)), 256, "L7", 16, 16
        key += ".transformer"
    else:
        model, length, key, tokens, bp = CAN(CANConfig(pool=4)), 200, "L1.attention", 50, 4
    extract_attention(model, inputs(1, length), tmp_path / "x", rollout=True, heads=[1],
                      device="cpu")  # fmt: skip
    arrays = load_window(tmp_path / "x" / "index.json", 0)
    weights = arrays[f"{key}/weights"]
    assert weights.shape == (1, tokens, tokens)
    np.testing.assert_allclose(weights.sum(-1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(arrays[f"{key}/token_start"], START + np.arange(tokens) * bp)
    np.testing.assert_allclose(arrays["rollout"].sum(1), 1.0, atol=1e-5)
    # the rollout's rows are the top tokens, bp wide (Enformer's were taken as 1 bp each)
    assert arrays["rollout"].shape == (tokens, length // bp)
    np.testing.assert_array_equal(arrays["rollout/row_start"], START + np.arange(tokens) * bp)


# --------------------------------------------------------------------------- inputs, tracks


def region_windows(model, folder: Path, seed: int = 0) -> list[AttentionWindow]:
    """The model windows of BED region chr1:100-900 on a random 2,000-bp genome in ``folder``
    (``g.fa``, ``r.bed``)."""
    rng = np.random.default_rng(seed)
    genome = folder / "g.fa"
    genome.write_text(">chr1\n" + "".join(rng.choice(list("ACGT"), 2000)) + "\n")
    bed = folder / "r.bed"
    bed.write_text("chr1\t100\t900\n")
    return list(windows_from_regions(model, bed, genome))


def test_regions_genome_and_bedgraph_track(swin, tmp_path):
    windows = region_windows(swin, tmp_path)
    assert [w.target_start for w in windows] == [96, 480, 864]  # 384-bp target spans
    assert windows[0].start == 96 - (500 - 384) // 2
    track = tmp_path / "received.bedgraph"
    summary = extract_attention(swin, windows, tmp_path / "out", layers=[5], device="cpu",
                                track_out=track, bedgraph=True, sizes={"chr1": 2000})  # fmt: skip
    assert summary.windows == 3 and summary.tracks == [track]
    rows = [line.split("\t") for line in track.read_text().splitlines()]
    starts = np.array([int(r[1]) for r in rows])
    ends = np.array([int(r[2]) for r in rows])
    values = np.array([float(r[3]) for r in rows])
    # layer-5 tokens (16 bp) start at the input's start (38 = 96 - 58 bp of context), so they
    # sit 6 bp off the output-bin grid; each window contributes the tokens starting in its
    # target span (96-480, 480-864, 864-912), without overlaps or gaps
    np.testing.assert_array_equal(starts, 102 + 16 * np.arange(51))
    np.testing.assert_array_equal(ends, starts + 16)
    assert (values > 0).all() and abs(values.mean() - 1) < 0.1  # each query gives away 1
    for name, bedgraph, needle in (
        ("t.bw", True, "^track_out .*t.bw: .bw names a bigWig"),
        ("", False, "^track_out is empty"),
    ):
        with pytest.raises(InputError, match=needle):
            extract_attention(swin, windows, tmp_path / "bad", layers=[5], device="cpu",
                              track_out=name and tmp_path / name, bedgraph=bedgraph,
                              sizes={"chr1": 2000})  # fmt: skip
    assert not (tmp_path / "bad").exists()


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"layers": [7]}, ["layer 7 is out of range", "1-6 (layer 1: 1-bp tokens … layers 5-6"]),
        ({"layers": [0]}, ["layer 0 is out of range"]),
        ({"heads": [2]}, ["head 2 is out of range", "layer 1 has 2 heads"]),
        ({"layers": [5], "heads": [3]}, None),  # layer 5 has 4 heads: fine
    ],
)
def test_layer_and_head_out_of_range(swin, tmp_path, options, words):
    if words is None:
        extract_attention(swin, inputs(1), tmp_path / "ok", device="cpu", **options)
        return
    with pytest.raises(InputError) as err:
        extract_attention(swin, inputs(1), tmp_path / "bad", device="cpu", **options)
    message = str(err.value)
    assert "\n" not in message
    for word in words:
        assert word in message
    assert not (tmp_path / "bad").exists()


def test_model_without_attention(tmp_path):
    model = create_model("cnn-maxpool", seq_length=400, target_length=25, bin_size=8,
                         stem_channels=8, channels=16, divisible_by=4, heads={"t": 2})  # fmt: skip
    with pytest.raises(
        InputError,
        match="^model is a .* model, which has no attention layers; attention takes swin",
    ):
        extract_attention(model, inputs(1, 400), tmp_path / "x", device="cpu")


def test_sequence_too_short(swin, tmp_path):
    fasta = tmp_path / "s.fa"
    fasta.write_text(">long\n" + "ACGT" * 300 + "\n>short\n" + "ACGT" * 50 + "\n")
    with pytest.raises(InputError, match="'short' is 200 bp, too short for the model's 500-bp"):
        list(windows_from_fasta(fasta, 500))
    with pytest.raises(InputError, match="missing.fa: no such file"):
        list(windows_from_fasta(tmp_path / "missing.fa", 500))
    with pytest.raises(InputError, match="window w0 is 300 bp but the model takes 500"):
        extract_attention(swin, inputs(1, 300), tmp_path / "x", device="cpu")


def test_failed_folder_export_leaves_nothing(swin, tmp_path):
    """Windows are staged in a hidden sibling: a failure at the third window leaves neither
    window files nor an empty folder; a failed replacement keeps the earlier export whole."""
    windows = [*inputs(2), *inputs(1, 300)]
    with pytest.raises(InputError, match="is 300 bp but the model takes 500"):
        extract_attention(swin, windows, tmp_path / "out", layers=[5], device="cpu")
    assert list(tmp_path.iterdir()) == []
    out = tmp_path / "out"
    summary = extract_attention(swin, inputs(2), out, layers=[5], device="cpu")
    assert summary.files == [out / "window_000000.npz", out / "window_000001.npz"]
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    with pytest.raises(InputError, match="is 300 bp"):
        extract_attention(swin, windows, out, layers=[5], device="cpu", force=True)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert [p.name for p in tmp_path.iterdir()] == ["out"]
    assert "L5.shifted/weights" in load_window(out / "index.json", 1)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"batch_size": 0}, "^batch_size must be >= 1, got 0$"),
        ({"full_max_tokens": -5}, "^full_max_tokens must be >= 0, got -5$"),
        ({"rollout": True, "rollout_bp": 0}, "^rollout_bp must be >= 1, got 0$"),
        ({"rollout_bp": 16}, "^rollout_bp needs rollout$"),
    ],
)
def test_bad_options(swin, tmp_path, options, message):
    with pytest.raises(InputError, match=message):
        extract_attention(swin, inputs(1), tmp_path / "x", device="cpu", **options)
    assert not (tmp_path / "x").exists()


def test_empty_input_and_output_are_refused(swin, tmp_path):
    with pytest.raises(InputError, match="no window to export: the input is empty"):
        extract_attention(swin, [], tmp_path / "x", device="cpu")
    with pytest.raises(InputError, match="no window to export"):
        extract_attention(swin, [], tmp_path / "x.npz", device="cpu")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(InputError, match="^out is empty"):
        extract_attention(swin, inputs(1), "", device="cpu")
    with pytest.raises(InputError, match="^index '5-2': the range 5-2 runs backwards"):
        parse_indices("5-2")


def test_export_that_would_fill_the_disk_is_refused(swin, tmp_path, monkeypatch):
    import shutil
    from collections import namedtuple

    summary = extract_attention(swin, inputs(3), tmp_path / "ok", layers=[5], device="cpu",
                                n_windows=3)  # fmt: skip
    assert summary.windows == 3  # enough space: the count alone changes nothing
    with pytest.raises(InputError, match="ok already exists; pass force to replace it"):
        extract_attention(swin, inputs(1), tmp_path / "ok", layers=[5], device="cpu")
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10**9, 10**9, 1000))
    for out in (tmp_path / "folder", tmp_path / "one.npz"):
        with pytest.raises(
            InputError,
            match=r"exporting 3 windows to .* needs about [\d.]+ KiB more \([\d.]+ KiB per "
            r"window\) but 1000 B is free; export fewer windows \(index\).*float16$",
        ):
            extract_attention(swin, inputs(3), out, layers=[5], device="cpu", n_windows=3)
        assert not out.exists() or not any(out.iterdir())  # nothing left behind
    assert not (tmp_path / "one.json").exists()
    assert not list(tmp_path.glob(".one.npz.tmp-*"))
    with pytest.raises(InputError, match=r"needs about 2\.0 GiB more \(1\.0 GiB per window\) "
                       r"but 1000 B is free; export fewer windows .*heads \(head\)$"):  # fmt: skip
        check_disk_space(tmp_path, 2**30, 3, "float16")
    extract_attention(swin, inputs(1), tmp_path / "single", layers=[5], device="cpu",
                      n_windows=1)  # fmt: skip


@pytest.mark.parametrize("fails", ["track", "index"])
def test_failed_rerun_leaves_the_older_archive_whole(swin, tmp_path, monkeypatch, fails):
    """A single-archive export over an older one: a failure while committing the track or
    writing the index keeps the older archive and its index, and leaves no new track."""
    import gitool.interpret.attention as attention_module
    from gitool.predict.writer import TrackSetWriter

    windows = region_windows(swin, tmp_path, seed=1)
    archive, index = tmp_path / "a.npz", tmp_path / "a.json"
    extract_attention(swin, windows[:1], archive, layers=[5], device="cpu")
    before = archive.read_bytes(), index.read_text()

    def broken(*args, **kwargs):
        raise OSError("disk full")

    if fails == "track":
        monkeypatch.setattr(TrackSetWriter, "commit", broken)
    else:
        monkeypatch.setattr(attention_module, "_index_json", broken)
    track = tmp_path / "t.bedgraph"
    with pytest.raises(OSError, match="disk full"):
        extract_attention(swin, windows, archive, layers=[5], device="cpu", track_out=track,
                          bedgraph=True, sizes={"chr1": 2000}, force=True)  # fmt: skip
    assert (archive.read_bytes(), index.read_text()) == before
    assert len(json.loads(index.read_text())["windows"]) == 1
    assert "L5.shifted/weights" in load_window(index, 0)  # the older export still opens
    assert not track.exists()
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == [RECORD, "a.json", "a.npz", "g.fa", "g.fa.fai", "r.bed"]  # no temporaries
    # a new folder export whose index cannot be written leaves no folder behind
    monkeypatch.setattr(attention_module, "_index_json", broken)
    with pytest.raises(OSError, match="disk full"):
        extract_attention(swin, windows, tmp_path / "folder", layers=[5], device="cpu")
    assert not (tmp_path / "folder").exists()


# --------------------------------------------------------------------------- plots


def test_plots(swin, tmp_path):
    pytest.importorskip("matplotlib")
    summary = extract_attention(swin, inputs(1), tmp_path / "p", layers=[4, 5, 6], plot=True,
                                device="cpu")  # fmt: skip
    names = sorted(p.name for p in summary.plots)
    assert names == [
        "chr1_1000-1500_heads_L5.shifted.png",
        "chr1_1000-1500_layers.png",
        "chr1_1000-1500_windows_L5.shifted.png",
    ]
    for path in summary.plots:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert all(p.parent == tmp_path / "p" / "plots" for p in summary.plots)


def test_an_export_whose_plots_fail_is_not_published(swin, tmp_path, monkeypatch):
    """The plots are drawn in the export's stage: a failure (or Ctrl-C) while drawing
    leaves no export without its plots, and an earlier export whole."""
    pytest.importorskip("matplotlib")
    import gitool.interpret.attention as attention

    def interrupted(index_path, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(attention, "plot_export", interrupted)
    with pytest.raises(KeyboardInterrupt):
        extract_attention(swin, inputs(1), tmp_path / "p", layers=[5], plot=True, device="cpu")
    assert list(tmp_path.iterdir()) == []


def test_float16_export(swin, tmp_path):
    extract_attention(swin, inputs(1), tmp_path / "h.npz", layers=[5], dtype="float16",
                      device="cpu")  # fmt: skip
    arrays = load_window(tmp_path / "h.json", 0)
    assert arrays["L5.shifted/weights"].dtype == np.float16
    np.testing.assert_allclose(arrays["L5.shifted/full"].astype(np.float32).sum(-1), 1, atol=3e-3)
    with pytest.raises(InputError, match="^dtype float64: choose float32 or float16"):
        extract_attention(swin, inputs(1), tmp_path / "x", dtype="float64")


# --------------------------------------------------------------------------- from a run


def save_run(model, folder: Path, stores: list[Path] = ()) -> Path:
    """A run folder holding ``model`` as its best checkpoint, trained (it says) on ``stores``."""
    from gitool.runs import save_checkpoint

    save_checkpoint(
        folder / "checkpoints" / "best.pt",
        {"model_name": "swin", "preset": "swin", "model_config": dataclasses.asdict(model.config),
         "model": model.state_dict(), "step": 0, "data": [{"path": str(s)} for s in stores]},
    )  # fmt: skip
    return folder


def test_a_default_run_without_attention_says_it_was_the_default(tmp_path, capsys, monkeypatch):
    """`gitool attention` with no --model, the newest run a CNN: it said "--model run is a
    MaxPoolCNN model" of an option the user never gave."""
    from gitool.runs import save_checkpoint

    from helpers import assert_input_error, run_cli

    cnn = create_model("cnn-maxpool", seq_length=400, target_length=25, bin_size=8,
                       stem_channels=8, channels=16, divisible_by=4)  # fmt: skip
    save_checkpoint(
        tmp_path / "runs" / "run" / "checkpoints" / "best.pt",
        {"model_name": "cnn-maxpool", "preset": "cnn-maxpool", "step": 0, "data": [],
         "model_config": dataclasses.asdict(cnn.config), "model": cnn.state_dict()},
    )  # fmt: skip
    fasta = tmp_path / "s.fa"
    fasta.write_text(">a\n" + "ACGT" * 100 + "\n")
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(["attention", "--fasta", fasta, "--device", "cpu"], capsys)
    assert_input_error(code, err, "--model runs/run (the newest run under runs/, the default) "
                       "is a MaxPoolCNN model, which has no attention layers")  # fmt: skip
    code, _, err = run_cli(["attention", "-m", "runs/run", "--fasta", fasta], capsys)
    assert_input_error(code, err, "--model runs/run is a MaxPoolCNN model")
    assert not (tmp_path / "attention").exists()


def test_attention_from_run(swin, tmp_path):
    from gitool.config.attention import AttentionOptions
    from gitool.interpret.attention import attention_from_run

    run = str(save_run(swin, tmp_path / "run"))
    fasta = tmp_path / "s.fa"
    fasta.write_text(">a\n" + "ACGT" * 260 + "\n")  # 1,040 bp: two 500-bp windows
    options = AttentionOptions(model=run, out=str(tmp_path / "out"), fasta=str(fasta),
                               layer=(8 - 3,), device="cpu")  # fmt: skip
    summary = attention_from_run(options)
    assert summary.windows == 2
    arrays = load_window(tmp_path / "out" / "index.json", 1)
    np.testing.assert_array_equal(arrays["L5.regular/token_start"][:2], [500, 516])
    twice = dataclasses.replace(options, out=str(tmp_path / "twice"), head=(1, 0, 1))
    attention_from_run(twice)  # head 1 given twice was exported twice
    weights = load_window(tmp_path / "twice" / "index.json", 1)["L5.regular/weights"]
    assert weights.shape[1] == 2  # windows x heads x query x key
    np.testing.assert_array_equal(weights[:, 0], arrays["L5.regular/weights"][:, 1])
    x = str(tmp_path / "x")
    with pytest.raises(InputError, match="^give exactly one input: regions BED .*got data, fasta"):
        AttentionOptions(model=run, out=x, fasta=str(fasta), data=str(tmp_path))
    with pytest.raises(InputError, match="^regions needs genome"):
        AttentionOptions(model=run, out=x, regions=str(tmp_path / "r.bed"))
    with pytest.raises(InputError, match="^layer 9 is out of range"):
        attention_from_run(AttentionOptions(model=run, out=x, fasta=str(fasta), layer=(9,)))
    with pytest.raises(InputError, match="^track_out needs genomic input: regions BED"):
        AttentionOptions(model=run, out=x, fasta=str(fasta), track_out=str(tmp_path / "t.bw"))
    with pytest.raises(InputError, match="^layer must be >= 1, got 0$"):
        AttentionOptions(layer=(0,))
    with pytest.raises(InputError, match="^head must be >= 0, got -1$"):
        AttentionOptions(head=(1, -1))
    # No input: the run's own store, which this hand-made checkpoint does not record.
    with pytest.raises(InputError, match="records no training store; give one with data"):
        attention_from_run(AttentionOptions(model=run, out=x))
    assert not (tmp_path / "x").exists()
    assert parse_indices("0,3,5-7") == [0, 3, 5, 6, 7] and parse_indices(None) is None
    assert parse_indices("3,0,3,2-4") == [3, 0, 2, 4]  # each window once, in the order given
    with pytest.raises(InputError, match="^index 'a'"):
        parse_indices("a")


def _fake_store(folder: Path, bigwig: Path) -> Path:
    """A store manifest recording ``bigwig`` as a source (all :meth:`Store.sources` reads)."""
    import yaml

    folder.mkdir()
    manifest = {"format": "gitool-store", "version": 1, "tracks": [{"file": str(bigwig)}],
                "splits": {s: {"windows": 0} for s in ("train", "valid", "test")},
                "seq_length": 500, "bin_size": 16, "target_length": 24}  # fmt: skip
    (folder / "manifest.yaml").write_text(yaml.safe_dump(manifest))
    return folder


def test_outputs_are_claimed_before_the_model_runs(swin, tmp_path):
    """-o, --track-out and the plots beside an archive: an unrelated existing file is refused
    (with force too), gitool's own output is replaced only with force, and an input (the
    genome, a bigWig the run's store was built from) never, even with force."""
    from gitool.config.attention import AttentionOptions
    from gitool.interpret.attention import attention_from_run

    from conftest import write_bigwig

    region_windows(swin, tmp_path)  # g.fa, r.bed
    source = write_bigwig(tmp_path / "source.bw", {"chr1": 2000}, {"chr1": np.ones(2000)})
    run = save_run(swin, tmp_path / "run", [_fake_store(tmp_path / "store", source)])
    mine = b"my own notes"

    def export(out, track, force=False, plot=False):
        options = AttentionOptions(
            model=str(run), out=str(out), regions=str(tmp_path / "r.bed"),
            genome=str(tmp_path / "g.fa"), layer=(5,), track_out=str(track), plot=plot,
            device="cpu", force=force,
        )  # fmt: skip
        return attention_from_run(options)

    summary = export(tmp_path / "a.npz", tmp_path / "t.bw", plot=True)
    assert summary.windows == 3 and len(summary.plots) == 3
    own = {p: p.read_bytes() for p in (tmp_path / "a.npz", tmp_path / "t.bw", *summary.plots)}
    for force in (False, True):  # gitool's own outputs: replaced only with force
        (tmp_path / "notes.npz").write_bytes(mine)
        (tmp_path / "notes.bw").write_bytes(mine)
        cases = [
            ("a.npz", "t.bw", "^out .*a.npz already exists; pass force" if not force else None),
            (
                "notes.npz",
                "new.bw",
                "notes.npz exists and gitool did not make it",  # said at once, force or not
            ),
            ("new.npz", "notes.bw", "^track_out .*notes.bw exists and gitool did not make it"),
            ("new.npz", "g.fa", "^track_out .*g.fa is one of this command's inputs"),
            ("new.npz", "source.bw", "^track_out .*source.bw is one of this command's inputs"),
            ("store/x.npz", "new.bw", "^out .*x.npz lies inside .*store, one of this"),
        ]
        for out, track, refusal in cases:
            if refusal is None:
                export(tmp_path / out, tmp_path / track, force=force, plot=True)
                continue
            with pytest.raises(InputError, match=refusal):
                export(tmp_path / out, tmp_path / track, force=force)
        assert (tmp_path / "notes.npz").read_bytes() == mine
        assert (tmp_path / "notes.bw").read_bytes() == mine
        assert (tmp_path / "g.fa").read_text().startswith(">chr1")
        assert not (tmp_path / "new.npz").exists() and not (tmp_path / "new.bw").exists()
    assert all(path.exists() and path.read_bytes() != b"" for path in own)
    # a PNG in plots/ that is not gitool's: refused even with force, before any output
    plot = summary.plots[0]
    plot.write_bytes(mine)
    with pytest.raises(InputError, match=f"^plot .*{plot.name} exists and gitool did not make it"):
        export(tmp_path / "b.npz", tmp_path / "b.bw", force=True, plot=True)
    assert plot.read_bytes() == mine and not (tmp_path / "b.npz").exists()


def test_folder_output_is_replaced_only_when_it_is_an_earlier_export(swin, tmp_path):
    out = tmp_path / "out"
    extract_attention(swin, inputs(2), out, layers=[5], device="cpu")
    with pytest.raises(InputError, match="^out .*out already exists; pass force"):
        extract_attention(swin, inputs(1), out, layers=[5], device="cpu")
    summary = extract_attention(swin, inputs(1), out, layers=[5], device="cpu", force=True)
    assert summary.windows == 1
    assert sorted(p.name for p in out.iterdir()) == [RECORD, "index.json", "window_000000.npz"]
    (out / "notes.txt").write_text("keep")
    with pytest.raises(InputError, match="also holds notes.txt, which gitool did not write"):
        extract_attention(swin, inputs(1), out, layers=[5], device="cpu", force=True)
    assert (out / "notes.txt").read_text() == "keep"
    (out / "notes.txt").unlink()
    with open(out / "window_000000.npz", "ab") as handle:  # the user's own addition to it
        handle.write(b"mine")
    with pytest.raises(InputError, match="holds window_000000.npz, .* changed since"):
        extract_attention(swin, inputs(1), out, layers=[5], device="cpu", force=True)
    assert (out / "window_000000.npz").read_bytes().endswith(b"mine")
    (out / "index.json").unlink()
    with pytest.raises(InputError, match="is a non-empty folder that is not an attention export"):
        extract_attention(swin, inputs(1), out, layers=[5], device="cpu", force=True)


def test_command_line(swin, tmp_path, capsys):
    from helpers import assert_input_error, run_cli

    run = save_run(swin, tmp_path / "run")
    fasta = tmp_path / "s.fa"
    fasta.write_text(">a\n" + "ACGT" * 130 + "\n")
    args = ["attention", "-m", run, "--fasta", fasta, "--layer", "5", "--head", "0",
            "--device", "cpu"]  # fmt: skip
    code, _, err = run_cli([*args, "-o", tmp_path / "a.npz"], capsys)
    assert code == 0, err
    assert (tmp_path / "a.npz").stat().st_size > 0 and (tmp_path / "a.json").exists()
    code, _, err = run_cli([*args, "-o", tmp_path / "a.npz"], capsys)
    assert_input_error(code, err, f"-o {tmp_path / 'a.npz'} already exists; pass --force")
    code, _, err = run_cli([*args, "-o", tmp_path / "a.npz", "--force"], capsys)
    assert code == 0, err
    (tmp_path / "mine.npz").write_text("my notes")
    code, _, err = run_cli([*args, "-o", tmp_path / "mine.npz", "--force"], capsys)
    assert_input_error(code, err, "-o ", "gitool did not make it", "even with --force")
    assert (tmp_path / "mine.npz").read_text() == "my notes"
    code, _, err = run_cli([*args, "-o", tmp_path / "b", "--layer", "12"], capsys)
    assert_input_error(code, err, "--layer 12")
    code, _, err = run_cli([*args, "-o", tmp_path / "b", "--rollout-bp", "4"], capsys)
    assert_input_error(code, err, "--rollout-bp needs --rollout")
    code, _, err = run_cli([*args, "-o", tmp_path / "b", "--index", "3"], capsys)
    assert_input_error(code, err, "--index", "with --fasta every window is used")
    assert not (tmp_path / "b").exists()
    code, out_text, _ = run_cli(["attention", "--help"], capsys)
    assert code == 0 and "2^(k-1) bp" in out_text


def test_track_out_averages_only_the_chosen_heads(swin, tmp_path):
    """--head chose the heads of the exported arrays but not of --track-out, which was the
    mean over all heads whatever was asked."""
    windows = region_windows(swin, tmp_path)

    def track(heads, name):
        path = tmp_path / f"{name}.bedgraph"
        extract_attention(swin, windows, tmp_path / name, layers=[5], heads=heads, device="cpu",
                          track_out=path, bedgraph=True, sizes={"chr1": 2000})  # fmt: skip
        return np.array([float(line.split("\t")[3]) for line in path.read_text().splitlines()])

    every, first, rest = track(None, "all"), track([0], "h0"), track([1, 2, 3], "h123")
    assert not np.allclose(first, every)
    np.testing.assert_allclose((first + 3 * rest) / 4, every, rtol=1e-4, atol=1e-6)
