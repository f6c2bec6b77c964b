"""Attention rollout (Abnar & Zuidema 2020) through a token hierarchy, down to input bins.

Each attention matrix ``A`` (head-averaged, rows over the real keys) becomes
``Â = ½·A + ½·I`` (the residual connection), rows renormalised. Going from the last attention
layer down to the first, ``R ← R · Â`` and, where the token size halves (1D-Swin merges),
``R ← R · M`` with ``M[j, 2j] = M[j, 2j+1] = ½`` (a duplicated last token gives ``M[j, 2j] = 1``).
``R`` starts as the identity over the last layer's tokens, so the result is
``(top tokens, tokens of the lowest attention layer)``; its columns are then spread uniformly
over each token's bp and summed into bins of ``resolution`` bp. Every factor is row-stochastic,
so each row of the rollout sums to 1; with identity attention, and ``resolution`` equal to the
top token size, the rollout is the identity.

Only attention is followed: the depthwise convolutions of the 1D-Swin feed-forward blocks
(kernel 3: each mixes a token with its two neighbours) and Enformer's convolution tower also
move information between positions, and the rollout leaves them out, so it understates
short-range mixing (long-range paths, which only attention provides, are complete).

Windowed records (``(B, n_windows, H, w, w)`` with ``meta["token_index"]``) are applied
window by window, never as a dense ``n × n`` matrix, so the cost is
``rows × n_tokens × w`` per layer (139 × 17,712 × 32 for layer 1 of basenji-small).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from gitool.models.layers import AttentionRecord


def _tokens(seq_length: int, bp: int) -> int:
    return -(-seq_length // bp)


def _apply_full(r: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """``R · Â`` for a full ``(T, T)`` map."""
    hat = 0.5 * a + 0.5 * torch.eye(a.shape[-1], dtype=a.dtype)
    return r @ (hat / hat.sum(-1, keepdim=True))


def _apply_windows(r: torch.Tensor, w: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``R · Â`` for window maps ``w`` ``(nW, w, w)`` over slots ``index`` ``(nW, w)``."""
    valid = index >= 0  # (nW, w)
    eye = torch.eye(w.shape[-1], dtype=w.dtype)
    hat = 0.5 * w + 0.5 * eye * valid[:, :, None]
    hat = hat * valid[:, None, :]
    hat = hat / hat.sum(-1, keepdim=True).clamp_min(1e-30)
    safe = index.clamp_min(0)
    gathered = r[:, safe] * valid  # (rows, nW, w): R over the window's queries
    mixed = torch.einsum("rnq,nqk->rnk", gathered, hat)  # (rows, nW, w) over keys
    out = torch.zeros_like(r)
    out[:, index[valid]] = mixed[:, valid]
    return out


def _merge(r: torch.Tensor, n_lower: int) -> torch.Tensor:
    """``R · M``: each upper token j splits evenly into lower tokens 2j and 2j+1 (clipped)."""
    rows, n_upper = r.shape
    out = torch.zeros(rows, n_lower, dtype=r.dtype)
    j = torch.arange(n_upper)
    out.index_add_(1, (2 * j).clamp_max(n_lower - 1), 0.5 * r)
    out.index_add_(1, (2 * j + 1).clamp_max(n_lower - 1), 0.5 * r)
    return out


def bin_columns(r: np.ndarray, token_bp: int, seq_length: int, resolution: int) -> np.ndarray:
    """Spread each column (a token of ``token_bp`` bp, the last clipped at ``seq_length``)
    uniformly over its bp and sum into bins of ``resolution`` bp. ``(rows, n) → (rows, bins)``.
    """
    rows, n = r.shape
    starts = np.arange(n) * token_bp
    lengths = np.minimum(starts + token_bp, seq_length) - starts
    cum = np.concatenate([np.zeros((rows, 1)), np.cumsum(r, axis=1)], axis=1)
    edges = np.minimum(np.arange(0, _tokens(seq_length, resolution) + 1) * resolution, seq_length)
    tok = np.minimum(edges // token_bp, n - 1)
    frac = np.clip((edges - starts[tok]) / lengths[tok], 0.0, 1.0)
    mass = cum[:, tok] + r[:, tok] * frac  # mass before each bin edge
    return np.diff(mass, axis=1)


def attention_rollout(
    records: Sequence[AttentionRecord],
    seq_length: int,
    *,
    sample: int = 0,
    resolution: int | None = None,
) -> tuple[np.ndarray, int, int]:
    """Roll the attention of one sample out to input bins.

    Args:
        records: every attention record of one forward, in forward order (as
            :func:`gitool.models.base.capture_attention` gives them, all layers).
        seq_length: input length in bp.
        sample: which sample of the batch.
        resolution: bp per output column; default: the top tokens' size (square result).

    Returns:
        ``(rollout, top_token_bp, top_token_start)``: ``rollout`` float32 ``(top tokens,
        ceil(seq_length / resolution))`` whose rows sum to 1; the top tokens are those of the
        last attention layer, token ``i`` covering input bp ``(top_token_start + i)·top_token_bp``
        onwards.
    """
    if not records:
        raise ValueError("no attention records to roll out")
    last = records[-1]
    top_bp = bp = int(last.meta.get("token_bp", 1))
    offset = cols = int(last.meta.get("token_start", 0))
    n_top = last.meta["n_tokens"] if "token_index" in last.meta else last.weights.shape[-1]
    r = torch.eye(n_top, dtype=torch.float64)  # columns: tokens cols … cols + n of this level

    def widen(r: torch.Tensor, cols: int, n: int) -> torch.Tensor:
        full = torch.zeros(r.shape[0], max(n, cols + r.shape[1]), dtype=r.dtype)
        full[:, cols : cols + r.shape[1]] = r
        return full

    for record in reversed(records):
        meta = record.meta
        rbp = int(meta.get("token_bp", 1))
        weights = record.weights[sample].double().cpu()  # captured on the model's device
        if rbp < bp:  # down a level of the hierarchy: all tokens, then split each in two
            r, cols = widen(r, cols, _tokens(seq_length, bp)), 0
            while bp > rbp:
                bp //= 2
                r = _merge(r, _tokens(seq_length, bp))
        if "token_index" in meta:  # windows (nW, H, w, w)
            if cols or r.shape[1] != meta["n_tokens"]:
                r, cols = widen(r, cols, meta["n_tokens"]), 0
            r = _apply_windows(r, weights.mean(1), meta["token_index"])
        else:  # full (H, T, T)
            if r.shape[1] != weights.shape[-1]:
                raise ValueError("attention records are not in forward order")
            r = _apply_full(r, weights.mean(0))
    if cols:
        r = widen(r, cols, 0)
    out = bin_columns(r.numpy(), bp, seq_length, resolution or top_bp)
    return out.astype(np.float32), top_bp, offset
