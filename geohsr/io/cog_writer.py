"""Write a cube as a Cloud-Optimised GeoTIFF.

A COG cannot be streamed (its overviews and tile index come first), so blocks go into a
tiled, uncompressed scratch GTiff (``<path>.partial``, windowed writes, any alignment);
:meth:`CogCubeWriter.finish` then converts it with GDAL's COG driver (ZSTD, predictor,
overviews) to ``<path>.partial.cog``, checks it (:func:`~geohsr.io.verify.verify_cog`) and
renames it to ``<path>``. Bands are described ``"400 nm"``... and carry ENVI-style
``wavelength``/``wavelength_units`` metadata. The bands nearest 640/550/460 nm have GDAL
colour interpretation red/green/blue (the others undefined), kept inside the TIFF (GDAL's
``GDAL_METADATA`` tag, no ``.aux.xml``). The input's georeference is kept as it is: any
affine transform (rotated/sheared included) with its CRS, or its GCPs, or its RPCs.
"""

from __future__ import annotations

import warnings
from contextlib import suppress
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import rasterio.shutil
from rasterio.enums import ColorInterp
from rasterio.errors import NotGeoreferencedWarning
from rasterio.windows import Window

from geohsr._stops import hold_stops
from geohsr.exceptions import OutputError
from geohsr.io.cube import COMPLETE_TAG, CubeGrid
from geohsr.io.encoding import CubeEncoding
from geohsr.io.output import COG_SUFFIX, partial_path, publish, remove
from geohsr.io.qgis_style import true_colour_bands
from geohsr.io.verify import check_bands_done, verify_cog
from geohsr.spectral import N_BANDS, WAVELENGTHS_NM

#: scratch GTiff tile side when the window stride is not a multiple of 16
SCRATCH_BLOCK = 512
COG_OPTIONS = {
    "COMPRESS": "ZSTD",
    "LEVEL": 3,
    "BLOCKSIZE": 256,
    "OVERVIEWS": "AUTO",
    "OVERVIEW_RESAMPLING": "AVERAGE",
    "BIGTIFF": "IF_SAFER",
    "NUM_THREADS": "ALL_CPUS",
}
TRUE_COLOUR_INTERP = (ColorInterp.red, ColorInterp.green, ColorInterp.blue)


def affine_profile(grid: CubeGrid) -> dict[str, Any]:
    """The ``crs``/``transform`` profile items of an affine grid (any rotation or shear:
    GeoTIFF carries it exactly); none for GCP-, RPC- or un-georeferenced grids."""
    if grid.georeference != "affine":
        return {}
    return {"crs": grid.crs, "transform": grid.transform}


def write_gcps_rpcs(dataset: Any, grid: CubeGrid) -> None:
    """Keep the input's ground control points (with their CRS) or RPCs on ``dataset``."""
    if grid.georeference == "gcps":
        dataset.gcps = (list(grid.gcps), grid.crs)
    elif grid.georeference == "rpcs":
        dataset.rpcs = grid.rpcs


def colour_interpretation() -> list[ColorInterp]:
    """Per-band GDAL colour interpretation of a cube: red, green and blue on the bands
    nearest 640, 550 and 460 nm (25, 16, 7), undefined on the others."""
    interps = [ColorInterp.undefined] * N_BANDS
    for band, interp in zip(true_colour_bands(), TRUE_COLOUR_INTERP, strict=True):
        interps[band - 1] = interp
    return interps


def gdal_tags(attrs: dict[str, Any]) -> dict[str, str]:
    """Provenance attributes as GeoTIFF dataset tags (strings)."""
    return {key.upper(): str(value) for key, value in attrs.items()}


