"""Click options shared by the commands that reconstruct scenes (`reconstruct`, `batch`).

``@reconstruct_options`` adds ``--weights`` and every :class:`ReconstructOptions` setting;
:func:`options_from_params` turns the parsed values back into ``(weights, options)``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from geohsr.inference.options import (
    BACKENDS,
    DEFAULT_OVERLAP,
    DEFAULT_TILE,
    DEFAULT_WEIGHTS,
    OUTPUT_DTYPES,
    PRECISIONS,
    ReconstructOptions,
)
from geohsr.io.encoding import DEFAULT_PRECISION_BITS


def parse_numbers(kind: type, count: int | None):
    """A click callback turning ``"3,2,1"`` (or ``"p2,p98"``) into a tuple of ``kind``."""

    def callback(ctx: click.Context, param: click.Parameter, value: str | None):
        if value is None:
            return None
        try:
            numbers = tuple(kind(part.strip().lstrip("pP")) for part in value.split(","))
        except ValueError:
            raise click.BadParameter(f"expected comma-separated numbers, got {value!r}") from None
        if count is not None and len(numbers) != count:
            raise click.BadParameter(f"expected {count} comma-separated numbers, got {value!r}")
        return numbers

    return callback


#: the options, in the order `--help` lists them
_OPTIONS: tuple[Callable[[Callable], Callable], ...] = (
    click.option(
        "--weights",
        default=DEFAULT_WEIGHTS,
        show_default=True,
        help="Shipped weights name or a .safetensors file.",
    ),
    click.option("--tile", default=DEFAULT_TILE, show_default=True, help="Window size (pixels)."),
    click.option(
        "--overlap",
        type=click.IntRange(min=0),
        help=f"Window overlap (pixels) [tile/4, at most {DEFAULT_OVERLAP}].",
    ),
    click.option("--batch-size", type=int, help="Windows per model call [cpu: 2, cuda: 8]."),
    click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N."),
    click.option("--threads", type=int, help="CPU inference threads [torch default]."),
    click.option(
        "--backend",
        type=click.Choice(BACKENDS, case_sensitive=False),
        default="auto",
        show_default=True,
        help='Who runs the model: openvino (CPU, pip install "geohsr[openvino]"; converted '
        "once per weights file, values within 2e-5 of torch) or torch; auto: openvino on CPU "
        "when installed, else torch (see `geohsr backends`).",
    ),
    click.option(
        "--precision",
        type=click.Choice(PRECISIONS, case_sensitive=False),
        default="auto",
        show_default=True,
        help="Arithmetic precision of the model: auto picks fp16 on CUDA; on CPU int8 where "
        'it has VNNI/AMX and NNCF is installed (pip install "geohsr[int8]"; the shipped '
        "INT8-adapted weights: MRAE +0.3 % on average, +0.6 % at worst), else bf16 with "
        "bfloat16 hardware, else fp32 (see README, Speed). fp32 is exact across runs.",
    ),
    click.option(
        "--bands",
        callback=parse_numbers(int, 3),
        help="1-based red,green,blue bands of a multispectral file, e.g. 3,2,1.",
    ),
    click.option(
        "--scale",
        type=float,
        help="Divide raw values by this (needed for 16-bit/float input, e.g. 65535).",
    ),
    click.option(
        "--stretch",
        callback=parse_numbers(float, 2),
        help="Percentile stretch low,high instead of --scale, e.g. 2,98 (or p2,p98).",
    ),
    click.option(
        "--nodata", type=float, help="Extra raw value: a pixel with it in every band is missing."
    ),
    click.option(
        "--camera",
        default=None,
        help="The input's camera response, if known: cie1964, a camera name (see "
        "`geohsr info`), or a CSV wavelength,r,g,b. Fits the classical base for it and makes "
        "every unclipped pixel's spectrum render back to its RGB (camera-aware weights, such "
        "as the default, only).",
    ),
    click.option(
        "--input-encoding",
        type=click.Choice(["linear", "srgb"]),
        default="linear",
        show_default=True,
        help="linear: raw/radiometric/reflectance bands; srgb: camera JPEGs and sRGB "
        "true-colour products (the sRGB curve is removed).",
    ),
    click.option(
        "--warp",
        metavar="CRS",
        help="Resample the input to a north-up grid in CRS (e.g. EPSG:32633; 'gcps': the CRS "
        "of the input's ground control points) with GDAL's warper, nearest neighbour, "
        "before reconstruction. For GCP/RPC-only or rotated inputs that need a map grid.",
    ),
    click.option(
        "--dtype",
        type=click.Choice(OUTPUT_DTYPES),
        default="float32",
        show_default=True,
        help="uint16 stores reflectance x 10000 (65535 = nodata).",
    ),
    click.option(
        "--precision-bits",
        type=click.IntRange(0, 23),
        default=DEFAULT_PRECISION_BITS,
        show_default=True,
        help="float32: round spectra to multiples of 2^-N (13: max error 6.1e-5, files ~3x "
        "smaller); 0 keeps every bit.",
    ),
    click.option(
        "--sidecars/--no-sidecars",
        default=True,
        show_default=True,
        help="Write a STAC Item (NAME.json) and a QGIS true-colour style (NAME.qml) beside "
        "the cube.",
    ),
    click.option(
        "--chunk-size",
        type=click.IntRange(min=1),
        help="Cluster runs: side (pixels) of the independent chunks, rounded up to whole "
        "Zarr chunks [24 window strides, 10752 for --tile 512: 8.5 % extra windows].",
    ),
    click.option(
        "--zarr-format",
        type=click.Choice(["2", "3"]),
        default="2",
        show_default=True,
        help="Zarr format: 2 is readable by GDAL (QGIS); 3 by xarray and zarr-python, not "
        "by GDAL 3.10 (a note says when this environment's GDAL cannot open it).",
    ),
)

#: parameter names the options above add to a command
RECONSTRUCT_PARAMS = (
    "weights", "tile", "overlap", "batch_size", "device", "threads", "backend", "precision",
    "bands", "scale", "stretch", "nodata", "camera", "input_encoding", "warp", "dtype",
    "precision_bits", "sidecars", "zarr_format", "chunk_size",
)  # fmt: skip


def reconstruct_options(command: Callable) -> Callable:
    """Decorator: add ``--weights`` and the reconstruction settings to a click command."""
    for option in reversed(_OPTIONS):
        command = option(command)
    return command


def options_from_params(params: dict[str, Any]) -> tuple[str, ReconstructOptions]:
    """``(weights, ReconstructOptions)`` from a command's parsed parameters; removes the
    reconstruction parameters from ``params`` so the rest are the command's own."""
    values = {name: params.pop(name) for name in RECONSTRUCT_PARAMS}
    weights = values.pop("weights")
    values["zarr_format"] = int(values["zarr_format"])
    return weights, ReconstructOptions(**values)
