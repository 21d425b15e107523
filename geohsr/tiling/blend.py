"""Streaming feathered blend: ``output = sum(w * prediction) / sum(w)`` block by block.

:func:`blend_block` adds one block's window predictions to the partial sums handed over
by the block to its left (``pending``) and by the band above (``carry``), returns the
finished pixels and hands on the sums that later blocks and bands still add to. Running
it over a :class:`~geohsr.tiling.plan.BlendPlan` in band-major order gives the same
result (up to float rounding) as accumulating every window over the whole scene at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from geohsr.tiling.plan import Span


@dataclass(frozen=True)
class Partial:
    """Partial sums over a region: ``weighted`` = sum w * prediction ``(C, h, w)`` and
    ``weight`` = sum w ``(h, w)``, both float32."""

    weighted: np.ndarray
    weight: np.ndarray


@dataclass(frozen=True)
class BlockOutput:
    """What one block of one band produces.

    values: finished pixels ``(C, band.final_size, block.final_size)`` float32, for rows
        ``[band.begin, band.final_end)`` and columns ``[block.begin, block.final_end)``;
        NaN where no window was predicted.
    carry: sums for rows ``[band.final_end, band.end)`` of the same columns, for the same
        block of the next band (``None`` in the last band).
    pending: sums for all rows of the band and columns ``[block.final_end, block.end)``,
        for the next block of the same band (``None`` in the last block).
    """

    values: np.ndarray
    carry: Partial | None
    pending: Partial | None


def blend_block(
    band: Span,
    block: Span,
    windows: Sequence[tuple[int, int]],
    predictions: np.ndarray,
    weights: np.ndarray,
    *,
    pending: Partial | None = None,
    carry: Partial | None = None,
) -> BlockOutput:
    """Blend the predictions of one block.

    windows: ``(row_start, col_start)`` (scene pixels) of each predicted window; windows
        of the block that were skipped (e.g. all nodata) are simply left out.
    predictions: ``(N, C, h, w)`` float32, one per window, ``(h, w) == weights.shape``.
    weights: feather weights ``(h, w)`` float32.
    pending / carry: the previous block's / previous band's hand-over (``None`` at the
        left / top edge).
    """
    if len(windows) != len(predictions):
        raise ValueError(f"{len(windows)} windows but {len(predictions)} predictions")
    channels = predictions.shape[1]
    window_h, window_w = weights.shape
    weighted = np.zeros((channels, band.size, block.size), np.float32)  # (C, band_h, block_w)
    weight = np.zeros((band.size, block.size), np.float32)
    if pending is not None:
        pending_w = pending.weight.shape[1]
        weighted[:, :, :pending_w] = pending.weighted
        weight[:, :pending_w] = pending.weight
    scratch = np.empty((channels, window_h, window_w), np.float32)
    for (row, col), prediction in zip(windows, predictions, strict=True):
        r, c = row - band.begin, col - block.begin
        if not (0 <= r <= band.size - window_h and 0 <= c <= block.size - window_w):
            raise ValueError(f"window at ({row}, {col}) lies outside this band/block")
        np.multiply(prediction, weights, out=scratch)
        weighted[:, r : r + window_h, c : c + window_w] += scratch
        weight[r : r + window_h, c : c + window_w] += weights

    final_h, final_w = band.final_size, block.final_size
    total_weighted = weighted[:, :, :final_w]  # views: the carry is added once, at flush
    total_weight = weight[:, :final_w]
    if carry is not None:
        carry_h = carry.weight.shape[0]
        total_weighted[:, :carry_h] += carry.weighted
        total_weight[:carry_h] += carry.weight
    with np.errstate(invalid="ignore", divide="ignore"):
        values = total_weighted[:, :final_h] / total_weight[:final_h]  # NaN where sum w == 0

    carry_out = None
    if final_h < band.size:
        carry_out = Partial(total_weighted[:, final_h:].copy(), total_weight[final_h:].copy())
    pending_out = None
    if final_w < block.size:
        pending_out = Partial(weighted[:, :, final_w:].copy(), weight[:, final_w:].copy())
    return BlockOutput(values, carry_out, pending_out)
