"""Real-world RGB degradations like the NTIRE 2020 real-world track.

A camera pipeline in the order a sensor applies it: Bayer mosaic (RGGB) of the linear RGB,
shot noise (variance proportional to the signal) plus read noise (constant variance) on the
raw mosaic, bilinear demosaic, 8-bit JPEG at a chosen quality. All functions are pure except
for the explicit ``rng``; images are float32 in [0, 1], ``(3, H, W)``.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

#: Which channel each position of a 2x2 RGGB cell samples: [row % 2][col % 2].
RGGB = ((0, 1), (1, 2))

_KERNEL_RB = np.array([[1, 2, 1], [2, 4, 2], [1, 2, 1]], dtype=np.float32) / 4.0
_KERNEL_G = np.array([[0, 1, 0], [1, 4, 1], [0, 1, 0]], dtype=np.float32) / 4.0


def bayer_masks(height: int, width: int) -> np.ndarray:
    """Boolean ``(3, H, W)`` masks: where an RGGB sensor samples R, G and B."""
    rows, cols = np.mgrid[:height, :width]
    channel = np.asarray(RGGB)[rows % 2, cols % 2]  # (H, W) in {0, 1, 2}
    return np.stack([channel == c for c in range(3)])


def bayer_mosaic(rgb: np.ndarray) -> np.ndarray:
    """Single-channel RGGB raw ``(H, W)`` sampled from ``rgb`` ``(3, H, W)``."""
    masks = bayer_masks(*rgb.shape[1:])
    return (rgb * masks).sum(axis=0).astype(np.float32)


def convolve3x3(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """2-D correlation of ``image`` ``(H, W)`` with a 3x3 ``kernel``, mirrored borders."""
    padded = np.pad(image, 1, mode="reflect")
    height, width = image.shape
    return sum(
        kernel[i, j] * padded[i : i + height, j : j + width] for i in range(3) for j in range(3)
    )


def demosaic_bilinear(raw: np.ndarray) -> np.ndarray:
    """Bilinear demosaic of an RGGB raw ``(H, W)`` -> ``(3, H, W)`` float32.

    Sampled positions keep their value; missing ones average their sampled neighbours.
    """
    masks = bayer_masks(*raw.shape)
    kernels = (_KERNEL_RB, _KERNEL_G, _KERNEL_RB)
    planes = [convolve3x3(raw * mask, kernel) for mask, kernel in zip(masks, kernels, strict=True)]
    return np.stack(planes).astype(np.float32)


def add_sensor_noise(
    raw: np.ndarray, rng: np.random.Generator, *, shot: float, read: float
) -> np.ndarray:
    """Signal-dependent Gaussian noise: variance ``shot * signal + read**2`` (signal in [0, 1]).

    ``shot`` is the inverse full-well capacity (0.01 ~ 100 electrons at full scale); ``read``
    the read-noise standard deviation in full-scale units.
    """
    std = np.sqrt(shot * np.clip(raw, 0.0, None) + read**2)
    return (raw + std * rng.standard_normal(raw.shape)).astype(np.float32)


def jpeg_roundtrip(rgb: np.ndarray, quality: int) -> np.ndarray:
    """Encode ``rgb`` ``(3, H, W)`` as 8-bit JPEG at ``quality`` (1-95) and decode it."""
    pixels = np.round(np.clip(rgb, 0.0, 1.0) * 255.0).astype(np.uint8).transpose(1, 2, 0)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=int(quality))
    buffer.seek(0)
    decoded = np.asarray(Image.open(buffer).convert("RGB"), dtype=np.float32) / 255.0
    return decoded.transpose(2, 0, 1).copy()


@dataclass(frozen=True)
class RealWorldDegradation:
    """Random camera-pipeline degradation; each call draws its own strengths.

    shot_max / read_max: upper bounds of the uniform draws of ``shot`` / ``read``.
    mosaic: Bayer mosaic + bilinear demosaic. jpeg_quality: uniform integer range (inclusive).
    """

    shot_max: float = 0.01
    read_max: float = 0.01
    mosaic: bool = True
    jpeg_quality: tuple[int, int] = (70, 95)

    def __call__(self, rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Degrade clean ``rgb`` ``(3, H, W)`` in [0, 1]; returns float32 in [0, 1]."""
        shot = float(rng.uniform(0.0, self.shot_max))
        read = float(rng.uniform(0.0, self.read_max))
        if self.mosaic:
            raw = add_sensor_noise(bayer_mosaic(rgb), rng, shot=shot, read=read)
            rgb = demosaic_bilinear(np.clip(raw, 0.0, 1.0))
        else:
            rgb = add_sensor_noise(rgb, rng, shot=shot, read=read)
        quality = int(rng.integers(self.jpeg_quality[0], self.jpeg_quality[1] + 1))
        return jpeg_roundtrip(rgb, quality)

    def to_metadata(self) -> dict[str, Any]:
        """JSON-ready record of the settings."""
        return {
            "shot_max": self.shot_max,
            "read_max": self.read_max,
            "mosaic": self.mosaic,
            "jpeg_quality": list(self.jpeg_quality),
        }
