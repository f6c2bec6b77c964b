"""Attention heatmaps people can read: a grid rather than a strip, a colour bar on every map,
genome coordinates on the axes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from gitool.interpret.attention import assemble_full, token_coordinates
from gitool.interpret.plots import heads_figure, layers_figure, plot_export, windows_figure
from gitool.plots import pyplot

CHROM, START, SEQ = "chrI", 12_300, 2048
HEADS = 2
FULL_MAX = 256  # layers of at most this many tokens carry the reassembled matrix


def _softmax(rng, *shape) -> np.ndarray:
    x = np.exp(rng.normal(size=shape))
    return (x / x.sum(-1, keepdims=True)).astype(np.float32)


def _records(rng) -> tuple[list[dict], dict[str, np.ndarray]]:
    """17 records laid out as swin-basenji-small's (layers 1–8 regular and shifted, 16-token
    windows, then the transformer block at 128 bp/token), over a 2,048-bp window."""
    records, arrays = [], {}
    for layer in range(1, 9):
        bp = 2 ** (layer - 1)
        n = SEQ // bp
        w = min(16, n)
        for block, shift in (("regular", 0), ("shifted", w // 2)):
            key = f"L{layer}.{block}"
            order = np.roll(np.arange(n), -shift)  # the shifted block's last window wraps
            index = order.reshape(n // w, w).astype(np.int32)
            weights = _softmax(rng, n // w, HEADS, w, w)
            starts, ends = token_coordinates(START, n, bp, SEQ)
            arrays |= {f"{key}/weights": weights, f"{key}/token_index": index,
                       f"{key}/token_start": starts, f"{key}/token_end": ends,
                       f"{key}/head_mean": weights.mean(1), f"{key}/head_max": weights.max(1)}  # fmt: skip
            full = n <= FULL_MAX
            if full:
                arrays[f"{key}/full"] = assemble_full(
                    torch.from_numpy(weights), torch.from_numpy(index), n
                ).numpy()
            records.append(dict(key=key, layer=layer, block=block, module="", token_bp=bp,
                                n_tokens=n, heads=list(range(HEADS)), windowed=True, window=w,
                                shift=shift, n_windows=n // w, padded=0, token_first=0, full=full))  # fmt: skip
    n = SEQ // 128
    weights = _softmax(rng, HEADS, n, n)
    starts, ends = token_coordinates(START, n, 128, SEQ)
    arrays |= {"L9.transformer/weights": weights, "L9.transformer/token_start": starts,
               "L9.transformer/token_end": ends, "L9.transformer/head_mean": weights.mean(0),
               "L9.transformer/head_max": weights.max(0)}  # fmt: skip
    records.append(dict(key="L9.transformer", layer=9, block="transformer", module="",
                        token_bp=128, n_tokens=n, heads=list(range(HEADS)), windowed=False))  # fmt: skip
    return records, arrays


@pytest.fixture(scope="module")
def export(tmp_path_factory) -> tuple[Path, dict, dict]:
    """An export of one window in ``gitool attention``'s format (index.json + npz)."""
    folder = tmp_path_factory.mktemp("plots")
    records, arrays = _records(np.random.default_rng(0))
    prefix = "w0/"
    np.savez(folder / "w0.npz", **{prefix + k: v for k, v in arrays.items()})
    entry = {"name": "test:0", "chrom": CHROM, "start": START, "end": START + SEQ,
             "file": "w0.npz", "prefix": prefix, "records": records, "rollout": False}  # fmt: skip
    (folder / "index.json").write_text(json.dumps({"windows": [entry]}))
    return folder / "index.json", entry, arrays


def test_layer_overview_of_17_layers_is_a_grid_not_a_strip(export):
    index, _, _ = export
    written = plot_export(index, out=index.parent / "png")
    names = [p.name for p in written]
    stem = f"{CHROM}_{START}-{START + SEQ}"
    assert names == [f"{stem}_layers.png", f"{stem}_heads_L8.shifted.png",
                     f"{stem}_windows_L8.shifted.png"]  # fmt: skip
    height, width = pyplot().imread(written[0]).shape[:2]
    assert width <= 3000, (width, height)
    assert 0.5 <= width / height <= 2, (width, height)


def _panels(fig):
    """The heatmap axes of a figure (the others are colour bars)."""
    return [ax for ax in fig.axes if ax.get_images()]


def test_every_heatmap_has_a_colour_bar_and_genome_axes(export):
    _, entry, arrays = export
    record = entry["records"][15]  # L8.shifted
    figures = {
        "layers": (layers_figure(entry, arrays), 17),
        "heads": (heads_figure(entry, arrays, record), HEADS),
        "windows": (windows_figure(entry, arrays, record), 1),
    }
    try:
        for name, (fig, n) in figures.items():
            panels = _panels(fig)
            assert len(panels) == n, name
            assert len(fig.axes) == 2 * n, name  # one colour bar per panel
            for ax in panels:
                assert CHROM in ax.get_xlabel() and "key" in ax.get_xlabel(), name
                assert CHROM in ax.get_ylabel() and "query" in ax.get_ylabel(), name
                assert ax.get_xticklabels() and ax.get_yticklabels(), name
        layers = _panels(figures["layers"][0])
        assert [ax.get_title().split(",")[0] for ax in layers[:3]] == [
            "layer 1 regular", "layer 1 shifted", "layer 2 regular"
        ]  # fmt: skip
        assert "window 0 of 128" in layers[0].get_title()  # too large to reassemble
        assert layers[-1].get_title().startswith("layer 9 transformer, 128 bp/token")
        # kb on a 2-kb window: the transformer's ticks lie between 12.3 and 14.348 kb
        ticks = [float(t.get_text().replace(",", "")) for t in layers[-1].get_xticklabels()]
        assert ticks and all(12.3 <= t <= 14.348 for t in ticks), ticks
        assert "(kb)" in layers[-1].get_xlabel()
        # the shifted block's last window wraps around: its ticks jump back to the start
        wraps = _panels(figures["windows"][0])[0]
        assert "wraps around" in wraps.get_title()
        labels = [float(t.get_text().replace(",", "")) for t in wraps.get_xticklabels()]
        assert labels[-1] < labels[0]
    finally:
        for fig, _ in figures.values():
            pyplot().close(fig)
