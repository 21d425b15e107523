"""Scenes: one spectral cube (+ optional paired RGB) that training crops are drawn from.

A :class:`Scene` is a cheap description (name, size, loader); :class:`SceneData` holds the
decoded arrays, kept in their stored dtype (e.g. uint16) with a scale to save memory.
:class:`SceneCache` keeps decoded scenes in RAM up to a byte budget (least recently used
out), so repeated crops of the same scene do not decode the file again.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np


@dataclass(frozen=True)
class SceneData:
    """Decoded arrays of a scene.

    cube: ``(31, H, W)`` stored values; reflectance = ``cube * cube_scale``.
    rgb: ``(3, H, W)`` stored values or None (RGB synthesised by the camera simulation);
    [0, 1] RGB = ``rgb * rgb_scale``. valid: ``(H, W)`` bool of usable pixels, or None (all).
    """

    cube: np.ndarray
    cube_scale: float = 1.0
    rgb: np.ndarray | None = None
    rgb_scale: float = 1.0
    valid: np.ndarray | None = None

    @property
    def shape(self) -> tuple[int, int]:
        """``(H, W)`` in pixels."""
        return self.cube.shape[1], self.cube.shape[2]

    @property
    def nbytes(self) -> int:
        """Memory held by the arrays."""
        arrays = (self.cube, self.rgb, self.valid)
        return sum(a.nbytes for a in arrays if a is not None)

    def rows(self, start: int, stop: int) -> SceneData:
        """View of rows ``start:stop`` (no copy)."""
        return SceneData(
            self.cube[:, start:stop],
            self.cube_scale,
            None if self.rgb is None else self.rgb[:, start:stop],
            self.rgb_scale,
            None if self.valid is None else self.valid[start:stop],
        )

    def cube_window(self, y: slice, x: slice) -> np.ndarray:
        """Reflectance ``(31, h, w)`` float32 of a window."""
        return self.cube[:, y, x].astype(np.float32) * np.float32(self.cube_scale)

    def rgb_window(self, y: slice, x: slice) -> np.ndarray | None:
        """RGB ``(3, h, w)`` float32 in [0, 1] of a window, or None when synthesised."""
        if self.rgb is None:
            return None
        return self.rgb[:, y, x].astype(np.float32) * np.float32(self.rgb_scale)

    def exposure_reference(self, max_side: int = 128) -> np.ndarray:
        """Strided reflectance view ``(31, h, w)`` of the whole scene (sets camera exposure)."""
        step = max(1, max(self.shape) // max_side)
        return self.cube_window(slice(None, None, step), slice(None, None, step))


@dataclass(frozen=True)
class Scene:
    """A named scene: ``load()`` decodes it; ``split`` is a layout's train/val hint or None;
    ``row_range`` the fraction of rows used (a spatial train/val split of one raster)."""

    name: str
    kind: str
    key: str
    height: int
    width: int
    loader: Callable[[], SceneData] = field(repr=False, compare=False)
    split: str | None = None
    row_range: tuple[float, float] = (0.0, 1.0)

    @property
    def row_slice(self) -> tuple[int, int]:
        """First and end row (pixels) of :attr:`row_range`."""
        return round(self.row_range[0] * self.height), round(self.row_range[1] * self.height)

    @property
    def area(self) -> int:
        """Pixels used by this scene."""
        start, stop = self.row_slice
        return (stop - start) * self.width

    def with_rows(self, start: float, stop: float, split: str) -> Scene:
        """The same raster restricted to row fractions ``start:stop`` and marked ``split``."""
        return replace(self, row_range=(start, stop), split=split, name=f"{self.name}[{split}]")


class SceneCache:
    """Least-recently-used cache of decoded scenes, bounded by ``max_bytes``."""

    def __init__(self, max_bytes: int = 4 << 30) -> None:
        self.max_bytes = max_bytes
        self._items: OrderedDict[str, SceneData] = OrderedDict()

    def get(self, scene: Scene) -> SceneData:
        """Decoded data of ``scene`` (restricted to its rows)."""
        data = self._items.get(scene.key)
        if data is None:
            data = scene.loader()
            self._items[scene.key] = data
            while len(self._items) > 1 and self._bytes() > self.max_bytes:
                self._items.popitem(last=False)
        else:
            self._items.move_to_end(scene.key)
        return data.rows(*scene.row_slice)

    def _bytes(self) -> int:
        return sum(d.nbytes for d in self._items.values())
