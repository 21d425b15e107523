"""The preview picture: the input RGB, the cube rendered back to RGB, their difference, and
the spectra at a few pixels marked with the same symbol and colour on every image.
matplotlib Agg, no global state."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from geohsr.exceptions import InputError
from geohsr.io.cube_reader import open_cube
from geohsr.io.read import compute, open_raster, prepare_rgb
from geohsr.preview.consistency import (
    Consistency,
    attribute,
    check_same_grid,
    consistency_check,
    open_options,
    recorded_camera,
)
from geohsr.preview.pixels import pick_pixels
from geohsr.spectral import WAVELENGTHS_NM
from geohsr.spectral.render import exposure_gain, render_rgb

#: longest side (pixels) of the images in the picture
PREVIEW_SIZE = 600
NODATA_GREY = 0.85
#: marker of the n-th pixel, on the images and on its spectrum
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")


def render_cube(cube: np.ndarray, css: np.ndarray | None = None) -> np.ndarray:
    """``(31, h, w)`` reflectance (NaN allowed) -> ``(h, w, 3)`` RGB in [0, 1] for display,
    through ``css`` (default CIE 1964), white-balanced and exposed to the scene."""
    css = recorded_camera({}).normalised if css is None else css
    valid = np.isfinite(cube).all(axis=0)
    filled = np.where(valid, cube, 0.0).astype(np.float32)
    reference = filled[:, valid][:, :, None] if valid.any() else filled  # (31, n, 1)
    gain = exposure_gain(reference, css)
    rgb = render_rgb(filled, css, gain).transpose(1, 2, 0)
    rgb[~valid] = NODATA_GREY
    return rgb


def make_preview(
    cube_path: str | Path,
    out_png: str | Path,
    *,
    rgb_path: str | Path | None = None,
    pixels: Sequence[tuple[int, int]] | None = None,
    size: int = PREVIEW_SIZE,
    count: int = 4,
) -> list[tuple[int, int]]:
    """Write the preview PNG; ``pixels`` are full-resolution ``(x, y)`` = (column, row).

    Without ``pixels``, ``count`` representative pixels are picked
    (:func:`~geohsr.preview.pixels.pick_pixels`). With ``rgb_path`` (the input the cube was
    made from) the input and ``|input - cube rendered to RGB|`` are shown too.
    Returns the ``(x, y)`` pixels whose spectra are shown.
    """
    cube = open_cube(cube_path)
    height, width = cube.sizes["y"], cube.sizes["x"]
    step = max(1, math.ceil(max(height, width) / size))
    small = compute(cube.isel(y=slice(None, None, step), x=slice(None, None, step)))
    small = small.astype(np.float32)
    chosen = _chosen_pixels(pixels, small, step, width, height, count)
    panels = _panels(cube, small, step, rgb_path)
    figure = Figure(figsize=(5 * (len(panels) + 1), 5), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(1, len(panels) + 1)
    for ax, (title, image) in zip(axes, panels, strict=False):
        if isinstance(image, Consistency):
            _draw_difference(figure, ax, image)
        else:
            ax.imshow(image, interpolation="nearest")
            ax.set_title(title)
        ax.set_axis_off()
        _mark_pixels(ax, chosen, step)
    _plot_spectra(axes[-1], chosen, cube)
    model = attribute(cube.attrs, "model") or "?"
    figure.suptitle(f"{Path(cube_path).name}  ({width} x {height} px, model {model})")
    figure.savefig(out_png)
    return chosen


def _panels(
    cube: xr.DataArray, small: np.ndarray, step: int, rgb_path: str | Path | None
) -> list[tuple[str, np.ndarray | Consistency]]:
    """(title, image) of each image panel: the input (with ``rgb_path``), the cube rendered
    through its camera, and (with ``rgb_path``) the consistency check."""
    camera = recorded_camera(cube.attrs)
    rendered = (f"cube rendered to RGB ({camera.label})", render_cube(small, camera.normalised))
    if rgb_path is None:
        return [rendered]
    check_same_grid(cube, rgb_path)
    return [
        ("input RGB", _input_rgb(rgb_path, step, open_options(cube.attrs))),
        rendered,
        ("", consistency_check(small, cube.attrs, rgb_path, step)),
    ]


def _chosen_pixels(
    pixels: Sequence[tuple[int, int]] | None,
    small: np.ndarray,
    step: int,
    width: int,
    height: int,
    count: int,
) -> list[tuple[int, int]]:
    """The user's ``(x, y)`` pixels (checked), else representative ones of ``small``."""
    if not pixels:
        return [(col * step, row * step) for row, col in pick_pixels(small, count)]
    for x, y in pixels:
        if not (0 <= x < width and 0 <= y < height):
            raise InputError(f"--pixels {x},{y} lies outside the {width} x {height} cube")
    return [(int(x), int(y)) for x, y in pixels]


