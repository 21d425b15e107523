"""What every output cube carries: grid, CRS, wavelengths and provenance."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import xarray as xr
from affine import Affine
from rasterio.crs import CRS

from geohsr.spectral import WAVELENGTHS_NM

#: name of the cube variable in Zarr outputs
CUBE_VARIABLE = "reflectance"
#: attribute set to true on the Zarr root group once the cube is complete
COMPLETE_ATTR = "geohsr_complete"
#: GeoTIFF dataset tag set to "yes" once the cube is complete
COMPLETE_TAG = "GEOHSR_COMPLETE"


@dataclass(frozen=True)
class CubeGrid:
    """Pixel grid of the output (= the input's): size, coordinates, CRS and transform.

    ``crs`` is ``None`` for input without georeference (e.g. a PNG photo); the output then
    has no CRS either and ``attrs["georeferenced"]`` says so.
    """

    height: int
    width: int
    y: np.ndarray
    x: np.ndarray
    crs: CRS | None
    transform: Affine
    y_attrs: dict[str, Any] = field(default_factory=dict)
    x_attrs: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dataarray(cls, data: xr.DataArray) -> CubeGrid:
        """The grid of a rioxarray ``(band, y, x)`` array."""
        return cls(
            height=data.sizes["y"],
            width=data.sizes["x"],
            y=np.asarray(data["y"].values),
            x=np.asarray(data["x"].values),
            crs=data.rio.crs,
            transform=data.rio.transform(recalc=True),
            y_attrs=dict(data["y"].attrs),
            x_attrs=dict(data["x"].attrs),
        )


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
    """Wrap ``data`` ``(31, H, W)`` as a georeferenced ``(wavelength, y, x)`` DataArray."""
    cube = xr.DataArray(
        data,
        dims=("wavelength", "y", "x"),
        coords={
            "wavelength": wavelength_coord(),
            "y": xr.DataArray(grid.y, dims="y", attrs=grid.y_attrs),
            "x": xr.DataArray(grid.x, dims="x", attrs=grid.x_attrs),
        },
        name=CUBE_VARIABLE,
        attrs={"long_name": "spectral reflectance", "units": "1", **attrs},
    )
    if grid.crs is not None:
        cube = cube.rio.write_crs(grid.crs).rio.write_transform(grid.transform)
    return cube
