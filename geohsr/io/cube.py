"""What every output cube carries: grid, georeference, wavelengths and provenance."""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import xarray as xr
from affine import Affine
from rasterio.control import GroundControlPoint
from rasterio.crs import CRS
from rasterio.rpc import RPC

from geohsr.io.georef import has_geotransform
from geohsr.spectral import WAVELENGTHS_NM

#: name of the cube variable in Zarr outputs
CUBE_VARIABLE = "reflectance"
#: attribute set to true on the Zarr root group once the cube is complete
COMPLETE_ATTR = "geohsr_complete"
#: GeoTIFF dataset tag set to "yes" once the cube is complete
COMPLETE_TAG = "GEOHSR_COMPLETE"
#: attribute of the cube variable holding the input's RPCs (GDAL's RPC keys, JSON)
RPCS_ATTR = "rpcs"


@dataclass(frozen=True)
class CubeGrid:
    """Pixel grid of the output (= the input's) and its georeference, as the input has it.

    :attr:`georeference` says which one: ``affine`` (``transform``, in ``crs`` when there is
    one), ``gcps`` (ground control points in ``crs``, no transform), ``rpcs`` (``rpcs``,
    WGS 84 implied, no transform) or ``none``. ``y``/``x`` are the 1-D pixel-centre
    coordinates of a north-up (rectilinear) affine grid, else None.
    """

    height: int
    width: int
    crs: CRS | None = None
    transform: Affine | None = None
    gcps: tuple[GroundControlPoint, ...] = ()
    rpcs: RPC | None = None
    y: np.ndarray | None = None
    x: np.ndarray | None = None
    y_attrs: dict[str, Any] = field(default_factory=dict)
    x_attrs: dict[str, Any] = field(default_factory=dict)

    @property
    def georeference(self) -> str:
        """``affine``, ``gcps``, ``rpcs`` or ``none``."""
        if self.transform is not None:
            return "affine"
        if self.gcps:
            return "gcps"
        return "rpcs" if self.rpcs is not None else "none"

    @property
    def rectilinear(self) -> bool:
        """An affine grid without rotation or shear (1-D x/y coordinates describe it)."""
        return self.transform is not None and self.transform.b == 0 and self.transform.d == 0

    @classmethod
    def from_dataarray(cls, data: xr.DataArray, *, rpcs: RPC | None = None) -> CubeGrid:
        """The grid of a rioxarray ``(band, y, x)`` array; ``rpcs``: the file's RPCs, which
        rioxarray does not keep (used only when there is no geotransform and no GCPs)."""
        height, width = data.sizes["y"], data.sizes["x"]
        crs = data.rio.crs
        transform = _transform(data)
        if has_geotransform(transform):
            return _affine_grid(data, height, width, crs, transform)
        gcps = tuple(data.rio.get_gcps() or ())
        if gcps:
            return cls(height, width, crs=crs, gcps=gcps)
        return cls(height, width, rpcs=rpcs)


def _transform(data: xr.DataArray) -> Affine | None:
    """The transform of ``data``: the file's own ``GeoTransform`` (exact) unless the
    coordinates say otherwise (e.g. a subset), then the one rioxarray computes from them."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "non-rectilinear... cannot recalc"
            recalculated = data.rio.transform(recalc=True)
    except Exception:  # noqa: BLE001 - rioxarray raises many kinds for odd coordinates
        recalculated = None
    stored = _stored_transform(data)
    if stored is not None and (recalculated is None or same_grid(stored, recalculated)):
        return stored
    return recalculated


def _stored_transform(data: xr.DataArray) -> Affine | None:
    """The ``GeoTransform`` attribute of ``data``'s grid mapping (GDAL order), if any."""
    try:
        text = data.coords[data.rio.grid_mapping].attrs["GeoTransform"]
        return Affine.from_gdal(*(float(value) for value in str(text).split()))
    except (KeyError, ValueError, TypeError):
        return None


def same_grid(first: Affine, second: Affine, tolerance: float = 1e-6) -> bool:
    """Whether two transforms agree within ``tolerance`` of a pixel."""
    pixel = max(abs(first.a), abs(first.b), abs(first.d), abs(first.e), 1e-300)
    return all(abs(u - v) <= tolerance * pixel for u, v in zip(first[:6], second[:6], strict=True))


