"""Read RGB imagery lazily and scale it to the model's input range [0, 1].

Any GDAL raster opens through ``rioxarray.open_rasterio`` (dask-chunked, nodata masked
to NaN, a lock for thread safety): GeoTIFF/COG, VRT, JP2, PNG/JPEG (without
georeference the output simply has no CRS). Three bands are used as red, green, blue;
``bands`` picks them from a multispectral file. Raw values become [0, 1] by the input
dtype: uint8 / 255; anything else needs an explicit ``scale`` (divisor) or a percentile
``stretch`` (computed on a decimated view, never the whole scene in memory).
"""

from __future__ import annotations

import math
import threading
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rioxarray
import xarray as xr
from rasterio.errors import NotGeoreferencedWarning, RasterioError

from geohsr.exceptions import InputError
from geohsr.spectral.encoding import decode_input

#: the default divisor per raw dtype; other dtypes need --scale or --stretch
DEFAULT_SCALES: dict[str, float] = {"uint8": 255.0}
#: dask chunks of the input when none are given
DEFAULT_CHUNKS = {"band": -1, "y": 512, "x": 512}
#: pixels sampled (at most) to compute a percentile stretch
STRETCH_SAMPLE_PIXELS = 1_000_000
#: why 16-bit/float input has no default, and what to pass instead (shown in errors)
SCALE_HINT = (
    "there is no default scale for {dtype} input: pass --scale DIVISOR (e.g. --scale 65535 "
    "for full-range 16-bit, --scale 10000 for reflectance x 10000, --scale 1 for floats "
    "already in 0-1) or --stretch 2,98 (percentile stretch)"
)


@dataclass(frozen=True)
class InputScaling:
    """``model_input = clip((raw - offset) / divisor, 0, 1)``; ``description`` is recorded
    as provenance in the output."""

    offset: float
    divisor: float
    description: str


