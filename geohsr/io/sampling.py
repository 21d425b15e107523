"""Spectra of a cube at points: reproject the points to the cube's CRS (pyproj), find their
pixels through the cube's geotransform, read the 31 values there, write a CSV with one
column per wavelength (``nm_400`` ... ``nm_700``)."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xarray as xr
from affine import Affine
from pyproj import CRS, Transformer

from geohsr.exceptions import InputError
from geohsr.io.cube import CubeGrid
from geohsr.io.output import write_text_atomically
from geohsr.io.points import PointTable
from geohsr.spectral import WAVELENGTHS_NM

#: the spectrum's columns in the output CSV
SPECTRUM_COLUMNS = tuple(f"nm_{int(nm)}" for nm in WAVELENGTHS_NM)
#: the pixel (0-based column, row) each point fell in, empty when outside the cube
PIXEL_COLUMNS = ("col", "row")
#: significant digits of the written values (the cube's default rounding is 2^-13)
VALUE_DIGITS = 7

Pixel = tuple[int, int] | None


@dataclass(frozen=True)
class SampledSpectra:
    """Each point's pixel ``(col, row)`` (``None`` outside the cube or without coordinates)
    and spectrum ``(n, 31)`` (NaN outside the cube or at nodata)."""

    pixels: list[Pixel]
    spectra: np.ndarray

    @property
    def n_outside(self) -> int:
        """Points that fall in no pixel of the cube."""
        return sum(pixel is None for pixel in self.pixels)


def points_to_pixels(
    xs: Sequence[float],
    ys: Sequence[float],
    transform: Affine,
    shape: tuple[int, int],
    transformer: Transformer | None = None,
) -> list[Pixel]:
    """The ``(col, row)`` pixel of each point (``None`` outside ``shape`` = (height, width));
    ``transformer`` first takes the points to the cube's CRS."""
    x, y = np.asarray(xs, dtype=float), np.asarray(ys, dtype=float)
    if transformer is not None and x.size:
        x, y = transformer.transform(x, y, errcheck=False)
    cols, rows = ~transform * (np.asarray(x, dtype=float), np.asarray(y, dtype=float))
    height, width = shape
    pixels: list[Pixel] = []
    for col, row in zip(np.atleast_1d(cols), np.atleast_1d(rows), strict=True):
        inside = bool(0 <= col < width and 0 <= row < height)  # False for NaN
        pixels.append((int(col), int(row)) if inside else None)
    return pixels


def cube_transformer(points_crs: CRS | None, cube: xr.DataArray) -> Transformer | None:
    """From the points' CRS to the cube's (``None`` when either is unknown or they are
    equal: the coordinates are then taken as they are)."""
    cube_crs = cube.rio.crs
    if points_crs is None or cube_crs is None:
        return None
    target = CRS.from_user_input(cube_crs.to_wkt())
    if points_crs == target:
        return None
    return Transformer.from_crs(points_crs, target, always_xy=True)


def sample_spectra(cube: xr.DataArray, points: PointTable, crs: CRS | None) -> SampledSpectra:
    """The spectra of ``cube`` (``(wavelength, y, x)``, reflectance) at ``points``, whose
    coordinates are in ``crs`` (``None``: the cube's)."""
    grid = CubeGrid.from_dataarray(cube)
    if grid.georeference != "affine":
        raise InputError(
            f"the cube has no geotransform (georeference: {grid.georeference}), so points "
            "cannot be placed on it; reconstruct it with --warp CRS to get a map grid"
        )
    shape = (grid.height, grid.width)
    pixels = points_to_pixels(
        points.xs, points.ys, grid.transform, shape, cube_transformer(crs, cube)
    )
    spectra = np.full((len(pixels), len(WAVELENGTHS_NM)), np.nan, dtype=np.float64)
    inside = [i for i, pixel in enumerate(pixels) if pixel is not None]
    if inside:
        cols = xr.DataArray([pixels[i][0] for i in inside], dims="point")
        rows = xr.DataArray([pixels[i][1] for i in inside], dims="point")
        values = cube.isel(x=cols, y=rows).transpose("point", "wavelength").values
        spectra[inside] = values
    return SampledSpectra(pixels, spectra)


def _cell(value: float) -> str:
    """A spectrum value as written (empty for NaN)."""
    return "" if not math.isfinite(value) else f"{value:.{VALUE_DIGITS}g}"


def spectra_csv(points: PointTable, sampled: SampledSpectra) -> str:
    """The CSV text: the points' columns, ``col``, ``row`` and one column per wavelength
    (a point column with one of those names is replaced)."""
    added = (*PIXEL_COLUMNS, *SPECTRUM_COLUMNS)
    columns = [name for name in points.columns if name not in added] + list(added)
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row, pixel, spectrum in zip(points.rows, sampled.pixels, sampled.spectra, strict=True):
        values = dict(row)
        values.update(zip(PIXEL_COLUMNS, pixel or ("", ""), strict=True))
        values.update(zip(SPECTRUM_COLUMNS, (_cell(v) for v in spectrum), strict=True))
        writer.writerow(values)
    return text.getvalue()


def write_spectra_csv(path: str | Path, points: PointTable, sampled: SampledSpectra) -> Path:
    """Write :func:`spectra_csv` to ``path`` (atomically)."""
    path = Path(path)
    write_text_atomically(path, spectra_csv(points, sampled))
    return path
