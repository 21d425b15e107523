"""Predict + blend a scene block by block: the one code path behind both the command line
(:func:`stream_blocks`, sequential, bounded memory) and the ``.hsr`` accessor
(:func:`lazy_cube`, a dask graph of the same block tasks).

A block is the windows of one band (row of windows) whose columns fall in one group of
``predictor.batch_size`` window columns (see :mod:`geohsr.tiling.plan`). Its input is the
RGB region its windows cover; masked pixels (NaN) are filled with the window's mean colour
before the model sees them, windows without any valid pixel are skipped, and the output is
NaN wherever the input was masked.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import dask
import dask.array as da
import numpy as np
import xarray as xr

from geohsr.io.read import compute
from geohsr.spectral import N_BANDS
from geohsr.spectral.metamer import SATURATION_LEVEL, rerender_error
from geohsr.tiling import (
    BlendPlan,
    BlockOutput,
    Partial,
    blend_block,
    feather_weights,
    make_grid,
    make_plan,
    reflect_pad,
)


def fill_masked(window: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """``window`` ``(3, h, w)`` with pixels where ``valid`` ``(h, w)`` is False set to the
    mean colour of the valid ones (so nodata never reaches the model as zeros)."""
    if valid.all():
        return window
    filled = window.copy()
    filled[:, ~valid] = window[:, valid].mean(axis=1)[:, None]
    return filled


@dataclass(frozen=True)
class BlockResult:
    """:class:`~geohsr.tiling.BlockOutput` plus how many windows the block held and, when the
    predictor knows the camera, the block's largest re-rendering error (else None)."""

    output: BlockOutput
    n_windows: int
    rerender_error: float | None = None


class BlockReconstructor:
    """Reconstructs the blocks of a ``height x width`` scene with ``predictor``.

    ``predictor`` needs ``predict((N, 3, h, w)) -> (N, 31, h, w)`` and ``batch_size``.
    """

    def __init__(self, predictor, height: int, width: int, tile: int, overlap: int) -> None:
        self.predictor = predictor
        self.tile = tile
        self.grid = make_grid(height, width, tile, overlap)
        self.plan: BlendPlan = make_plan(self.grid, predictor.batch_size)
        self.weights = feather_weights(self.grid.window_height, self.grid.window_width, overlap)

    def region(self, band_index: int, block_index: int) -> tuple[slice, slice]:
        """Rows and columns of the input that block ``(band_index, block_index)`` reads."""
        band, block = self.plan.bands[band_index], self.plan.blocks[block_index]
        return slice(band.begin, band.end), slice(block.begin, block.end)

    def window_inputs(
        self, band_index: int, block_index: int, rgb: np.ndarray
    ) -> tuple[list[tuple[int, int]], np.ndarray]:
        """The model inputs of one block: ``(row, col)`` of each window with any valid pixel
        and their RGB ``(N, 3, tile, tile)`` (masked pixels filled, small scenes padded)."""
        band, block = self.plan.bands[band_index], self.plan.blocks[block_index]
        window_h, window_w = self.grid.window_height, self.grid.window_width
        valid = np.isfinite(rgb).all(axis=0)  # (band_h, block_w)
        windows, inputs = [], []
        for col in block.starts:
            for row in band.starts:
                r, c = row - band.begin, col - block.begin
                window_valid = valid[r : r + window_h, c : c + window_w]
                if not window_valid.any():
                    continue
                window = fill_masked(rgb[:, r : r + window_h, c : c + window_w], window_valid)
                inputs.append(reflect_pad(window, self.tile, self.tile))  # (3, tile, tile)
                windows.append((row, col))
        if not inputs:
            return windows, np.zeros((0, 3, self.tile, self.tile), np.float32)
        return windows, np.stack(inputs)

    def run_block(
        self,
        band_index: int,
        block_index: int,
        rgb: np.ndarray,
        pending: Partial | None,
        carry: Partial | None,
    ) -> BlockResult:
        """Predict and blend one block; ``rgb`` ``(3, band.size, block.size)`` float32 in
        [0, 1], NaN = nodata. The output values are NaN where any input band is NaN."""
        band, block = self.plan.bands[band_index], self.plan.blocks[block_index]
        window_h, window_w = self.grid.window_height, self.grid.window_width
        windows, inputs = self.window_inputs(band_index, block_index, rgb)
        if windows:
            predictions = self.predictor.predict(inputs)[:, :, :window_h, :window_w]
        else:
            predictions = np.zeros((0, N_BANDS, window_h, window_w), np.float32)
        output = blend_block(
            band, block, windows, predictions, self.weights, pending=pending, carry=carry
        )
        final_rgb = rgb[:, : band.final_size, : block.final_size]
        valid = np.isfinite(final_rgb).all(axis=0)
        output.values[:, ~valid] = np.nan
        camera = getattr(self.predictor, "camera", None)
        error = None
        if camera is not None:
            usable = valid & (final_rgb < SATURATION_LEVEL).all(axis=0)
            errors = rerender_error(output.values, final_rgb, camera.normalised)[usable]
            error = float(errors.max()) if errors.size else 0.0
        return BlockResult(output, len(band.starts) * len(block.starts), error)


