"""Per-base contributions of the input toward chosen tracks and bins (``gitool attribute``).

The target of every method is, per window and chosen track, the model's output summed over
the chosen target bins: ``--bins`` (0-based, counted from the window's target start), or by
default the window's own bins (all of them for a store window; for a window of a BED
region, the bins of the region it covers, not those past its end). Each method gives
*hypothetical*
contributions ``(L, 4)`` — what each of the four bases would contribute at each position —
and the observed contribution of a base is the hypothetical one of the base that is there:

- ``saliency`` (captum ``Saliency``): the gradient of the target with respect to the one-hot
  input. Exact as a gradient for every model (swin and Enformer too), but a local linear
  view: its sum does not add up to the output.
- ``integrated-gradients`` (captum ``IntegratedGradients``): gradients averaged along the
  straight path from a baseline (all-N, i.e. zeros, by default; or 0.25 everywhere) to the
  input, at ``--steps`` Gauss–Legendre nodes (captum's default quadrature). Completeness —
  the observed contributions sum to the output minus the baseline's — holds for every
  differentiable model up to the quadrature error, which is stored per window and track
  (``delta``) so it can be checked.
- ``deepliftshap`` (tangermeme ``deep_lift_shap``, dinucleotide-shuffled references):
  exact (the contributions sum to the output minus the references' mean) when every
  nonlinearity has a DeepLIFT rule. That holds for the CNN baselines' convolutions,
  batch norm in eval mode, max pooling, GELU and the softplus head; it does not hold for
  softmax attention (the product of two input-dependent terms), so it is refused for swin,
  Enformer, CAN and the attention-pooling CNNs — use integrated gradients there. Windows
  holding N are refused (a shuffle cannot hold an unknown base); each window's references
  are drawn with its own seed, so they do not depend on the batch.
- ``ism``: in-silico saturation mutagenesis through the variant-scoring path of
  :mod:`gitool.variants` (each base in its own window centred on it, the change of the
  target summed over the target bins): exact effects of each substitution, zero at the
  reference base. Genome regions only; ``--bins`` does not apply.

The result (:func:`attribute`) is written as one compressed ``.npz``: ``hypothetical``
float32 ``(N, K, L, 4)``, ``sequence`` uint8 ``(N, L)``, ``tracks``, ``name``, ``chrom``,
``start`` (0-based genome start of each input), ``target_start`` (offset of the target
span in each input), ``target_length_bp``, ``method``, ``output`` ``(N, K)`` (the target's
value), ``delta`` ``(N, K)`` (completeness error; NaN where it does not apply),
``target_bins`` (the bins ``--bins`` chose, else all), ``target_mask`` bool ``(N, T)`` (each
window's bins the target sums) and ``bin_size``. Optional: a per-base bigWig per track of the observed contributions over
genome regions, and a PNG of sequence logos of the windows with the largest contributions.
"""

from __future__ import annotations

import contextlib
import time
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from gitool.config.attribute import METHODS, AttributeOptions
from gitool.console import progress
from gitool.data.genome import N_CODE, Genome
from gitool.data.tracks import select_tracks
from gitool.errors import InputError, opt
from gitool.files import Outputs, committed_together, staged_file
from gitool.interpret.windows import (
    AttentionWindow,
    default_store_windows,
    input_paths,
    open_windows,
)
from gitool.predict.bigwig import output_paths
from gitool.predict.model import PreparedModel, prepare_model
from gitool.predict.writer import TrackSetWriter
from gitool.runs import default_run, evaluating, resolve_device

DEEPLIFT_TOLERANCE = 1e-3
"""Largest completeness error of DeepLIFT/SHAP accepted, relative to the outputs (at least
1): rounding gives about 1e-6; an operation without a rule, far more."""
MAX_DEFAULT_TRACKS = 8
"""Tracks attributed when ``--tracks`` is left out, at most (each is a backward pass)."""


