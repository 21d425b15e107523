"""The consistency check of a cube: its input RGB against the cube rendered back to RGB.

geohsr's cubes follow the radiometric convention of :mod:`geohsr.spectral.render`: through the
normalised camera response ``Cn`` the cube reproduces the model input (the input RGB after
band choice, scaling and decoding). The camera is the one recorded in the cube
(``camera_response``) when it was known, else the CIE 1964 observer; the input is prepared
again as the cube's ``input_bands`` / ``input_scaling`` / ``input_mask`` / ``input_encoding``
attributes say. The difference is in input units (1/255 = 0.0039 for 8-bit input).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from geohsr.exceptions import InputError
from geohsr.io.read import compute, open_raster, prepare_rgb
from geohsr.spectral import N_BANDS
from geohsr.spectral.cameras import cie1964
from geohsr.spectral.render import render_fixed_gain

_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"


@dataclass(frozen=True)
class Camera:
    """The response a cube is rendered through: ``label`` (shown in titles), ``normalised``
    ``(3, 31)`` and whether it was ``recorded`` in the cube (else assumed)."""

    label: str
    normalised: np.ndarray
    recorded: bool


@dataclass(frozen=True)
class Consistency:
    """``difference`` ``(h, w)``: ``|input - Cn @ cube|`` maximised over channels (NaN where
    either is missing), through ``camera``."""

    difference: np.ndarray
    camera: Camera

    @property
    def title(self) -> str:
        """A two-line panel title: what was compared, and the largest/median difference."""
        finite = self.difference[np.isfinite(self.difference)]
        stats = (
            f"max {finite.max():.3g}, median {np.median(finite):.3g}" if finite.size else "no data"
        )
        return f"|input - cube rendered through {self.camera.label}|\n{stats} (input units)"


def attribute(attrs: Mapping[str, Any], name: str) -> str | None:
    """``attrs[name]`` as text, looked up case-insensitively (GeoTIFF tags are upper case)."""
    for key, value in attrs.items():
        if key.lower() == name.lower():
            return str(value)
    return None


def recorded_camera(attrs: Mapping[str, Any]) -> Camera:
    """The camera recorded in a cube's ``camera_response`` JSON, else CIE 1964 (assumed)."""
    text = attribute(attrs, "camera_response")
    if text is not None:
        try:
            css = np.asarray(json.loads(text)["css_rgb"], dtype=np.float32)
        except (ValueError, KeyError, TypeError):
            css = None
        if css is not None and css.shape == (3, N_BANDS) and np.isfinite(css).all():
            name = (attribute(attrs, "camera") or "recorded camera").split(" (")[0]
            return Camera(f"{name} (recorded camera)", css, recorded=True)
    return Camera("CIE 1964 (camera unknown)", cie1964().normalised, recorded=False)


def input_options(attrs: Mapping[str, Any]) -> dict[str, Any]:
    """Keywords of :func:`~geohsr.io.read.prepare_rgb` that reproduce the model input, read
    from the cube's ``input_*`` attributes (what is not recorded keeps its default)."""
    encoding = (attribute(attrs, "input_encoding") or "linear").split(" ")[0]
    return {
        **_bands_option(attribute(attrs, "input_bands") or ""),
        **_scaling_option(attribute(attrs, "input_scaling") or ""),
        **_nodata_option(attribute(attrs, "input_mask") or ""),
        "encoding": encoding if encoding in ("linear", "srgb") else "linear",
    }


def open_options(attrs: Mapping[str, Any]) -> dict[str, Any]:
    """Keywords of :func:`~geohsr.io.read.open_raster` that give the input on the cube's grid:
    ``warp`` when the cube was made with ``--warp`` (its ``warp`` attribute)."""
    found = re.match(r"--warp (\S+):", attribute(attrs, "warp") or "")
    return {"warp": found.group(1)} if found else {}


def _bands_option(note: str) -> dict[str, Any]:
    """``bands`` when they were chosen with ``--bands`` (else the same rule picks them)."""
    found = re.match(r"(\d+),(\d+),(\d+) \(--bands\)", note)
    return {"bands": tuple(int(b) for b in found.groups())} if found else {}


