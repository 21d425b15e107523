"""Spectral cubes without RGB (CAVE GeoTIFFs, any GeoTIFF/ENVI/Zarr with band wavelengths).

RGB is synthesised per sample by the camera simulation. 31-band 400-700 nm rasters stored as
integers (CAVE: uint16, reflectance = DN / 65535) stay in their dtype in memory; other band
sets are resampled to 400-700 nm / 10 nm on load (float32).
"""

from __future__ import annotations

import warnings
from functools import partial
from pathlib import Path

import numpy as np
import rasterio
from rasterio.errors import NotGeoreferencedWarning

from geohsr.exceptions import InputError
from geohsr.spectral import WAVELENGTHS_NM
from geohsr.training.datasets.scene import Scene, SceneData
from geohsr.training.datasets.spectral_io import read_raster_cube, read_zarr_cube, resample_cube

RASTER_SUFFIXES = (".tif", ".tiff", ".img", ".dat", ".bsq", ".bil", ".bip")


def load_cube_file(path: Path) -> SceneData:
    """Decode one spectral file into :class:`SceneData` (cube only)."""
    if path.suffix == ".zarr" or path.is_dir():
        values, wavelengths = read_zarr_cube(path)
        return SceneData(resample_cube(values, wavelengths))
    values, wavelengths, scale, offset = read_raster_cube(path)
    native = len(wavelengths) == len(WAVELENGTHS_NM) and np.allclose(wavelengths, WAVELENGTHS_NM)
    if native and offset == 0.0:
        return SceneData(values, cube_scale=scale)
    reflectance = values.astype(np.float32) * np.float32(scale) + np.float32(offset)
    return SceneData(resample_cube(reflectance, wavelengths))


def _probe_size(path: Path) -> tuple[int, int]:
    if path.suffix == ".zarr" or path.is_dir():
        import xarray as xr

        shapes = [v.shape for v in xr.open_zarr(path).data_vars.values() if v.ndim == 3]
        if len(shapes) != 1:
            raise InputError(f"{path}: expected one 3-D (band, y, x) variable")
        return shapes[0][1], shapes[0][2]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)  # lab cubes (CAVE)
        with rasterio.open(path) as src:
            return src.height, src.width


def cube_files(path: str | Path) -> list[Path]:
    """Spectral files at ``path`` (a file, a ``.zarr`` store or a folder of them), sorted."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"spectral data {path} not found; check the --data path")
    if path.is_file() or path.suffix == ".zarr":
        return [path]
    files = sorted(
        p for p in path.iterdir() if p.suffix.lower() in RASTER_SUFFIXES or p.suffix == ".zarr"
    )
    if not files:
        raise InputError(f"no spectral rasters ({', '.join(RASTER_SUFFIXES)}, .zarr) in {path}")
    return files


def spectral_cube_scenes(path: str | Path, kind: str = "cubes") -> list[Scene]:
    """One :class:`Scene` per spectral file under ``path`` (named by file stem)."""
    scenes = []
    for file in cube_files(path):
        height, width = _probe_size(file)
        scenes.append(
            Scene(
                name=file.stem,
                kind=kind,
                key=str(file.resolve()),
                height=height,
                width=width,
                loader=partial(load_cube_file, file),
            )
        )
    return scenes
