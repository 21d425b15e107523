"""Predict + blend a scene, or one chunk of it, block by block: the one code path behind
the command line (:func:`stream_blocks` over the whole scene, sequential, bounded memory)
and the independent chunks of :mod:`geohsr.inference.chunked` (the same over the windows
touching one chunk, see :func:`~geohsr.tiling.chunks.chunk_plan`).

A block is the windows of one band (row of windows) whose columns fall in one group of
``predictor.batch_size`` window columns (see :mod:`geohsr.tiling.plan`). Its input is the
RGB region its windows cover; masked pixels (NaN) are filled with the window's mean colour
before the model sees them, windows without any valid pixel are skipped, and the output is
NaN wherever the input was masked.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import dask
import dask.array as da
import numpy as np
import xarray as xr

from geohsr._threads import array_pool
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
from geohsr.tiling.chunks import Chunk, chunk_plan

#: threads reading input blocks ahead when the model runs on a GPU: one read of a block
#: (GDAL decoding, dask, scaling) took longer than the H200's model call
#: (``benchmarks/gpu_check.py`` busy times)
READERS_BESIDE_A_GPU = 4

#: reads the input ``(3, h, w)`` float32 of scene rows and columns ``(rows, cols)``
Reader = Callable[[slice, slice], np.ndarray]


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
    """What one block gives: ``values`` ``(31, h, w)`` float32 to store at scene pixel
    ``(row, col)`` (the block's finished pixels; for a chunk, only those inside it, possibly
    none), the hand-over sums (``output``), how many windows the block held and, when the
    predictor knows the camera, the largest re-rendering error of ``values`` (else None)."""

    output: BlockOutput
    row: int
    col: int
    values: np.ndarray
    n_windows: int
    rerender_error: float | None = None


@dataclass(frozen=True)
class PredictedBlock:
    """One block's input ``rgb`` ``(3, band.size, block.size)``, its predicted windows'
    ``(row, col)`` and their ``predictions`` ``(N, 31, window_h, window_w)`` float32."""

    band_index: int
    block_index: int
    rgb: np.ndarray
    windows: list[tuple[int, int]]
    predictions: np.ndarray


class BlockReconstructor:
    """Reconstructs the blocks of a ``height x width`` scene with ``predictor``, or with
    ``chunk`` only the blocks of the windows touching that chunk (same grid, weights and
    per-pixel order as the whole scene, so the chunk's pixels get the same values).

    ``predictor`` needs ``predict((N, 3, h, w), input_step=...) -> (N, 31, h, w)`` and
    ``batch_size``; ``input_step`` is the input's quantisation step in model units (0: float
    input; see :class:`~geohsr.io.read.InputScaling`).
    """

    def __init__(
        self,
        predictor,
        height: int,
        width: int,
        tile: int,
        overlap: int,
        *,
        chunk: Chunk | None = None,
        input_step: float = 0.0,
    ) -> None:
        self.predictor = predictor
        self.input_step = input_step
        self.tile = tile
        self.chunk = chunk
        self.grid = make_grid(height, width, tile, overlap)
        plan = make_plan(self.grid, predictor.batch_size)
        if chunk is not None:
            plan = chunk_plan(plan, chunk, predictor.batch_size)
        self.plan: BlendPlan = plan
        self.weights = feather_weights(self.grid.window_height, self.grid.window_width, overlap)
        device = getattr(predictor, "device", None)
        #: model on a GPU: the CPU is free to read and blend while it computes the next block
        self.concurrent = getattr(device, "type", "cpu") != "cpu"

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

    def predict(self, inputs: np.ndarray) -> np.ndarray:
        """Predictions ``(N, 31, tile, tile)`` of model inputs ``(N, 3, tile, tile)``.

        A lone window of a scene with several windows is predicted alongside a copy of
        itself: torch's CPU kernels give one image other last bits than several, and the
        same window may be alone in one run (a chunk's edge, a block of nodata) and not in
        another (see :func:`~geohsr.inference.predictor.call_sizes`).
        """
        if len(inputs) == 0:
            return np.zeros((0, N_BANDS, self.tile, self.tile), np.float32)
        if len(inputs) == 1 and self.grid.n_windows > 1:
            pair = np.concatenate([inputs, inputs])
            return self.predictor.predict(pair, input_step=self.input_step)[:1]
        return self.predictor.predict(inputs, input_step=self.input_step)

    def kept(self, band_index: int, block_index: int) -> tuple[slice, slice]:
        """Rows and columns, within the block's finished pixels, that this reconstructor
        stores: all of them for a scene, those inside the chunk for a chunk."""
        band, block = self.plan.bands[band_index], self.plan.blocks[block_index]
        if self.chunk is None:
            return slice(0, band.final_size), slice(0, block.final_size)
        return (
            _clip(band.begin, band.final_end, self.chunk.row0, self.chunk.row1),
            _clip(block.begin, block.final_end, self.chunk.col0, self.chunk.col1),
        )

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
        predicted = self.predict_block(band_index, block_index, rgb)
        return self.blend(predicted, pending, carry)

    def predict_block(self, band_index: int, block_index: int, rgb: np.ndarray) -> PredictedBlock:
        """The model's part of :meth:`run_block` (independent of the other blocks)."""
        windows, inputs = self.window_inputs(band_index, block_index, rgb)
        window_h, window_w = self.grid.window_height, self.grid.window_width
        predictions = self.predict(inputs)[:, :, :window_h, :window_w]
        return PredictedBlock(band_index, block_index, rgb, windows, predictions)

    def blend(
        self, predicted: PredictedBlock, pending: Partial | None, carry: Partial | None
    ) -> BlockResult:
        """The blending part of :meth:`run_block`: adds the hand-over sums ``pending`` (of
        the block to the left) and ``carry`` (of the band above)."""
        band_index, block_index, rgb = predicted.band_index, predicted.block_index, predicted.rgb
        band, block = self.plan.bands[band_index], self.plan.blocks[block_index]
        output = blend_block(
            band,
            block,
            predicted.windows,
            predicted.predictions,
            self.weights,
            pending=pending,
            carry=carry,
            executor=array_pool(),  # the model is not running now (CPU) or not on the CPU
        )
        rows, cols = self.kept(band_index, block_index)
        values = output.values[:, rows, cols]
        kept_rgb = rgb[:, rows, cols]
        valid = np.isfinite(kept_rgb).all(axis=0)
        if not valid.all():
            values[:, ~valid] = np.nan
        return BlockResult(
            output,
            band.begin + rows.start,
            block.begin + cols.start,
            values,
            len(band.starts) * len(block.starts),
            self._rerender_error(values, kept_rgb, valid),
        )

    def _rerender_error(self, values: np.ndarray, rgb: np.ndarray, valid: np.ndarray):
        camera = getattr(self.predictor, "camera", None)
        if camera is None:
            return None
        usable = valid & (rgb < SATURATION_LEVEL).all(axis=0)
        errors = rerender_error(values, rgb, camera.normalised)[usable]
        return float(errors.max()) if errors.size else 0.0


def _clip(begin: int, end: int, low: int, high: int) -> slice:
    """``[begin, end) ∩ [low, high)`` relative to ``begin`` (empty when they do not meet)."""
    start = min(max(low, begin), end) - begin
    return slice(start, max(min(high, end) - begin, start))


def dataarray_reader(rgb: xr.DataArray) -> Reader:
    """Reads regions of a (lazy) ``(band, y, x)`` array in the calling thread. A dask graph
    is optimised once (the read and the scaling steps fused into one layer), not at every
    read: reads of a block's region took a fifth less time (8192² scene, 512 x 3648 px)."""
    if isinstance(rgb.data, da.Array):
        (fused,) = dask.optimize(rgb.data)
        rgb = rgb.copy(data=fused)
    return lambda rows, cols: compute(rgb.isel(y=rows, x=cols))


def array_reader(data: np.ndarray, origin: tuple[int, int]) -> Reader:
    """Reads regions of ``data`` ``(3, h, w)``, whose first pixel is scene pixel ``origin``."""
    row0, col0 = origin

    def read(rows: slice, cols: slice) -> np.ndarray:
        return data[:, rows.start - row0 : rows.stop - row0, cols.start - col0 : cols.stop - col0]

    return read


def stream_blocks(
    reconstructor: BlockReconstructor,
    read: Reader,
    *,
    first_band: int = 0,
    emit_from_band: int = 0,
) -> Iterator[tuple[int, int, BlockResult]]:
    """Run every block from band ``first_band`` on, in band-major order, and yield
    ``(band_index, block_index, result)`` for bands ``>= emit_from_band``.

    ``read`` may return values outside [0, 1]: each block's input is clipped to it.
    Bands before ``emit_from_band`` are replayed only to rebuild the partial sums they hand
    on (resuming). A thread reads the input two blocks ahead. With the model on a GPU
    (``reconstructor.concurrent``) :data:`READERS_BESIDE_A_GPU` threads read ahead, another
    thread runs the model one block ahead while the calling thread blends, so at most two
    blocks' predictions are held; on CPU the model and the
    blend take turns (run side by side they slowed torch's CPU kernels, whose threads wait
    busily, by a fifth: ``benchmarks/scene_throughput.py``), the blend spread over the
    cores the model has just left.
    """
    plan = reconstructor.plan
    order = [(i, j) for i in range(first_band, len(plan.bands)) for j in range(len(plan.blocks))]
    if not order:
        return

    def read_block(index: tuple[int, int]) -> np.ndarray:
        region = np.asarray(read(*reconstructor.region(*index)), dtype=np.float32)
        return np.clip(region, 0.0, 1.0)  # the model's input range (NaN stays NaN)

    def predict_block(index: tuple[int, int], region: Future) -> PredictedBlock:
        return reconstructor.predict_block(*index, region.result())

    carries: list[Partial | None] = [None] * len(plan.blocks)
    pending: Partial | None = None
    ahead = 1 if reconstructor.concurrent else 0  # blocks the model runs ahead
    readers = READERS_BESIDE_A_GPU if reconstructor.concurrent else 1
    reader = ThreadPoolExecutor(max_workers=readers, thread_name_prefix="geohsr-read")
    model = ThreadPoolExecutor(max_workers=1, thread_name_prefix="geohsr-model")
    reads: list[Future | None] = [
        reader.submit(read_block, index) for index in order[: readers + 1]
    ]
    predictions: list[Future | None] = []
    try:
        if ahead:
            predictions.append(model.submit(predict_block, order[0], reads[0]))
        for k, (i, j) in enumerate(order):
            if k + readers + 1 < len(order):
                reads.append(reader.submit(read_block, order[k + readers + 1]))
            if ahead and k + 1 < len(order):
                predictions.append(model.submit(predict_block, order[k + 1], reads[k + 1]))
            if ahead:
                predicted = predictions[k].result()
                predictions[k] = None  # free the block's memory early
            else:
                predicted = predict_block(order[k], reads[k])
            reads[k] = None
            result = reconstructor.blend(predicted, pending if j else None, carries[j])
            pending, carries[j] = result.output.pending, result.output.carry
            if i >= emit_from_band:
                yield i, j, result
    finally:  # also when the consumer stops early: drop queued work, finish running work
        model.shutdown(wait=True, cancel_futures=True)
        reader.shutdown(wait=True, cancel_futures=True)
