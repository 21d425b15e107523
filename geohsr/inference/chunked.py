"""Chunk-independent reconstruction: every output chunk computed on its own from its halo.

A chunk predicts the windows of the global grid that touch it and blends them in the
global per-pixel order (:func:`~geohsr.tiling.chunks.chunk_plan`), so its pixels equal
those of the sequential :func:`~geohsr.inference.blocks.stream_blocks` pass bit for bit
(with the same predictor: see :func:`~geohsr.inference.predictor.call_sizes`). Inside a
chunk the blocks still stream, so memory follows the chunk's width times the window
height, plus the chunk itself when it is returned as an array (:func:`chunk_values`).

:func:`chunked_cube` builds the accessor's dask graph from these chunks: no task depends on
another chunk, so any scheduler runs them in parallel, and tasks carry a
:class:`~geohsr.inference.model_cache.PredictorSpec` (or a process-local reference), never
a live model or lock.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import dask
import dask.array as da
import numpy as np
import xarray as xr

from geohsr.inference.blocks import (
    BlockReconstructor,
    BlockResult,
    Reader,
    array_reader,
    stream_blocks,
)
from geohsr.inference.model_cache import PredictorSource, resolve_predictor
from geohsr.io.encoding import CubeEncoding
from geohsr.spectral import N_BANDS
from geohsr.tiling import make_grid
from geohsr.tiling.chunks import Chunk, halo, make_chunks


@dataclass(frozen=True)
class SceneGeometry:
    """The scene size (pixels), the window grid settings every chunk shares and the
    input's quantisation step (model units; see :class:`~geohsr.io.read.InputScaling`)."""

    height: int
    width: int
    tile: int
    overlap: int
    input_step: float = 0.0

    def reconstructor(self, predictor, chunk: Chunk | None = None) -> BlockReconstructor:
        """The block reconstructor of the scene, or of ``chunk`` alone."""
        return BlockReconstructor(
            predictor,
            self.height,
            self.width,
            self.tile,
            self.overlap,
            chunk=chunk,
            input_step=self.input_step,
        )


def chunk_blocks(reconstructor: BlockReconstructor, read: Reader) -> Iterator[BlockResult]:
    """The blocks of ``reconstructor``'s chunk that store pixels, in order; ``read`` reads
    input regions (its halo at most)."""
    for _, _, result in stream_blocks(reconstructor, read):
        if result.values.size:
            yield result


def chunk_values(
    predictor, geometry: SceneGeometry, chunk: Chunk, rgb: np.ndarray, origin: tuple[int, int]
) -> np.ndarray:
    """Reflectance ``(31, h, w)`` float32 of ``chunk`` (NaN at nodata) from ``rgb``
    ``(3, H', W')``, an input region containing the chunk's halo whose first pixel is
    scene pixel ``origin``."""
    reconstructor = geometry.reconstructor(predictor, chunk)
    values = np.full((N_BANDS, *chunk.shape), np.nan, np.float32)
    for result in chunk_blocks(reconstructor, array_reader(rgb, origin)):
        row, col = result.row - chunk.row0, result.col - chunk.col0
        height, width = result.values.shape[1:]
        values[:, row : row + height, col : col + width] = result.values
    return values


def _chunk_task(
    source: PredictorSource,
    geometry: SceneGeometry,
    chunk: Chunk,
    origin: tuple[int, int],
    rgb: np.ndarray,
    precision_bits: int | None,
) -> np.ndarray:
    values = chunk_values(
        resolve_predictor(source), geometry, chunk, np.asarray(rgb, np.float32), origin
    )
    return CubeEncoding("float32", precision_bits).round_in_place(values)


def chunked_cube(
    source: PredictorSource,
    rgb: xr.DataArray,
    geometry: SceneGeometry,
    *,
    chunk_size: int,
    precision_bits: int | None,
    token: str,
) -> da.Array:
    """The cube ``(31, H, W)`` float32 of prepared ``(3, H, W)`` input ``rgb`` as a dask
    array of independent chunk tasks (``chunk_size`` pixels square), each reading its halo
    of ``rgb``; values rounded as the writers store them (``precision_bits``). ``token``
    names the graph (same settings and input -> same keys)."""
    grid = make_grid(geometry.height, geometry.width, geometry.tile, geometry.overlap)
    task = dask.delayed(_chunk_task, pure=True)
    rows: dict[int, list[da.Array]] = {}
    for chunk in make_chunks(geometry.height, geometry.width, chunk_size):
        region = halo(grid, chunk)
        values = task(
            source,
            geometry,
            chunk,
            (region.row0, region.col0),
            rgb.data[:, region.rows, region.cols],
            precision_bits,
            dask_key_name=f"hsr-chunk-{token}-{chunk.key}",
        )
        array = da.from_delayed(values, shape=(N_BANDS, *chunk.shape), dtype=np.float32)
        rows.setdefault(chunk.row0, []).append(array)
    return da.block([rows[row0] for row0 in sorted(rows)])
