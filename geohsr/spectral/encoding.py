"""Input encodings: how the stored RGB values relate to linear light.

The models take linear RGB (proportional to radiance / reflectance). Camera JPEGs and most
"true colour" products are sRGB-encoded: the IEC 61966-2-1 transfer curve has to be removed
first (``--input-encoding srgb``). Raw, radiometric or surface-reflectance bands are already
linear (``--input-encoding linear``).
"""

from __future__ import annotations

import numpy as np

from geohsr.exceptions import InputError

INPUT_ENCODINGS = ("linear", "srgb")


def srgb_to_linear(values: np.ndarray) -> np.ndarray:
    """Remove the sRGB transfer curve (IEC 61966-2-1): values in [0, 1], same shape, float32."""
    v = np.clip(np.asarray(values, dtype=np.float32), 0.0, 1.0)
    return np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4).astype(np.float32)


def linear_to_srgb(values: np.ndarray) -> np.ndarray:
    """Apply the sRGB transfer curve to linear values in [0, 1]; float32."""
    v = np.clip(np.asarray(values, dtype=np.float32), 0.0, 1.0)
    return np.where(v <= 0.0031308, v * 12.92, 1.055 * v ** (1 / 2.4) - 0.055).astype(np.float32)


def decode_input(values: np.ndarray, encoding: str) -> np.ndarray:
    """Linear RGB from ``values`` in [0, 1] stored with ``encoding`` (``linear`` or ``srgb``)."""
    if encoding == "linear":
        return values
    if encoding == "srgb":
        return srgb_to_linear(values)
    raise InputError(
        f"unknown input encoding {encoding!r}; use one of {', '.join(INPUT_ENCODINGS)}"
    )
