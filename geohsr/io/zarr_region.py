"""Writing reflectance regions into the cube's Zarr array, chunk columns in parallel."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import zarr

from geohsr._threads import array_pool
from geohsr.io.cube import CUBE_VARIABLE
from geohsr.io.encoding import CubeEncoding


def open_cube_for_writing(store: Path) -> tuple[zarr.Group, zarr.Array]:
    """The root group of ``store`` and its cube array, opened to write. Chunks that hold only
    the fill value (NaN: nodata) are written like the others: zarr's check for them
    compared every chunk with a full array and cost a fifth of the write time."""
    with zarr.config.set({"array.write_empty_chunks": True}):
        group = zarr.open_group(str(store), mode="r+", use_consolidated=False)
        return group, group[CUBE_VARIABLE]


def write_region(
    array: zarr.Array, encoding: CubeEncoding, row: int, col: int, values: np.ndarray
) -> None:
    """Store reflectance ``values`` ``(31, h, w)`` float32 at pixel ``(row, col)`` of
    ``array``. The region is cut at chunk column boundaries and the pieces are encoded and
    compressed in parallel threads: no two pieces share a chunk, whatever the alignment."""
    width = values.shape[2]
    chunk_width = array.chunks[2]
    first = (col // chunk_width + 1) * chunk_width - col  # first boundary inside the region
    edges = [0, *range(first, width, chunk_width), width]
    pieces = [(a, b) for a, b in zip(edges[:-1], edges[1:], strict=True) if b > a]

    def write_piece(piece: tuple[int, int]) -> None:
        a, b = piece
        stored = encoding.encode(values[:, :, a:b])
        array[:, row : row + values.shape[1], col + a : col + b] = stored

    if len(pieces) == 1:
        write_piece(pieces[0])
        return
    for future in [array_pool().submit(write_piece, piece) for piece in pieces]:
        future.result()