def _style(number: int) -> tuple[str, str]:
    """Colour and marker of the ``number``-th (0-based) pixel."""
    return f"C{number % 10}", MARKERS[number % len(MARKERS)]


def _mark_pixels(ax: Axes, chosen: Sequence[tuple[int, int]], step: int) -> None:
    """Each pixel's marker and number on an image decimated by ``step``."""
    for number, (x, y) in enumerate(chosen):
        colour, marker = _style(number)
        ax.plot(x / step, y / step, marker, ms=10, mfc="none", mec=colour, mew=2)
        ax.annotate(
            str(number + 1),
            (x / step, y / step),
            xytext=(7, 7),
            textcoords="offset points",
            color=colour,
            weight="bold",
        )


def _draw_difference(figure: Figure, ax: Axes, check: Consistency) -> None:
    """``|input - rendered|`` with a colour bar in input units (at least 0 .. 1/255)."""
    finite = check.difference[np.isfinite(check.difference)]
    top = max(float(np.percentile(finite, 99)) if finite.size else 0.0, 1 / 255)
    cmap = colormaps["magma"].with_extremes(bad=(NODATA_GREY,) * 3)
    image = ax.imshow(check.difference, cmap=cmap, vmin=0.0, vmax=top, interpolation="nearest")
    extend = "max" if finite.size and finite.max() > top else "neither"
    figure.colorbar(image, ax=ax, shrink=0.8, extend=extend, label="input units (1/255 = 0.0039)")
    ax.set_title(check.title, fontsize="medium")


def _plot_spectra(ax: Axes, chosen: Sequence[tuple[int, int]], cube: xr.DataArray) -> None:
    """The spectrum at each pixel, with the pixel's colour and marker."""
    for number, (x, y) in enumerate(chosen):
        colour, marker = _style(number)
        spectrum = np.asarray(cube.isel(x=x, y=y).values, dtype=np.float32)
        ax.plot(
            WAVELENGTHS_NM,
            spectrum,
            color=colour,
            marker=marker,
            markevery=5,
            mfc="none",
            label=f"{number + 1}: x={x}, y={y}",
        )
    ax.set_xlabel("wavelength (nm)")
    ax.set_ylabel("reflectance")
    ax.set_title("spectra")
    ax.grid(alpha=0.3)
    if chosen:
        ax.legend(fontsize="small")


def _input_rgb(path: str | Path, step: int, options: dict[str, Any]) -> np.ndarray:
    """The input imagery (opened with ``options``) decimated by ``step`` as ``(h, w, 3)`` in
    [0, 1] for display."""
    raw = open_raster(path, **options)
    try:
        rgb, _ = prepare_rgb(raw)
    except InputError:  # not 8-bit: a display stretch
        rgb, _ = prepare_rgb(raw, stretch=(2, 98))
    small = compute(rgb.isel(y=slice(None, None, step), x=slice(None, None, step)))
    return np.where(np.isfinite(small), small, NODATA_GREY).transpose(1, 2, 0)
