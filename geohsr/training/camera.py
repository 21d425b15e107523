"""Camera simulation for training: RGB rendered from spectra at a fixed, physical gain.

``rgb = clip(k * Cn @ s, 0, 1)`` with ``Cn`` the camera response normalised so a white
reflector reads (1, 1, 1) (DESIGN.md §1b) and ``k`` the exposure, drawn log-uniformly from a
wide range (aerial RGB with a calibrated gain is dark). The target is ``k * s``: the cube in
the input's radiometric scale. No per-image brightness normalisation, so nothing teaches the
network to guess absolute level from image statistics.

:class:`CameraSampler` draws per sample a camera (one listed, or a random convex mixture of the
pool), a small spectral shift, a white-balance error, the exposure, 8-bit quantisation, and
whether the camera counts as known to the model (it then gets the response: camera-aware base
and metamer projection) or not; optionally a smooth random spectral tilt of the spectra
themselves (:func:`spectral_tilt_factor`), so the network meets spectra beyond the few
training scenes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from geohsr.exceptions import InputError
from geohsr.spectral import N_BANDS
from geohsr.spectral.cameras import CameraResponse, normalise_css
from geohsr.spectral.render import quantization_step, quantize, render_fixed_gain, shift_css


@dataclass(frozen=True)
class RenderedSample:
    """One rendering: ``rgb`` (3, H, W) in [0, 1], ``target`` (31, H, W) = exposure x spectra,
    ``css`` the normalised response used (3, 31), ``exposure`` k and ``known`` (whether the
    model is told the camera)."""

    rgb: np.ndarray
    target: np.ndarray
    css: np.ndarray
    exposure: float
    known: bool


#: largest spectral tilt accepted: log-scale coefficients of sd 1 already change a spectrum's
#: ends by factors of e^2 and more; larger ones overflow or only make noise
MAX_SPECTRAL_TILT = 1.0


def check_spectral_tilt(value: float) -> float:
    """``value`` if it is a usable spectral tilt (0 to :data:`MAX_SPECTRAL_TILT`), else
    :class:`InputError`."""
    if not 0.0 <= value <= MAX_SPECTRAL_TILT:  # NaN fails too
        raise InputError(
            f"spectral tilt must be between 0 (off) and {MAX_SPECTRAL_TILT:g}, got {value}; "
            "0.1-0.3 are the values tried"
        )
    return value


@dataclass(frozen=True)
class CameraSampling:
    """How :class:`CameraSampler` varies the camera per sample.

    mix_prob: probability of a random convex mixture (Dirichlet weights) of 2-3 cameras from
    the pool instead of one listed camera. shift_nm: maximum spectral shift (uniform, nm).
    wb_jitter: standard deviation of the log per-channel white-balance error. exposure: range
    of k, drawn log-uniformly. quantize_prob: probability of 8-bit quantisation.
    known_prob: probability that the model is given the camera response.
    spectral_tilt: standard deviation of the coefficients of :func:`spectral_tilt_factor`
    (0: spectra as they are).
    """

    mix_prob: float = 0.0
    shift_nm: float = 0.0
    wb_jitter: float = 0.0
    exposure: tuple[float, float] = (0.05, 1.5)
    quantize_prob: float = 0.0
    known_prob: float = 0.0
    spectral_tilt: float = 0.0

    def __post_init__(self) -> None:
        check_spectral_tilt(self.spectral_tilt)

    def to_metadata(self) -> dict[str, Any]:
        """JSON-ready record of the sampling settings."""
        return {
            "mix_prob": self.mix_prob,
            "shift_nm": self.shift_nm,
            "wb_jitter": self.wb_jitter,
            "exposure": list(self.exposure),
            "quantize_prob": self.quantize_prob,
            "known_prob": self.known_prob,
            "spectral_tilt": self.spectral_tilt,
        }


def spectral_tilt_factor(
    rng: np.random.Generator, strength: float, n_bands: int = N_BANDS
) -> np.ndarray:
    """A smooth positive factor ``(n_bands,)`` float32 with mean 1:
    ``exp(a * P1(t) + b * P2(t))`` over t in [-1, 1] spanning the bands (Legendre
    polynomials), ``a, b ~ N(0, strength)``. Multiplying a reflectance cube by it gives the
    spectra of other, similar materials (or the same ones under another light): a tilt of
    +-``strength`` in log across 400-700 nm and a bow of the same size."""
    t = np.linspace(-1.0, 1.0, n_bands)
    a, b = rng.normal(0.0, strength, size=2)
    factor = np.exp(a * t + b * (1.5 * t**2 - 0.5))
    return (factor / factor.mean()).astype(np.float32)


class CameraSampler:
    """Draws a camera per sample and renders RGB from spectra at a fixed gain.

    ``cameras``: the listed cameras (uniform choice). ``mixture_pool``: cameras mixed when a
    mixture is drawn (default: ``cameras``; mixtures need at least two).
    """

    def __init__(
        self,
        cameras: Sequence[CameraResponse],
        sampling: CameraSampling = CameraSampling(),
        mixture_pool: Sequence[CameraResponse] | None = None,
    ) -> None:
        if not cameras:
            raise InputError("CameraSampler needs at least one camera")
        self.cameras = list(cameras)
        self.sampling = sampling
        self.mixture_pool = list(mixture_pool) if mixture_pool is not None else self.cameras

    def sample_css(self, rng: np.random.Generator) -> np.ndarray:
        """One normalised response ``(3, 31)`` float32 drawn with ``rng`` (white balance and
        its error included)."""
        s = self.sampling
        if len(self.mixture_pool) >= 2 and rng.random() < s.mix_prob:
            count = int(rng.integers(2, min(3, len(self.mixture_pool)) + 1))
            chosen = rng.choice(len(self.mixture_pool), size=count, replace=False)
            weights = rng.dirichlet(np.ones(count))
            css = sum(
                w * self.mixture_pool[i].normalised for w, i in zip(weights, chosen, strict=True)
            )
        else:
            css = self.cameras[int(rng.integers(len(self.cameras)))].css
        if s.shift_nm > 0:
            css = shift_css(css, float(rng.uniform(-s.shift_nm, s.shift_nm)))
        css = normalise_css(css)
        if s.wb_jitter > 0:
            css = css * np.exp(rng.normal(0.0, s.wb_jitter, size=(3, 1))).astype(np.float32)
        return np.asarray(css, dtype=np.float32)

    def sample_exposure(self, rng: np.random.Generator) -> float:
        """Exposure ``k``, log-uniform over :attr:`CameraSampling.exposure`."""
        low, high = self.sampling.exposure
        return float(math.exp(rng.uniform(math.log(low), math.log(high))))

    def render(self, cube: np.ndarray, rng: np.random.Generator) -> RenderedSample:
        """Render ``cube`` (31, H, W) reflectance with a random camera and exposure (and
        spectral tilt: the target is then the tilted cube)."""
        s = self.sampling
        if s.spectral_tilt > 0:
            cube = cube * spectral_tilt_factor(rng, s.spectral_tilt, cube.shape[0])[:, None, None]
        css = self.sample_css(rng)
        exposure = self.sample_exposure(rng)
        rgb = render_fixed_gain(cube, css, exposure)
        if rng.random() < s.quantize_prob:
            rgb = quantize(rgb)
        known = bool(rng.random() < s.known_prob)
        return RenderedSample(rgb, cube * np.float32(exposure), css, exposure, known)

    @property
    def fixed_render_step(self) -> float:
        """The quantisation step of :meth:`render_fixed`'s RGB: one 8-bit level when the
        sampling quantises at all, else 0 (float RGB)."""
        return quantization_step(8) if self.sampling.quantize_prob > 0 else 0.0

    def render_fixed(self, cube: np.ndarray, camera_index: int = 0) -> np.ndarray:
        """Deterministic RGB with listed camera ``camera_index`` at exposure 1 (a white
        reflector reads 1; validation and evaluation), 8-bit quantised when the sampling
        quantises at all."""
        rgb = render_fixed_gain(cube, self.cameras[camera_index].normalised, 1.0)
        return quantize(rgb) if self.sampling.quantize_prob > 0 else rgb

    def to_metadata(self) -> dict[str, Any]:
        """Record of the cameras and sampling (stored as ``"camera"`` in exported weights)."""
        return {
            "cameras": [c.to_metadata() for c in self.cameras],
            "mixture_pool": [c.name for c in self.mixture_pool],
            "sampling": self.sampling.to_metadata(),
            "exposure_rule": (
                "fixed gain: rgb = clip(k * Cn @ s), Cn normalised so a white reflector reads "
                "(1, 1, 1), k log-uniform over the exposure range; target k * s"
            ),
        }
