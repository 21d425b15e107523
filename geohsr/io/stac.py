"""STAC Items for output cubes, and a STAC Collection over a batch of them (``pystac``).

Everything in an Item is read back from the published output itself (so it describes what
was written): the ``proj`` extension (EPSG code or WKT2, transform, shape), ``eo:bands``
and ``raster:bands`` (31 bands: centre wavelength and full width at half maximum in
micrometres, nodata, data type, scale/offset), the ``processing`` extension (software,
model, weights SHA-256) and the input as a ``derived_from`` link. Specifications:
https://github.com/radiantearth/stac-spec (Item 1.x) and the stac-extensions
``projection`` v2, ``eo`` v1.1, ``raster`` v1.1 and ``processing`` v1.2 schemas.
"""

from __future__ import annotations

import datetime as dt
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pystac
from affine import Affine
from pystac.extensions.eo import Band, EOExtension
from pystac.extensions.projection import ProjectionExtension
from pystac.extensions.raster import DataType, RasterBand, RasterExtension
from rasterio.crs import CRS

from geohsr._version import __version__
from geohsr.exceptions import OutputError
from geohsr.spectral import WAVELENGTHS_NM

PROCESSING_SCHEMA = "https://stac-extensions.github.io/processing/v1.2.0/schema.json"
#: spectral sampling of the cube: 10 nm steps, so each band is taken as 10 nm wide
BAND_FWHM_UM = 0.01
MEDIA_TYPES = {
    "cog": pystac.MediaType.COG,
    "zarr": "application/vnd+zarr",
}
#: GeoTIFF tags that may hold the acquisition time of the input
TIME_TAGS = ("ACQUISITIONDATETIME", "TIFFTAG_DATETIME", "DATETIME")


@dataclass(frozen=True)
class CubeDescription:
    """What an Item needs from a published cube (see :func:`describe_cube`)."""

    fmt: str
    height: int
    width: int
    crs: CRS | None
    transform: Affine | None
    dtype: str
    nodata: float | None
    scale: float
    offset: float
    attrs: dict[str, str]


def item_path(output: str | Path) -> Path:
    """Where the Item of ``output`` goes: ``cube.tif`` / ``cube.zarr`` -> ``cube.json``."""
    output = Path(output)
    return output.with_suffix(".json")


def describe_cube(output: str | Path) -> CubeDescription:
    """Grid, encoding and provenance of a published ``.tif`` or ``.zarr`` cube."""
    output = Path(output)
    if output.suffix.lower() == ".zarr":
        return _describe_zarr(output)
    return _describe_cog(output)


def _describe_cog(output: Path) -> CubeDescription:
    import rasterio

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with rasterio.open(output) as dataset:
            has_affine = not dataset.transform.is_identity or dataset.crs is None
            return CubeDescription(
                fmt="cog",
                height=dataset.height,
                width=dataset.width,
                crs=dataset.crs or (dataset.gcps[1] if dataset.gcps[0] else None),
                transform=dataset.transform if has_affine and dataset.crs else None,
                dtype=dataset.dtypes[0],
                nodata=dataset.nodata,
                scale=float(dataset.scales[0]),
                offset=float(dataset.offsets[0]),
                attrs={k.lower(): v for k, v in dataset.tags().items()},
            )


def _describe_zarr(output: Path) -> CubeDescription:
    import rioxarray  # noqa: F401  (registers .rio)
    import xarray as xr

    from geohsr.io.cube import CUBE_VARIABLE

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dataset = xr.open_zarr(output, decode_coords="all", mask_and_scale=False)
    cube = dataset[CUBE_VARIABLE]
    crs = cube.rio.crs
    fill = cube.attrs.get("_FillValue", cube.encoding.get("_FillValue"))
    return CubeDescription(
        fmt="zarr",
        height=cube.sizes["y"],
        width=cube.sizes["x"],
        crs=crs,
        transform=cube.rio.transform(recalc=True) if crs is not None else None,
        dtype=str(cube.dtype),
        nodata=None if fill is None else float(fill),
        scale=float(cube.attrs.get("scale_factor", 1.0)),
        offset=float(cube.attrs.get("add_offset", 0.0)),
        attrs={str(k): str(v) for k, v in dataset.attrs.items()},
    )