def _affine_grid(
    data: xr.DataArray, height: int, width: int, crs: CRS | None, transform: Affine
) -> CubeGrid:
    """An affine grid; 1-D coordinates (the input's, or computed) when it is north-up."""
    grid = CubeGrid(height, width, crs=crs, transform=transform)
    if not grid.rectilinear:
        return grid
    if "y" in data.coords and "x" in data.coords and data["x"].ndim == data["y"].ndim == 1:
        y, x = np.asarray(data["y"].values), np.asarray(data["x"].values)
        y_attrs, x_attrs = dict(data["y"].attrs), dict(data["x"].attrs)
    else:
        (y, x), y_attrs, x_attrs = pixel_centres(transform, height, width), {}, {}
    return CubeGrid(
        height, width, crs=crs, transform=transform, y=y, x=x, y_attrs=y_attrs, x_attrs=x_attrs
    )


def pixel_centres(transform: Affine, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """1-D y and x pixel-centre coordinates of a north-up ``transform`` (as rioxarray makes
    them)."""
    rows, cols = np.arange(height) + 0.5, np.arange(width) + 0.5
    return transform.f + transform.e * rows, transform.c + transform.a * cols


def camera_response_attrs(camera: Any) -> dict[str, str]:
    """The ``camera_response`` attribute of a cube made with a known camera (a
    :class:`~geohsr.spectral.cameras.CameraResponse`): its normalised response as JSON;
    nothing for ``None`` (camera unknown)."""
    if camera is None:
        return {}
    rows = [[round(float(v), 6) for v in row] for row in camera.normalised]
    return {"camera_response": json.dumps({"wavelengths_nm": "400-700/10", "css_rgb": rows})}


def georeference_attrs(grid: CubeGrid, warp: str | None = None) -> dict[str, str]:
    """What georeference the output carries, as provenance attributes: ``georeference``
    (the kind) and ``georeferenced`` (``yes`` for an affine grid with a CRS, else in words,
    with what to do about it); ``warp`` when the input was warped."""
    kind = grid.georeference
    if kind == "affine":
        words = "yes" if grid.crs is not None else "partly (a geotransform, but no CRS)"
    elif kind == "gcps":
        words = (
            f"by {len(grid.gcps)} ground control points only (in {grid.crs}), kept from the "
            "input; no affine grid: warp with geohsr --warp or gdalwarp for a map grid"
        )
    elif kind == "rpcs":
        words = (
            "by RPCs only (rational polynomial coefficients, WGS 84), kept from the input; no "
            "affine grid: warp with geohsr --warp or gdalwarp -rpc for a map grid"
        )
    else:
        words = "no (the input has no georeference)"
    attrs = {"georeference": kind, "georeferenced": words}
    if warp:
        attrs["warp"] = (
            f"--warp {warp}: the input was resampled by GDAL's warper (nearest neighbour) "
            "to this north-up grid before reconstruction"
        )
    return attrs


def wavelength_coord() -> xr.DataArray:
    """The ``wavelength`` coordinate (nm, int32, 400..700)."""
    return xr.DataArray(
        WAVELENGTHS_NM,
        dims="wavelength",
        attrs={
            "units": "nm",
            "long_name": "band centre wavelength",
            "standard_name": "radiation_wavelength",
        },
    )


def cube_dataarray(data: Any, grid: CubeGrid, attrs: dict[str, Any]) -> xr.DataArray:
    """Wrap ``data`` ``(31, H, W)`` as a ``(wavelength, y, x)`` DataArray carrying ``grid``'s
    georeference: CRS and transform (with 1-D ``y``/``x`` coordinates when north-up), or
    rioxarray's ``gcps`` on ``spatial_ref``, or the RPCs as the ``rpcs`` attribute."""
    coords: dict[str, Any] = {"wavelength": wavelength_coord()}
    if grid.y is not None and grid.x is not None:
        coords["y"] = xr.DataArray(grid.y, dims="y", attrs=grid.y_attrs)
        coords["x"] = xr.DataArray(grid.x, dims="x", attrs=grid.x_attrs)
    cube = xr.DataArray(
        data,
        dims=("wavelength", "y", "x"),
        coords=coords,
        name=CUBE_VARIABLE,
        attrs={"long_name": "spectral reflectance", "units": "1", **attrs},
    )
    kind = grid.georeference
    if kind == "affine":
        if grid.crs is not None:
            cube = cube.rio.write_crs(grid.crs)
        cube = cube.rio.write_transform(grid.transform)
    elif kind == "gcps":
        cube = cube.rio.write_gcps(list(grid.gcps), grid.crs)
    elif kind == "rpcs":
        cube.attrs[RPCS_ATTR] = json.dumps(grid.rpcs.to_gdal())
    return cube
