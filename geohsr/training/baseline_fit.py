"""Fit the per-pixel regression baselines (``linear``, ``rpr2``, ``rpr3``) on training scenes.

The baselines see the same inputs as a trained network: every whole training scene is rendered
``renders_per_scene`` times, each time with a camera drawn by the trainer's
:class:`~geohsr.training.camera.CameraSampler` (same cameras, random mixtures, spectral shifts,
white-balance error and exposure rule) and degraded with probability ``degrade_prob`` by the
trainer's :class:`~geohsr.training.degradations.RealWorldDegradation`; ``pixels_per_render``
random pixels of each render are kept. Geometric and lighting augmentations are left out: a
per-pixel map has no use for geometry, and the lighting jitter is a training regulariser that
never occurs at test time. The fit is closed-form ridge least squares (seconds)::

    rgb, spectra = sample_training_pixels(train_scenes, camera, PixelSampling())
    model = fit_baseline("rpr3", rgb, spectra)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from geohsr.exceptions import TrainingError
from geohsr.models import create_model
from geohsr.models.baselines import PixelRegression, fit_pixel_regression
from geohsr.spectral import N_BANDS
from geohsr.training.camera import CameraSampler
from geohsr.training.datasets.scene import Scene, SceneCache
from geohsr.training.degradations import RealWorldDegradation

DEFAULT_RIDGE = 1e-6


@dataclass(frozen=True)
class PixelSampling:
    """How many training pixels to draw: ``renders_per_scene`` camera draws per scene, each
    contributing ``pixels_per_render`` random pixels (all of them when the scene is smaller).
    ``seed`` makes the draw reproducible."""

    renders_per_scene: int = 4
    pixels_per_render: int = 20_000
    seed: int = 0

    def to_metadata(self) -> dict[str, Any]:
        """JSON-ready record of the settings."""
        return asdict(self)


def sample_training_pixels(
    scenes: Sequence[Scene],
    camera: CameraSampler,
    sampling: PixelSampling = PixelSampling(),
    *,
    degradation: RealWorldDegradation | None = None,
    degrade_prob: float = 0.0,
    cache: SceneCache | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Paired training pixels ``(rgb (N, 3), spectra (N, 31))`` float32 (see module doc).

    Render ``r`` of scene ``i`` uses ``numpy.random.default_rng([seed, i, r])`` for the camera,
    the degradation and the pixel choice. Pixels outside a scene's valid mask are never drawn.
    """
    if not scenes:
        raise TrainingError("no training scenes to fit a baseline on; check the data and split")
    cache = cache or SceneCache()
    rgb_parts: list[np.ndarray] = []
    spectra_parts: list[np.ndarray] = []
    for i, scene in enumerate(scenes):
        data = cache.get(scene)
        cube = data.cube_window(slice(None), slice(None))  # (31, H, W)
        spectra = cube.reshape(N_BANDS, -1)  # (31, H*W)
        valid = np.arange(spectra.shape[1])
        if data.valid is not None:
            valid = np.flatnonzero(data.valid)
        for r in range(sampling.renders_per_scene):
            rng = np.random.default_rng([sampling.seed, i, r])
            rendered = camera.render(cube, rng)
            rgb = rendered.rgb  # (3, H, W)
            if degradation is not None and rng.random() < degrade_prob:
                rgb = degradation(rgb, rng)
            count = min(sampling.pixels_per_render, len(valid))
            chosen = rng.choice(valid, size=count, replace=False)
            rgb_parts.append(rgb.reshape(3, -1)[:, chosen].T)
            spectra_parts.append(spectra[:, chosen].T * rendered.exposure)
    return np.concatenate(rgb_parts), np.concatenate(spectra_parts)


def fit_baseline(
    name: str, rgb: np.ndarray, spectra: np.ndarray, *, ridge: float = DEFAULT_RIDGE
) -> PixelRegression:
    """A new registry baseline ``name`` fitted in closed form to ``rgb`` ``(N, 3)`` in [0, 1]
    -> ``spectra`` ``(N, 31)``; ``ridge`` is relative to the feature scale (see
    :func:`~geohsr.models.baselines.fit_least_squares`). Returns the model in eval mode."""
    model = create_model(name)
    if not isinstance(model, PixelRegression):
        raise TrainingError(
            f"{name!r} is not a per-pixel regression baseline; fit linear, rpr2 or rpr3 here "
            "and train networks with `geohsr finetune`"
        )
    return fit_pixel_regression(model, rgb, spectra, ridge).eval()
