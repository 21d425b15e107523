"""Independent output chunks: rectangles of the scene that are reconstructed on their own.

A chunk reads its *halo*, the input covered by the windows of the **global** window grid
that touch it, predicts those windows and blends them with the global feather weights in
the global per-pixel order (:func:`chunk_plan`: the global bands restricted to the chunk),
so every pixel gets the same value as in one sequential pass over the whole scene. A
window that straddles a chunk border is predicted by every chunk it touches:
:func:`redundancy` says how much extra work that is. Along an axis, a border on the window
lattice is straddled by one window, and with the last piece never under half a chunk
there are fewer borders than ``length / size``, so chunks of ``n`` window strides cost at
most ``(1 + 1/n)**2 - 1`` extra windows (:data:`DEFAULT_CHUNK_STRIDES` = 24: 8.5 %).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from geohsr.tiling.grid import WindowGrid
from geohsr.tiling.plan import BlendPlan, Span

#: default chunk side in window strides: at most (25/24)^2 - 1 = 8.5 % extra windows
DEFAULT_CHUNK_STRIDES = 24
#: default side of the accessor's chunks, which are held in memory (31 float32 bands: 3584
#: pixels at the default tile = 1.6 GB): at most (9/8)^2 - 1 = 27 % extra windows
ACCESSOR_CHUNK_STRIDES = 8


@dataclass(frozen=True, order=True)
class Chunk:
    """Rows ``[row0, row1)`` and columns ``[col0, col1)`` of the scene (pixels)."""

    row0: int
    row1: int
    col0: int
    col1: int

    @property
    def rows(self) -> slice:
        return slice(self.row0, self.row1)

    @property
    def cols(self) -> slice:
        return slice(self.col0, self.col1)

    @property
    def shape(self) -> tuple[int, int]:
        """``(height, width)`` in pixels."""
        return self.row1 - self.row0, self.col1 - self.col0

    @property
    def key(self) -> str:
        """``"row0-row1-col0-col1"``: names the chunk in file names and task keys."""
        return f"{self.row0}-{self.row1}-{self.col0}-{self.col1}"

    @classmethod
    def from_key(cls, key: str) -> Chunk:
        """The chunk named ``key`` (see :attr:`key`); ``ValueError`` if it is not one."""
        row0, row1, col0, col1 = (int(part) for part in key.split("-"))
        return cls(row0, row1, col0, col1)

    def contains(self, other: Chunk) -> bool:
        """Whether ``other`` lies inside this chunk."""
        return (
            self.row0 <= other.row0
            and other.row1 <= self.row1
            and self.col0 <= other.col0
            and other.col1 <= self.col1
        )


def round_up(value: int, step: int) -> int:
    """``value`` rounded up to a multiple of ``step``."""
    return math.ceil(value / step) * step


def default_chunk_size(
    height: int, width: int, stride: int, align: int = 1, strides: int = DEFAULT_CHUNK_STRIDES
) -> int:
    """Chunk side (pixels) used when none is given: ``strides`` window strides, or half the
    scene's longer side when the scene is smaller than two such chunks (so that it still
    splits into several chunks), rounded up to a multiple of ``align`` (the Zarr chunk
    side, so that no two chunks share a Zarr chunk)."""
    side = min(strides * stride, math.ceil(max(height, width) / 2))
    return round_up(max(side, 1), align)


def chunk_edges(length: int, size: int) -> tuple[int, ...]:
    """Chunk borders along an axis: every ``size`` pixels from 0, and ``length``; a last
    piece shorter than half a chunk joins the one before it (so no sliver of a chunk adds
    windows of its own, and the last chunk is at most 1.5 x ``size``)."""
    if size < 1:
        raise ValueError(f"chunk size must be >= 1, got {size}")
    edges = [*range(0, length, size), length]
    if len(edges) > 2 and 2 * (edges[-1] - edges[-2]) < size:
        del edges[-2]
    return tuple(edges)


def make_chunks(height: int, width: int, size: int) -> tuple[Chunk, ...]:
    """Chunks of ``size x size`` pixels covering a ``height x width`` scene, row-major; the
    last row and column of chunks end on the scene edge (see :func:`chunk_edges`)."""
    rows, cols = chunk_edges(height, size), chunk_edges(width, size)
    return tuple(
        Chunk(r0, r1, c0, c1)
        for r0, r1 in zip(rows, rows[1:])  # noqa: B905 - consecutive pairs
        for c0, c1 in zip(cols, cols[1:])  # noqa: B905
    )


def rows_covered(chunks: Iterable[Chunk], width: int) -> int:
    """How many rows from the top the ``chunks`` cover across the whole ``width`` (chunks
    of one layout: a row of chunks counts once its chunks span ``[0, width)``)."""
    by_rows: dict[tuple[int, int], list[Chunk]] = {}
    for chunk in chunks:
        by_rows.setdefault((chunk.row0, chunk.row1), []).append(chunk)
    covered = 0
    while True:
        row = next(((r0, r1) for r0, r1 in by_rows if r0 == covered), None)
        if row is None:
            return covered
        col = 0
        for chunk in sorted(by_rows[row], key=lambda c: c.col0):
            if chunk.col0 > col:
                break
            col = max(col, chunk.col1)
        if col < width:
            return covered
        covered = row[1]


def touching(starts: Sequence[int], window: int, begin: int, end: int) -> tuple[int, ...]:
    """The window ``starts`` whose windows (``window`` long) overlap ``[begin, end)``."""
    return tuple(s for s in starts if s < end and s + window > begin)


def halo(grid: WindowGrid, chunk: Chunk) -> Chunk:
    """The input region a chunk reads: the extent of the windows touching it."""
    rows = touching(grid.row_starts, grid.window_height, chunk.row0, chunk.row1)
    cols = touching(grid.col_starts, grid.window_width, chunk.col0, chunk.col1)
    return Chunk(rows[0], rows[-1] + grid.window_height, cols[0], cols[-1] + grid.window_width)


def windows_touching(grid: WindowGrid, chunk: Chunk) -> int:
    """How many windows of ``grid`` a chunk predicts (before skipping all-nodata ones)."""
    rows = touching(grid.row_starts, grid.window_height, chunk.row0, chunk.row1)
    cols = touching(grid.col_starts, grid.window_width, chunk.col0, chunk.col1)
    return len(rows) * len(cols)


def redundancy(grid: WindowGrid, chunks: Sequence[Chunk]) -> float:
    """Extra windows predicted when every chunk is computed on its own, as a fraction of
    the grid's windows (0.085 = 8.5 % more model calls than one sequential pass)."""
    computed = sum(windows_touching(grid, chunk) for chunk in chunks)
    return computed / grid.n_windows - 1.0


