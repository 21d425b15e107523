"""User tile pairs: an RGB GeoTIFF plus a hyperspectral raster of the same area.

The hyperspectral raster may have any band set with wavelengths in its metadata (see
:mod:`~geohsr.training.datasets.spectral_io`); it is resampled to 400-700 nm / 10 nm (error if
it does not cover that range); negative reflectance (noise of the atmospheric correction) is
clipped to 0, as the model's output is. When the two grids differ (CRS, pixel size, extent), the
spectra are reprojected onto the RGB grid by georeference (rioxarray ``reproject_match``,
bilinear), restricted to the overlap of both footprints; pixels without spectra or with RGB
nodata are marked invalid and training crops avoid them. Non-georeferenced pairs must have the
same size (taken as pixel-aligned). RGB values: uint8 / 255, floats as stored (0-1); other
dtypes (e.g. 16-bit) must be converted first, so training sees the same [0, 1] input that
``geohsr reconstruct`` feeds the model for that file.

Data spec: ``tiles:RGB.tif,HYPER.tif`` for one pair, or ``tiles:FOLDER`` for every
``<name>_rgb.tif`` with a ``<name>_hs.*`` beside it.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np
import rasterio
import rioxarray  # noqa: F401  (registers the .rio accessor)
import xarray as xr
from rasterio.enums import Resampling
from rasterio.warp import transform_bounds
from rasterio.windows import Window, from_bounds

from geohsr.exceptions import InputError
from geohsr.spectral import WAVELENGTHS_NM
from geohsr.training.datasets.scene import Scene, SceneData
from geohsr.training.datasets.spectral_io import (
    raster_value_scale,
    raster_wavelengths,
    resample_cube,
)

RGB_SCALES = {np.dtype(np.uint8): 1.0 / 255.0, np.dtype(np.float32): 1.0, np.dtype(np.float64): 1.0}


def _same_grid(a: rasterio.DatasetReader, b: rasterio.DatasetReader) -> bool:
    return a.crs == b.crs and a.transform == b.transform and a.shape == b.shape


def overlap_window(rgb_path: Path, hs_path: Path) -> Window:
    """Window of the RGB grid covered by the hyperspectral footprint."""
    with rasterio.open(rgb_path) as rgb, rasterio.open(hs_path) as hs:
        full = Window(0, 0, rgb.width, rgb.height)
        if _same_grid(rgb, hs):
            return full
        if rgb.crs is None or hs.crs is None:
            if rgb.shape == hs.shape:
                return full
            raise InputError(
                f"{rgb_path.name} ({rgb.height}x{rgb.width}) and {hs_path.name} "
                f"({hs.height}x{hs.width}) differ in size and are not both georeferenced; "
                "give them a CRS and transform, or the same pixel grid"
            )
        left, bottom, right, top = transform_bounds(hs.crs, rgb.crs, *hs.bounds)
        left, right = max(left, rgb.bounds.left), min(right, rgb.bounds.right)
        bottom, top = max(bottom, rgb.bounds.bottom), min(top, rgb.bounds.top)
        if left >= right or bottom >= top:
            raise InputError(f"{rgb_path.name} and {hs_path.name} do not overlap")
        window = from_bounds(left, bottom, right, top, rgb.transform)
        window = window.round_offsets().round_lengths()
        return window.intersection(full)


def _read_rgb(rgb_path: Path, window: Window) -> tuple[xr.DataArray, np.ndarray]:
    """RGB window as a DataArray (3, h, w) in the stored dtype, and its valid mask (h, w)."""
    rgb = rioxarray.open_rasterio(rgb_path).rio.isel_window(window)
    if rgb.sizes["band"] < 3:
        raise InputError(f"{rgb_path.name} has {rgb.sizes['band']} bands; an RGB needs 3")
    rgb = rgb.isel(band=slice(0, 3)).load()
    valid = np.ones(rgb.shape[1:], dtype=bool)
    if rgb.rio.nodata is not None:
        valid &= ~(rgb.values == rgb.rio.nodata).all(axis=0)
    return rgb, valid


def _read_spectra(hs_path: Path) -> xr.DataArray:
    """Hyperspectral raster resampled to 31 bands, reflectance float32 >= 0, NaN where
    nodata."""
    with rasterio.open(hs_path) as src:
        wavelengths = raster_wavelengths(src)
        scale, offset = raster_value_scale(src)
        values = src.read(masked=True)
        reflectance = values.astype(np.float32).filled(np.nan) * np.float32(scale) + np.float32(
            offset
        )
    grid = rioxarray.open_rasterio(hs_path).isel(band=0, drop=True)
    cube = resample_cube(reflectance, wavelengths)  # (31, H, W)
    cube = np.where(cube < 0, np.float32(0), cube)  # atmospheric-correction noise; NaN stays
    spectra = xr.DataArray(
        cube, dims=("band", "y", "x"), coords={"band": WAVELENGTHS_NM, "y": grid.y, "x": grid.x}
    )
    if grid.rio.crs is not None:
        spectra = spectra.rio.write_crs(grid.rio.crs)
    return spectra.rio.write_transform(grid.rio.transform()).rio.write_nodata(np.nan)


def load_tile_pair(rgb_path: Path, hs_path: Path, window: Window) -> SceneData:
    """Decode and align one RGB / hyperspectral pair on the RGB grid (see module docstring)."""
    rgb, valid = _read_rgb(rgb_path, window)
    spectra = _read_spectra(hs_path)
    with rasterio.open(rgb_path) as r, rasterio.open(hs_path) as h:
        same_grid = _same_grid(r, h) or r.crs is None
    if not same_grid:
        spectra = spectra.rio.reproject_match(rgb, resampling=Resampling.bilinear)
    cube = np.asarray(spectra.values, dtype=np.float32)  # (31, h, w)
    valid &= np.isfinite(cube).all(axis=0)
    if not valid.any():
        raise InputError(f"{rgb_path.name} and {hs_path.name} share no valid pixels")
    if rgb.dtype not in RGB_SCALES:
        raise InputError(
            f"{rgb_path.name} is {rgb.dtype}; give the RGB as 8-bit or as float 0-1 (e.g. "
            "gdal_translate -ot Byte -scale 0 65535 0 255 in.tif out.tif for full-range 16-bit)"
        )
    rgb_scale = RGB_SCALES[rgb.dtype]
    return SceneData(np.nan_to_num(cube, nan=0.0), rgb=rgb.values, rgb_scale=rgb_scale, valid=valid)


def _pair_paths(spec: str) -> list[tuple[Path, Path]]:
    if "," in spec:
        rgb, hs = (Path(p) for p in spec.split(",", 1))
        return [(rgb, hs)]
    folder = Path(spec)
    pairs = []
    for rgb in sorted(folder.glob("*_rgb.tif")):
        stem = rgb.name.removesuffix("_rgb.tif")
        matches = sorted(p for p in folder.glob(f"{stem}_hs.*") if p.suffix.lower() != ".hdr")
        if matches:
            pairs.append((rgb, matches[0]))
    if not pairs:
        raise InputError(
            f"no tile pairs in {folder}: expected <name>_rgb.tif with <name>_hs.tif (or .img), "
            "or pass tiles:RGB.tif,HYPERSPECTRAL.tif"
        )
    return pairs


def user_tile_scenes(spec: str) -> list[Scene]:
    """Scenes for ``RGB,HYPER`` or a folder of ``<name>_rgb.tif`` / ``<name>_hs.*`` pairs."""
    scenes = []
    for rgb, hs in _pair_paths(spec):
        for path in (rgb, hs):
            if not path.is_file():
                raise InputError(f"tile file {path} not found; check the --data path")
        window = overlap_window(rgb, hs)
        scenes.append(
            Scene(
                name=rgb.stem.removesuffix("_rgb"),
                kind="tiles",
                key=f"tiles:{rgb.resolve()},{hs.resolve()}",
                height=int(window.height),
                width=int(window.width),
                loader=partial(load_tile_pair, rgb, hs, window),
            )
        )
    return scenes
