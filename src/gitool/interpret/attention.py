"""Export attention weights: per window and layer, a compressed ``.npz`` plus an index.

**Layer numbering** (Genomic Interpreter): layer ``k`` has tokens of ``2**(k-1)`` bp. ``swin``:
layers ``1 … K`` (``K = log2(bin_size) + 1``) are the 1D-Swin layers, each with a ``regular``
and a ``shifted`` block, and the final transformer blocks continue at ``K+1`` (basenji-small:
layers 1–8, layer 8 = 128 bp, transformer 9). ``enformer``: the conv tower stands for layers
``1 … K``, so transformer block ``i`` (0-based) is layer ``K + 1 + i`` (9 … 19 for 128-bp
tokens). ``can``: its one attention layer is layer 1. Heads are numbered from 0.

**Files.** ``out`` a folder: ``OUT/index.json`` plus one ``OUT/window_NNNNNN.npz`` per window,
written as it is computed (memory stays bounded); ``out`` ending in ``.npz``: one archive with
keys prefixed ``window_NNNNNN/``, index beside it (``OUT.json``). Per record ``KEY`` =
``L{layer}.{block}``: ``KEY/weights`` (windowed: window × head × query slot × key slot; full:
head × query × key; rows sum to 1), ``KEY/token_index`` (windowed: each slot's unshifted token,
-1 = padding), ``KEY/token_start``/``token_end`` (bp of every token), ``KEY/head_mean``,
``KEY/head_max`` and, for small windowed layers, ``KEY/full`` (the windows reassembled into one
token × token matrix); with rollout, ``rollout`` and its row/bin coordinates. ``index.json``
lists the windows, the exported records and their axes (:data:`AXES`, whose docstring
describes every array).
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import time
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from gitool.config.attention import AttentionOptions
from gitool.console import info as status  # `info` names LayerInfo loop variables here
from gitool.data.genome import Genome, one_hot
from gitool.errors import InputError, naming_a_full_disk, opt
from gitool.files import (
    Outputs,
    commit_files,
    existed_when_claimed,
    replace_folder,
    staged_file,
)
from gitool.interpret.layers import LayerInfo, attention_layout, model_seq_length, select_layers
from gitool.interpret.plots import plot_export, plot_names
from gitool.interpret.rollout import attention_rollout
from gitool.interpret.windows import (
    AttentionWindow,
    default_store_windows,
    input_paths,
    open_windows,
    parse_indices,
    windows_from_fasta,
    windows_from_regions,
    windows_from_store,
)
from gitool.models.base import capture_attention
from gitool.models.layers import AttentionRecord
from gitool.predict.writer import TrackSetWriter
from gitool.runs import default_run, load_run, resolve_device, run_label

FORMAT, VERSION = "gitool-attention", 1
FULL_MAX_TOKENS = 1024
"""Default: reassemble windows into a token × token matrix for layers with ≤ this many tokens."""

AXES = {
    "weights (windowed)": "(n_windows, heads, w, w): window, head, query slot, key slot",
    "weights (full)": "(heads, T, T): head, query token, key token",
    "token_index": "(n_windows, w): unshifted token of each slot, -1 = padding",
    "token_start/token_end": "(n_tokens,): bp of each token (genomic for BED/--data input)",
    "head_mean/head_max": "weights without the head axis (mean / max over exported heads)",
    "full": "(heads, n_tokens, n_tokens): query token x key token, zeros outside windows",
    "rollout": "(top tokens, bins): attention rollout to input bins, rows sum to 1",
}
"""Axis descriptions written into every index. In full, for each record ``KEY``:

- ``KEY/weights`` float32 (float16 with ``dtype="float16"``). Windowed (swin layers):
  ``(n_windows, heads, w, w)`` — axes window, head, query slot, key slot; slot ``s`` of window ``i`` is token
  ``KEY/token_index[i, s]`` (``-1``: padding, zero weight as a key, a row that belongs to no
  token). Full attention: ``(heads, T, T)`` — head, query token, key token. Rows sum to 1
  over the real keys.
- ``KEY/token_index`` int32 ``(n_windows, w)`` (windowed only): the unshifted token of each
  slot; the shifted block's windows hold tokens ``(i·w + s + w/2) mod n_tokens`` (wrap-around).
- ``KEY/token_start``, ``KEY/token_end`` int64 ``(n_tokens,)``: genomic (or, for FASTA input,
  in-sequence) bp of every token: ``input_start + t·token_bp`` to that plus ``token_bp``,
  clipped to the input's end (a 1D-Swin odd length duplicates its last token).
