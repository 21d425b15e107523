"""Check a written cube as a user will open it, before it is marked complete and published.

:func:`verify_zarr` opens the store with ``xr.open_zarr(..., decode_coords="all")``;
:func:`verify_cog` opens the COG with rasterio. Both raise :class:`OutputError` listing
what is wrong, so a broken cube is never published.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from geohsr.exceptions import OutputError
from geohsr.io.cube import COMPLETE_TAG, CUBE_VARIABLE, CubeGrid
from geohsr.io.qgis_style import true_colour_bands
from geohsr.spectral import N_BANDS

CUBE_DIMS = ("wavelength", "y", "x")


def check_bands_done(path: Path, bands_done: int, bands_total: int, *, resumable: bool) -> None:
    """Every row of windows (band) of the plan was written, else :class:`OutputError`."""
    if bands_done != bands_total:
        fix = "rerun with --resume to finish it" if resumable else "rerun with --overwrite"
        raise OutputError(
            f"{path} is incomplete: {bands_done} of {bands_total} rows of windows were "
            f"written; {fix}"
        )


def check_chunks_done(path: Path, chunks_done: int, chunks_total: int) -> None:
    """Every chunk of a chunked run was written, else :class:`OutputError`."""
    if chunks_done != chunks_total:
        raise OutputError(
            f"{path} is incomplete: {chunks_done} of {chunks_total} chunks were written; "
            "rerun with --resume to finish it"
        )


def verify_zarr(store: Path, grid: CubeGrid, dtype: str, attr_names: Iterable[str]) -> None:
    """``store`` opens with xarray and holds the whole cube: ``reflectance``
    ``(wavelength, y, x)`` of ``grid``'s size stored as ``dtype``, the CRS of ``grid``, and
    every attribute in ``attr_names`` on the root group."""
    import xarray as xr

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            dataset = xr.open_zarr(store, decode_coords="all")
    except Exception as err:  # noqa: BLE001 - any failure to open is a broken store
        raise _broken(store, [f"xarray cannot open it ({type(err).__name__}: {err})"]) from err
    with dataset:
        problems = _zarr_problems(dataset, grid, dtype, attr_names)
    if problems:
        raise _broken(store, problems)


def _zarr_problems(dataset, grid: CubeGrid, dtype: str, attr_names: Iterable[str]) -> list[str]:
    if CUBE_VARIABLE not in dataset.data_vars:
        return [f"no {CUBE_VARIABLE!r} variable"]
    cube = dataset[CUBE_VARIABLE]
    problems = []
    expected_shape = (N_BANDS, grid.height, grid.width)
    if cube.dims != CUBE_DIMS or cube.shape != expected_shape:
        problems.append(f"{CUBE_VARIABLE} is {dict(cube.sizes)}, expected {expected_shape}")
    stored = cube.encoding.get("dtype")
    if stored is None or np.dtype(stored) != np.dtype(dtype):
        problems.append(f"{CUBE_VARIABLE} is stored as {stored}, expected {dtype}")
    missing = [name for name in ("long_name", "units") if name not in cube.attrs]
    missing += [name for name in attr_names if name not in dataset.attrs]
    if missing:
        problems.append(f"attributes missing: {', '.join(missing)}")
    if "wavelength" not in cube.coords:
        problems.append("no wavelength coordinate")
    if grid.crs is not None and cube.rio.crs != grid.crs:
        problems.append(f"CRS is {cube.rio.crs}, expected {grid.crs}")
    return problems


def verify_cog(path: Path, grid: CubeGrid, dtype: str, tag_names: Iterable[str]) -> None:
    """The GeoTIFF at ``path`` opens with rasterio: 31 bands of ``dtype`` and ``grid``'s size,
    each described, red/green/blue colour interpretation on the true-colour bands, the CRS
    of ``grid``, the tags ``tag_names`` and the complete tag."""
    import rasterio
    from rasterio.errors import RasterioError

    try:
        with rasterio.open(path) as dataset:
            problems = _cog_problems(dataset, grid, dtype, tag_names)
    except RasterioError as err:
        raise _broken(path, [f"rasterio cannot open it ({err})"]) from err
    if problems:
        raise _broken(path, problems)


def _cog_problems(dataset, grid: CubeGrid, dtype: str, tag_names: Iterable[str]) -> list[str]:
    problems = []
    if dataset.count != N_BANDS:
        problems.append(f"{dataset.count} bands, expected {N_BANDS}")
    if (dataset.height, dataset.width) != (grid.height, grid.width):
        problems.append(
            f"{dataset.height} x {dataset.width} pixels, expected {grid.height} x {grid.width}"
        )
    if any(np.dtype(band_dtype) != np.dtype(dtype) for band_dtype in dataset.dtypes):
        problems.append(f"bands are {dataset.dtypes[0]}, expected {dtype}")
    tags = dataset.tags()
    missing = [name for name in (*tag_names, COMPLETE_TAG) if name not in tags]
    if missing:
        problems.append(f"tags missing: {', '.join(missing)}")
    if not all(dataset.descriptions):
        problems.append("bands without a description")
    if dataset.count == N_BANDS:
        interps = [dataset.colorinterp[band - 1].name for band in true_colour_bands()]
        if interps != ["red", "green", "blue"]:
            problems.append(
                f"true-colour bands are {', '.join(interps)}, expected red, green, blue"
            )
    crs = dataset.crs or dataset.gcps[1]
    if grid.crs is not None and crs != grid.crs:
        problems.append(f"CRS is {crs}, expected {grid.crs}")
    return problems


def _broken(path: Path, problems: list[str]) -> OutputError:
    return OutputError(
        f"the written cube {path} failed its check ({'; '.join(problems)}), so it was not "
        "published; rerun with --overwrite, and report a bug if it happens again"
    )
