"""Camera simulation: RGB from a 31-band cube, ``rgb = clip(gain * CSS^T * spectrum, 0, 1)``.

A camera is a spectral sensitivity table (CSS), shape ``(3, 31)`` (rows R, G, B; columns
400, 410, ..., 700 nm). Sources:

- ``cie1964``: the CIE 1964 10 degree colour matching functions (x-bar, y-bar, z-bar used as
  R, G, B), as the NTIRE 2020 clean track did. Stored below as a constant table (values of
  colour-science's ``MSDS_CMFS["CIE 1964 10 Degree Standard Observer"]`` at 10 nm).
- any of the 28 cameras of Jiang et al. (2013) by name (``Canon 5DMarkII``, case-insensitive),
  or ``jiang28`` for all of them, read from ``camera_sensitivities_jiang28.npz``.
- a user CSV with columns ``wavelength,r,g,b`` (nm), resampled linearly to the 31 bands.

Exposure: per-channel white balance (a perfect white reflector gives equal R, G, B), then one
scalar gain so that the ``percentile``-th percentile of the brightest channel lands on a target
level drawn from ``exposure`` (default 0.8-1.0). Values above 1 clip, as in a real sensor.
:class:`CameraSampler` draws a camera per sample, optionally a random convex mixture of the
camera pool, a small spectral shift and a white-balance error, for robustness to unseen cameras.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from geohsr.exceptions import InputError, TrainingError
from geohsr.spectral import WAVELENGTHS_NM
from geohsr.training.shared_data import shared_data_dir

# CIE 1964 10 degree standard observer, (31, 3): x-bar, y-bar, z-bar at 400..700 nm / 10 nm.
_CIE1964_10DEG = (
    (0.019110, 0.002004, 0.086011),  # 400 nm
    (0.084736, 0.008756, 0.389366),  # 410 nm
    (0.204492, 0.021391, 0.972542),  # 420 nm
    (0.314679, 0.038676, 1.553480),  # 430 nm
    (0.383734, 0.062077, 1.967280),  # 440 nm
    (0.370702, 0.089456, 1.994800),  # 450 nm
    (0.302273, 0.128201, 1.745370),  # 460 nm
    (0.195618, 0.185190, 1.317560),  # 470 nm
    (0.080507, 0.253589, 0.772125),  # 480 nm
    (0.016172, 0.339133, 0.415254),  # 490 nm
    (0.003816, 0.460777, 0.218502),  # 500 nm
    (0.037465, 0.606741, 0.112044),  # 510 nm
    (0.117749, 0.761757, 0.060709),  # 520 nm
    (0.236491, 0.875211, 0.030451),  # 530 nm
    (0.376772, 0.961988, 0.013676),  # 540 nm
    (0.529826, 0.991761, 0.003988),  # 550 nm
    (0.705224, 0.997340, 0.000000),  # 560 nm
    (0.878655, 0.955552, 0.000000),  # 570 nm
    (1.014160, 0.868934, 0.000000),  # 580 nm
    (1.118520, 0.777405, 0.000000),  # 590 nm
    (1.123990, 0.658341, 0.000000),  # 600 nm
    (1.030480, 0.527963, 0.000000),  # 610 nm
    (0.856297, 0.398057, 0.000000),  # 620 nm
    (0.647467, 0.283493, 0.000000),  # 630 nm
    (0.431567, 0.179828, 0.000000),  # 640 nm
    (0.268329, 0.107633, 0.000000),  # 650 nm
    (0.152568, 0.060281, 0.000000),  # 660 nm
    (0.081261, 0.031800, 0.000000),  # 670 nm
    (0.040851, 0.015905, 0.000000),  # 680 nm
    (0.019941, 0.007749, 0.000000),  # 690 nm
    (0.009577, 0.003718, 0.000000),  # 700 nm
)

CIE1964 = "cie1964"
ALL_JIANG28 = "jiang28"
JIANG28_FILE = "camera_sensitivities_jiang28.npz"


@dataclass(frozen=True)
class CameraResponse:
    """A named camera spectral sensitivity table ``css`` (3, 31) float32 (R, G, B rows)."""

    name: str
    css: np.ndarray

    def to_metadata(self) -> dict[str, Any]:
        """JSON-ready record (stored under ``"camera"`` in exported weights)."""
        return {
            "name": self.name,
            "wavelengths_nm": [int(w) for w in WAVELENGTHS_NM],
            "css_rgb": [[round(float(v), 6) for v in row] for row in self.css],
        }

    @classmethod
    def from_metadata(cls, record: dict[str, Any]) -> CameraResponse:
        """Inverse of :meth:`to_metadata`."""
        return cls(record["name"], np.asarray(record["css_rgb"], dtype=np.float32))


def cie1964() -> CameraResponse:
    """The CIE 1964 10 degree colour matching functions as an RGB camera."""
    return CameraResponse(CIE1964, np.asarray(_CIE1964_10DEG, dtype=np.float32).T.copy())


def jiang28_path() -> Path:
    """``$GEOHSR_CAMERA_SENSITIVITIES`` or ``<shared data>/camera_sensitivities_jiang28.npz``."""
    if env := os.environ.get("GEOHSR_CAMERA_SENSITIVITIES"):
        return Path(env)
    return shared_data_dir() / JIANG28_FILE


def jiang28_cameras(path: str | Path | None = None) -> list[CameraResponse]:
    """The 28 cameras of Jiang et al. (2013), each normalised to a maximum of 1."""
    path = Path(path) if path is not None else jiang28_path()
    if not path.is_file():
        raise TrainingError(
            f"camera sensitivity database {path} not found; set GEOHSR_CAMERA_SENSITIVITIES "
            f"to {JIANG28_FILE}, or use --camera cie1964 or a CSV (wavelength,r,g,b)"
        )
    with np.load(path) as data:
        names = [str(n) for n in data["names"]]
        css = data["css"].astype(np.float32)  # (28, 3, 31)
        wavelengths = data["wavelengths_nm"]
    if not np.array_equal(wavelengths, WAVELENGTHS_NM):
        raise TrainingError(f"{path} is not sampled at 400..700 nm / 10 nm")
    return [CameraResponse(name, table) for name, table in zip(names, css, strict=True)]


def camera_from_csv(path: str | Path) -> CameraResponse:
    """Read a CSV ``wavelength,r,g,b`` (nm; header optional), resampled to 400..700 nm / 10 nm.

    Raises :class:`InputError` when the table does not cover 400-700 nm.
    """
    path = Path(path)
    rows = []
    with open(path, newline="") as fh:
        for row in csv.reader(fh):
            try:
                rows.append([float(v) for v in row[:4]])
            except ValueError:
                continue  # header or comment line
    table = np.asarray(rows, dtype=np.float64)
    if table.ndim != 2 or table.shape[1] != 4 or len(table) < 2:
        raise InputError(f"{path}: expected CSV rows 'wavelength,r,g,b' (nm, three responses)")
    table = table[np.argsort(table[:, 0])]
    if table[0, 0] > WAVELENGTHS_NM[0] or table[-1, 0] < WAVELENGTHS_NM[-1]:
        raise InputError(
            f"{path} covers {table[0, 0]:g}-{table[-1, 0]:g} nm; a camera table must cover "
            f"{WAVELENGTHS_NM[0]}-{WAVELENGTHS_NM[-1]} nm"
        )
    css = np.stack([np.interp(WAVELENGTHS_NM, table[:, 0], table[:, c]) for c in (1, 2, 3)])
    css = css / css.max()
    return CameraResponse(path.stem, css.astype(np.float32))


def resolve_cameras(specs: Sequence[str]) -> list[CameraResponse]:
    """Turn camera specs into responses: ``cie1964``, ``jiang28`` (all 28), a Jiang camera
    name (case-insensitive) or a CSV path. Raises :class:`InputError` for unknown names."""
    cameras: list[CameraResponse] = []
    for spec in specs:
        if spec.lower() == CIE1964:
            cameras.append(cie1964())
        elif spec.lower() == ALL_JIANG28:
            cameras.extend(jiang28_cameras())
        elif spec.lower().endswith(".csv"):
            cameras.append(camera_from_csv(spec))
        else:
            known = {c.name.lower(): c for c in jiang28_cameras()}
            if spec.lower() not in known:
                raise InputError(
                    f"unknown camera {spec!r}; use cie1964, jiang28, a CSV file "
                    f"(wavelength,r,g,b) or one of: {', '.join(c.name for c in known.values())}"
                )
            cameras.append(known[spec.lower()])
    if not cameras:
        raise InputError("no camera given; pass --camera cie1964 (or a camera name / CSV)")
    return cameras


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


@dataclass(frozen=True)
class CameraSampling:
    """How :class:`CameraSampler` varies the camera per sample.

    mix_prob: probability of a random convex mixture (Dirichlet weights) of 2-3 cameras from
    the mixture pool instead of one listed camera. shift_nm: maximum spectral shift (uniform,
    nm). wb_jitter: standard deviation of the log per-channel white-balance error.
    exposure: range of the target level of the bright percentile. percentile: that percentile.
    """

    mix_prob: float = 0.0
    shift_nm: float = 0.0
    wb_jitter: float = 0.0
    exposure: tuple[float, float] = (0.8, 1.0)
    percentile: float = 99.0

    def to_metadata(self) -> dict[str, Any]:
        """JSON-ready record of the sampling settings."""
        return {
            "mix_prob": self.mix_prob,
            "shift_nm": self.shift_nm,
            "wb_jitter": self.wb_jitter,
            "exposure": list(self.exposure),
            "percentile": self.percentile,
        }


class CameraSampler:
    """Draws a camera (CSS + gains) per sample and renders RGB from spectra.

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
        """One sensitivity table ``(3, 31)`` float32 drawn with ``rng``."""
        s = self.sampling
        if len(self.mixture_pool) >= 2 and rng.random() < s.mix_prob:
            count = int(rng.integers(2, min(3, len(self.mixture_pool)) + 1))
            chosen = rng.choice(len(self.mixture_pool), size=count, replace=False)
            weights = rng.dirichlet(np.ones(count))
            css = sum(w * self.mixture_pool[i].css for w, i in zip(weights, chosen, strict=True))
            css = css / css.max()
        else:
            css = self.cameras[int(rng.integers(len(self.cameras)))].css
        if s.shift_nm > 0:
            css = shift_css(css, float(rng.uniform(-s.shift_nm, s.shift_nm)))
        return np.asarray(css, dtype=np.float32)

    def render(
        self, cube: np.ndarray, reference: np.ndarray, rng: np.random.Generator
    ) -> np.ndarray:
        """RGB ``(3, H, W)`` in [0, 1] of ``cube`` ``(31, H, W)`` with a random camera;
        ``reference`` ``(31, h, w)`` (e.g. a strided view of the whole scene) sets exposure."""
        s = self.sampling
        css = self.sample_css(rng)
        level = float(rng.uniform(*s.exposure))
        gain = exposure_gain(reference, css, level=level, percentile=s.percentile)
        if s.wb_jitter > 0:
            gain = gain * np.exp(rng.normal(0.0, s.wb_jitter, size=3)).astype(np.float32)
        return render_rgb(cube, css, gain)

    def render_fixed(self, cube: np.ndarray, camera_index: int = 0) -> np.ndarray:
        """Deterministic RGB with listed camera ``camera_index`` (validation/evaluation):
        white balance and the mid exposure level, no jitter."""
        css = self.cameras[camera_index].css
        level = float(np.mean(self.sampling.exposure))
        reference = cube[:, ::4, ::4]
        gain = exposure_gain(reference, css, level=level, percentile=self.sampling.percentile)
        return render_rgb(cube, css, gain)

    def to_metadata(self) -> dict[str, Any]:
        """Record of the cameras and sampling (stored as ``"camera"`` in exported weights)."""
        return {
            "cameras": [c.to_metadata() for c in self.cameras],
            "mixture_pool": [c.name for c in self.mixture_pool],
            "sampling": self.sampling.to_metadata(),
            "exposure_rule": (
                "white balance (flat reflectance 1 -> equal RGB), then a scalar gain putting "
                "the given percentile of the brightest channel at the exposure level; clip [0,1]"
            ),
        }
