"""Spectral constants shared by every part of the package."""

from __future__ import annotations

import numpy as np

#: Output band centres in nm: 400, 410, ..., 700 (31 bands).
WAVELENGTHS_NM: np.ndarray = np.arange(400, 701, 10, dtype=np.int32)
N_BANDS: int = len(WAVELENGTHS_NM)