def open_raster(path: str | Path, *, chunks: dict[str, int] | None = None) -> xr.DataArray:
    """Open any GDAL raster lazily as ``(band, y, x)``, nodata masked to NaN.

    Raises :class:`InputError` for a missing or unreadable file.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"input {str(path)!r} not found; check the path")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            data = rioxarray.open_rasterio(
                path, chunks=chunks or DEFAULT_CHUNKS, masked=True, lock=threading.Lock()
            )
    except (RasterioError, OSError) as err:
        raise InputError(
            f"cannot read {str(path)!r} as a raster ({err}); give a GeoTIFF/COG, VRT, JP2, "
            "PNG or JPEG file that GDAL can open (`gdalinfo` shows what is wrong)"
        ) from err
    if isinstance(data, list) or not isinstance(data, xr.DataArray):
        raise InputError(
            f"{str(path)!r} holds several subdatasets; open one of them (see `gdalinfo`)"
        )
    return data


def source_dtype(data: xr.DataArray) -> str:
    """The raw dtype of the pixels (before NaN masking made them float)."""
    return str(data.encoding.get("rasterio_dtype", data.encoding.get("dtype", data.dtype)))


def select_bands(data: xr.DataArray, bands: Sequence[int] | None) -> xr.DataArray:
    """The red, green, blue bands of ``(band, y, x)`` data; ``bands`` are 1-based indexes.

    Without ``bands`` the data must have exactly 3 bands.
    """
    count = data.sizes["band"]
    if bands is None:
        if count != 3:
            raise InputError(
                f"input has {count} band(s), not 3; choose the red, green and blue bands "
                "with --bands R,G,B (1-based, e.g. --bands 3,2,1)"
            )
        return data
    if len(bands) != 3 or any(not 1 <= b <= count for b in bands):
        raise InputError(
            f"--bands {','.join(map(str, bands))} must name 3 bands between 1 and {count} "
            "(red, green, blue; e.g. --bands 3,2,1)"
        )
    return data.isel(band=[b - 1 for b in bands])


def input_scaling(
    data: xr.DataArray,
    *,
    scale: float | None = None,
    stretch: tuple[float, float] | None = None,
    dtype: str | None = None,
) -> InputScaling:
    """How raw values of ``data`` map to [0, 1] (see the module docstring); ``dtype``
    overrides the raw dtype found in ``data``."""
    dtype = dtype or source_dtype(data)
    if scale is not None and stretch is not None:
        raise InputError("give either --scale or --stretch, not both")
    if stretch is not None:
        low, high = stretch_limits(data, stretch)
        return InputScaling(
            low, high - low, f"stretch p{stretch[0]:g}-p{stretch[1]:g}: {low:g}-{high:g}"
        )
    if scale is None:
        if dtype not in DEFAULT_SCALES:
            raise InputError(SCALE_HINT.format(dtype=dtype))
        scale = DEFAULT_SCALES[dtype]
    if not scale > 0:
        raise InputError(f"--scale must be positive, got {scale}")
    return InputScaling(0.0, float(scale), f"{dtype} / {scale:g}")


def stretch_limits(data: xr.DataArray, percentiles: tuple[float, float]) -> tuple[float, float]:
    """Low/high raw values at ``percentiles`` over all bands (one stretch for all bands, so
    the colour balance is kept), from a decimated view of at most ~1 Mpixel."""
    low_p, high_p = percentiles
    if not 0 <= low_p < high_p <= 100:
        raise InputError(f"--stretch needs 0 <= low < high <= 100, got {low_p:g},{high_p:g}")
    step = max(1, math.ceil(math.sqrt(data.sizes["y"] * data.sizes["x"] / STRETCH_SAMPLE_PIXELS)))
    sample = compute(data.isel(y=slice(None, None, step), x=slice(None, None, step)))
    valid = sample[np.isfinite(sample)]
    if valid.size == 0:
        raise InputError("the input has no valid pixels to compute a --stretch from")
    low, high = (float(v) for v in np.percentile(valid, [low_p, high_p]))
    if not high > low:
        raise InputError(
            f"--stretch {low_p:g},{high_p:g} gives an empty range ({low:g}-{high:g}); the "
            "image is nearly constant: use --scale instead"
        )
    return low, high


def prepare_rgb(
    data: xr.DataArray,
    *,
    bands: Sequence[int] | None = None,
    scale: float | None = None,
    stretch: tuple[float, float] | None = None,
    nodata: float | None = None,
    encoding: str = "linear",
) -> tuple[xr.DataArray, InputScaling]:
    """Raw ``(band, y, x)`` data -> lazy float32 linear RGB in [0, 1] (NaN where nodata).

    ``nodata``: a raw value to treat as missing in addition to the file's own nodata.
    ``encoding``: ``linear`` or ``srgb`` (the sRGB curve is removed after scaling, see
    :mod:`geohsr.spectral.encoding`). Used by both the command line and the ``.hsr`` accessor.
    """
    if data.ndim != 3 or "band" not in data.dims:
        raise InputError(
            f"expected dims (band, y, x), got {data.dims}; rename/transpose the data "
            "(e.g. da.rename({'channel': 'band'}))"
        )
    data = data.transpose("band", ...)
    rgb = select_bands(data, bands)
    dtype = source_dtype(rgb)
    if nodata is not None:
        rgb = rgb.where(rgb != nodata)
    scaling = input_scaling(rgb, scale=scale, stretch=stretch, dtype=dtype)
    scaled = ((rgb.astype(np.float32) - scaling.offset) / scaling.divisor).clip(0.0, 1.0)
    scaled = scaled.astype(np.float32)
    if encoding != "linear":
        scaled = xr.apply_ufunc(
            decode_input,
            scaled,
            kwargs={"encoding": encoding},
            dask="parallelized",
            output_dtypes=[np.float32],
        )
    scaled.attrs = {}
    scaled.encoding = {}
    return scaled, scaling


def compute(data: xr.DataArray) -> np.ndarray:
    """The values of a (lazy) array, read in this thread; read errors -> :class:`InputError`."""
    try:
        return np.asarray(data.compute(scheduler="synchronous").values)
    except RasterioError as err:
        source = data.encoding.get("source", "the input")
        raise InputError(
            f"failed to read {source} ({err}); the file is corrupt or truncated: "
            "re-download or re-export it"
        ) from err
