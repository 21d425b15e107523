"""Synthetic spectral scenes for the baseline-fitting and accuracy tests."""

from __future__ import annotations

import numpy as np

from geohsr.spectral import WAVELENGTHS_NM
from geohsr.training.datasets.scene import Scene, SceneData


def scene_of(cube: np.ndarray, name: str = "synthetic", valid: np.ndarray | None = None) -> Scene:
    data = SceneData(cube.astype(np.float32), valid=valid)
    _, height, width = cube.shape
    return Scene(name, "cubes", name, height, width, loader=lambda: data)


def endmember_cube(height: int = 32, width: int = 32, seed: int = 0):
    """Spectra in a 3-D subspace: ``(31, H, W)`` cube and its endmembers ``(31, 3)``."""
    rng = np.random.default_rng(seed)
    wl = (WAVELENGTHS_NM - 400) / 300.0
    endmembers = np.stack([0.2 + 0.6 * wl, 0.8 - 0.6 * wl, np.exp(-((wl - 0.5) ** 2) / 0.02)], 1)
    abundance = rng.uniform(0.1, 1.0, size=(3, height, width)) / 3
    return np.einsum("lk,khw->lhw", endmembers, abundance), endmembers


def bump_cube(height: int = 40, width: int = 40, seed: int = 0) -> np.ndarray:
    """Gaussian-bump spectra of random centre, width and height: not linear in RGB."""
    rng = np.random.default_rng(seed)
    centre = rng.uniform(420, 680, size=(1, height, width))
    spread = rng.uniform(20, 120, size=(1, height, width))
    level = rng.uniform(0.1, 0.9, size=(1, height, width))
    wl = WAVELENGTHS_NM[:, None, None].astype(np.float64)
    return 0.02 + level * np.exp(-(((wl - centre) / spread) ** 2))
