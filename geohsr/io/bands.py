"""What the bands of an input raster mean, the way GDAL describes them.

:class:`SourceBands` gathers, per band of the source raster: the colour interpretation
(red/green/blue/alpha/palette...), the scale and offset (``value = raw * scale + offset``),
the nodata value, the colour table of a paletted image and which kind of validity mask
GDAL derives for the dataset (``rasterio``'s ``dataset_mask()``):

- ``per_dataset``: an internal or external mask band;
- ``alpha``: an alpha band (0 = transparent);
- ``nodata``: a pixel is missing only where **every** band equals nodata (GDAL's rule; a
  pixel ``(0, 120, 80)`` with nodata 0 is valid);
- ``none``: every pixel is valid.

It is read from the file by :func:`read_source_bands`, or, for a DataArray handed to the
``.hsr`` accessor, from rioxarray's attributes (and the colour interpretation of the file it
was opened from, when that file is still there) by :func:`source_bands_of`.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from geohsr.exceptions import InputError

#: attribute under which :func:`geohsr.io.read.open_raster` hands the band description on
SOURCE_BANDS_ATTR = "geohsr_source_bands"
RGB_NAMES = ("red", "green", "blue")


@dataclass(frozen=True)
class SourceBands:
    """Per-band meaning of a raster with ``count`` bands (see the module docstring).

    colorinterp: GDAL colour interpretation names, lower case (``"red"``, ``"alpha"``,
    ``"palette"``, ``"gray"``, ``"undefined"``...). scales/offsets: the file's linear
    scaling per band. colormap: ``(n, 4)`` uint8 RGBA lookup table of a paletted band.
    """

    colorinterp: tuple[str, ...]
    scales: tuple[float, ...]
    offsets: tuple[float, ...]
    nodata: float | None = None
    colormap: np.ndarray | None = None
    mask: str = "none"

    @property
    def count(self) -> int:
        return len(self.colorinterp)

    @property
    def is_scaled(self) -> bool:
        """True when the file declares a scale or offset other than 1 / 0."""
        return any(s != 1 for s in self.scales) or any(o != 0 for o in self.offsets)

    @property
    def is_paletted(self) -> bool:
        return self.colormap is not None

    def band_of(self, name: str) -> int | None:
        """1-based index of the one band labelled ``name``, else ``None``."""
        found = [i + 1 for i, interp in enumerate(self.colorinterp) if interp == name]
        return found[0] if len(found) == 1 else None


def read_source_bands(dataset: Any) -> SourceBands:
    """The :class:`SourceBands` of an open rasterio dataset."""
    from rasterio.enums import ColorInterp, MaskFlags

    colorinterp = tuple(ci.name.lower() for ci in dataset.colorinterp)
    colormap = None
    if dataset.count == 1 and dataset.colorinterp[0] == ColorInterp.palette:
        try:
            colormap = colormap_lut(dataset.colormap(1))
        except ValueError:  # labelled paletted without a table: treat as grey
            colorinterp = ("gray",)
    flags = set(dataset.mask_flag_enums[0]) if dataset.count else set()
    if MaskFlags.alpha in flags or "alpha" in colorinterp:
        mask = "alpha"
    elif MaskFlags.per_dataset in flags and MaskFlags.nodata not in flags:
        mask = "per_dataset"
    elif MaskFlags.nodata in flags or dataset.nodata is not None:
        mask = "nodata"
    else:
        mask = "none"
    return SourceBands(
        colorinterp=colorinterp,
        scales=tuple(float(s) for s in dataset.scales),
        offsets=tuple(float(o) for o in dataset.offsets),
        nodata=None if dataset.nodata is None else float(dataset.nodata),
        colormap=colormap,
        mask=mask,
    )


def colormap_lut(colormap: dict[int, Sequence[int]]) -> np.ndarray:
    """GDAL colour table ``{index: (r, g, b, a)}`` -> ``(max index + 1, 4)`` uint8 RGBA
    (indexes missing from the table are transparent black)."""
    if not colormap:
        raise ValueError("empty colour table")
    lut = np.zeros((max(colormap) + 1, 4), np.uint8)
    for index, rgba in colormap.items():
        lut[index, : len(rgba)] = rgba
        if len(rgba) == 3:
            lut[index, 3] = 255
    return lut


def source_bands_of(data: xr.DataArray) -> SourceBands:
    """The band description of raw ``(band, y, x)`` data: the one :func:`open_raster` attached,
    else from rioxarray's attributes (nodata, ``scale_factor``/``add_offset`` or
    ``scales``/``offsets``) and the colour interpretation of ``encoding["source"]``."""
    attached = data.attrs.get(SOURCE_BANDS_ATTR)
    if isinstance(attached, SourceBands):
        return attached
    count = data.sizes["band"]
    from_file = _source_file_bands(data)
    colorinterp = from_file.colorinterp if from_file else ("undefined",) * count
    colormap = from_file.colormap if from_file else None
    scales = _per_band(data.attrs.get("scales", data.attrs.get("scale_factor", 1.0)), count)
    offsets = _per_band(data.attrs.get("offsets", data.attrs.get("add_offset", 0.0)), count)
    nodata = _nodata_of(data)
    if "alpha" in colorinterp:
        mask = "alpha"
    elif nodata is not None:
        mask = "nodata"
    else:
        mask = "none"
    return SourceBands(colorinterp, scales, offsets, nodata, colormap, mask)


def _per_band(value: Any, count: int) -> tuple[float, ...]:
    values = np.atleast_1d(np.asarray(value, dtype=float))
    if values.size == 1:
        values = np.repeat(values, count)
    if values.size != count:
        raise InputError(
            f"the data has {count} bands but {values.size} scale/offset values in its "
            "attributes; fix the 'scales'/'offsets' attributes"
        )
    return tuple(float(v) for v in values)


def _nodata_of(data: xr.DataArray) -> float | None:
    """The raw nodata value however the DataArray was opened (``rio.encoded_nodata`` when
    rioxarray masked it to NaN, else ``rio.nodata`` / ``_FillValue``)."""
    for value in (data.rio.encoded_nodata, data.rio.nodata, data.attrs.get("_FillValue")):
        if value is not None:
            return float(value)
    return None


def _source_file_bands(data: xr.DataArray) -> SourceBands | None:
    """The bands of the file ``data`` was read from, if it is still there and matches."""
    source = data.encoding.get("source")
    if not source or not Path(str(source)).is_file():
        return None
    import rasterio
    from rasterio.errors import RasterioError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with rasterio.open(source) as dataset:
                if (dataset.count, dataset.height, dataset.width) != data.shape:
                    return None
                return read_source_bands(dataset)
    except (RasterioError, OSError):
        return None


def choose_rgb_bands(
    source: SourceBands, requested: Sequence[int] | None
) -> tuple[tuple[int, int, int], str]:
    """1-based red, green, blue band indexes and how they were chosen.

    ``requested`` (``--bands``) wins; else the bands labelled red, green and blue; else
    bands 1-3 of a 3-band raster. Raises :class:`InputError` naming the fix otherwise.
    """
    count = source.count
    if requested is not None:
        if len(requested) != 3 or any(not 1 <= b <= count for b in requested):
            raise InputError(
                f"--bands {','.join(map(str, requested))} must name 3 bands between 1 and "
                f"{count} (red, green, blue){_band_listing(source)}"
            )
        chosen = (int(requested[0]), int(requested[1]), int(requested[2]))
        return chosen, f"{_join(chosen)} (--bands)"
    labelled = [source.band_of(name) for name in RGB_NAMES]
    if all(index is not None for index in labelled):
        chosen = (labelled[0], labelled[1], labelled[2])  # type: ignore[assignment]
        return chosen, f"{_join(chosen)} (by colour interpretation red, green, blue)"
    colours = [i + 1 for i, interp in enumerate(source.colorinterp) if interp != "alpha"]
    if len(colours) == 3:  # e.g. unlabelled RGB, or RGB + alpha (added by a warp)
        chosen = (colours[0], colours[1], colours[2])
        return chosen, f"{_join(chosen)} (by position: no red/green/blue colour interpretation)"
    raise InputError(
        f"input has {count} band(s), not 3, and no bands labelled red, green and blue; "
        f"choose them with --bands R,G,B (1-based){_band_listing(source)}"
    )


def _join(bands: Sequence[int]) -> str:
    return ",".join(map(str, bands))


def _band_listing(source: SourceBands) -> str:
    """``"; the bands are: 1 blue, 2 green, ..."`` for error messages."""
    names = ", ".join(f"{i} {interp}" for i, interp in enumerate(source.colorinterp, 1))
    return f"; the bands are: {names}"