def stream_blocks(
    reconstructor: BlockReconstructor,
    rgb: xr.DataArray,
    *,
    first_band: int = 0,
    emit_from_band: int = 0,
) -> Iterator[tuple[int, int, BlockResult]]:
    """Run every block from band ``first_band`` on, in band-major order, and yield
    ``(band_index, block_index, result)`` for bands ``>= emit_from_band``.

    Bands before ``emit_from_band`` are replayed only to rebuild the partial sums they hand
    on (resuming). The next block's input is read in a background thread meanwhile.
    """
    plan = reconstructor.plan
    order = [(i, j) for i in range(first_band, len(plan.bands)) for j in range(len(plan.blocks))]

    def read(index: tuple[int, int]) -> np.ndarray:
        rows, cols = reconstructor.region(*index)
        return compute(rgb.isel(y=rows, x=cols))

    carries: list[Partial | None] = [None] * len(plan.blocks)
    pending: Partial | None = None
    with ThreadPoolExecutor(max_workers=1) as pool:
        upcoming = pool.submit(read, order[0]) if order else None
        for k, (i, j) in enumerate(order):
            region = upcoming.result()
            if k + 1 < len(order):
                upcoming = pool.submit(read, order[k + 1])
            result = reconstructor.run_block(i, j, region, pending if j else None, carries[j])
            pending, carries[j] = result.output.pending, result.output.carry
            if i >= emit_from_band:
                yield i, j, result


def lazy_cube(reconstructor: BlockReconstructor, rgb: xr.DataArray, token: str) -> da.Array:
    """The cube ``(31, H, W)`` float32 as a dask array of block tasks.

    Task ``(i, j)`` depends on ``(i, j - 1)`` (pending sums) and ``(i - 1, j)`` (carried
    sums): the same blocks, inputs and order as :func:`stream_blocks`, hence the same values.
    ``token`` names the graph (same settings and input -> same keys).
    """
    plan = reconstructor.plan
    run = dask.delayed(_run_block_task, pure=True)
    results: dict[tuple[int, int], object] = {}
    rows_of_chunks = []
    for i, band in enumerate(plan.bands):
        row = []
        for j, block in enumerate(plan.blocks):
            rows, cols = reconstructor.region(i, j)
            region = rgb.data[:, rows, cols]
            pending = results[i, j - 1] if j else None
            carry = results[i - 1, j] if i else None
            results[i, j] = run(
                reconstructor, i, j, region, pending, carry, dask_key_name=f"hsr-{token}-{i}-{j}"
            )
            values = dask.delayed(_values, pure=True)(
                results[i, j], dask_key_name=f"hsr-values-{token}-{i}-{j}"
            )
            shape = (N_BANDS, band.final_size, block.final_size)
            row.append(da.from_delayed(values, shape=shape, dtype=np.float32))
        rows_of_chunks.append(row)
    return da.block(rows_of_chunks)


def _run_block_task(
    reconstructor: BlockReconstructor,
    band_index: int,
    block_index: int,
    region: np.ndarray,
    left: BlockResult | None,
    above: BlockResult | None,
) -> BlockResult:
    pending = left.output.pending if left is not None else None
    carry = above.output.carry if above is not None else None
    rgb = np.asarray(region, dtype=np.float32)
    return reconstructor.run_block(band_index, block_index, rgb, pending, carry)


def _values(result: BlockResult) -> np.ndarray:
    return result.output.values
