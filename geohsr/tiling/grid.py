"""The window grid: square windows of ``tile`` pixels overlapping by ``overlap`` that
cover every pixel of a ``height x width`` scene.

Windows step by ``tile - overlap``; the last row and column of windows is shifted
inward so it ends exactly on the scene edge (no padding past the edge). Along an axis
shorter than one tile there is a single window as long as the axis; :func:`reflect_pad`
pads such windows to the full tile before they reach the model.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np


def axis_starts(length: int, tile: int, overlap: int) -> tuple[int, ...]:
    """Window start offsets along one axis of ``length`` pixels.

    Regular steps of ``tile - overlap`` from 0; the last window starts at
    ``length - tile`` (shifted inward). A single window at 0 when ``length <= tile``.
    """
    if length < 1 or tile < 1 or not 0 <= overlap < tile:
        raise ValueError(
            f"need length >= 1, tile >= 1, 0 <= overlap < tile; got "
            f"length={length}, tile={tile}, overlap={overlap}"
        )
    if length <= tile:
        return (0,)
    stride = tile - overlap
    return (*range(0, length - tile, stride), length - tile)


@dataclass(frozen=True)
class WindowGrid:
    """Window geometry over a ``height x width`` scene (pixels).

    All windows have the same shape ``(window_height, window_width)`` =
    ``(min(tile, height), min(tile, width))``; window ``(i, j)`` covers rows
    ``row_starts[i] : row_starts[i] + window_height`` and the matching columns.
    """

    height: int
    width: int
    tile: int
    overlap: int
    row_starts: tuple[int, ...]
    col_starts: tuple[int, ...]

    @property
    def stride(self) -> int:
        """Regular step between window starts (pixels)."""
        return self.tile - self.overlap

    @property
    def window_height(self) -> int:
        return min(self.tile, self.height)

    @property
    def window_width(self) -> int:
        return min(self.tile, self.width)

    @property
    def n_windows(self) -> int:
        return len(self.row_starts) * len(self.col_starts)

    def windows(self) -> Iterator[tuple[int, int]]:
        """``(row_start, col_start)`` of every window, row-major."""
        for row in self.row_starts:
            for col in self.col_starts:
                yield row, col


def make_grid(height: int, width: int, tile: int, overlap: int) -> WindowGrid:
    """The window grid of a ``height x width`` scene (see the module docstring)."""
    return WindowGrid(
        height=height,
        width=width,
        tile=tile,
        overlap=overlap,
        row_starts=axis_starts(height, tile, overlap),
        col_starts=axis_starts(width, tile, overlap),
    )


def reflect_pad(window: np.ndarray, height: int, width: int) -> np.ndarray:
    """Reflect-pad ``window`` ``(..., h, w)`` at the bottom/right to ``(..., height, width)``.

    Returns ``window`` itself when it already has that size. Works for any ``h, w >= 1``
    (repeated reflection when the pad is longer than the window).
    """
    h, w = window.shape[-2:]
    if (h, w) == (height, width):
        return window
    if h > height or w > width:
        raise ValueError(f"cannot pad a {h}x{w} window down to {height}x{width}")
    pad = [(0, 0)] * (window.ndim - 2) + [(0, height - h), (0, width - w)]
    return np.pad(window, pad, mode="reflect")
