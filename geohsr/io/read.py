"""Read RGB imagery lazily and scale it to the model's input range [0, 1].

Any GDAL raster opens through ``rioxarray.open_rasterio`` (dask-chunked, a lock for thread
safety): GeoTIFF/COG, VRT, JP2, PNG/JPEG (without georeference the output simply has no
CRS). The bands are read as GDAL describes them (:mod:`geohsr.io.bands`): red, green and
blue by colour interpretation (or position, or ``bands``), colour tables expanded, GDAL's
dataset mask, the file's scale/offset. Values then become [0, 1] by the input dtype:
uint8 / 255, values the file's scale/offset already made physical (reflectance) / 1;
anything else needs an explicit ``scale`` (divisor) or a percentile ``stretch`` (computed
on a decimated view, never the whole scene in memory).
"""

from __future__ import annotations

import math
import threading
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import dask.array as da
import numpy as np
import rasterio
import rioxarray
import xarray as xr
from rasterio.errors import NotGeoreferencedWarning, RasterioError
from rasterio.windows import Window

from geohsr.exceptions import InputError
from geohsr.io.bands import (
    SOURCE_BANDS_ATTR,
    SourceBands,
    choose_rgb_bands,
    read_source_bands,
    source_bands_of,
)
from geohsr.io.georef import warped_source
from geohsr.spectral.encoding import decode_input

#: the default divisor per raw dtype; other dtypes need --scale or --stretch
DEFAULT_SCALES: dict[str, float] = {"uint8": 255.0, "scaled": 1.0}
#: lazy (y, x) coordinate holding a file's mask band (True = valid)
VALID_COORD = "geohsr_valid"
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
    """``model_input = clip((value - offset) / divisor, 0, 1)``; ``description``, ``bands``
    (which bands were used as red, green, blue and why) and ``mask`` (what marks missing
    pixels) are recorded as provenance in the output. ``step``: one raw count in model
    input units when the input is integer and linear (``1 / divisor``; 1/255 for 8-bit),
    else 0 (float, file-scaled or sRGB-encoded values: no uniform quantisation step); the
    metamer projection of a known camera keeps each pixel within half a step of its RGB
    (:meth:`~geohsr.models.residual.ResidualSpectralModel.set_input_step`)."""

    offset: float
    divisor: float
    description: str
    bands: str = ""
    mask: str = ""
    step: float = 0.0


