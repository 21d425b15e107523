"""Read spectral rasters with their wavelengths and resample them to 400-700 nm / 10 nm.

Wavelengths are found, in order, in: per-band tags ``wavelength`` (+ ``wavelength_units``,
as in the CAVE GeoTIFFs), the ENVI header (``wavelength``, ``wavelength units``), band
descriptions like ``"450 nm"``; for Zarr, the coordinate of the band dimension. Units nm or
micrometres (converted). Raw values become reflectance through the raster's scale/offset, or a
``value_scale`` tag of the form ``"... DN / 65535"``; floats are used as stored.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import rasterio
from rasterio.errors import NotGeoreferencedWarning

from geohsr.exceptions import InputError
from geohsr.spectral import WAVELENGTHS_NM

#: Spectra may stop this far (nm) inside 400-700 nm; the edge value is held beyond.
COVERAGE_TOLERANCE_NM = 5.0
_NUMBER = re.compile(r"[-+]?\d+(?:\.\d+)?")
_MICRO_UNITS = ("um", "µm", "micrometer", "micrometers", "micron", "microns")


def _to_nm(values: list[float], units: str | None) -> np.ndarray:
    wavelengths = np.asarray(values, dtype=np.float64)
    if (units or "").strip().lower() in _MICRO_UNITS or (units is None and wavelengths.max() < 5):
        wavelengths = wavelengths * 1000.0
    return wavelengths


def raster_wavelengths(src: rasterio.DatasetReader) -> np.ndarray:
    """Band centre wavelengths (nm) of an open raster, or :class:`InputError`."""
    band_tags = [src.tags(b) for b in src.indexes]
    if all("wavelength" in t for t in band_tags):
        units = band_tags[0].get("wavelength_units")
        return _to_nm([float(t["wavelength"]) for t in band_tags], units)
    envi = src.tags(ns="ENVI")
    if "wavelength" in envi:
        values = [float(v) for v in _NUMBER.findall(envi["wavelength"])]
        if len(values) == src.count:
            return _to_nm(values, envi.get("wavelength_units") or envi.get("wavelength units"))
    descriptions = src.descriptions
    if all(descriptions) and all(_NUMBER.search(d) for d in descriptions):
        values = [float(_NUMBER.search(d).group()) for d in descriptions]
        units = "um" if all("um" in d.lower() or "µm" in d for d in descriptions) else "nm"
        return _to_nm(values, units)
    raise InputError(
        f"{src.name}: no band wavelengths found; add a 'wavelength' tag (nm) to each band or "
        "band descriptions like '450 nm'"
    )


def raster_value_scale(src: rasterio.DatasetReader) -> tuple[float, float]:
    """``(scale, offset)`` turning stored values into reflectance (see module docstring)."""
    scales, offsets = set(src.scales), set(src.offsets)
    if len(scales) == 1 and len(offsets) == 1 and (scales, offsets) != ({1.0}, {0.0}):
        return float(scales.pop()), float(offsets.pop())
    tag = src.tags().get("value_scale", "")
    match = re.search(r"/\s*(\d+(?:\.\d+)?)", tag)
    if match:
        return 1.0 / float(match.group(1)), 0.0
    if np.issubdtype(np.dtype(src.dtypes[0]), np.floating):
        return 1.0, 0.0
    raise InputError(
        f"{src.name}: integer values without a scale; set the band scale/offset (e.g. "
        "`gdal_edit.py -scale 0.0001`) or a 'value_scale' tag like 'reflectance = DN / 10000'"
    )


def resampling_matrix(wavelengths_nm: np.ndarray, *, hold_edges: bool = False) -> np.ndarray:
    """``(31, B)`` weights mapping B sensor bands to 400..700 nm / 10 nm.

    Each output band is the mean of the linearly interpolated spectrum over its 10 nm window
    (1 nm steps): a box average for fine sensors, linear interpolation for coarse ones.
    Raises :class:`InputError` if the sensor does not cover 400-700 nm, unless ``hold_edges``
    (outside its range the first / last sensor value is held; see :func:`covered_bands`).
    """
    order = np.argsort(wavelengths_nm)
    wl = np.asarray(wavelengths_nm, dtype=np.float64)[order]
    low, high = (
        WAVELENGTHS_NM[0] - COVERAGE_TOLERANCE_NM,
        WAVELENGTHS_NM[-1] + COVERAGE_TOLERANCE_NM,
    )
    if not hold_edges and (
        wl[0] > WAVELENGTHS_NM[0] + COVERAGE_TOLERANCE_NM
        or wl[-1] < WAVELENGTHS_NM[-1] - COVERAGE_TOLERANCE_NM
    ):
        raise InputError(
            f"the spectra cover {wl[0]:g}-{wl[-1]:g} nm but reconstruction needs "
            f"{WAVELENGTHS_NM[0]}-{WAVELENGTHS_NM[-1]} nm; use a sensor covering that range"
        )
    fine = (WAVELENGTHS_NM[:, None] + np.arange(-4.5, 5.0, 1.0)[None, :]).clip(
        low, high
    )  # (31, 10)
    eye = np.eye(len(wl))
    interp = np.stack([np.interp(fine.ravel(), wl, eye[b]) for b in range(len(wl))], axis=1)
    matrix = interp.reshape(len(WAVELENGTHS_NM), fine.shape[1], len(wl)).mean(axis=1)  # (31, B)
    unsorted = np.empty_like(matrix)
    unsorted[:, order] = matrix
    return unsorted.astype(np.float32)


def covered_bands(wavelengths_nm: np.ndarray) -> np.ndarray:
    """``(31,)`` bool: the output bands whose whole 10 nm window the sensor measures."""
    wl = np.sort(np.asarray(wavelengths_nm, dtype=np.float64))
    return (WAVELENGTHS_NM - 5 >= wl[0] - COVERAGE_TOLERANCE_NM) & (
        WAVELENGTHS_NM + 5 <= wl[-1] + COVERAGE_TOLERANCE_NM
    )


def resample_cube(cube: np.ndarray, wavelengths_nm: np.ndarray) -> np.ndarray:
    """``(B, H, W)`` spectra at ``wavelengths_nm`` -> ``(31, H, W)`` float32 (400-700 nm)."""
    if len(wavelengths_nm) == len(WAVELENGTHS_NM) and np.allclose(wavelengths_nm, WAVELENGTHS_NM):
        return cube.astype(np.float32, copy=False)
    matrix = resampling_matrix(wavelengths_nm)
    return np.einsum("ob,bhw->ohw", matrix, cube.astype(np.float32), optimize=True)


def read_raster_cube(path: str | Path) -> tuple[np.ndarray, np.ndarray, float, float]:
    """``(values (B, H, W) as stored, wavelengths (B,) nm, scale, offset)`` of a GDAL raster."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)  # lab cubes (CAVE)
            with rasterio.open(path) as src:
                return src.read(), raster_wavelengths(src), *raster_value_scale(src)
    except rasterio.RasterioIOError as err:
        raise InputError(f"cannot read spectral raster {path}: {err}") from err


def read_zarr_cube(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """``(reflectance (B, H, W) float32, wavelengths (B,) nm)`` of a Zarr store holding one
    3-D variable whose first dimension has wavelength coordinates (nm)."""
    import xarray as xr

    dataset = xr.open_zarr(path)
    arrays = [v for v in dataset.data_vars.values() if v.ndim == 3]
    if len(arrays) != 1:
        raise InputError(f"{path}: expected one 3-D (band, y, x) variable, found {len(arrays)}")
    array = arrays[0]
    band_dim = array.dims[0]
    if band_dim not in array.coords:
        raise InputError(f"{path}: dimension {band_dim!r} has no wavelength coordinate (nm)")
    coord = array.coords[band_dim]
    wavelengths = _to_nm(list(coord.values.astype(float)), coord.attrs.get("units"))
    return array.values.astype(np.float32), wavelengths
