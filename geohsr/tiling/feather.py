"""Feather weights: how much each window's prediction counts at each of its pixels.

Weights rise from a small ``floor`` at the window edge to 1 over ``ramp`` pixels with a
raised cosine (``sin^2``) and stay 1 inside. Two windows that overlap by exactly
``ramp`` pixels have complementary ramps (``sin^2 + cos^2 = 1``), so the blend is a
smooth cross-fade; the floor keeps every covered pixel's weight sum above zero.
"""

from __future__ import annotations

import numpy as np

#: weight at a window's outermost pixels (relative to 1 in the window centre)
DEFAULT_FLOOR = 1e-3


def feather_profile(length: int, ramp: int, floor: float = DEFAULT_FLOOR) -> np.ndarray:
    """1-D weights ``(length,)`` float64: raised-cosine ramps of ``ramp`` pixels at both ends.

    ``ramp`` is capped at ``length // 2``; ``ramp = 0`` gives all ones.
    """
    if length < 1 or ramp < 0 or not 0 < floor <= 1:
        raise ValueError(
            f"need length >= 1, ramp >= 0, 0 < floor <= 1; got {length}, {ramp}, {floor}"
        )
    ramp = min(ramp, length // 2)
    if ramp == 0:
        return np.ones(length)
    index = np.arange(length)
    distance = np.minimum(index, length - 1 - index)  # pixels to the nearest edge
    t = np.clip((distance + 0.5) / ramp, 0.0, 1.0)
    rise = np.sin(0.5 * np.pi * t) ** 2
    return floor + (1.0 - floor) * rise


def feather_weights(height: int, width: int, ramp: int, floor: float = DEFAULT_FLOOR) -> np.ndarray:
    """2-D weights ``(height, width)`` float32: outer product of two :func:`feather_profile`."""
    rows = feather_profile(height, ramp, floor)
    cols = feather_profile(width, ramp, floor)
    return np.outer(rows, cols).astype(np.float32)