class Target(nn.Module):
    """``(B, L, 4)`` one-hot and ``(B, T)`` bin weights (``mask``, 1 at the chosen bins of
    each window; None: every bin) → ``(B, K)``: the chosen tracks' outputs summed over each
    window's chosen bins. The head's softplus is a ``nn.Softplus`` module here (the same
    function as the model's), so that DeepLIFT applies its rule to it. ``channels_first``:
    take ``(B, 4, L)`` (tangermeme's layout)."""

    def __init__(
        self, model: nn.Module, head: str, columns: Sequence[int], channels_first: bool = False
    ):
        super().__init__()
        self.model, self.head, self.channels_first = model, head, channels_first
        self.register_buffer("columns", torch.tensor(list(columns), dtype=torch.long))
        self.softplus = nn.Softplus()
        self.split = hasattr(model, "trunk") and hasattr(getattr(model, "heads", None), "layers")
        # eval: a library that restores "the training flag it found" on exit must find
        # eval, or batch norm would update its statistics on the next forward pass
        self.eval()

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        if self.channels_first:
            x = x.transpose(1, 2)
        if self.split:
            y = self.softplus(self.model.heads.layers[self.head](self.model.trunk(x)))
        else:
            y = self.model(x, self.head)
        y = y.index_select(2, self.columns)
        if mask is not None:
            y = y * mask.to(y.dtype).unsqueeze(2)
        return y.sum(1)


