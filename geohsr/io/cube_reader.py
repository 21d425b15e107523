"""Reading finished geohsr cubes back: the lazy array and a readable summary.

Used by ``geohsr preview``, ``geohsr sample`` and ``geohsr info CUBE``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import rioxarray
import xarray as xr

from geohsr.exceptions import InputError
from geohsr.io.cube import COMPLETE_ATTR, COMPLETE_TAG, CUBE_VARIABLE
from geohsr.io.lock import running_writer
from geohsr.io.output import is_complete_output, output_format, partial_path
from geohsr.spectral import WAVELENGTHS_NM

#: raster attributes that are GDAL / CF bookkeeping, not geohsr provenance
_NOT_PROVENANCE = {
    "area_or_point",
    "_fillvalue",
    "scale_factor",
    "add_offset",
    "long_name",
    "wavelength",
    "wavelength_units",
    "units",
    "grid_mapping",
    "geohsr_fingerprint",
    "geohsr_bands_done",
    COMPLETE_ATTR,
    COMPLETE_TAG.lower(),
}


#: the order ``geohsr info`` lists provenance in, as ``reconstruct`` writes it (GeoTIFF tags
#: come back sorted by name); other attributes follow in their stored order
PROVENANCE_ORDER = (
    "title",
    "software",
    "source_file",
    "input_bands",
    "input_mask",
    "input_scaling",
    "input_encoding",
    "radiometric_convention",
    "camera",
    "model",
    "model_config",
    "weights",
    "weights_sha256",
    "inference",
    "tile",
    "overlap",
    "windows_per_block",
    "blend",
    "encoding",
)


def open_cube(path: str | Path) -> xr.DataArray:
    """A geohsr cube (``.zarr`` or ``.tif``) as a lazy ``(wavelength, y, x)`` array,
    reflectance float (NaN = nodata). Raises :class:`InputError` when it is missing or
    is not a 31-band cube."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"cube {str(path)!r} not found; check the path")
    if output_format(path) == "zarr":
        dataset = xr.open_zarr(path, decode_coords="all")
        if CUBE_VARIABLE not in dataset:
            raise InputError(f"{str(path)!r} is a Zarr store without a {CUBE_VARIABLE!r} cube")
        cube = dataset[CUBE_VARIABLE]
        cube.attrs.update(dataset.attrs)  # provenance lives on the group
        return cube
    data = rioxarray.open_rasterio(
        path, chunks={"band": -1, "y": 512, "x": 512}, masked=True, mask_and_scale=True
    )
    if data.sizes["band"] != len(WAVELENGTHS_NM):
        raise InputError(f"{str(path)!r} has {data.sizes['band']} bands, not a 31-band cube")
    return data.rename(band="wavelength").assign_coords(wavelength=WAVELENGTHS_NM)


def cube_summary(path: str | Path) -> list[tuple[str, str]]:
    """Readable ``(key, value)`` lines about the cube at ``path``: size, wavelengths,
    georeference, whether it is complete, and the provenance it records (model, weights,
    inference, input scaling, camera ...). Reads headers only."""
    cube, provenance = _read_cube(path)
    bands, height, width = (cube.sizes[d] for d in ("wavelength", "y", "x"))
    nm = _wavelengths(cube)
    rows = [
        ("file", str(path)),
        ("format", _format_name(path)),
        ("size", f"{bands} bands x {height} x {width} pixels, {cube.dtype}"),
        ("wavelengths", f"{nm[0]}..{nm[-1]} nm step {nm[1] - nm[0]}" if len(nm) > 1 else str(nm)),
        ("complete", "yes" if is_complete_output(path) else "no (an interrupted write?)"),
        ("crs", cube.rio.crs.to_string() if cube.rio.crs else "none"),
    ]
    if (writer := running_writer(path)) is not None:  # an --overwrite run
        replacing = f"a geohsr run is writing a new {Path(path).name} ({writer})"
        rows.append(("being replaced", replacing))
    if _georeferenced(cube):
        transform = cube.rio.transform()
        rows.append(("pixel size", f"{transform.a:g} x {-transform.e:g}"))
        rows.append(("bounds", ", ".join(f"{v:.10g}" for v in cube.rio.bounds())))
    return rows + list(provenance.items())


def cube_metadata(path: str | Path) -> dict[str, Any]:
    """What :func:`cube_summary` shows, as typed JSON-ready values: ``bands``, ``height``,
    ``width`` (int), ``wavelengths_nm`` (list), ``complete`` (bool), ``crs`` (str or None),
    ``transform`` (6 floats, GDAL order) and ``bounds`` (4 floats) when georeferenced, and
    the provenance (numbers and JSON objects decoded)."""
    cube, provenance = _read_cube(path)
    meta: dict[str, Any] = {
        "file": str(path),
        "format": _format_name(path),
        "bands": int(cube.sizes["wavelength"]),
        "height": int(cube.sizes["y"]),
        "width": int(cube.sizes["x"]),
        "dtype": str(cube.dtype),
        "wavelengths_nm": _wavelengths(cube),
        "complete": is_complete_output(path),
        "crs": cube.rio.crs.to_string() if cube.rio.crs else None,
    }
    if _georeferenced(cube):
        meta["transform"] = list(cube.rio.transform().to_gdal())
        meta["bounds"] = list(cube.rio.bounds())
    return meta | {key: _decoded(value) for key, value in provenance.items()}


def _read_cube(path: str | Path) -> tuple[xr.DataArray, dict[str, str]]:
    """The cube at ``path`` and its provenance attributes (lower-case keys, as text); an
    :class:`InputError` with the fix when only an interrupted run's scratch copy exists."""
    path = Path(path)
    if not path.exists() and partial_path(path).exists():
        writer = running_writer(path)
        if writer is not None:
            raise InputError(
                f"{str(path)!r} is not finished: a geohsr run is writing it ({writer}); run "
                "geohsr info on it once that run has ended"
            )
        fix = (
            "finish it with the same geohsr reconstruct command and --resume"
            if output_format(path) == "zarr"
            else "a GeoTIFF cannot resume: rerun the command with --overwrite"
        )
        raise InputError(
            f"{str(path)!r} is not finished: {partial_path(path).name} holds an interrupted "
            f"run; {fix}"
        )
    cube = open_cube(path)
    provenance = {}
    for key, value in cube.attrs.items():
        name = key.lower()
        if name in _NOT_PROVENANCE or name.startswith(("spatial:", "proj:", "_")):
            continue
        if isinstance(value, str | int | float):
            provenance[name] = str(value)
    rank = {key: index for index, key in enumerate(PROVENANCE_ORDER)}
    ordered = sorted(provenance, key=lambda key: rank.get(key, len(rank)))  # stable
    return cube, {key: provenance[key] for key in ordered}


def _format_name(path: str | Path) -> str:
    return "Zarr" if output_format(path) == "zarr" else "GeoTIFF"


def _wavelengths(cube: xr.DataArray) -> list[int]:
    return [int(round(float(v))) for v in cube["wavelength"].values]


def _georeferenced(cube: xr.DataArray) -> bool:
    """A CRS or a geotransform other than the identity (pixel coordinates)."""
    return cube.rio.crs is not None or cube.rio.transform() != cube.rio.transform().identity()


def _decoded(text: str) -> Any:
    """A provenance value: a number or JSON object/list when it is one, else the text."""
    try:
        value = json.loads(text)
    except ValueError:
        return text
    return value if isinstance(value, int | float | dict | list) else text
