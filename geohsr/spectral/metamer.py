"""Metamer sets: the spectra that render exactly to a given RGB through a known camera.

For a normalised response ``Cn`` (3, 31), the spectra ``s`` with ``Cn s = rgb`` are
``s = A rgb + b`` with the fundamental-metamer matrix ``A = Cn^T (Cn Cn^T)^-1`` (31, 3) and
any metameric black ``b`` (``Cn b = 0``). Projecting a reconstruction ``p`` onto that set,
``p + A (rgb - Cn p)``, keeps its metameric black and replaces the rest by what the RGB says:
Lin & Finlayson, "Physically Plausible Spectral Reconstruction", Sensors 20(21), 2020.
"""

from __future__ import annotations

import numpy as np

#: RGB values at or above this level are treated as clipped (saturated) and not projected.
SATURATION_LEVEL = 1.0 - 0.5 / 255.0


def fundamental_metamer_matrix(css_normalised: np.ndarray) -> np.ndarray:
    """``A = Cn^T (Cn Cn^T)^-1``, shape ``(31, 3)`` float64 (``Cn A = I``).

    ``css_normalised`` is ``(3, 31)`` (see :func:`geohsr.spectral.cameras.normalise_css`).
    """
    cn = np.asarray(css_normalised, dtype=np.float64)
    return cn.T @ np.linalg.inv(cn @ cn.T)


def project_to_metamer_set(
    spectra: np.ndarray,
    rgb: np.ndarray,
    css_normalised: np.ndarray,
    *,
    iterations: int = 10,
    saturation: float = SATURATION_LEVEL,
) -> np.ndarray:
    """Project spectra ``(31, H, W)`` onto the metamer set of ``rgb`` ``(3, H, W)``, >= 0.

    Alternates the exact projection with clipping at 0 (``iterations`` times), so the result is
    non-negative and renders to ``rgb`` up to what clipping leaves. Pixels with a channel at or
    above ``saturation`` keep their spectrum (clipped at 0). Returns float32.
    """
    cn = np.asarray(css_normalised, dtype=np.float64)
    a = fundamental_metamer_matrix(cn)
    s = np.asarray(spectra, dtype=np.float64)
    rgb = np.asarray(rgb, dtype=np.float64)
    unclipped = (rgb < saturation).all(axis=0)  # (H, W)
    for _ in range(iterations):
        gap = rgb - np.einsum("cl,lhw->chw", cn, s)
        s = s + np.einsum("lc,chw->lhw", a, gap) * unclipped
        s = np.clip(s, 0.0, None)
    return s.astype(np.float32)


def rerender_error(spectra: np.ndarray, rgb: np.ndarray, css_normalised: np.ndarray) -> np.ndarray:
    """``|Cn s - rgb|`` maximised over channels: ``(H, W)`` float64 (rgb units)."""
    rendered = np.einsum("cl,lhw->chw", np.asarray(css_normalised, np.float64), spectra)
    return np.abs(rendered - np.asarray(rgb, np.float64)).max(axis=0)