def build_item(output: str | Path, *, source: str | Path | None = None) -> pystac.Item:
    """The STAC Item of published cube ``output`` (hrefs relative to the Item's folder).

    ``source``: the input raster, linked as ``derived_from`` (default: the cube's
    ``source_file`` attribute). The Item's ``datetime`` is the input's acquisition time
    when its tags hold one, else the processing time (``geohsr:datetime_source`` says which).
    """
    output = Path(output)
    cube = describe_cube(output)
    source = source if source is not None else cube.attrs.get("source_file")
    when, when_source = _acquisition_time(source, output)
    geometry = _footprint(cube)
    item = pystac.Item(
        id=output.stem,
        geometry=geometry,
        bbox=_bbox(geometry) if geometry else None,
        datetime=when,
        properties={
            "title": cube.attrs.get("title", "hyperspectral reconstruction"),
            "geohsr:datetime_source": when_source,
            "geohsr:radiometric_convention": cube.attrs.get("radiometric_convention", ""),
        },
    )
    _add_projection(item, cube)
    _add_processing(item, cube)
    asset = pystac.Asset(
        href=f"./{output.name}",
        media_type=MEDIA_TYPES[cube.fmt],
        roles=["data"],
        title=f"{len(WAVELENGTHS_NM)}-band spectral cube, 400-700 nm",
    )
    item.add_asset("data", asset)
    _add_bands(item, asset, cube)
    if source:
        item.add_link(pystac.Link("derived_from", _relative_href(Path(str(source)), output.parent)))
    return item


def write_item(output: str | Path, *, source: str | Path | None = None) -> Path:
    """Write the Item of ``output`` to :func:`item_path` and return that path."""
    path = item_path(output)
    item = build_item(output, source=source)
    try:
        pystac.write_file(item, include_self_link=False, dest_href=str(path))
    except OSError as err:
        raise OutputError(
            f"cannot write the STAC item {str(path)!r} ({err.strerror}); choose a writable "
            "output folder"
        ) from err
    return path


def build_collection(
    items: list[pystac.Item], *, collection_id: str, description: str
) -> pystac.Collection:
    """A Collection over ``items`` with the union of their extents."""
    boxes = [item.bbox for item in items if item.bbox]
    times = [item.datetime for item in items if item.datetime]
    spatial = (
        [
            [
                min(b[0] for b in boxes),
                min(b[1] for b in boxes),
                max(b[2] for b in boxes),
                max(b[3] for b in boxes),
            ]
        ]
        if boxes
        else [[-180.0, -90.0, 180.0, 90.0]]
    )
    temporal = [[min(times), max(times)]] if times else [[None, None]]
    collection = pystac.Collection(
        id=collection_id,
        description=description,
        extent=pystac.Extent(pystac.SpatialExtent(spatial), pystac.TemporalExtent(temporal)),
        license="other",
    )
    collection.add_items(items)
    return collection


def write_collection(
    outputs: list[Path], folder: Path, *, collection_id: str, description: str
) -> Path:
    """Write ``folder/collection.json`` over the Items of ``outputs`` (each read from its
    ``<output>.json`` when present, else built and written there) and return its path.
    Items stay beside their cubes; links are relative (a self-contained catalogue)."""
    items = []
    for output in outputs:
        path = item_path(output)
        item = pystac.Item.from_file(str(path)) if path.exists() else build_item(output)
        item.set_self_href(str(path.resolve()))
        items.append(item)
    collection = build_collection(items, collection_id=collection_id, description=description)
    target = folder / "collection.json"
    collection.set_self_href(str(target.resolve()))
    try:
        collection.save(catalog_type=pystac.CatalogType.SELF_CONTAINED)
    except OSError as err:
        raise OutputError(
            f"cannot write the STAC collection in {str(folder)!r} ({err.strerror})"
        ) from err
    return target


