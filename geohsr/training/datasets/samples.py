"""Training crops and whole-image evaluation pairs drawn from scenes.

Every training sample is a pure function of ``(seed, index)``: its random generator is
``numpy.random.default_rng([seed, index])``. So a run that resumes at step ``s`` sees exactly
the samples an uninterrupted run would, whatever the number of loader workers.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from geohsr.exceptions import InputError, TrainingError
from geohsr.spectral import N_BANDS
from geohsr.spectral.render import quantization_step
from geohsr.training.camera import CameraSampler
from geohsr.training.datasets.augment import Augmentation, apply_geometry, draw_geometry
from geohsr.training.datasets.scene import Scene, SceneCache, SceneData
from geohsr.training.degradations import RealWorldDegradation

#: Training crops must have at least this fraction of valid pixels (user tiles).
MIN_VALID_FRACTION = 0.95
_MAX_TRIES = 20


@dataclass(frozen=True)
class EvalPair:
    """One whole evaluation image: ``rgb`` (3, H, W) and ``cube`` (31, H, W) float32.

    ``css`` is the normalised camera response (3, 31) the RGB was rendered with when the model
    is to be told it (camera-aware evaluation), else None. ``input_step``: the RGB's
    quantisation step (1/255 when it was rendered to 8 bits or read from an 8-bit file; 0
    for float RGB), which camera-aware models are told as ``geohsr reconstruct`` tells them
    for integer input.
    """

    name: str
    rgb: np.ndarray
    cube: np.ndarray
    css: np.ndarray | None = None
    input_step: float = 0.0


@dataclass(frozen=True)
class TrainingSample:
    """Tensors of one training crop: ``rgb`` (3, c, c), ``target`` (31, c, c), ``css`` (3, 31)
    normalised response (zeros when unknown), ``known`` bool, ``exposure`` (the target's scale
    relative to reflectance; 1 for scenes with their own RGB)."""

    rgb: torch.Tensor
    target: torch.Tensor
    css: torch.Tensor
    known: torch.Tensor
    exposure: torch.Tensor


class TrainingCrops(torch.utils.data.Dataset):
    """Random ``crop`` x ``crop`` samples: tuples ``(rgb, target, css, known, exposure)`` of
    tensors (see :class:`TrainingSample`), which the default collate stacks into a batch.

    Scenes are drawn in proportion to their area. Scenes without RGB get it from ``camera``
    (fixed gain, random exposure; the target is scaled with it), degraded by ``degradation``
    with probability ``degrade_prob``. Index = global sample number.
    """

    def __init__(
        self,
        scenes: Sequence[Scene],
        *,
        crop: int,
        camera: CameraSampler,
        seed: int,
        augmentation: Augmentation | None = None,
        degradation: RealWorldDegradation | None = None,
        degrade_prob: float = 0.0,
        cache: SceneCache | None = None,
    ) -> None:
        if not scenes:
            raise TrainingError("no training scenes; check --data and the validation split")
        for scene in scenes:
            start, stop = scene.row_slice
            if stop - start < crop or scene.width < crop:
                raise TrainingError(
                    f"scene {scene.name} ({stop - start}x{scene.width}) is smaller than "
                    f"--crop {crop}; lower --crop"
                )
        self.scenes = list(scenes)
        areas = np.array([s.area for s in self.scenes], dtype=np.float64)
        self.weights = areas / areas.sum()
        self.crop = crop
        self.camera = camera
        self.seed = seed
        self.augmentation = augmentation or Augmentation()
        self.degradation = degradation
        self.degrade_prob = degrade_prob
        self.cache = cache or SceneCache()

    def __len__(self) -> int:
        return np.iinfo(np.int64).max

    def _window(self, data: SceneData, size: int, rng: np.random.Generator) -> tuple[slice, slice]:
        height, width = data.shape
        size_y, size_x = min(size, height), min(size, width)
        for _ in range(_MAX_TRIES):
            y0 = int(rng.integers(0, height - size_y + 1))
            x0 = int(rng.integers(0, width - size_x + 1))
            window = slice(y0, y0 + size_y), slice(x0, x0 + size_x)
            if data.valid is None or data.valid[window].mean() >= MIN_VALID_FRACTION:
                return window
        return window

    def __getitem__(self, index: int) -> tuple[torch.Tensor, ...]:
        rng = np.random.default_rng([self.seed, int(index)])
        scene = self.scenes[int(rng.choice(len(self.scenes), p=self.weights))]
        data = self.cache.get(scene)
        geometry = draw_geometry(rng, self.augmentation)
        y, x = self._window(data, geometry.source_size(self.crop), rng)
        cube = data.cube_window(y, x)  # (31, s, s)
        rgb = data.rgb_window(y, x)  # (3, s, s) or None
        stacked = cube if rgb is None else np.concatenate([rgb, cube])
        stacked = apply_geometry(stacked, geometry, self.crop)
        css = np.zeros((3, N_BANDS), np.float32)
        known, exposure = False, 1.0
        if rgb is None:
            rendered = self.camera.render(stacked, rng)
            rgb, cube = rendered.rgb, rendered.target
            if self.degradation is not None and rng.random() < self.degrade_prob:
                rgb = self.degradation(rgb, rng)
            exposure, known = rendered.exposure, rendered.known
            if known:
                css = rendered.css
        else:
            rgb, cube = stacked[:3], stacked[3:]
        sample = TrainingSample(
            torch.from_numpy(np.ascontiguousarray(rgb, dtype=np.float32)),
            torch.from_numpy(np.ascontiguousarray(cube, dtype=np.float32)),
            torch.from_numpy(css),
            torch.tensor(known),
            torch.tensor(exposure, dtype=torch.float32),
        )
        return sample.rgb, sample.target, sample.css, sample.known, sample.exposure


def _valid_bbox(data: SceneData) -> tuple[slice, slice]:
    if data.valid is None:
        return slice(None), slice(None)
    rows, cols = np.nonzero(data.valid.any(axis=1))[0], np.nonzero(data.valid.any(axis=0))[0]
    return slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1)


def evaluation_pairs(
    scenes: Sequence[Scene],
    camera: CameraSampler,
    *,
    degradation: RealWorldDegradation | None = None,
    seed: int = 0,
    cache: SceneCache | None = None,
    every_camera: bool = False,
    camera_known: bool = False,
) -> Iterator[EvalPair]:
    """Whole-image pairs of ``scenes`` (the valid bounding box for user tiles).

    Scenes without RGB are rendered deterministically (named ``scene@camera``): scene ``i``
    with listed camera ``i % len(camera.cameras)``, or with every listed camera in turn when
    ``every_camera``; then ``degradation`` with a generator seeded by ``(seed, i, camera
    index)`` when given. ``camera_known`` attaches the rendering camera to each rendered pair
    (camera-aware evaluation; names get a ``+known`` suffix), and the one listed camera to
    scenes with their own RGB (user tiles, NTIRE RGB): the camera that took them.
    Raises :class:`InputError` when ``camera_known`` meets such a scene with several cameras.
    """
    cache = cache or SceneCache()
    n_cameras = len(camera.cameras)
    for i, scene in enumerate(scenes):
        data = cache.get(scene)
        y, x = _valid_bbox(data)
        cube = data.cube_window(y, x)
        rgb = data.rgb_window(y, x)
        if rgb is not None:
            step = data.rgb_scale if data.rgb.dtype.kind in "ui" else 0.0  # one stored level
            if not camera_known:
                yield EvalPair(scene.name, rgb, cube, input_step=step)
                continue
            if n_cameras != 1:
                raise InputError(
                    f"{scene.name} carries its own RGB: with --known-camera give exactly one "
                    f"--camera, the one that took it ({n_cameras} given)"
                )
            yield EvalPair(f"{scene.name}+known", rgb, cube, camera.cameras[0].normalised, step)
            continue
        # the renders' quantisation step; a degradation ends in an 8-bit JPEG
        step = quantization_step(8) if degradation is not None else camera.fixed_render_step
        for k in range(n_cameras) if every_camera else [i % n_cameras]:
            rendered = camera.render_fixed(cube, k)
            if degradation is not None:
                rendered = degradation(rendered, np.random.default_rng([seed, i, k]))
            name = f"{scene.name}@{camera.cameras[k].name}"
            if camera_known:
                css = camera.cameras[k].normalised
                yield EvalPair(f"{name}+known", rendered, cube, css, step)
            else:
                yield EvalPair(name, rendered, cube, input_step=step)
