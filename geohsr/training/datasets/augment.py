"""The paper's augmentations (fastai v1 ``get_transforms`` defaults), as pure functions.

Geometry (applied identically to RGB and cube): with probability ``p_affine`` a rotation of
up to +-``max_rotate`` degrees and a zoom in [1, ``max_zoom``] about the crop centre (bilinear,
reflection at borders), then independent horizontal and vertical flips (p = 0.5 each; aerial
images have no "up"). fastai's brightness/contrast jitter of the RGB alone is left out: it
has no physical target (an exposure change scales the target too; that is the camera
simulation's job, :mod:`geohsr.training.camera`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class Augmentation:
    """Augmentation strengths (set ``enabled=False`` for plain crops)."""

    enabled: bool = True
    max_rotate: float = 10.0
    max_zoom: float = 1.1
    p_affine: float = 0.75


@dataclass(frozen=True)
class Geometry:
    """One draw of the geometric augmentation."""

    angle_deg: float = 0.0
    zoom: float = 1.0
    flip_x: bool = False
    flip_y: bool = False

    @property
    def is_affine(self) -> bool:
        """True when rotation or zoom needs resampling."""
        return self.angle_deg != 0.0 or self.zoom != 1.0

    def source_size(self, crop: int) -> int:
        """Side (pixels) of the source window that the rotated, zoomed crop reads from."""
        if not self.is_affine:
            return crop
        theta = math.radians(self.angle_deg)
        return math.ceil(crop * (abs(math.cos(theta)) + abs(math.sin(theta))) / self.zoom) + 2


def draw_geometry(rng: np.random.Generator, aug: Augmentation) -> Geometry:
    """Random :class:`Geometry` for one sample."""
    if not aug.enabled:
        return Geometry()
    affine = rng.random() < aug.p_affine
    angle = float(rng.uniform(-aug.max_rotate, aug.max_rotate)) if affine else 0.0
    zoom = float(rng.uniform(1.0, aug.max_zoom)) if affine else 1.0
    return Geometry(angle, zoom, bool(rng.random() < 0.5), bool(rng.random() < 0.5))


def apply_geometry(window: np.ndarray, geometry: Geometry, crop: int) -> np.ndarray:
    """Rotate/zoom the centre of ``window`` ``(C, S, S)`` into ``(C, crop, crop)``, then flip."""
    if geometry.is_affine:
        theta = math.radians(geometry.angle_deg)
        size = window.shape[-1]
        scale = crop / (size * geometry.zoom)  # output pixels in source normalised coordinates
        cos, sin = math.cos(theta) * scale, math.sin(theta) * scale
        matrix = torch.tensor([[[cos, -sin, 0.0], [sin, cos, 0.0]]], dtype=torch.float32)
        grid = F.affine_grid(matrix, [1, window.shape[0], crop, crop], align_corners=False)
        source = torch.from_numpy(np.ascontiguousarray(window, dtype=np.float32))[None]
        out = F.grid_sample(
            source, grid, mode="bilinear", padding_mode="reflection", align_corners=False
        )
        window = out[0].numpy()
    if geometry.flip_x:
        window = window[:, :, ::-1]
    if geometry.flip_y:
        window = window[:, ::-1, :]
    return np.ascontiguousarray(window)
