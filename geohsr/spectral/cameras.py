"""Camera spectral sensitivities (CSS): tables ``(3, 31)`` (rows R, G, B; 400..700 nm / 10 nm).

Sources:

- ``cie1964``: the CIE 1964 10 degree colour matching functions (x-bar, y-bar, z-bar used as
  R, G, B), as the NTIRE 2020 clean track did. Stored below as a constant table (values of
  colour-science's ``MSDS_CMFS["CIE 1964 10 Degree Standard Observer"]`` at 10 nm).
- any of the 28 cameras of Jiang et al., "What is the space of spectral sensitivity functions
  for digital color cameras?", WACV 2013, by name (``Canon 5DMarkII``, case-insensitive), or
  ``jiang28`` for all of them, read from ``camera_sensitivities_jiang28.npz``
  (``$GEOHSR_CAMERA_SENSITIVITIES`` or the shared data folder).
- cameras recorded in a weights file's metadata (its training cameras), by name.
- a user CSV with columns ``wavelength,r,g,b`` (nm), resampled linearly to the 31 bands.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from geohsr.exceptions import InputError
from geohsr.shared_data import shared_data_dir
from geohsr.spectral import WAVELENGTHS_NM

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

    @property
    def normalised(self) -> np.ndarray:
        """``(3, 31)`` float32 response scaled per channel so a flat reflectance-1 spectrum
        renders to RGB (1, 1, 1) (the radiometric convention of :mod:`geohsr.spectral.render`)."""
        return normalise_css(self.css)


def normalise_css(css: np.ndarray) -> np.ndarray:
    """``css / css.sum(axis=-1)``: rows scaled so a flat spectrum of 1 renders to 1.

    Works on ``(3, 31)`` or stacked ``(..., 3, 31)`` tables. Raises :class:`InputError` for a
    channel with no sensitivity.
    """
    css = np.asarray(css, dtype=np.float64)
    sums = css.sum(axis=-1, keepdims=True)
    if (css < 0).any() or not np.isfinite(css).all():
        raise InputError("camera sensitivities must be finite and >= 0; check the table")
    if (sums <= 0).any():
        raise InputError("a camera channel has no sensitivity in 400-700 nm; check the table")
    return (css / sums).astype(np.float32)


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
        raise InputError(
            f"camera sensitivity database {path} not found; set GEOHSR_CAMERA_SENSITIVITIES "
            f"to {JIANG28_FILE}, or use --camera cie1964 or a CSV (wavelength,r,g,b)"
        )
    with np.load(path) as data:
        names = [str(n) for n in data["names"]]
        css = data["css"].astype(np.float32)  # (28, 3, 31)
        wavelengths = data["wavelengths_nm"]
    if not np.array_equal(wavelengths, WAVELENGTHS_NM):
        raise InputError(f"{path} is not sampled at 400..700 nm / 10 nm")
    return [CameraResponse(name, table) for name, table in zip(names, css, strict=True)]


def camera_from_csv(path: str | Path) -> CameraResponse:
    """Read a CSV ``wavelength,r,g,b`` (nm), resampled linearly to 400..700 nm / 10 nm.

    A header row is optional; when it names the columns (``wavelength``/``nm``, ``r``/``red``,
    ``g``/``green``, ``b``/``blue``, any case) they may come in any order. Blank lines and
    ``#`` comments are skipped. Raises :class:`InputError` for a missing or unreadable file,
    rows that are not four numbers, non-finite or negative values, a table that does not cover
    400-700 nm, or channels that are not independent (no camera could tell colours apart).
    """
    path = Path(path)
    try:
        with open(path, newline="") as fh:
            lines = [row for row in csv.reader(fh) if row and not row[0].lstrip().startswith("#")]
    except OSError as err:
        raise InputError(f"cannot read camera table {path} ({err.strerror or err})") from None
    lines = [[cell.strip() for cell in row] for row in lines if any(c.strip() for c in row)]
    order = [0, 1, 2, 3]
    if lines and not _is_number(lines[0][0]):
        order = _header_order(lines.pop(0), path)
    rows = []
    for number, row in enumerate(lines, start=1):
        if len(row) != 4 or not all(_is_number(c) for c in row):
            raise InputError(
                f"{path}: row {number} is {','.join(row)!r}; every row must be four numbers "
                "'wavelength,r,g,b' (nm, then the three channel sensitivities)"
            )
        rows.append([float(row[i]) for i in order])
    table = np.asarray(rows, dtype=np.float64)
    if len(table) < 2:
        raise InputError(f"{path}: expected CSV rows 'wavelength,r,g,b' (nm, three responses)")
    if not np.isfinite(table).all() or (table[:, 1:] < 0).any():
        raise InputError(f"{path}: sensitivities must be finite and >= 0 (found NaN/inf or < 0)")
    table = table[np.argsort(table[:, 0])]
    if table[0, 0] > WAVELENGTHS_NM[0] or table[-1, 0] < WAVELENGTHS_NM[-1]:
        raise InputError(
            f"{path} covers {table[0, 0]:g}-{table[-1, 0]:g} nm; a camera table must cover "
            f"{WAVELENGTHS_NM[0]}-{WAVELENGTHS_NM[-1]} nm"
        )
    css = np.stack([np.interp(WAVELENGTHS_NM, table[:, 0], table[:, c]) for c in (1, 2, 3)])
    if css.max() <= 0:
        raise InputError(f"{path}: every sensitivity is 0 in 400-700 nm")
    css = css / css.max()
    check_independent(css, str(path))
    return CameraResponse(path.stem, css.astype(np.float32))


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


_HEADER_NAMES = {
    0: ("wavelength", "wavelength_nm", "nm", "lambda", "wl"),
    1: ("r", "red"),
    2: ("g", "green"),
    3: ("b", "blue"),
}


def _header_order(header: list[str], path: Path) -> list[int]:
    """Column index of wavelength, r, g, b from a header row (positional if it names none)."""
    names = [h.lower() for h in header]
    found = {}
    for target, aliases in _HEADER_NAMES.items():
        hits = [i for i, name in enumerate(names) if name in aliases]
        if hits:
            found[target] = hits[0]
    if not found:
        return [0, 1, 2, 3]
    if len(found) != 4 or len(header) != 4:
        raise InputError(
            f"{path}: header {','.join(header)!r} must name the four columns wavelength,r,g,b"
        )
    return [found[i] for i in range(4)]


def check_independent(css: np.ndarray, name: str) -> None:
    """Raise :class:`InputError` when the three channel responses are (nearly) linearly
    dependent: the metamer projection and any RGB-to-spectrum map need three channels."""
    singular = np.linalg.svd(normalise_css(css).astype(np.float64), compute_uv=False)
    if singular[-1] < 1e-6 * singular[0]:
        raise InputError(
            f"camera {name}: the r, g and b responses are not independent (two channels are "
            "the same or one is a mix of the others); check the table"
        )


def resolve_cameras(
    specs: Sequence[str], known: Sequence[CameraResponse] = ()
) -> list[CameraResponse]:
    """Turn camera specs into responses.

    A spec is ``cie1964``, ``jiang28`` (all 28), the name of a camera in ``known`` (e.g. the
    training cameras recorded in a weights file) or of a Jiang et al. camera
    (case-insensitive), or a CSV path. Raises :class:`InputError` for unknown names.
    """
    cameras: list[CameraResponse] = []
    by_name = {c.name.lower(): c for c in known}
    for spec in specs:
        key = spec.lower()
        if key == CIE1964:
            cameras.append(cie1964())
        elif key == ALL_JIANG28:
            cameras.extend(jiang28_cameras())
        elif key.endswith(".csv"):
            cameras.append(camera_from_csv(spec))
        elif key in by_name:
            cameras.append(by_name[key])
        else:
            cameras.append(_jiang28_by_name(spec, known))
    if not cameras:
        raise InputError("no camera given; pass --camera cie1964 (or a camera name / CSV)")
    return cameras


def _jiang28_by_name(spec: str, known: Sequence[CameraResponse]) -> CameraResponse:
    path = jiang28_path()
    database = {c.name.lower(): c for c in jiang28_cameras(path)} if path.is_file() else {}
    if spec.lower() in database:
        return database[spec.lower()]
    names = sorted({c.name for c in known} | {c.name for c in database.values()})
    where = (
        ""
        if database
        else f" (the 28-camera database {path} is not available: set "
        f"GEOHSR_CAMERA_SENSITIVITIES to your copy of {JIANG28_FILE})"
    )
    raise InputError(
        f"unknown camera {spec!r}{where}; use cie1964, a CSV file (wavelength,r,g,b) or one "
        f"of: {', '.join(names) or '(none)'}"
    )