def _add_projection(item: pystac.Item, cube: CubeDescription) -> None:
    projection = ProjectionExtension.ext(item, add_if_missing=True)
    projection.shape = [cube.height, cube.width]
    if cube.crs is None:
        projection.code = None
        return
    epsg = cube.crs.to_epsg()
    projection.code = f"EPSG:{epsg}" if epsg else None
    if not epsg:
        projection.wkt2 = cube.crs.to_wkt()
    if cube.transform is not None:
        projection.transform = list(cube.transform)[:6]


def _add_processing(item: pystac.Item, cube: CubeDescription) -> None:
    item.stac_extensions.append(PROCESSING_SCHEMA)
    item.properties.update(
        {
            "processing:software": {"geohsr": __version__},
            "processing:lineage": (
                f"spectral reconstruction from RGB with model {cube.attrs.get('model', '?')} "
                f"(weights SHA-256 {cube.attrs.get('weights_sha256', '?')})"
            ),
            "geohsr:model": cube.attrs.get("model"),
            "geohsr:weights": cube.attrs.get("weights"),
            "geohsr:weights_sha256": cube.attrs.get("weights_sha256"),
        }
    )


def _add_bands(item: pystac.Item, asset: pystac.Asset, cube: CubeDescription) -> None:
    bands = [
        Band.create(
            name=f"{w} nm",
            description=f"reflectance at {w} nm",
            center_wavelength=w / 1000,
            full_width_half_max=BAND_FWHM_UM,
        )
        for w in WAVELENGTHS_NM
    ]
    EOExtension.ext(item, add_if_missing=True)
    EOExtension.ext(asset).bands = bands
    nodata: float | str | None = cube.nodata
    if nodata is not None and np.isnan(nodata):
        nodata = "nan"
    raster = [
        RasterBand.create(
            nodata=nodata,
            data_type=DataType(cube.dtype),
            scale=cube.scale if cube.scale != 1 else None,
            offset=cube.offset if cube.offset != 0 else None,
            spatial_resolution=abs(cube.transform.a) if cube.transform else None,
        )
        for _ in WAVELENGTHS_NM
    ]
    RasterExtension.add_to(item)
    RasterExtension.ext(asset).bands = raster


def _footprint(cube: CubeDescription) -> dict[str, Any] | None:
    """The cube's outline in WGS 84 (GeoJSON polygon), ``None`` without georeference."""
    if cube.crs is None or cube.transform is None:
        return None
    from rasterio.warp import transform_geom

    corners = [(0, 0), (cube.width, 0), (cube.width, cube.height), (0, cube.height), (0, 0)]
    ring = [cube.transform @ corner for corner in corners]
    polygon = {"type": "Polygon", "coordinates": [ring]}
    return transform_geom(cube.crs, "EPSG:4326", polygon, precision=9)


def _bbox(geometry: dict[str, Any]) -> list[float]:
    ring = geometry["coordinates"][0]
    xs, ys = [p[0] for p in ring], [p[1] for p in ring]
    return [min(xs), min(ys), max(xs), max(ys)]


def _acquisition_time(source: Any, output: Path) -> tuple[dt.datetime, str]:
    """The input's acquisition time from its tags, else now (and which it is)."""
    if source and Path(str(source)).is_file():
        import rasterio
        from rasterio.errors import RasterioError

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                with rasterio.open(str(source)) as dataset:
                    tags = dataset.tags()
        except RasterioError:
            tags = {}
        for key in TIME_TAGS:
            parsed = _parse_time(tags.get(key))
            if parsed is not None:
                return parsed, f"input tag {key}"
    return dt.datetime.now(dt.timezone.utc), "processing time (the input records no time)"


def _parse_time(value: str | None) -> dt.datetime | None:
    if not value:
        return None
    for fmt in ("%Y:%m:%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S"):
        try:
            return dt.datetime.strptime(value.strip()[:19], fmt).replace(tzinfo=dt.timezone.utc)
        except ValueError:
            continue
    return None


def _relative_href(target: Path, folder: Path) -> str:
    """``target`` relative to ``folder`` when both are on one drive, else absolute."""
    try:
        return os.path.relpath(target.resolve(), folder.resolve())
    except ValueError:
        return str(target.resolve())
