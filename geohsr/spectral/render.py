"""Rendering spectra to RGB through a camera response, and the radiometric convention.

Convention (DESIGN.md §1b): a response ``C`` (3, 31) is normalised per channel so that a flat
reflectance-1 spectrum renders to RGB (1, 1, 1): ``Cn = C / C.sum(axis=1)``. Linear RGB in
[0, 1] is then ``clip(k * Cn @ s)`` for a spectrum ``s`` and an exposure ``k`` (k = 1: a white
reflector reads 1). The cube geohsr returns for RGB ``rgb`` is in the same scale:
``Cn @ cube ~= rgb``.
"""

from __future__ import annotations

import numpy as np

from geohsr.spectral import WAVELENGTHS_NM


def linear_rgb(cube: np.ndarray, css: np.ndarray) -> np.ndarray:
    """Unclipped camera response: ``(31, H, W)`` spectra x ``(3, 31)`` CSS -> ``(3, H, W)``."""
    return np.einsum("cl,lhw->chw", css, cube, optimize=True).astype(np.float32)


def white_balance(css: np.ndarray) -> np.ndarray:
    """Per-channel gains ``(3,)`` making a flat reflectance-1 spectrum map to (1, 1, 1)."""
    return (1.0 / css.sum(axis=1)).astype(np.float32)


def exposure_gain(
    reference: np.ndarray,
    css: np.ndarray,
    *,
    level: float = 0.9,
    percentile: float = 99.0,
    max_gain: float = 4.0,
) -> np.ndarray:
    """Gains ``(3,)``: white balance, then a scalar so the ``percentile`` of the brightest
    white-balanced channel of ``reference`` (a ``(31, h, w)`` view of the scene) is ``level``.

    The scalar is capped at ``max_gain`` (a white reflector then reads ``max_gain``) so a
    nearly black scene is not amplified without bound.
    """
    balance = white_balance(css)
    balanced = linear_rgb(reference, css) * balance[:, None, None]  # (3, h, w)
    bright = float(np.percentile(balanced.max(axis=0), percentile))
    scale = min(level / max(bright, 1e-6), max_gain)
    return (balance * scale).astype(np.float32)


def render_rgb(cube: np.ndarray, css: np.ndarray, gain: np.ndarray | float) -> np.ndarray:
    """``clip(gain * CSS^T * spectrum, 0, 1)``: ``(31, H, W)`` -> ``(3, H, W)`` float32."""
    gain = np.broadcast_to(np.asarray(gain, dtype=np.float32), (3,))
    return np.clip(linear_rgb(cube, css) * gain[:, None, None], 0.0, 1.0)


def shift_css(css: np.ndarray, shift_nm: float) -> np.ndarray:
    """The response moved by ``shift_nm`` along the wavelength axis (edge values held)."""
    source = WAVELENGTHS_NM - shift_nm
    return np.stack([np.interp(source, WAVELENGTHS_NM, row) for row in css]).astype(np.float32)


def render_fixed_gain(
    spectra: np.ndarray, css_normalised: np.ndarray, exposure: float = 1.0
) -> np.ndarray:
    """Linear RGB ``clip(exposure * Cn @ s, 0, 1)`` of ``(31, H, W)`` spectra, float32.

    ``css_normalised`` is ``Cn`` (see :func:`geohsr.spectral.cameras.normalise_css`); at
    ``exposure`` 1 a white reflector reads (1, 1, 1). No per-image normalisation.
    """
    return render_rgb(spectra, css_normalised, float(exposure))


def quantization_step(bits: int = 8) -> float:
    """One level of a ``bits``-bit integer image scaled to [0, 1]: ``1 / (2^bits - 1)``."""
    return 1.0 / float(2**bits - 1)


def quantize(rgb: np.ndarray, bits: int = 8) -> np.ndarray:
    """Round ``rgb`` in [0, 1] to ``bits``-bit levels (an integer image read back / (2^bits-1))."""
    levels = float(2**bits - 1)
    return (np.round(np.clip(rgb, 0.0, 1.0) * levels) / levels).astype(np.float32)