def _scaling_option(note: str) -> dict[str, Any]:
    """``stretch`` (recomputed on the same input: the same limits) or ``scale``."""
    if found := re.search(rf"stretch p({_NUMBER})-p({_NUMBER})", note):
        return {"stretch": (float(found.group(1)), float(found.group(2)))}
    if found := re.search(rf"/ ({_NUMBER})$", note.strip()):
        return {"scale": float(found.group(1))}
    return {}


def _nodata_option(note: str) -> dict[str, Any]:
    """``nodata`` when ``--nodata`` added a value."""
    found = re.search(rf"value ({_NUMBER}|nan) in all bands", note)
    return {"nodata": float(found.group(1))} if found else {}


def model_input(rgb_path: str | Path, attrs: Mapping[str, Any], step: int) -> np.ndarray:
    """The model input of ``rgb_path`` (prepared as ``attrs`` record), decimated by ``step``:
    ``(3, h, w)`` float32 in [0, 1], NaN where masked."""
    raw = open_raster(rgb_path, **open_options(attrs))
    rgb, _ = prepare_rgb(raw, **input_options(attrs))
    return compute(rgb.isel(y=slice(None, None, step), x=slice(None, None, step)))


def check_same_grid(cube: xr.DataArray, rgb_path: str | Path) -> None:
    """Raise :class:`InputError` unless ``rgb_path`` lies on the cube's grid: the same size
    and, where both are georeferenced, the same CRS and geotransform (to 1e-6 of a pixel).
    A raster on another grid would show a difference that says nothing about the cube."""
    raw = open_raster(rgb_path)
    where = f"--rgb {str(rgb_path)!r}"
    size = (raw.sizes["x"], raw.sizes["y"])
    if size != (cube.sizes["x"], cube.sizes["y"]):
        raise InputError(
            f"{where} is {size[0]} x {size[1]} pixels but the cube {cube.sizes['x']} x "
            f"{cube.sizes['y']}; give the raster the cube was made from"
        )
    cube_crs, rgb_crs = cube.rio.crs, raw.rio.crs
    if cube_crs is None or rgb_crs is None:
        return
    if cube_crs != rgb_crs:
        raise InputError(
            f"{where} is in {rgb_crs.to_string()} but the cube in {cube_crs.to_string()}; "
            "give the raster the cube was made from"
        )
    cube_grid, rgb_grid = cube.rio.transform(), raw.rio.transform()
    pixel = max(abs(cube_grid.a), abs(cube_grid.e), 1e-12)
    if not cube_grid.almost_equals(rgb_grid, precision=1e-6 * pixel):
        raise InputError(
            f"{where} lies on another grid than the cube (geotransform {tuple(rgb_grid)[:6]} "
            f"against {tuple(cube_grid)[:6]}); give the raster the cube was made from"
        )


def rerender_difference(
    cube: np.ndarray, rgb: np.ndarray, css_normalised: np.ndarray
) -> np.ndarray:
    """``|clip(Cn @ cube, 0, 1) - rgb|`` maximised over channels: ``(31, h, w)`` and
    ``(3, h, w)`` -> ``(h, w)`` float32, NaN where either is missing. Clipped as a camera
    clips, so saturated pixels count as reproduced when the cube renders at or above 1."""
    if cube.shape[1:] != rgb.shape[1:]:
        raise InputError(
            f"the input RGB is {rgb.shape[2]} x {rgb.shape[1]} pixels but the cube "
            f"{cube.shape[2]} x {cube.shape[1]}; give the raster the cube was made from"
        )
    rendered = render_fixed_gain(np.asarray(cube, np.float32), css_normalised, 1.0)
    return np.abs(rendered - rgb).max(axis=0).astype(np.float32)


def consistency_check(
    cube: np.ndarray, attrs: Mapping[str, Any], rgb_path: str | Path, step: int
) -> Consistency:
    """Compare a cube decimated by ``step`` (``(31, h, w)``, its ``attrs``) with its input."""
    camera = recorded_camera(attrs)
    rgb = model_input(rgb_path, attrs, step)
    return Consistency(rerender_difference(cube, rgb, camera.normalised), camera)
