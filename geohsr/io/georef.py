"""How a raster is georeferenced, honestly: an affine grid, ground control points, RPCs or
nothing, and resampling onto a map grid with GDAL's warper on request (``--warp``).

GDAL's order is kept: a geotransform wins over GCPs, GCPs over RPCs. Nothing is invented:
a raster without a geotransform is not given the identity one, GCPs stay GCPs.
:func:`warped_source` turns a file into a GDAL VRT (its XML, which GDAL, rasterio and
rioxarray open like a file name) resampled to a north-up grid in the CRS asked for, with an
alpha band marking the pixels the input covers.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import Any

import rasterio
import rasterio.shutil
from affine import Affine
from rasterio.crs import CRS
from rasterio.enums import ColorInterp
from rasterio.errors import CRSError, NotGeoreferencedWarning, RasterioError
from rasterio.io import MemoryFile
from rasterio.rpc import RPC
from rasterio.vrt import WarpedVRT

from geohsr.exceptions import InputError

#: the kinds of georeference a cube can carry
GEOREFERENCES = ("affine", "gcps", "rpcs", "none")
#: ``--warp gcps``: warp to the CRS the input's ground control points are given in
WARP_TO_GCP_CRS = "gcps"
#: how ``--warp`` resamples (GDAL's default; keeps the input values)
WARP_RESAMPLING = "nearest neighbour"


def has_geotransform(transform: Affine | None) -> bool:
    """True for a real geotransform (rasterio reports the identity when there is none)."""
    return transform is not None and not transform.is_identity


def dataset_georeference(dataset: Any) -> str:
    """``affine``, ``gcps``, ``rpcs`` or ``none`` for an open rasterio dataset (GDAL's
    order: geotransform, then GCPs, then RPCs)."""
    if has_geotransform(dataset.transform):
        return "affine"
    if dataset.gcps[0]:
        return "gcps"
    if dataset.rpcs is not None:
        return "rpcs"
    return "none"


def file_rpcs(path: str | Path) -> RPC | None:
    """The RPCs of the raster at ``path`` (rioxarray drops them), or None."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with rasterio.open(path) as dataset:
                return dataset.rpcs
    except RasterioError:
        return None


def describe_source(dataset: Any) -> str:
    """A few words on ``dataset``'s georeference, for messages."""
    kind = dataset_georeference(dataset)
    if kind == "affine":
        return f"a geotransform in {dataset.crs}" if dataset.crs else "a geotransform, no CRS"
    if kind == "gcps":
        gcps, crs = dataset.gcps
        return f"{len(gcps)} ground control points in {crs}"
    return "RPCs" if kind == "rpcs" else "no georeference"


def warp_crs(dataset: Any, warp: str, name: str) -> CRS:
    """The CRS ``--warp`` asks for, checked against what ``dataset`` (the file ``name``) can
    be warped from. Raises :class:`InputError` with the fix."""
    kind = dataset_georeference(dataset)
    if kind == "none":
        raise InputError(
            f"cannot --warp {name}: it has no georeference (no geotransform, ground control "
            "points or RPCs), so there is nothing to warp from; georeference it first (e.g. "
            "QGIS Georeferencer or gdal_translate -gcp) or drop --warp"
        )
    source_crs = dataset.gcps[1] if kind == "gcps" else dataset.crs
    if kind != "rpcs" and source_crs is None:
        raise InputError(
            f"cannot --warp {name}: it has {describe_source(dataset)} but no CRS to warp "
            "from; assign one first (gdal_edit.py -a_srs EPSG:XXXX) or drop --warp"
        )
    if warp.strip().lower() == WARP_TO_GCP_CRS:
        if kind != "gcps":
            raise InputError(
                f"--warp {WARP_TO_GCP_CRS} uses the CRS of the input's ground control points, "
                f"but {name} has {describe_source(dataset)}; give a CRS instead, e.g. "
                f"--warp {(source_crs or CRS.from_epsg(4326)).to_string()}"
            )
        return source_crs
    try:
        return CRS.from_user_input(warp)
    except CRSError as err:
        raise InputError(
            f"--warp {warp!r} is not a CRS GDAL knows ({err}); give e.g. --warp EPSG:32633, "
            f"a WKT or PROJ string, or --warp {WARP_TO_GCP_CRS} (the GCPs' own CRS)"
        ) from err


def alpha_band(dataset: Any) -> int:
    """1-based index of ``dataset``'s alpha band, 0 when it has none."""
    for index, interp in enumerate(dataset.colorinterp, start=1):
        if interp == ColorInterp.alpha:
            return index
    return 0


def warped_source(path: str | Path, warp: str) -> str:
    """The raster at ``path`` resampled by GDAL's warper (nearest neighbour, GDAL's suggested
    north-up grid) to the CRS ``warp`` (any CRS rasterio reads, or ``gcps``): the XML of a
    warped VRT, opened like a file name by rasterio and rioxarray.

    The VRT has an alpha band (the input's own, or one added) that is 0 outside the input's
    footprint and where the input is masked, so those pixels are never reconstructed.
    Raises :class:`InputError` when the input has nothing to warp from or ``warp`` is not a
    CRS.
    """
    path = Path(path).resolve()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with rasterio.open(path) as dataset:
                crs = warp_crs(dataset, warp, str(path))
                alpha = alpha_band(dataset)
                with WarpedVRT(dataset, crs=crs, src_alpha=alpha, add_alpha=not alpha) as vrt:
                    return vrt_xml(vrt, path)
    except RasterioError as err:
        raise InputError(
            f"GDAL cannot warp {path} to {warp} ({err}); check the CRS, or warp it yourself "
            "with gdalwarp and give the result to geohsr"
        ) from err


def vrt_xml(vrt: WarpedVRT, source: Path) -> str:
    """The VRT XML of an open :class:`WarpedVRT` whose source is the file ``source``
    (written with an absolute source path, so it opens from any folder)."""
    with MemoryFile() as memory:
        rasterio.shutil.copy(vrt, memory.name, driver="VRT")
        xml = memory.read().decode()
    return re.sub(
        r'<SourceDataset relativeToVRT="1">[^<]*</SourceDataset>',
        f'<SourceDataset relativeToVRT="0">{_xml_escape(str(source))}</SourceDataset>',
        xml,
    )


def _xml_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