def chunk_plan(plan: BlendPlan, chunk: Chunk, windows_per_block: int) -> BlendPlan:
    """The plan that reconstructs ``chunk`` alone with the global grid's windows.

    Bands are the global bands restricted to the windows touching the chunk (a band's
    window rows stay together: that keeps each pixel's summation order, hence its value,
    bit for bit); blocks group the touching window columns ``windows_per_block`` at a time
    (a last single column joins the block before it). The last band and block finish
    everything they cover; rows and columns outside the chunk are left to other chunks.
    """
    grid = plan.grid
    row_groups = [
        touching(band.starts, grid.window_height, chunk.row0, chunk.row1) for band in plan.bands
    ]
    bands = _spans([group for group in row_groups if group], grid.window_height)
    cols = touching(grid.col_starts, grid.window_width, chunk.col0, chunk.col1)
    col_groups = [cols[i : i + windows_per_block] for i in range(0, len(cols), windows_per_block)]
    if len(col_groups) > 1 and len(col_groups[-1]) == 1:
        col_groups = [*col_groups[:-2], col_groups[-2] + col_groups[-1]]
    return BlendPlan(grid, bands, _spans(col_groups, grid.window_width))


def _spans(groups: Sequence[tuple[int, ...]], window: int) -> tuple[Span, ...]:
    """Spans of consecutive start groups; each finishes up to the next one's begin, the last
    one everything it covers."""
    spans = []
    for index, group in enumerate(groups):
        end = group[-1] + window
        final_end = groups[index + 1][0] if index + 1 < len(groups) else end
        spans.append(Span(tuple(group), group[0], end, final_end))
    return tuple(spans)
