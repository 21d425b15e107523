"""What GDAL needs to read a geohsr Zarr cube right, and which grids it cannot read.

GDAL's Zarr driver (3.10) takes the geotransform only from regularly spaced 1-D ``x``/``y``
coordinate arrays, so a rotated or sheared grid, or a grid 1 pixel wide or high, would be
read with a wrong transform: :func:`check_zarr_grid` refuses those before any work. The
CRS is written three ways on the cube array: GDAL's own ``_CRS`` attribute (read by every
GDAL with a Zarr driver), the CF ``grid_mapping`` (rioxarray; GDAL >= 3.9) and the GeoZarr
``proj:`` convention next to ``spatial:`` (GDAL >= 3.13). Band descriptions (``"400 nm"``)
go in the GDAL PAM sidecar of the array, which GDAL reads for the
``ZARR:"cube.zarr":/reflectance`` view.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from rasterio.crs import CRS

from geohsr.exceptions import OutputError
from geohsr.io.cube import CUBE_VARIABLE, CubeGrid
from geohsr.spectral import WAVELENGTHS_NM

#: the GeoZarr conventions the ``spatial:``/``proj:`` attributes follow (registration)
SPATIAL_CONVENTION = {
    "uuid": "689b58e2-cf7b-45e0-9fff-9cfc0883d6b4",
    "name": "spatial",
    "schema_url": "https://raw.githubusercontent.com/zarr-conventions/spatial/refs/tags/v1/schema.json",
    "spec_url": "https://github.com/zarr-conventions/spatial/blob/v1/README.md",
    "description": "Spatial coordinate information",
}
PROJ_CONVENTION = {
    "uuid": "f17cb550-5864-4468-aeb7-f3180cfb622f",
    "name": "proj:",
    "schema_url": "https://raw.githubusercontent.com/zarr-conventions/geo-proj/refs/tags/v1/schema.json",
    "spec_url": "https://github.com/zarr-conventions/geo-proj/blob/v1/README.md",
    "description": "Coordinate reference system information for geospatial data",
}
#: GDAL's PAM sidecar of a Zarr v2 array, next to its ``.zarray``
PAM_SIDECAR = ".zarray.aux.xml"


def zarr_grid_problem(grid: CubeGrid) -> str | None:
    """Why GDAL (3.10) would read ``grid`` wrongly from Zarr, or None when it reads it
    exactly (north-up affine with >= 2 pixels each way, or no affine grid at all)."""
    if grid.transform is None:
        return None
    if not grid.rectilinear:
        coefficients = ", ".join(f"{v:g}" for v in grid.transform[:6])
        return f"its pixel grid is rotated or sheared (transform {coefficients})"
    if grid.height < 2 or grid.width < 2:
        return f"it is {grid.height} x {grid.width} pixels (a 1-pixel axis has no spacing)"
    return None


def check_zarr_grid(grid: CubeGrid, path: Path) -> None:
    """Refuse Zarr output of a grid GDAL would read back wrongly, with the fix."""
    problem = zarr_grid_problem(grid)
    if problem is None:
        return
    fix = f"write a GeoTIFF instead ({Path(path).with_suffix('.tif').name}), which carries any "
    fix += "affine grid"
    if not grid.rectilinear and grid.crs is not None:
        fix += f", or resample to a north-up grid with --warp {grid.crs.to_string()}"
    raise OutputError(
        f"cannot write {path} as Zarr: {problem}, which GDAL's Zarr driver would read back "
        f"with a wrong geotransform (it derives it from 1-D x/y coordinates); {fix}"
    )


def gdal_crs_attr(crs: CRS) -> dict[str, Any]:
    """GDAL's ``_CRS`` attribute: WKT2 2019, PROJJSON, and the OGC URL of an EPSG CRS (the
    form GDAL's Zarr driver writes; it reads ``url``, then ``wkt``, then ``projjson``)."""
    attr: dict[str, Any] = {"wkt": crs.to_wkt(version="WKT2_2019")}
    attr["projjson"] = crs.to_dict(projjson=True)
    authority = crs.to_authority(confidence_threshold=100)
    if authority is not None and authority[0].upper() == "EPSG":
        attr["url"] = f"http://www.opengis.net/def/crs/EPSG/0/{authority[1]}"
    return attr


