"""True-colour display of a cube in QGIS: a ``.qml`` layer style beside the output.

QGIS loads ``<name>.qml`` automatically for a raster layer ``<name>.tif`` (its default
style). The style is a multiband colour renderer on the bands nearest 640, 550 and 460 nm
with a 2-98 % cumulative-count cut per band, the stretch QGIS itself applies by default
(``QgsRasterMinMaxOrigin::CumulativeCut``); the cut values are computed here from a
decimated read of the cube so the style shows the right colours before QGIS computes any
statistics. Format: QGIS layer style (``<qgis><pipe><rasterrenderer type="multibandcolor">``)
as written by QGIS 3.x.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from xml.etree import ElementTree as ET

import numpy as np

from geohsr.exceptions import OutputError
from geohsr.spectral import WAVELENGTHS_NM

#: display wavelengths (nm) of red, green and blue
TRUE_COLOUR_NM = (640, 550, 460)
#: cumulative count cut (fractions) of the stretch
CUMULATIVE_CUT = (0.02, 0.98)
#: pixels read (at most) to compute the stretch
STYLE_SAMPLE_PIXELS = 1_000_000


@dataclass(frozen=True)
class BandStretch:
    """One display channel: 1-based band number, its wavelength and stretch limits."""

    band: int
    wavelength_nm: int
    minimum: float
    maximum: float


def true_colour_bands() -> tuple[int, int, int]:
    """1-based cube bands nearest 640, 550 and 460 nm (25, 16, 7 for 400-700/10 nm)."""
    wavelengths = np.asarray(WAVELENGTHS_NM)
    picks = [int(np.abs(wavelengths - nm).argmin()) + 1 for nm in TRUE_COLOUR_NM]
    return picks[0], picks[1], picks[2]


def style_path(output: str | Path) -> Path:
    """``cube.tif`` -> ``cube.qml`` (the name QGIS looks for)."""
    return Path(output).with_suffix(".qml")


def band_stretches(samples: np.ndarray) -> list[BandStretch]:
    """Stretch limits of the true-colour bands from ``samples`` ``(3, n)`` (the values of
    those bands, reflectance, NaN = nodata): the 2nd and 98th percentiles."""
    stretches = []
    for band, nm, values in zip(true_colour_bands(), TRUE_COLOUR_NM, samples, strict=True):
        finite = values[np.isfinite(values)]
        if finite.size == 0:
            low, high = 0.0, 1.0
        else:
            low, high = (float(v) for v in np.quantile(finite, CUMULATIVE_CUT))
            if not high > low:
                high = low + 1e-6
        stretches.append(BandStretch(band, nm, low, high))
    return stretches


def read_true_colour_samples(output: str | Path) -> np.ndarray:
    """The true-colour bands of a published cube, decimated to at most ~1 Mpixel,
    as ``(3, n)`` reflectance (NaN = nodata)."""
    output = Path(output)
    bands = true_colour_bands()
    if output.suffix.lower() == ".zarr":
        import xarray as xr

        from geohsr.io.cube import CUBE_VARIABLE

        cube = xr.open_zarr(output)[CUBE_VARIABLE]
        step = _step(cube.sizes["y"], cube.sizes["x"])
        picked = cube.isel(
            wavelength=[b - 1 for b in bands], y=slice(None, None, step), x=slice(None, None, step)
        )
        values = np.asarray(picked.values, dtype=np.float64)
    else:
        import rasterio

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with rasterio.open(output) as dataset:
                step = _step(dataset.height, dataset.width)
                shape = (3, math.ceil(dataset.height / step), math.ceil(dataset.width / step))
                raw = dataset.read(list(bands), out_shape=shape, masked=True)
                values = raw.astype(np.float64).filled(np.nan)
                values = values * dataset.scales[0] + dataset.offsets[0]
    return values.reshape(3, -1)


def _step(height: int, width: int) -> int:
    return max(1, math.ceil(math.sqrt(height * width / STYLE_SAMPLE_PIXELS)))


def style_xml(stretches: list[BandStretch]) -> str:
    """The ``.qml`` document of a multiband colour renderer with these stretches."""
    root = ET.Element("qgis", version="3.22.0", styleCategories="AllStyleCategories")
    pipe = ET.SubElement(root, "pipe")
    red, green, blue = stretches
    renderer = ET.SubElement(
        pipe,
        "rasterrenderer",
        type="multibandcolor",
        opacity="1",
        alphaBand="-1",
        redBand=str(red.band),
        greenBand=str(green.band),
        blueBand=str(blue.band),
        nodataColor="",
    )
    ET.SubElement(renderer, "rasterTransparency")
    origin = ET.SubElement(renderer, "minMaxOrigin")
    for tag, text in (
        ("limits", "CumulativeCut"),
        ("extent", "WholeRaster"),
        ("statAccuracy", "Estimated"),
        ("cumulativeCutLower", f"{CUMULATIVE_CUT[0]:g}"),
        ("cumulativeCutUpper", f"{CUMULATIVE_CUT[1]:g}"),
        ("stdDevFactor", "2"),
    ):
        ET.SubElement(origin, tag).text = text
    for name, stretch in zip(("red", "green", "blue"), stretches, strict=True):
        enhancement = ET.SubElement(renderer, f"{name}ContrastEnhancement")
        ET.SubElement(enhancement, "minValue").text = repr(stretch.minimum)
        ET.SubElement(enhancement, "maxValue").text = repr(stretch.maximum)
        ET.SubElement(enhancement, "algorithm").text = "StretchToMinimumMaximum"
    ET.SubElement(pipe, "brightnesscontrast", brightness="0", contrast="0", gamma="1")
    ET.SubElement(pipe, "huesaturation", saturation="0", grayscaleMode="0", colorizeOn="0")
    ET.SubElement(root, "blendMode").text = "0"
    ET.indent(root)
    body = ET.tostring(root, encoding="unicode")
    return f"<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n{body}\n"


def write_style(output: str | Path) -> Path:
    """Write ``<name>.qml`` (true colour, 2-98 % cut) beside published cube ``output``."""
    path = style_path(output)
    stretches = band_stretches(read_true_colour_samples(output))
    try:
        path.write_text(style_xml(stretches), encoding="utf-8")
    except OSError as err:
        raise OutputError(
            f"cannot write the QGIS style {str(path)!r} ({err.strerror}); choose a writable "
            "output folder"
        ) from err
    return path