def target_mask(
    windows: Sequence[AttentionWindow], bins: Sequence[int] | None, n_bins: int, bin_size: int
) -> np.ndarray:
    """``(N, n_bins)`` bool: the bins each window's target sums: ``bins`` (counted from its
    target start), or by default the window's own bins, those that start before its
    ``target_end`` (every bin where it has none)."""
    mask = np.zeros((len(windows), n_bins), dtype=bool)
    if bins is not None:
        mask[:, list(bins)] = True
        return mask
    for i, w in enumerate(windows):
        own = n_bins
        if bin_size > 0 and w.target_start is not None and w.target_end is not None:
            own = min(n_bins, max(1, -(-(w.target_end - w.target_start) // bin_size)))
        mask[i, :own] = True
    return mask


@dataclass
class Attributions:
    """What :func:`attribute_windows` computed (see the module docstring for each array)."""

    hypothetical: np.ndarray
    sequence: np.ndarray
    output: np.ndarray
    delta: np.ndarray
    windows: list[AttentionWindow]
    tracks: list[str]
    method: str
    target_bins: np.ndarray
    target_mask: np.ndarray | None = None
    bin_size: int = 0
    extra: dict = field(default_factory=dict)

    @property
    def observed(self) -> np.ndarray:
        """``(N, K, L)``: each position's contribution of the base that is there (zero at N),
        or for ISM minus the mean effect of the three substitutions."""
        if self.method == "ism":
            return -np.nansum(self.hypothetical, axis=-1) / 3.0
        onehot = np.eye(5, 4, dtype=np.float32)[self.sequence]  # (N, L, 4), N → zeros
        return np.einsum("nkla,nla->nkl", self.hypothetical, onehot)


def one_hot(codes: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.eye(5, 4, dtype=np.float32)[codes])


def softmax_attention(model: nn.Module) -> str | None:
    """The name of the first module of ``model`` that applies softmax attention (swin's and
    Enformer's attention layers, CAN's, the attention pooling of ``cnn-attpool``), or None."""
    from gitool.models.layers import AttentionPool, RelativeAttention

    kinds = (RelativeAttention, AttentionPool, nn.MultiheadAttention)
    return next((name for name, m in model.named_modules() if isinstance(m, kinds)), None)


def check_method(method: str, model: nn.Module) -> None:
    """Refuse a method that is known to be wrong for ``model`` (one line)."""
    where = softmax_attention(model) if method == "deepliftshap" else None
    if where is not None:
        raise InputError(
            f"deepliftshap is wrong for a {type(model).__name__}: DeepLIFT has no rule for "
            f"the softmax attention of its {where} (a product of two input-dependent terms), "
            "so its contributions would not add up; use integrated-gradients (exact "
            "completeness along the path) or ism",
            field="method",
        )


def attribute_windows(
    model: nn.Module,
    head: str,
    windows: Iterable[AttentionWindow],
    columns: Sequence[int],
    identifiers: Sequence[str],
    *,
    method: str,
    bins: Sequence[int] | None = None,
    steps: int = 32,
    baseline: str = "zeros",
    shuffles: int = 20,
    batch_size: int = 8,
    device: str | torch.device | None = None,
    seed: int = 0,
    total: int | None = None,
) -> Attributions:
    """Gradient-based contributions (``saliency``, ``integrated-gradients``,
    ``deepliftshap``) of windows toward the chosen tracks, in float32 (no autocast: bf16
    gradients are too coarse for attributions). The model's training flag and device are
    restored afterwards."""
    dev = resolve_device(device)
    n_bins = int(model.config.target_length)
    bin_size = int(getattr(model.config, "bin_size", 0) or 0)  # 0: a model without genome bins
    hyp, seqs, outs, deltas, kept, masks = [], [], [], [], [], []
    chunk: list[AttentionWindow] = []
    with evaluating(model, dev):  # entered before Target, which puts the model in eval mode
        target = Target(model, head, columns).to(dev)
        with progress(f"attributing windows ({method})", total) as advance:
            for window in _with_end(windows):
                if window is not None:
                    chunk.append(window)
                if chunk and (window is None or len(chunk) == batch_size):
                    codes = np.stack([w.codes for w in chunk])
                    if method == "deepliftshap" and (codes == N_CODE).any():
                        raise _holds_n(chunk[int(np.flatnonzero((codes == N_CODE).any(1))[0])])
                    seeds = [seed + len(kept) + i for i in range(len(chunk))]  # per window
                    mask = target_mask(chunk, bins, n_bins, bin_size)
                    h, o, d = _attribute_batch(
                        target, model, head, columns, mask, codes, method, steps, baseline,
                        shuffles, batch_size, dev, seeds,
                    )  # fmt: skip
                    hyp.append(h), outs.append(o), deltas.append(d), seqs.append(codes)
                    masks.append(mask)
                    kept += chunk
                    advance(len(chunk))
                    chunk = []
    if not kept:
        raise InputError("no windows to attribute; check the input", field="regions")
    return Attributions(
        hypothetical=np.concatenate(hyp),
        sequence=np.concatenate(seqs),
        output=np.concatenate(outs),
        delta=np.concatenate(deltas),
        windows=kept,
        tracks=list(identifiers),
        method=method,
        target_bins=np.arange(n_bins) if bins is None else np.asarray(bins),
        target_mask=np.concatenate(masks),
        bin_size=bin_size,
    )


def _holds_n(window: AttentionWindow) -> InputError:
    return InputError(
        f"window {window.name} holds N (unknown bases, e.g. past a chromosome end), which "
        "dinucleotide-shuffled references cannot hold; use integrated-gradients, or choose "
        "windows without N",
        field="method",
    )


def _with_end(items):
    yield from items
    yield None


def _attribute_batch(
    target, model, head, columns, mask, codes, method, steps, baseline, shuffles, batch_size,
    device, seeds,
):  # fmt: skip
    """``(B, K, L, 4)`` hypothetical contributions, ``(B, K)`` outputs and deltas of the
    targets summed over each window's bins ``mask`` ``(B, T)``."""
    x = one_hot(codes).to(device)
    # every bin of every window (store windows): no weights to carry through the libraries
    weights = None if mask.all() else torch.from_numpy(mask).float().to(device)
    extra = None if weights is None else (weights,)
    b, k = len(x), len(columns)
    hyp = np.zeros((b, k, x.shape[1], 4), dtype=np.float32)
    delta = np.full((b, k), np.nan, dtype=np.float32)
    with torch.no_grad():
        output = target(x, weights).float().cpu().numpy()
    if method == "saliency":
        from captum.attr import Saliency

        explainer = Saliency(target)
        x = x.clone().requires_grad_()
        for j in range(k):
            grad = (
                explainer.attribute(x, target=j, abs=False, additional_forward_args=extra)
                .detach()
                .float()
            )
            # the gradient's component off the one-hot simplex (its mean over the four
            # bases) says nothing about a base; removed (Majdandzic, Rajesh & Koo 2023)
            hyp[:, j] = (grad - grad.mean(2, keepdim=True)).cpu().numpy()
    elif method == "integrated-gradients":
        from captum.attr import IntegratedGradients

        # uniform: 0.25 at each known base and 0 at N, where the input is 0 too, so that the
        # observed contributions (0 at N) add up to the output's change
        known = x.sum(2, keepdim=True)
        base = torch.zeros_like(x) if baseline == "zeros" else 0.25 * known.expand_as(x)
        explainer = IntegratedGradients(target, multiply_by_inputs=False)
        with torch.no_grad():
            at_base = target(base, weights).float().cpu().numpy()
        for j in range(k):
            avg = explainer.attribute(
                x, baselines=base, target=j, n_steps=steps, internal_batch_size=batch_size,
                additional_forward_args=extra,
            )  # fmt: skip
            avg = avg.detach().float()
            # hypothetical: the base's gradient minus the baseline's share at that position,
            # so that the observed contributions are (x − baseline)·gradient
            hyp[:, j] = (avg - (base * avg).sum(2, keepdim=True)).cpu().numpy()
            total = ((x - base) * avg).sum((1, 2)).cpu().numpy()
            delta[:, j] = total - (output[:, j] - at_base[:, j])
    else:  # deepliftshap
        hyp, delta = _deeplift(
            model, head, columns, weights, x, shuffles, batch_size, device, seeds
        )
    return hyp, output, delta


def _deeplift(model, head, columns, weights, x, shuffles, batch_size, device, seeds):
    """DeepLIFT/SHAP (tangermeme) against dinucleotide shuffles of each window drawn with
    that window's own seed, so a window's references do not depend on its batch."""
    from tangermeme._deep_lift_utils import _nonlinear
    from tangermeme.deep_lift_shap import deep_lift_shap
    from tangermeme.ersatz import dinucleotide_shuffle

    from gitool.models.layers import GELU

    target = Target(model, head, columns, channels_first=True).to(device)
    xt = x.transpose(1, 2).contiguous().cpu()  # (B, 4, L)
    refs = torch.cat([dinucleotide_shuffle(xt[i : i + 1], n=shuffles, random_state=s)
                      for i, s in enumerate(seeds)]).float()  # (B, S, 4, L)  # fmt: skip
    b, k = len(x), len(columns)
    hyp = np.zeros((b, k, x.shape[1], 4), dtype=np.float32)
    delta = np.full((b, k), np.nan, dtype=np.float32)
    with torch.no_grad():
        outputs = target(xt.to(device), weights).float().cpu()
        flat = refs.reshape(-1, *refs.shape[2:]).to(device)
        per_ref = None if weights is None else weights.repeat_interleave(shuffles, 0)
        ref_outputs = target(flat, per_ref).float().cpu().reshape(b, shuffles, k).mean(1)
    args = None if weights is None else (weights.cpu(),)  # indexed per window by tangermeme
    for j in range(k):
        with warnings.catch_warnings():
            # tangermeme warns when its deltas exceed 1 % of the output differences, which a
            # model whose outputs barely differ trips by rounding; checked below instead
            warnings.simplefilter("ignore", RuntimeWarning)
            attr = deep_lift_shap(
                target, xt, args=args, target=j, references=refs, hypothetical=True,
                batch_size=max(batch_size, 2), device=device,
                additional_nonlinear_ops={GELU: _nonlinear},
            )  # fmt: skip
        hyp[:, j] = attr.transpose(1, 2).float().numpy()  # (B, L, 4)
        # observed contributions add up to the output minus the references' mean output
        change = outputs[:, j] - ref_outputs[:, j]
        delta[:, j] = ((xt * attr).sum((1, 2)) - change).numpy()
        scale = max(float(outputs[:, j].abs().max()), 1.0)
        if np.abs(delta[:, j]).max() > DEEPLIFT_TOLERANCE * scale:
            raise InputError(
                f"deepliftshap: the contributions miss the output by up to "
                f"{np.abs(delta[:, j]).max():.3g} (outputs up to {scale:.3g}): an operation "
                "of this model has no DeepLIFT rule; use integrated-gradients",
                field="method",
            )
    return hyp, delta


# --------------------------------------------------------------------------- the command


@dataclass
class AttributeSummary:
    paths: list[Path]
    n_windows: int
    tracks: list[str]
    method: str
    seconds: float
    max_delta: float | None


def parse_bins(text: str | None, n_bins: int) -> list[int] | None:
    """``"38-41,50"`` → bin indices (0-based, ranges inclusive); None: all bins."""
    if text is None or not text.strip():
        return None
    out: list[int] = []
    for part in text.split(","):
        part = part.strip()
        try:
            lo, _, hi = part.partition("-")
            first, last = int(lo), int(hi) if hi else int(lo)
        except ValueError:
            raise InputError(
                f"{part!r}: give 0-based bin indices or ranges, e.g. 38-41,50", field="bins"
            ) from None
        if first > last:
            raise InputError(f"{part}: the range runs backwards; give it low-high", field="bins")
        if not 0 <= first <= last < n_bins:
            raise InputError(
                f"{part}: the model has {n_bins} target bins (0-{n_bins - 1})", field="bins"
            )
        out += range(first, last + 1)
    return list(dict.fromkeys(out))


def attribute(options: AttributeOptions) -> AttributeSummary:
    """``gitool attribute``: contributions of the chosen windows toward chosen tracks and bins,
    written to ``options.out`` (``.npz``), plus ``--bigwig`` and ``--logos`` outputs.

    Raises:
        InputError: bad options, input or outputs — before any attribution.
    """
    began = time.perf_counter()
    o = options
    run = Path(o.model) if o.model is not None else default_run(option="model")
    spec = prepare_model(run, o.head, o.which, None)
    check_method(o.method, spec.model)
    data, index = o.data, o.index
    if data is None and o.regions is None and o.fasta is None:
        if o.method == "ism":
            raise InputError(f"ism needs genome regions: give {opt('regions')} BED and "
                             f"{opt('genome')} FASTA", field="method")  # fmt: skip
        data, index = default_store_windows(run, o.which, o.split, index, verb="attributing")
    columns = _columns(spec, o.tracks)
    identifiers = [str(spec.rows[c]["identifier"]) for c in columns]
    bins = parse_bins(o.bins, spec.geometry.target_length)
    outputs = Outputs(o.force, inputs=[*input_paths(o, run, data), *spec.inputs])
    out = outputs.file(o.out, "npz", field="out")
    bigwigs = None
    if o.bigwig is not None:
        try:
            paths = output_paths(o.bigwig, identifiers, False)
        except InputError as err:
            raise InputError(err.template, field="bigwig") from None
        bigwigs = [outputs.file(p, "bigWig", field="bigwig") for p in paths]
    logos = None
    if o.logos:
        logos = outputs.file(o.logos_out or _sibling(out, ".logos.png"), "PNG", field="logos_out")
    device = resolve_device(o.device)
    if o.method == "ism":
        result = _ism(o, spec, columns, identifiers)
    else:
        windows, count = open_windows(o, spec.model, data, index)
        if o.method == "deepliftshap":  # refused before any attribution, not part-way: the
            windows = list(windows)  # windows are read once (each costs many passes anyway)
            count = len(windows)
            for window in windows:
                if (window.codes == N_CODE).any():
                    raise _holds_n(window)
        result = attribute_windows(
            spec.model, spec.head, windows, columns, identifiers, method=o.method, bins=bins,
            steps=o.steps, baseline=o.baseline, shuffles=o.shuffles,
            batch_size=o.batch_size, device=device, seed=o.seed, total=count,
        )  # fmt: skip
    # every file is written completely before any is put in place
    writer = None
    try:
        with committed_together(), contextlib.ExitStack() as stack:
            tmp = stack.enter_context(staged_file(out))
            with open(tmp, "wb") as handle:
                _save(handle, result, spec)
            if logos is not None:
                from gitool.attribution.plots import logos_figure

                logos_figure(result, o.logos, stack.enter_context(staged_file(logos)))
            if bigwigs is not None:
                writer = _write_bigwigs(result, bigwigs, o.genome)
                writer.commit()
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    paths = [out, *(bigwigs or []), *([logos] if logos is not None else [])]
    finite = result.delta[np.isfinite(result.delta)]
    return AttributeSummary(
        paths=paths, n_windows=len(result.windows), tracks=identifiers, method=o.method,
        seconds=time.perf_counter() - began,
        max_delta=float(np.abs(finite).max()) if finite.size else None,
    )  # fmt: skip


def _columns(spec: PreparedModel, tracks: str | None) -> list[int]:
    if tracks is None and len(spec.rows) > MAX_DEFAULT_TRACKS:
        raise InputError(
            f"head {spec.head!r} has {len(spec.rows):,} tracks and each costs a backward "
            f"pass; choose up to a few with {opt('tracks')}",
            field="tracks",
        )
    return select_tracks(spec.rows, tracks, field="tracks")


def _sibling(path: Path, suffix: str) -> Path:
    return path.with_name((path.stem if path.suffix else path.name) + suffix)


def _save(handle, result: Attributions, spec: PreparedModel) -> None:
    g = spec.geometry
    w = result.windows
    np.savez_compressed(
        handle,
        hypothetical=result.hypothetical.astype(np.float32),
        sequence=result.sequence.astype(np.uint8),
        tracks=np.array(result.tracks),
        name=np.array([x.name for x in w]),
        chrom=np.array([x.chrom for x in w]),
        start=np.array([x.start for x in w], dtype=np.int64),
        target_start=np.array(
            [
                (x.target_start - x.start) if x.target_start is not None else g.context_left
                for x in w
            ],
            dtype=np.int64,
        ),  # fmt: skip
        target_length_bp=np.int64(result.extra.get("target_length_bp", g.target_span)),
        method=np.array(result.method),
        output=result.output.astype(np.float32),
        delta=result.delta.astype(np.float32),
        target_bins=result.target_bins.astype(np.int64),
        target_mask=(
            result.target_mask
            if result.target_mask is not None
            else np.zeros((len(w), 0), dtype=bool)
        ),
        bin_size=np.int64(result.bin_size),
    )


def _write_bigwigs(result: Attributions, paths: list[Path], genome: str | None) -> TrackSetWriter:
    """Per-base observed contributions over each window's target span (genome order),
    handed to the writer processes: the caller commits (or aborts) the returned writer."""
    if genome is None:
        raise InputError(f"needs {opt('regions')} and {opt('genome')}", field="bigwig")
    opened = Genome(genome)
    sizes = dict(opened.sizes)
    opened.close()
    observed = result.observed  # (N, K, L)
    rank = {chrom: i for i, chrom in enumerate(sizes)}
    order = sorted(  # genome order (ISM maps are in the BED's order)
        range(len(result.windows)),
        key=lambda i: (rank.get(result.windows[i].chrom, -1), result.windows[i].start),
    )
    writer = TrackSetWriter(paths, sizes, 1, field="bigwig").open()
    try:
        for i in order:
            w = result.windows[i]
            lo = 0 if w.target_start is None else w.target_start - w.start
            hi = observed.shape[-1] if w.target_end is None else w.target_end - w.start
            writer.add(w.chrom, w.start + lo, w.start + hi, observed[i, :, lo:hi].T.copy())
    except BaseException:
        writer.abort()
        raise
    return writer


def _ism(o: AttributeOptions, spec: PreparedModel, columns, identifiers) -> Attributions:
    """ISM of each region through :mod:`gitool.variants` (the ``sum`` score)."""
    from gitool.predict.tiling import read_regions
    from gitool.variants.ism import IsmMaps, IsmRegion, ism_variants
    from gitool.variants.scoring import iter_variant_scores

    if o.bins is not None:
        raise InputError(
            "does not apply to ism, which scores each base in its own window centred on it "
            "(the change summed over its target bins)",
            field="bins",
        )
    if o.regions is None:
        raise InputError(f"ism needs genome regions: give {opt('regions')} BED and "
                         f"{opt('genome')} FASTA", field="method")  # fmt: skip
    if o.index is not None:
        raise InputError(
            f"chooses windows of a store; ism maps every line of {opt('regions')}", field="index"
        )
    genome = Genome(o.genome)
    regions = read_regions(o.regions, genome.sizes, 1, merge=False)  # each line its own map
    if o.bigwig is not None:  # one value per base: the maps must not overlap
        by_start = sorted(regions, key=lambda r: (r.chrom, r.start))
        for a, b in zip(by_start, by_start[1:], strict=False):
            if a.chrom == b.chrom and b.start < a.end:
                raise InputError(
                    f"ism maps {a.chrom}:{a.start}-{a.end} and {b.chrom}:{b.start}-{b.end} "
                    f"of {opt('regions')} overlap, and a bigWig holds one value per base; "
                    f"give regions that do not overlap, or leave out {opt('bigwig')}",
                    field="bigwig",
                )
    lengths = {r.end - r.start for r in regions}
    if len(lengths) > 1:
        raise InputError(
            f"ism needs regions of one length (got {min(lengths):,} to {max(lengths):,} bp); "
            "resize them, e.g. to 200 bp around their centres",
            field="regions",
        )
    hyp, seqs, windows = [], [], []
    for region in regions:
        where = IsmRegion(region.chrom, region.start, region.end)
        codes = genome.codes(region.chrom, region.start, region.end)
        n = 3 * int((codes < 4).sum())
        scores = iter_variant_scores(
            spec, genome, ism_variants(genome, where), tracks=columns, stats="sum",
            batch_size=o.batch_size if o.batch_size >= 2 else 2, device=o.device, total=n,
        )  # fmt: skip
        maps = IsmMaps(where, codes, ("sum",), identifiers)
        for frame in scores:
            maps.add(frame)
        hyp.append(maps.maps["sum"])
        seqs.append(codes)
        windows.append(
            AttentionWindow(str(where), region.chrom, region.start, codes, region.start, region.end)
        )
    length = lengths.pop()
    return Attributions(
        hypothetical=np.stack(hyp), sequence=np.stack(seqs),
        output=np.full((len(windows), len(columns)), np.nan, np.float32),
        delta=np.full((len(windows), len(columns)), np.nan, np.float32), windows=windows,
        tracks=list(identifiers), method="ism", target_bins=np.arange(0),
        extra={"target_length_bp": length},
    )  # fmt: skip


__all__ = ["METHODS", "Attributions", "Target", "attribute", "attribute_windows", "parse_bins"]