class CogCubeWriter:
    """Writes ``(31, H, W)`` reflectance blocks; :meth:`finish` publishes the COG."""

    def __init__(
        self,
        path: Path,
        grid: CubeGrid,
        attrs: dict[str, Any],
        encoding: CubeEncoding,
        *,
        chunk: int = SCRATCH_BLOCK,
    ) -> None:
        if encoding.dtype == "float16":
            raise OutputError(
                "GeoTIFF output cannot be float16 with this GDAL; use "
                "--dtype float32 or uint16, or write .zarr"
            )
        self.path = Path(path)
        self.partial = partial_path(self.path)
        self.encoding = encoding
        self.grid = grid
        self.tag_names = tuple(k for k, v in gdal_tags(attrs).items() if v)  # GDAL drops ''
        self.bands_done = 0
        remove(self.partial)
        block = chunk if chunk % 16 == 0 else SCRATCH_BLOCK  # aligned writes fill whole tiles
        profile = {
            "driver": "GTiff",
            "width": grid.width,
            "height": grid.height,
            "count": N_BANDS,
            "dtype": encoding.dtype,
            "nodata": encoding.nodata,
            **affine_profile(grid),
            "tiled": True,
            "blockxsize": block,
            "blockysize": block,
            "interleave": "pixel",
            "BIGTIFF": "IF_SAFER",
        }
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)  # GCP/RPC/none grids
            self.dataset = rasterio.open(self.partial, "w", **profile)
        write_gcps_rpcs(self.dataset, grid)
        self.dataset.colorinterp = colour_interpretation()
        self.dataset.update_tags(**gdal_tags(attrs))
        for band, wavelength in enumerate(WAVELENGTHS_NM, start=1):
            self.dataset.set_band_description(band, f"{wavelength} nm")
            self.dataset.update_tags(band, wavelength=str(wavelength), wavelength_units="nm")
            self.dataset.update_tags(
                band, ns="IMAGERY", CENTRAL_WAVELENGTH_UM=f"{wavelength / 1000:g}"
            )
        if not encoding.is_float:
            self.dataset.scales = (encoding.scale_factor,) * N_BANDS
            self.dataset.offsets = (0.0,) * N_BANDS

    def write(self, row: int, col: int, values: np.ndarray) -> None:
        """Store reflectance ``values`` ``(31, h, w)`` float32 at pixel ``(row, col)``."""
        height, width = values.shape[1:]
        self.dataset.write(self.encoding.encode(values), window=Window(col, row, width, height))

    def band_done(self, band_index: int, values_seen: dict[str, Any] | None = None) -> None:
        """GeoTIFF output does not resume; nothing to record."""
        self.bands_done = band_index + 1

    def finish(self, extra_attrs: dict[str, Any] | None = None, *, bands_total: int) -> Path:
        """Add ``extra_attrs`` as tags, convert the scratch GTiff to a COG, check the COG and
        rename it to the output path. Raises :class:`OutputError` (only the scratch
        ``.partial`` stays) when all ``bands_total`` bands were not written or the COG is
        not right."""
        check_bands_done(self.partial, self.bands_done, bands_total, resumable=False)
        self.dataset.update_tags(**gdal_tags(extra_attrs or {}))
        self.dataset.update_tags(**{COMPLETE_TAG: "yes"})
        self.dataset.close()
        cog = self.partial.with_name(self.partial.name + COG_SUFFIX)
        predictor = 3 if self.encoding.is_float else 2
        try:
            rasterio.shutil.copy(
                self.partial, cog, driver="COG", PREDICTOR=predictor, **COG_OPTIONS
            )
            verify_cog(cog, self.grid, self.encoding.dtype, self.tag_names)
        except BaseException:
            with suppress(OSError):
                remove(cog)
            raise
        hold_stops()  # the COG is checked: a stop now waits until it is published
        remove(self.partial)
        publish(cog, self.path)
        return self.path

    def close(self) -> None:
        """Close the scratch file without publishing (after an error)."""
        if not self.dataset.closed:
            # a full disk fails the close too (the error is known); rasterio's environment
            # keeps GDAL from printing it
            with suppress(Exception), rasterio.Env():
                self.dataset.close()