def open_raster(
    path: str | Path, *, chunks: dict[str, int] | None = None, warp: str | None = None
) -> xr.DataArray:
    """Open any GDAL raster lazily as raw ``(band, y, x)`` values (no masking or scaling yet).

    What the bands mean (colour interpretation, scale/offset, nodata, colour table, mask
    kind: :class:`~geohsr.io.bands.SourceBands`) is attached as
    ``attrs["geohsr_source_bands"]``; an internal/external mask band becomes the lazy
    ``(y, x)`` coordinate ``geohsr_valid``. :func:`prepare_rgb` applies them. ``warp``: a
    CRS (or ``gcps``) to resample the file to first, through GDAL's warper
    (:func:`~geohsr.io.georef.warped_source`; its alpha band masks what the file does not
    cover). Raises :class:`InputError` for a missing or unreadable file.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"input {str(path)!r} not found; check the path")
    raster = warped_source(path, warp) if warp else path
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            data = rioxarray.open_rasterio(
                raster,
                chunks=chunks or DEFAULT_CHUNKS,
                masked=False,
                mask_and_scale=False,
                lock=threading.Lock(),
            )
            if isinstance(data, xr.DataArray):
                with rasterio.open(raster) as dataset:
                    source = read_source_bands(dataset)
    except (RasterioError, OSError) as err:
        raise InputError(
            f"cannot read {str(path)!r} as a raster ({err}); give a GeoTIFF/COG, VRT, JP2, "
            "PNG or JPEG file that GDAL can open (`gdalinfo` shows what is wrong)"
        ) from err
    if isinstance(data, list) or not isinstance(data, xr.DataArray):
        raise InputError(
            f"{str(path)!r} holds several subdatasets; open one of them (see `gdalinfo`)"
        )
    data.attrs[SOURCE_BANDS_ATTR] = source
    if source.mask == "per_dataset":
        data = data.assign_coords({VALID_COORD: (("y", "x"), lazy_dataset_mask(raster, data))})
    return data


def lazy_dataset_mask(path: str | Path, data: xr.DataArray) -> da.Array:
    """GDAL's dataset mask of ``path`` (True = valid) as a dask array chunked like ``data``;
    each chunk is read through its own rasterio handle (thread-safe)."""
    y_chunks, x_chunks = (
        data.chunks[1:] if data.chunks else ((data.sizes["y"],), (data.sizes["x"],))
    )

    def read_chunk(block: np.ndarray, block_info: dict | None = None) -> np.ndarray:
        (row0, row1), (col0, col1) = block_info[0]["array-location"]
        with rasterio.open(path) as dataset:
            mask = dataset.dataset_mask(window=Window(col0, row0, col1 - col0, row1 - row0))
        return mask > 0

    template = da.zeros(data.shape[1:], dtype=bool, chunks=(y_chunks, x_chunks))
    return da.map_blocks(read_chunk, template, dtype=bool)


def source_dtype(data: xr.DataArray) -> str:
    """The raw dtype of the pixels (before NaN masking made them float)."""
    return str(data.encoding.get("rasterio_dtype", data.encoding.get("dtype", data.dtype)))


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
    name = "values" if dtype == "scaled" else dtype
    return InputScaling(0.0, float(scale), f"{name} / {scale:g}")


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
    resolved: InputScaling | None = None,
    clip: bool = True,
) -> tuple[xr.DataArray, InputScaling]:
    """Raw ``(band, y, x)`` data -> lazy float32 linear RGB in [0, 1] (NaN where masked).

    In this order, as GDAL defines them (:mod:`geohsr.io.bands`): a colour table is
    expanded to RGB; red, green, blue are picked by ``bands`` (1-based), else by colour
    interpretation, else by position; the validity mask is GDAL's dataset mask (mask band,
    alpha, or nodata in **all** bands; ``nodata`` adds a raw value treated the same way);
    the file's scale/offset give physical values; ``scale``/``stretch`` (or the dtype
    default) map them to [0, 1]; ``encoding`` ``srgb`` removes the sRGB curve
    (:mod:`geohsr.spectral.encoding`). Used by both the command line and the accessor.
    ``resolved``: the scaling an earlier call returned for the same file and settings
    (chunk tasks reuse it instead of computing a stretch again). ``clip=False`` leaves
    linear values outside [0, 1] as they are (the scene pass clips each block it reads,
    after noting what lay outside); the sRGB curve is always applied to clipped values.
    """
    if data.ndim != 3 or "band" not in data.dims:
        raise InputError(
            f"expected dims (band, y, x), got {data.dims}; rename/transpose the data "
            "(e.g. da.rename({'channel': 'band'}))"
        )
    data = data.transpose("band", ...)
    source = source_bands_of(data)
    dtype = source_dtype(data)
    valid = valid_mask(data, source, extra_nodata=nodata)
    if source.is_paletted:
        if bands is not None:
            raise InputError(
                "the input is a paletted image: geohsr expands its colour table to RGB "
                "itself; drop --bands"
            )
        rgb, palette_valid = expand_palette(data, source.colormap)
        valid = palette_valid if valid is None else valid & palette_valid
        chosen, band_note = (
            (1, 2, 3),
            "colour table expanded to RGB (like gdal_translate -expand rgb)",
        )
        dtype = "uint8"
    else:
        chosen, band_note = choose_rgb_bands(source, bands)
        rgb = data.isel(band=[b - 1 for b in chosen])
        rgb = _fill_partial_nan(rgb, source.nodata)
        if source.is_scaled:
            rgb = apply_file_scaling(rgb, source, chosen)
            dtype = "scaled"
    if valid is not None:
        rgb = rgb.where(valid)
    scaling = resolved or input_scaling(rgb, scale=scale, stretch=stretch, dtype=dtype)
    scaled = (rgb.astype(np.float32) - scaling.offset) / scaling.divisor
    if clip or encoding != "linear":
        scaled = scaled.clip(0.0, 1.0)
    scaled = scaled.astype(np.float32)
    if encoding != "linear":
        scaled = xr.apply_ufunc(
            decode_input,
            scaled,
            kwargs={"encoding": encoding},
            dask="parallelized",
            output_dtypes=[np.float32],
        )
    scaled = scaled.drop_vars(VALID_COORD, errors="ignore")
    scaled.attrs = {}
    scaled.encoding = {}
    description = scaling.description
    if dtype == "scaled":
        description = f"{_scaling_note(source, chosen)}, then {description}"
    return scaled, InputScaling(
        scaling.offset,
        scaling.divisor,
        description,
        band_note,
        _mask_note(source, nodata),
        quantization_step_of(dtype, scaling.divisor, encoding),
    )


def quantization_step_of(dtype: str, divisor: float, encoding: str = "linear") -> float:
    """One raw count of integer ``dtype`` input in model units (``1 / divisor``), or 0 where
    values have no uniform step: floats, values a file's scale/offset made physical
    (``"scaled"``), and non-linear encodings such as sRGB."""
    if dtype == "scaled" or encoding != "linear" or np.dtype(dtype).kind not in "ui":
        return 0.0
    return 1.0 / float(divisor)


def valid_mask(
    data: xr.DataArray, source: SourceBands, *, extra_nodata: float | None = None
) -> xr.DataArray | None:
    """GDAL's dataset mask of raw ``(band, y, x)`` data as a lazy ``(y, x)`` bool array
    (``None``: every pixel valid). NaN in every band (data opened ``masked=True``) also
    counts as missing."""
    masks = []
    if VALID_COORD in data.coords:
        masks.append(data[VALID_COORD])
    if source.mask == "alpha" and source.band_of("alpha") is not None:
        masks.append(data.isel(band=source.band_of("alpha") - 1) > 0)
    for value in (source.nodata if source.mask == "nodata" else None, extra_nodata):
        if value is not None:
            masks.append(~_equals(data, value).all("band"))
    if data.dtype.kind == "f":
        masks.append(data.notnull().any("band"))
    if not masks:
        return None
    valid = masks[0]
    for mask in masks[1:]:
        valid = valid & mask
    return valid.drop_vars([c for c in valid.coords if c not in ("y", "x")])


def _equals(data: xr.DataArray, value: float) -> xr.DataArray:
    return data.isnull() if np.isnan(value) else data == value


def _fill_partial_nan(rgb: xr.DataArray, nodata: float | None) -> xr.DataArray:
    """Bands masked to NaN one by one (``masked=True``) get their raw nodata value back, so a
    pixel missing in only some bands is read as GDAL reads it."""
    if rgb.dtype.kind != "f" or nodata is None or np.isnan(nodata):
        return rgb
    return rgb.fillna(nodata)


def expand_palette(data: xr.DataArray, lut: np.ndarray) -> tuple[xr.DataArray, xr.DataArray]:
    """Paletted ``(1, y, x)`` indexes -> ``(3, y, x)`` RGB (0-255) and the validity of each
    pixel (colour table alpha > 0), like ``gdal_translate -expand rgb``."""

    def lookup(indexes: np.ndarray) -> np.ndarray:
        indexes = np.asarray(indexes)
        inside = (indexes >= 0) & (indexes < len(lut))
        rgba = lut[np.where(inside, indexes, 0).astype(np.intp)]
        rgba[~inside] = 0
        return rgba

    rgba = xr.apply_ufunc(
        lookup,
        data.isel(band=0, drop=True),
        dask="parallelized",
        output_core_dims=[["rgba"]],
        output_dtypes=[np.uint8],
        dask_gufunc_kwargs={"output_sizes": {"rgba": 4}},
    )
    rgb = rgba.isel(rgba=slice(0, 3)).rename(rgba="band").transpose("band", "y", "x")
    rgb = rgb.assign_coords(band=[1, 2, 3])
    rgb.attrs = {k: v for k, v in data.attrs.items() if k != SOURCE_BANDS_ATTR}
    return rgb, rgba.isel(rgba=3, drop=True) > 0


def apply_file_scaling(
    rgb: xr.DataArray, source: SourceBands, chosen: Sequence[int]
) -> xr.DataArray:
    """``raw * scale + offset`` per band, with the file's values for the ``chosen`` bands
    (what rioxarray's ``mask_and_scale`` and GDAL's unscaling do)."""
    scales = xr.DataArray(np.array([source.scales[b - 1] for b in chosen]), dims="band")
    offsets = xr.DataArray(np.array([source.offsets[b - 1] for b in chosen]), dims="band")
    scaled = rgb.astype(np.float64) * scales.values[:, None, None] + offsets.values[:, None, None]
    return scaled.astype(np.float32)


def _scaling_note(source: SourceBands, chosen: Sequence[int]) -> str:
    pairs = {(source.scales[b - 1], source.offsets[b - 1]) for b in chosen}
    if len(pairs) == 1:
        ((factor, offset),) = pairs
        return f"raw x {factor:g} + {offset:g} (the file's scale/offset)"
    return "raw x scale + offset per band (the file's scale/offset)"


def _mask_note(source: SourceBands, extra_nodata: float | None) -> str:
    if source.mask == "nodata" and source.nodata is not None:
        note = f"nodata {source.nodata:g} in all bands"
    else:
        note = {"per_dataset": "the file's mask band", "alpha": "the alpha band (0 = missing)"}
        note = note.get(source.mask, "none")
    if extra_nodata is not None:
        note = f"{note}; value {extra_nodata:g} in all bands"
    return note


def compute(data: xr.DataArray) -> np.ndarray:
    """The values of a (lazy) array, read in this thread; read errors -> :class:`InputError`."""
    try:
        return np.asarray(data.compute(scheduler="synchronous").values)
    except RasterioError as err:
        source = data.encoding.get("source", "the input")
        raise InputError(
            f"failed to read {source} ({gdal_reason(err)}); the file is corrupt or "
            "truncated: re-download or re-export it (`gdalinfo -checksum` finds bad blocks)"
        ) from err


def gdal_reason(err: BaseException) -> str:
    """What GDAL said about a failed read: rasterio's "Read failed. See previous exception
    for details." names neither the file nor the cause, which sit in the chained GDAL
    errors (``__cause__``), e.g. "scene.tif, band 1: IReadBlock failed at X offset 0, Y
    offset 1: ... ZIPDecode:Decoding error at scanline 0"."""
    messages: list[str] = []
    seen: set[int] = set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        text = str(current).strip()
        if text and "See previous exception" not in text and text not in messages:
            messages.append(text)
        current = current.__cause__ or current.__context__
    if not messages:
        return str(err)
    first, root = messages[0], messages[-1]
    return first if first == root or root in first else f"{first} ... {root}"