- ``KEY/head_mean``, ``KEY/head_max``: ``weights`` averaged / maxed over the exported heads.
- ``KEY/full`` (windowed records with at most ``full_max_tokens`` tokens): the windows put
  back into one ``(heads, n_tokens, n_tokens)`` query-token × key-token matrix in unshifted
  order, zeros outside the windows (the per-window form is always written).
- ``rollout`` (``rollout=True``): float32 ``(top tokens, bins)`` attention rollout from the
  last attention layer's tokens to input bins of ``rollout_bp`` bp (see
  :mod:`gitool.interpret.rollout`); ``rollout/row_start``, ``rollout/row_end``,
  ``rollout/bin_start``, ``rollout/bin_end`` give their bp.
"""


# --------------------------------------------------------------------------- npz writing


class NpzStream:
    """A compressed ``.npz`` written one array at a time (then renamed into place)."""

    def __init__(self, path: Path):
        self.path = path
        self.tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        self.tmp.parent.mkdir(parents=True, exist_ok=True)
        self.zip = zipfile.ZipFile(self.tmp, "w", zipfile.ZIP_DEFLATED, allowZip64=True)
        self.bytes = 0

    def add(self, name: str, array: np.ndarray) -> None:
        array = np.ascontiguousarray(array)
        self.bytes += array.nbytes
        with self.zip.open(name + ".npy", "w", force_zip64=True) as handle:
            np.lib.format.write_array(handle, array, allow_pickle=False)

    def close(self) -> int:
        self.zip.close()
        size = self.tmp.stat().st_size
        commit_files([(self.tmp, self.path)])  # recorded as gitool's (claimed as a file)
        return size

    def abort(self) -> None:
        self.zip.close()
        self.tmp.unlink(missing_ok=True)


# --------------------------------------------------------------------------- per-record maps


def token_coordinates(start: int, n_tokens: int, token_bp: int, seq_length: int, first: int = 0):
    """bp ``[start, end)`` of tokens ``first … first + n_tokens`` (clipped to the input end)."""
    t = np.arange(first, first + n_tokens, dtype=np.int64)
    return start + t * token_bp, start + np.minimum((t + 1) * token_bp, seq_length)


def assemble_full(weights: torch.Tensor, token_index: torch.Tensor, n_tokens: int) -> torch.Tensor:
    """Window weights ``(n_windows, H, w, w)`` → ``(H, n_tokens, n_tokens)`` in unshifted token
    order (query × key), zeros outside the windows; padded slots are dropped."""
    n_windows, heads, w, _ = weights.shape
    full = torch.zeros(heads, n_tokens, n_tokens, dtype=weights.dtype)
    index = token_index.to(weights.device)
    for i in range(n_windows):
        valid = index[i] >= 0
        idx = index[i][valid]
        block = weights[i][:, valid][:, :, valid]  # (H, v, v)
        full[:, idx[:, None], idx[None, :]] = block.cpu()
    return full


def received(weights: torch.Tensor, meta: dict, heads: Sequence[int] | None = None) -> np.ndarray:
    """Attention each token receives as a key: weights averaged over ``heads`` (default all)
    and summed over queries (real query rows only), per token ``(n_tokens,)``."""
    if heads:
        chosen = torch.as_tensor(list(heads), dtype=torch.long)
        weights = weights.index_select(1 if "token_index" in meta else 0, chosen)
    if "token_index" in meta:
        index = meta["token_index"]
        valid = index >= 0
        mean = weights.float().mean(1)  # (nW, w, w)
        per_slot = (mean * valid[:, :, None]).sum(1)  # (nW, w) over keys
        out = torch.zeros(meta["n_tokens"], dtype=torch.float64)
        out.index_add_(0, index[valid], per_slot[valid].double())
        return out.numpy()
    return weights.float().mean(0).sum(0).double().numpy()


@dataclass
class RecordSummary:
    key: str
    layer: int
    block: str
    module: str
    token_bp: int
    n_tokens: int
    heads: list[int]
    windowed: bool
    window: int | None = None
    shift: int | None = None
    n_windows: int | None = None
    padded: int | None = None
    token_first: int = 0
    full: bool = False


def _export_record(
    stream: NpzStream,
    prefix: str,
    info: LayerInfo,
    record: AttentionRecord,
    sample: int,
    window: AttentionWindow,
    seq_length: int,
    heads: Sequence[int] | None,
    full_max_tokens: int,
    dtype: str = "float32",
) -> RecordSummary:
    meta = record.meta
    weights = record.weights[sample].float().cpu()
    windowed = "token_index" in meta
    head_axis = 1 if windowed else 0
    chosen = list(heads) if heads else list(range(weights.shape[head_axis]))
    if heads:
        weights = weights.index_select(head_axis, torch.tensor(chosen))
    key = f"{prefix}{info.key}"
    first = int(meta.get("token_start", 0))
    n_tokens = int(meta["n_tokens"]) if windowed else weights.shape[-1]
    starts, ends = token_coordinates(window.start, n_tokens, info.token_bp, seq_length, first)
    stream.add(f"{key}/weights", weights.numpy().astype(dtype, copy=False))
    stream.add(f"{key}/token_start", starts)
    stream.add(f"{key}/token_end", ends)
    stream.add(f"{key}/head_mean", weights.mean(head_axis).numpy().astype(dtype, copy=False))
    stream.add(f"{key}/head_max", weights.amax(head_axis).numpy().astype(dtype, copy=False))
    summary = RecordSummary(
        info.key, info.layer, info.block, info.module, info.token_bp, n_tokens, chosen, windowed,
        token_first=first,
    )  # fmt: skip
    if windowed:
        stream.add(f"{key}/token_index", meta["token_index"].numpy().astype(np.int32))
        summary.window, summary.shift = int(meta["window"]), int(meta["shift"])
        summary.n_windows, summary.padded = int(meta["n_windows"]), int(meta["padded"])
        if n_tokens <= full_max_tokens:
            full = assemble_full(weights, meta["token_index"], n_tokens)
            stream.add(f"{key}/full", full.numpy().astype(dtype, copy=False))
            summary.full = True
    return summary


# --------------------------------------------------------------------------- the API


@dataclass
class AttentionSummary:
    """What :func:`extract_attention` wrote."""

    out: Path
    index: Path
    windows: int = 0
    bytes_written: int = 0
    seconds: float = 0.0
    files: list[Path] = field(default_factory=list)
    tracks: list[Path] = field(default_factory=list)
    plots: list[Path] = field(default_factory=list)


PREVIOUS = "an attention export from `gitool attention`"


def _output_layout(out: str | Path) -> tuple[Path, Path, bool]:
    """``(folder or archive, index path, single archive?)``."""
    if not str(out).strip():
        raise InputError("is empty; give a folder or a file name ending in .npz", field="out")
    path = Path(out)
    if path.suffix.lower() == ".npz":
        return path, path.with_suffix(".json"), True
    return path, path / "index.json", False


def is_attention_index(path: Path) -> bool:
    """Whether ``path`` is the index of an attention export (its JSON names the format)."""
    try:
        index = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError):
        return False
    return isinstance(index, dict) and index.get("format") == FORMAT


#: What a folder export holds (:func:`gitool.files.stray_entry`): what ``force`` may replace.
EXPORT_LAYOUT = {"index.json": None, "window_*.npz": None, "plots": {"*.png": None}}


def is_attention_export(folder: Path) -> bool:
    """Whether ``folder`` holds an attention export (its index; the rest is checked against
    :data:`EXPORT_LAYOUT`)."""
    return is_attention_index(folder / "index.json")


def claim_outputs(
    outputs: Outputs, out: str | Path, track_out: str | Path | None, bedgraph: bool
) -> tuple[Path, Path, bool]:
    """Claim the export (a folder, or an archive and its index) and ``track_out`` before any
    work: existing ones only with ``force``, only when gitool made them (an earlier export; a
    bigWig/bedGraph in its folder's record), never an input. Returns :func:`_output_layout`'s triple."""
    target, index_path, single = _output_layout(out)
    if single:
        outputs.file(target, "npz", "out")
        outputs.file(index_path, "JSON", "out")
        if index_path.exists() and not is_attention_index(index_path):
            raise InputError(
                f"{index_path} (the index beside {target.name}) exists and is not an attention "
                f"index, so gitool did not make it; refusing to replace it even with "
                f"{opt('force')} — choose another name",
                field="out",
            )
    else:
        outputs.folder(target, is_attention_export, PREVIOUS, "out", layout=EXPORT_LAYOUT)
    if track_out is not None:
        if not str(track_out).strip():
            raise InputError(
                f"is empty; give a .bw (or, with {opt('bedgraph')}, .bedgraph) path",
                field="track_out",
            )
        outputs.file(track_out, "bedGraph" if bedgraph else "bigWig", "track_out")
    return target, index_path, single


def _claim_plots(
    outputs: Outputs, index_path: Path, chosen: list[LayerInfo], window: AttentionWindow,
    seq_length: int,
) -> None:  # fmt: skip
    """Claim the PNGs ``plot`` writes beside an archive (a folder export holds its own)."""
    records = [{"key": i.key, "layer": i.layer, "windowed": i.block in ("regular", "shifted")}
               for i in chosen]  # fmt: skip
    end = window.start + seq_length
    for name in plot_names(window.chrom, window.start, end, records):
        outputs.file(index_path.parent / "plots" / name, "PNG", "plot")


def _publish(stage: Path, target: Path, files: list[Path], existed: bool) -> list[Path]:
    """Move a finished folder export from ``stage`` to ``target`` (replacing the claimed
    earlier export, if any). Returns the window files' final paths."""
    replace_folder(stage, target, existed=existed)
    return [target / path.name for path in files]


def _window_batches(
    windows: Iterable[AttentionWindow], size: int
) -> Iterator[list[AttentionWindow]]:
    batch: list[AttentionWindow] = []
    for window in windows:
        batch.append(window)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def extract_attention(
    model: nn.Module,
    windows: Iterable[AttentionWindow],
    out: str | Path,
    *,
    layers: Sequence[int] | None = None,
    heads: Sequence[int] | None = None,
    full_max_tokens: int = FULL_MAX_TOKENS,
    dtype: str = "float32",
    rollout: bool = False,
    rollout_bp: int | None = None,
    batch_size: int = 1,
    device: str | torch.device | None = None,
    track_out: str | Path | None = None,
    track_layer: int | None = None,
    bedgraph: bool = False,
    sizes: dict[str, int] | None = None,
    plot: bool = False,
    force: bool = False,
    outputs: Outputs | None = None,
    label: str = "",
    on_window=None,
    n_windows: int | None = None,
) -> AttentionSummary:
    """Run ``model`` on ``windows`` and write their attention (see the module docstring).

    Args:
        model: a swin, enformer or can model (eval mode is set here).
        windows: :class:`AttentionWindow` inputs (:func:`windows_from_regions`,
            :func:`windows_from_store`, :func:`windows_from_fasta`), consumed lazily.
        out: a folder, or a file ending in ``.npz``.
        layers: Genomic Interpreter layer numbers (default: all attention layers).
        heads: 0-based heads (default: all); must exist in every chosen layer.
        full_max_tokens: write the reassembled ``full`` matrix of windowed layers up to this
            many tokens.
        dtype: ``"float32"`` or ``"float16"`` (half the size; rows then sum to 1 within
            about 1e-3) for the weight arrays.
        rollout: also write the attention rollout (captures every layer).
        rollout_bp: its column resolution in bp (default: the top layer's token size).
        batch_size: windows per forward.
        device: ``cpu``, ``cuda``, ... (default: the best available).
        track_out: write the attention each token of ``track_layer`` (default: the last
            chosen layer; for swin its shifted block) receives, over each window's target
            span, as a bigWig (or bedGraph with ``bedgraph``); needs ``sizes`` (the genome's
            chromosome sizes, in order) and windows sorted along the genome.
        plot: write PNG heatmaps beside the output (``plots/``; see :mod:`.plots`).
        force: replace existing outputs gitool made (an earlier export; a bigWig or bedGraph
            and PNGs in their folder's record); without it an existing output is refused.
        outputs: the claims of this run, made by the caller with :func:`claim_outputs`
            (with its inputs, which are never written over); default: claimed here, in a
            new ``Outputs(force)``. Every output is claimed before the first forward.
        label: how errors name the model (a run's name).
        on_window: called with the number of windows done after each batch (progress).
        n_windows: how many ``windows`` there are, when known: after the first window the
            export stops (removing what it wrote) if the rest would not fit on the disk.

    Raises:
        InputError: no attention in the model, a layer or head out of range, bad output
            path, not enough disk space for ``n_windows``.
    """
    _check_export_options(dtype, batch_size, full_max_tokens, rollout, rollout_bp)
    layout = attention_layout(model, label)
    chosen = select_layers(layout, layers, heads)
    if outputs is None:
        outputs = Outputs(force)
        target, index_path, single = claim_outputs(outputs, out, track_out, bedgraph)
    else:  # the caller claimed them (claim_outputs)
        target, index_path, single = _output_layout(out)
    settings = _Settings(
        model_seq_length(model), {info.module: info for info in chosen}, heads,
        full_max_tokens, dtype, rollout, rollout_bp,
    )  # fmt: skip
    windows = iter(windows)
    first = next(windows, None)
    if first is not None:
        if plot and single:
            _claim_plots(outputs, index_path, chosen, first, settings.seq_length)
        windows = itertools.chain([first], windows)
    dev = resolve_device(device)
    model = model.to(dev).eval()
    capture_names = [info.module for info in (layout if rollout else chosen)]
    track_info, writer = _open_track_writer(track_out, track_layer, chosen, sizes, bedgraph)
    try:
        export = _start_export(target, index_path, single, track_info, writer)
    except BaseException:
        if writer is not None:  # (its thread, writer process and temporary file)
            writer.abort()
        raise
    export.existed = existed_when_claimed(target)
    started = time.perf_counter()
    try:
        with naming_a_full_disk(target):
            for batch in _window_batches(windows, batch_size):
                _check_window_lengths(batch, settings.seq_length)
                records = _forward_capturing(model, batch, dev, capture_names)
                for b, window in enumerate(batch):
                    _save_window(export, settings, records, b, window, n_windows)
                del records
                if on_window is not None:
                    on_window(len(batch))
            _finish_export(export, model, layout, chosen, settings, started, plot)
    except BaseException:
        _discard_export(export)
        raise
    if plot and single:  # an archive's plots/ beside it (a folder's are drawn in its stage)
        export.summary.plots = plot_export(index_path)
    return export.summary


# --------------------------------------------------------------------------- export steps


@dataclass(frozen=True)
class _Settings:
    """What every window of one export is written with."""

    seq_length: int
    by_module: dict[str, LayerInfo]  # the chosen records, by attention module name
    heads: Sequence[int] | None
    full_max_tokens: int
    dtype: str
    rollout: bool
    rollout_bp: int | None


@dataclass
class _Export:
    """One export in progress: where it goes and what it has written so far."""

    target: Path
    index_path: Path
    single: bool  # one .npz archive (else a folder of window files)
    stage: Path | None  # folder export: the hidden sibling written first
    archive: NpzStream | None
    track_info: LayerInfo | None
    writer: TrackSetWriter | None
    summary: AttentionSummary
    entries: list[dict] = field(default_factory=list)
    existed: bool = False  # a folder target claimed for replacement (force)


def _check_export_options(
    dtype: str, batch_size: int, full_max_tokens: int, rollout: bool, rollout_bp: int | None
) -> None:
    """:func:`extract_attention`'s numbers (the CLI has checked them through
    :class:`~gitool.config.attention.AttentionOptions` already)."""
    if dtype not in ("float32", "float16"):
        raise InputError(f"{dtype}: choose float32 or float16", field="dtype")
    if batch_size < 1:
        raise InputError(f"must be >= 1, got {batch_size}", field="batch_size")
    if full_max_tokens < 0:
        raise InputError(f"must be >= 0, got {full_max_tokens}", field="full_max_tokens")
    if rollout_bp is not None and rollout_bp < 1:
        raise InputError(f"must be >= 1, got {rollout_bp}", field="rollout_bp")
    if rollout_bp is not None and not rollout:
        raise InputError(f"needs {opt('rollout')}", field="rollout_bp")


def _open_track_writer(
    track_out: str | Path | None,
    track_layer: int | None,
    chosen: list[LayerInfo],
    sizes: dict[str, int] | None,
    bedgraph: bool,
) -> tuple[LayerInfo | None, TrackSetWriter | None]:
    """The layer whose received attention ``--track-out`` gets, and its opened writer."""
    if track_out is None:
        return None, None
    if not sizes:
        raise InputError(
            f"needs genomic input: {opt('regions')} BED with {opt('genome')} FASTA",
            field="track_out",
        )
    wanted = [i for i in chosen if track_layer is None or i.layer == track_layer]
    if not wanted:
        raise InputError(f"{track_layer} is not among the exported layers", field="track_layer")
    track_info = wanted[-1]
    writer = TrackSetWriter(
        [Path(track_out)], sizes, track_info.token_bp, bedgraph, field="track_out"
    ).open()
    return track_info, writer


def _start_export(
    target: Path,
    index_path: Path,
    single: bool,
    track_info: LayerInfo | None,
    writer: TrackSetWriter | None,
) -> _Export:
    # A folder export is written into a hidden sibling and moved into place at the end, so
    # a failure (or SIGTERM) leaves no window files and no empty folder behind.
    stage = None if single else target.parent / f".{target.name}.partial-{os.getpid()}"
    archive = NpzStream(target) if single else None
    summary = AttentionSummary(target, index_path)
    return _Export(target, index_path, single, stage, archive, track_info, writer, summary)


def _check_window_lengths(batch: list[AttentionWindow], seq_length: int) -> None:
    for window in batch:
        if len(window.codes) != seq_length:
            raise InputError(
                f"window {window.name} is {len(window.codes):,} bp but the model takes "
                f"{seq_length:,}; region too short or wrong model"
            )


def _forward_capturing(
    model: nn.Module, batch: list[AttentionWindow], device: torch.device, names: list[str]
) -> list[AttentionRecord]:
    """Run the model on a batch, recording the attention of modules ``names``."""
    x = torch.from_numpy(one_hot(np.stack([w.codes for w in batch]))).to(device)
    with torch.no_grad(), capture_attention(model, names) as records:
        model(x)
    return records


def _save_window(
    export: _Export,
    settings: _Settings,
    records: list[AttentionRecord],
    b: int,
    window: AttentionWindow,
    n_windows: int | None,
) -> None:
    """Write sample ``b`` of a batch: its arrays (its own .npz, or into the archive), then
    (after the first window) check the disk can hold the rest, add its values to the track
    and its entry to the index."""
    summary = export.summary
    n = summary.windows
    name = f"window_{n:06d}"
    stream = export.archive or NpzStream(export.stage / f"{name}.npz")
    prefix = f"{name}/" if export.single else ""
    try:
        exported = _write_window_arrays(stream, prefix, settings, records, b, window)
    except BaseException:
        if export.archive is None:
            stream.abort()
        raise
    if export.archive is None:
        summary.bytes_written += stream.close()
        summary.files.append(stream.path)
    if n == 0 and n_windows:
        first = export.archive.tmp.stat().st_size if export.single else summary.bytes_written
        folder = export.target.parent if export.single else export.stage
        check_disk_space(folder, first, n_windows, settings.dtype)
    if export.writer is not None:
        _write_track(
            export.writer,
            export.track_info,
            records,
            b,
            window,
            settings.seq_length,
            settings.heads,
        )
    export.entries.append(
        {
            "name": window.name,
            "chrom": window.chrom,
            "start": window.start,
            "end": window.start + settings.seq_length,
            "target_start": window.target_start,
            "target_end": window.target_end,
            "file": export.target.name if export.single else f"{name}.npz",
            "prefix": prefix,
            "records": [asdict(s) for s in exported],
            "rollout": settings.rollout,
        }
    )
    summary.windows += 1


def _write_window_arrays(
    stream: NpzStream,
    prefix: str,
    settings: _Settings,
    records: list[AttentionRecord],
    b: int,
    window: AttentionWindow,
) -> list[RecordSummary]:
    """The arrays of every chosen record of sample ``b`` (and its rollout)."""
    exported = [
        _export_record(
            stream,
            prefix,
            settings.by_module[r.layer],
            r,
            b,
            window,
            settings.seq_length,
            settings.heads,
            settings.full_max_tokens,
            settings.dtype,
        )  # fmt: skip
        for r in records
        if r.layer in settings.by_module
    ]
    if settings.rollout:
        _write_rollout(stream, prefix, records, b, window, settings.seq_length, settings.rollout_bp)
    return exported


def _write_rollout(
    stream: NpzStream,
    prefix: str,
    records: list[AttentionRecord],
    b: int,
    window: AttentionWindow,
    seq_length: int,
    rollout_bp: int | None,
) -> None:
    """The attention rollout of sample ``b`` and the bp of its rows and columns."""
    roll, top_bp, first = attention_rollout(records, seq_length, sample=b, resolution=rollout_bp)
    res = rollout_bp or top_bp
    rs, re_ = token_coordinates(window.start, roll.shape[0], top_bp, seq_length, first)
    bs, be = token_coordinates(window.start, roll.shape[1], res, seq_length)
    for key, value in (("rollout", roll), ("rollout/row_start", rs), ("rollout/row_end", re_),
                       ("rollout/bin_start", bs), ("rollout/bin_end", be)):  # fmt: skip
        stream.add(prefix + key, value)


def _finish_export(
    export: _Export,
    model: nn.Module,
    layout: list[LayerInfo],
    chosen: list[LayerInfo],
    settings: _Settings,
    started: float,
    plot: bool = False,
) -> None:
    """Put a complete export in place.

    Tracks are committed first. A folder export gets its index (and, with ``plot``, its
    plots) in the stage, which then replaces the folder in one rename; an archive's index
    is staged and the archive put in place just before the index replaces any older one. A
    failure at any step leaves an older export whole (and :func:`_discard_export` removes
    what this one had put in place).
    """
    summary = export.summary
    if summary.windows == 0:
        raise InputError(
            f"no window to export: the input is empty (an empty {opt('index')} range, split, "
            f"{opt('regions')} or {opt('fasta')})"
        )
    if export.writer is not None:
        summary.tracks = export.writer.commit()
        export.writer = None
    summary.seconds = time.perf_counter() - started
    index = _index_json(
        model, layout, chosen, export.entries, settings.rollout, settings.rollout_bp
    )
    if export.stage is not None:
        (export.stage / "index.json").write_text(index)
        if plot:  # in the stage: published with the export, or not at all
            drawn = plot_export(export.stage / "index.json")
            summary.plots = [export.target / p.relative_to(export.stage) for p in drawn]
        summary.files = _publish(export.stage, export.target, summary.files, export.existed)
        export.stage = None
        return
    with staged_file(export.index_path) as tmp:
        tmp.write_text(index)
        if export.archive is not None:
            summary.bytes_written = export.archive.close()
            summary.files.append(export.target)
            export.archive = None


def _discard_export(export: _Export) -> None:
    """Remove everything a failed export wrote (no partial export is left behind)."""
    summary = export.summary
    if export.archive is not None:
        export.archive.abort()
    if export.writer is not None:
        export.writer.abort()
    for path in [*summary.files, *summary.tracks]:
        path.unlink(missing_ok=True)
    if export.stage is not None:
        shutil.rmtree(export.stage, ignore_errors=True)
    if export.single and export.target in summary.files:
        export.index_path.unlink(missing_ok=True)


def _size(n: float) -> str:
    """``n`` bytes in the largest unit that keeps it ≥ 1 (B, KiB, MiB, GiB, TiB)."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024:
            return f"{n:,.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:,.1f} TiB"


def check_disk_space(folder: Path, first_window: int, n_windows: int, dtype: str) -> None:
    """Refuse an export whose remaining windows (each about the first's size) will not fit."""
    need = first_window * (n_windows - 1)
    free = shutil.disk_usage(folder).free
    if need > free:
        smaller = f"({opt('index')}), layers ({opt('layer')}) or heads ({opt('head')})"
        half = f", or use {opt('dtype')} float16" if dtype == "float32" else ""
        raise InputError(
            f"exporting {n_windows:,} windows to {folder} needs about {_size(need)} more "
            f"({_size(first_window)} per window) but {_size(free)} is free; export fewer "
            f"windows {smaller}{half}"
        )


def _write_track(
    writer, info: LayerInfo, records, b: int, window: AttentionWindow, seq_length, heads
):  # fmt: skip
    """Attention received by the tokens of ``info`` (from ``heads``, default all) inside the
    window's target span."""
    record = next(r for r in reversed(records) if r.layer == info.module)
    values = received(record.weights[b].float().cpu(), record.meta, heads)  # from the device
    first = int(record.meta.get("token_start", 0))
    starts, _ = token_coordinates(window.start, len(values), info.token_bp, seq_length, first)
    lo = window.target_start if window.target_start is not None else window.start
    hi = window.target_end if window.target_end is not None else window.start + seq_length
    size = writer.sizes[window.chrom]
    keep = (starts >= lo) & (starts < min(hi, size)) & (starts >= 0)
    if not keep.any():
        return
    s = int(starts[keep][0])
    end = min(int(starts[keep][-1]) + info.token_bp, size)
    writer.add(window.chrom, s, end, values[keep][:, None])


def _index_json(model, layout, chosen, entries, rollout, rollout_bp) -> str:
    """The export's index (``index.json`` / ``OUT.json``) as JSON text."""
    index = {
        "format": FORMAT,
        "version": VERSION,
        "model": type(model).__name__,
        "seq_length": model_seq_length(model),
        "layer_numbering": "Genomic Interpreter: layer k has tokens of 2^(k-1) bp; blocks after the "
        "hierarchy continue the count (see gitool.interpret.attention)",
        "layers": [asdict(i) | {"key": i.key} for i in layout],
        "exported": sorted({i.layer for i in chosen}),
        "rollout": rollout,
        "rollout_bp": rollout_bp,
        "axes": AXES,
        "windows": entries,
    }
    return json.dumps(index, indent=1)


def load_window(index_path: str | Path, i: int) -> dict[str, np.ndarray]:
    """The arrays of window ``i`` of an export, keys without the window prefix."""
    index_path = Path(index_path)
    index = json.loads(index_path.read_text())
    entry = index["windows"][i]
    with np.load(index_path.parent / entry["file"]) as data:
        prefix = entry["prefix"]
        return {k[len(prefix) :]: data[k] for k in data.files if k.startswith(prefix)}


__all__ = [
    "AttentionSummary",
    "attention_from_run",
    "parse_indices",
    "AttentionWindow",
    "LayerInfo",
    "assemble_full",
    "attention_layout",
    "extract_attention",
    "load_window",
    "received",
    "select_layers",
    "token_coordinates",
    "windows_from_fasta",
    "windows_from_regions",
    "windows_from_store",
]


"""Windows exported when no input is given: the first ones of the run's own store's split."""

DEFAULT_OUT = "attention"
"""``-o`` when none is given: a new folder ``attention/`` in the current folder."""


def attention_from_run(options: AttentionOptions, on_window=None) -> AttentionSummary:
    """What ``gitool attention`` runs: load the run, open at most one input source
    (``regions`` + ``genome``, ``data`` [+ ``split``, ``index``], or ``fasta``) and call
    :func:`extract_attention`. ``genome`` also gives ``track_out`` its chromosome sizes.

    Defaults, each announced with a status line: ``model`` None, the newest run under
    ``runs/``; no input, windows of ``split`` of the store the run was trained on (the first
    :data:`gitool.interpret.windows.DEFAULT_WINDOWS` unless ``index`` says which); ``out`` None, :data:`DEFAULT_OUT`
    in the current folder (an existing one only with ``force``, and only an earlier export).

    Every output is claimed before the model runs: existing outputs are replaced only with
    ``force`` and only when gitool made them (an earlier export; files in their folder's
    record, :mod:`gitool.made`); the inputs (the run, genome, regions, FASTA, the
    store and the files it was built from) never, even with ``force``.
    """
    o = options
    run = Path(o.model) if o.model is not None else default_run(option="model")
    out = o.out if o.out is not None else _default_out(o.force)
    data, index = o.data, o.index
    if data is None and o.regions is None and o.fasta is None:
        data, index = default_store_windows(run, o.which, o.split, index)
    outputs = Outputs(o.force, inputs=input_paths(o, run, data))
    claim_outputs(outputs, out, o.track_out, o.bedgraph)
    model, _, ckpt = load_run(run, o.which, "model")
    label = run_label(ckpt)
    chosen = "" if o.model is not None else f" (the newest run under {run.parent}/, the default)"
    select_layers(attention_layout(model, f"{run}{chosen}"), o.layer, o.head)
    windows, n_windows = open_windows(o, model, data, index)
    sizes = None
    if o.track_out is not None:
        opened = Genome(o.genome)
        sizes = dict(opened.sizes)
        opened.close()
    return extract_attention(
        model, windows, out, layers=o.layer, heads=_once(o.head),
        full_max_tokens=o.full_max_tokens,
        dtype=o.dtype, rollout=o.rollout, rollout_bp=o.rollout_bp, batch_size=o.batch_size,
        device=o.device, track_out=o.track_out, track_layer=o.track_layer,
        bedgraph=o.bedgraph, sizes=sizes, plot=o.plot, force=o.force, outputs=outputs,
        label=label, on_window=on_window, n_windows=n_windows,
    )  # fmt: skip


def _default_out(force: bool) -> Path:
    """``out`` left out: :data:`DEFAULT_OUT` here, new (or, with ``force``, an earlier
    export)."""
    out = Path(DEFAULT_OUT)
    if out.exists() and not force:
        raise InputError(
            f"{opt('out')}: no output given and {DEFAULT_OUT}/ already exists here; give "
            f"{opt('out')} DIR (or FILE.npz) for a new export, or {opt('force')} to replace "
            "an earlier one"
        )
    status(
        f"writing {DEFAULT_OUT}/ (default {opt('out')}; give {opt('out')} DIR or FILE.npz to "
        "choose)"
    )
    return out


def _once(heads: tuple[int, ...] | None) -> tuple[int, ...] | None:
    """``--head 0 --head 0`` exported head 0 twice: each head once, in the order given."""
    return tuple(dict.fromkeys(heads)) if heads else None
