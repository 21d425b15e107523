"""A picture to check a cube at a glance: the input RGB, the cube rendered back to RGB
through the CIE 1964 camera (white-balanced, same exposure rule as training), and the
spectra at a few pixels (numbered on both images). matplotlib Agg, no global state."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import rioxarray
import xarray as xr
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from geohsr.exceptions import InputError
from geohsr.io.cube import CUBE_VARIABLE
from geohsr.io.output import output_format
from geohsr.io.read import compute, open_raster, prepare_rgb
from geohsr.spectral import WAVELENGTHS_NM
from geohsr.spectral.cameras import cie1964
from geohsr.spectral.render import exposure_gain, render_rgb

#: longest side (pixels) of the images in the picture
PREVIEW_SIZE = 600
NODATA_GREY = 0.85


def open_cube(path: str | Path) -> xr.DataArray:
    """A geohsr cube (``.zarr`` or ``.tif``) as a lazy ``(wavelength, y, x)`` array,
    reflectance float (NaN = nodata)."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"cube {str(path)!r} not found; check the path")
    if output_format(path) == "zarr":
        dataset = xr.open_zarr(path, decode_coords="all")
        cube = dataset[CUBE_VARIABLE]
        cube.attrs.update(dataset.attrs)  # provenance lives on the group
        return cube
    data = rioxarray.open_rasterio(
        path, chunks={"band": -1, "y": 512, "x": 512}, masked=True, mask_and_scale=True
    )
    if data.sizes["band"] != len(WAVELENGTHS_NM):
        raise InputError(f"{str(path)!r} has {data.sizes['band']} bands, not a 31-band cube")
    return data.rename(band="wavelength").assign_coords(wavelength=WAVELENGTHS_NM)


def render_cube(cube: np.ndarray) -> np.ndarray:
    """``(31, h, w)`` reflectance (NaN allowed) -> ``(h, w, 3)`` RGB in [0, 1] for display."""
    valid = np.isfinite(cube).all(axis=0)
    filled = np.where(valid, cube, 0.0).astype(np.float32)
    css = cie1964().css
    reference = filled[:, valid][:, :, None] if valid.any() else filled  # (31, n, 1)
    gain = exposure_gain(reference, css)
    rgb = render_rgb(filled, css, gain).transpose(1, 2, 0)
    rgb[~valid] = NODATA_GREY
    return rgb


def pick_pixels(cube: np.ndarray, count: int = 4) -> list[tuple[int, int]]:
    """``count`` valid pixels ``(row, col)`` of ``(31, h, w)`` with distinct spectra: the
    one closest to the median spectrum, then repeatedly the one farthest (in spectrum) from
    those chosen, skipping pixels within 1/8 of the image size of a chosen one."""
    valid = np.isfinite(cube).all(axis=0)
    rows, cols = np.nonzero(valid)
    if rows.size == 0:
        return []
    spectra = cube[:, rows, cols].T  # (n, 31)
    radius = max(cube.shape[1:]) / 8

    def far_enough(i: int) -> np.ndarray:  # (n,) bool: outside the radius around pixel i
        return np.hypot(rows - rows[i], cols - cols[i]) > radius

    chosen = [int(np.argmin(np.linalg.norm(spectra - np.median(spectra, axis=0), axis=1)))]
    distance = np.linalg.norm(spectra - spectra[chosen[0]], axis=1) * far_enough(chosen[0])
    while len(chosen) < count and distance.max() > 0:
        chosen.append(int(np.argmax(distance)))
        spectral = np.linalg.norm(spectra - spectra[chosen[-1]], axis=1)
        distance = np.minimum(distance, spectral) * far_enough(chosen[-1])
    return [(int(rows[i]), int(cols[i])) for i in chosen]


def make_preview(
    cube_path: str | Path,
    out_png: str | Path,
    *,
    rgb_path: str | Path | None = None,
    pixels: Sequence[tuple[int, int]] | None = None,
    size: int = PREVIEW_SIZE,
) -> list[tuple[int, int]]:
    """Write the preview PNG; ``pixels`` are full-resolution ``(x, y)`` = (column, row).

    Returns the ``(x, y)`` pixels whose spectra are shown (picked automatically if none).
    """
    cube = open_cube(cube_path)
    height, width = cube.sizes["y"], cube.sizes["x"]
    step = max(1, math.ceil(max(height, width) / size))
    small = np.asarray(
        cube.isel(y=slice(None, None, step), x=slice(None, None, step)).values, dtype=np.float32
    )
    if pixels:
        for x, y in pixels:
            if not (0 <= x < width and 0 <= y < height):
                raise InputError(f"--pixels {x},{y} lies outside the {width} x {height} cube")
        chosen = list(pixels)
    else:
        chosen = [(col * step, row * step) for row, col in pick_pixels(small)]
    spectra = [np.asarray(cube.isel(x=x, y=y).values, dtype=np.float32) for x, y in chosen]

    panels = [("cube rendered to RGB (CIE 1964 camera)", render_cube(small))]
    if rgb_path is not None:
        panels.insert(0, ("input RGB", _input_rgb(rgb_path, step)))
    figure = Figure(figsize=(5 * (len(panels) + 1), 5), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(1, len(panels) + 1)
    colours = [f"C{i}" for i in range(len(chosen))]
    for ax, (title, image) in zip(axes, panels, strict=False):
        ax.imshow(image, interpolation="nearest")
        ax.set_title(title)
        ax.set_axis_off()
        for number, ((x, y), colour) in enumerate(zip(chosen, colours, strict=True), start=1):
            ax.plot(x / step, y / step, "o", ms=9, mfc="none", mec=colour, mew=2)
            ax.annotate(
                str(number),
                (x / step, y / step),
                xytext=(6, 6),
                textcoords="offset points",
                color=colour,
                weight="bold",
            )
    plot = axes[-1]
    for number, ((x, y), spectrum, colour) in enumerate(
        zip(chosen, spectra, colours, strict=True), start=1
    ):
        plot.plot(WAVELENGTHS_NM, spectrum, color=colour, label=f"{number}: x={x}, y={y}")
    plot.set_xlabel("wavelength (nm)")
    plot.set_ylabel("reflectance")
    plot.set_title("spectra")
    plot.grid(alpha=0.3)
    if chosen:
        plot.legend(fontsize="small")
    model = cube.attrs.get("model", cube.attrs.get("MODEL", "?"))
    figure.suptitle(f"{Path(cube_path).name}  ({width} x {height} px, model {model})")
    figure.savefig(out_png)
    return chosen


def _input_rgb(path: str | Path, step: int) -> np.ndarray:
    """The input imagery decimated by ``step`` as ``(h, w, 3)`` in [0, 1] for display."""
    raw = open_raster(path)
    try:
        rgb, _ = prepare_rgb(raw)
    except InputError:  # not 8-bit: a display stretch
        rgb, _ = prepare_rgb(raw, stretch=(2, 98))
    small = compute(rgb.isel(y=slice(None, None, step), x=slice(None, None, step)))
    return np.where(np.isfinite(small), small, NODATA_GREY).transpose(1, 2, 0)