def geozarr_attrs(grid: CubeGrid) -> dict[str, Any]:
    """GeoZarr ``spatial:`` (transform in rasterio/Affine order, shape, bbox) and ``proj:``
    attributes of an affine grid, with their ``zarr_conventions`` registration."""
    transform = grid.transform
    xs = [transform.c, transform.c + transform.a * grid.width]
    ys = [transform.f, transform.f + transform.e * grid.height]
    attrs: dict[str, Any] = {
        "zarr_conventions": [SPATIAL_CONVENTION],
        "spatial:dimensions": ["y", "x"],
        "spatial:transform": [float(v) for v in transform[:6]],
        "spatial:shape": [grid.height, grid.width],
        "spatial:bbox": [min(xs), min(ys), max(xs), max(ys)],
        "spatial:registration": "pixel",
    }
    if grid.crs is not None:
        attrs["zarr_conventions"] = [SPATIAL_CONVENTION, PROJ_CONVENTION]
        attrs["proj:wkt2"] = grid.crs.to_wkt(version="WKT2_2019")
        authority = grid.crs.to_authority(confidence_threshold=100)
        if authority is not None:
            attrs["proj:code"] = ":".join(authority)
    return attrs


def zarr_grid_attrs(grid: CubeGrid) -> dict[str, Any]:
    """Attributes of the cube array that make GDAL and GeoZarr readers see ``grid``'s
    georeference (nothing for grids without an affine transform: none is claimed)."""
    if grid.georeference != "affine" or not grid.rectilinear:
        return {}
    attrs = geozarr_attrs(grid)
    if grid.crs is not None:
        attrs["_CRS"] = gdal_crs_attr(grid.crs)
    return attrs


def band_pam_xml(variable: str = CUBE_VARIABLE) -> str:
    """GDAL PAM XML describing the bands of the ``ZARR:"...":/variable`` view: ``"400 nm"``...
    and the IMAGERY ``CENTRAL_WAVELENGTH_UM`` item (as the GeoTIFF output has them)."""
    bands = []
    for band, wavelength in enumerate(WAVELENGTHS_NM, start=1):
        bands.append(
            f'      <PAMRasterBand band="{band}">\n'
            f"        <Description>{escape(f'{wavelength} nm')}</Description>\n"
            '        <Metadata domain="IMAGERY">\n'
            f'          <MDI key="CENTRAL_WAVELENGTH_UM">{wavelength / 1000:g}</MDI>\n'
            "        </Metadata>\n"
            "      </PAMRasterBand>\n"
        )
    name = quoteattr(f"AsClassicDataset(2,1) view of /{variable}")
    return (
        f"<PAMDataset>\n  <DerivedDataset name={name}>\n    <PAMDataset>\n"
        + "".join(bands)
        + "    </PAMDataset>\n  </DerivedDataset>\n</PAMDataset>\n"
    )


def write_band_descriptions(
    store: Path, zarr_format: int, variable: str = CUBE_VARIABLE
) -> Path | None:
    """Write the PAM sidecar GDAL reads for the bands of ``store``'s ``variable`` (Zarr
    format 2 only: the GDAL this was tested with, 3.10, does not read zarr-python's format 3
    stores)."""
    if zarr_format != 2:
        return None
    sidecar = Path(store) / variable / PAM_SIDECAR
    sidecar.write_text(band_pam_xml(variable))
    return sidecar


def gdal_read_problem(store: Path, variable: str = CUBE_VARIABLE) -> str | None:
    """Why the GDAL that rasterio uses here cannot open ``store``'s ``variable`` (its error
    and version), or ``None`` when it opens with all 31 bands. Reads only metadata."""
    import rasterio
    from rasterio.errors import RasterioError

    try:
        with rasterio.Env(), rasterio.open(f'ZARR:"{store}":/{variable}') as dataset:
            if dataset.count == len(WAVELENGTHS_NM):
                return None
            problem = f"it sees {dataset.count} bands"
    except RasterioError as err:
        problem = " ".join(str(err).split())
    return f"{problem} (GDAL {rasterio.__gdal_version__})"


def warn_if_gdal_cannot_read(store: Path, zarr_format: int) -> None:
    """A warning when a Zarr format 3 ``store`` does not open in this environment's GDAL:
    QGIS and other GDAL readers of that version will not open it either."""
    if zarr_format == 2:
        return
    problem = gdal_read_problem(store)
    if problem is not None:
        warnings.warn(
            f"{store} is Zarr format 3, which xarray and zarr-python open but this "
            f"environment's GDAL does not ({problem}); for QGIS and other GDAL readers "
            "write --zarr-format 2 (the default)",
            GDALCompatibilityWarning,
            stacklevel=2,
        )


class GDALCompatibilityWarning(UserWarning):
    """An output that GDAL-based readers (QGIS, rasterio) of this environment cannot open."""
