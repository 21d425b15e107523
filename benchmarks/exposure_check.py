"""Exposure equivariance and re-rendering of the shipped model through the command line:
CAVE ``flowers_ms`` rendered through CIE 1964 at a fixed gain (exposure 1) and at half that,
as float GeoTIFFs, each reconstructed with ``geohsr reconstruct --scale 1``, without and with
``--camera cie1964``. Prints the relative difference between the full-exposure cube and
twice the half-exposure one (target <= 3 %) and, with the camera, the largest re-rendering
error over unclipped pixels (1/255 = 0.0039). Then a real 8-bit raster (default: the
Landsat crop ``examples/RGB.byte.tif`` of the shared data) at its own exposure
(``--scale 255``) and at half of it (``--scale 510``: the same bytes read as half as
bright), with the difference split by input brightness: pixels darker than the model's
``level_input`` (32/255 at full exposure) are not exposure-equivariant by design (8-bit
noise is larger, relative to them), and those from 32/255 to 64/255 fall below it at half
exposure::

    python benchmarks/exposure_check.py [--weights W] [--raster R] [--workdir /tmp/geohsr-exposure]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import numpy as np
import rasterio

from geohsr.inference.options import DEFAULT_WEIGHTS
from geohsr.shared_data import shared_data_dir
from geohsr.spectral.cameras import cie1964
from geohsr.spectral.metamer import SATURATION_LEVEL, rerender_error
from geohsr.spectral.render import render_fixed_gain
from geohsr.training.accuracy import cave_test_images
from geohsr.training.datasets import load_data_specs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", default=DEFAULT_WEIGHTS)
    parser.add_argument("--scene", default="flowers_ms")
    parser.add_argument("--raster", type=Path, default=shared_data_dir() / "examples/RGB.byte.tif")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/geohsr-exposure"))
    args = parser.parse_args()

    args.workdir.mkdir(parents=True, exist_ok=True)
    specs = load_data_specs([f"cave:{shared_data_dir() / 'cave'}"])
    cube = cave_test_images([s for s in specs if s.name == args.scene])[0].cube
    css = cie1964().normalised
    rgb = render_fixed_gain(cube, css, 1.0)
    profile = dict(driver="GTiff", width=rgb.shape[2], height=rgb.shape[1], count=3)
    inputs = {}
    for name, data in (("full", rgb), ("half", rgb * 0.5)):
        inputs[name] = args.workdir / f"input_{name}.tif"
        with rasterio.open(inputs[name], "w", dtype="float32", **profile) as dst:
            dst.write(data.astype(np.float32))
    for camera in ([], ["--camera", "cie1964"]):
        cubes = {}
        for name, src in inputs.items():
            out = args.workdir / f"cube_{name}{'_camera' if camera else ''}.tif"
            cubes[name] = reconstruct(src, out, args.weights, "--scale", "1", *camera)
        full, half = cubes["full"], cubes["half"]
        difference = np.abs(2 * half - full).sum() / np.abs(full).sum()
        label = "--camera cie1964" if camera else "camera unknown"
        line = f"{label}: full vs 2 x half {difference:.3%}"
        if camera:
            unclipped = (rgb < SATURATION_LEVEL).all(axis=0)
            line += f", re-render max {rerender_error(full, rgb, css)[unclipped].max():.5f}"
        print(line)
    if args.raster.is_file():
        raster_check(args.raster, args.workdir, args.weights)


def reconstruct(src: Path, out: Path, weights: str, *options: str) -> np.ndarray:
    """``geohsr reconstruct src out`` with ``options``; the cube ``(31, H, W)``."""
    beside = Path(sys.executable).with_name("geohsr")  # this environment's, even if not on PATH
    command = [str(beside) if beside.is_file() else "geohsr", "reconstruct", str(src), str(out)]
    options = ("--overwrite", "--quiet", "--no-sidecars", "--weights", weights, *options)
    subprocess.run([*command, *options], check=True)
    with rasterio.open(out) as dataset:
        return dataset.read()


def raster_check(raster: Path, workdir: Path, weights: str) -> None:
    """8-bit ``raster`` read at full (``--scale 255``) and half (``--scale 510``) exposure:
    relative difference of the full cube and twice the half one, over all valid pixels and
    split by brightness at full exposure: from 64/255 both exposures are at or above the
    level input's 32/255."""
    with rasterio.open(raster) as dataset:
        if dataset.dtypes[0] != "uint8":
            raise SystemExit(f"--raster {raster}: an 8-bit raster, please")
        level = dataset.read().astype(np.float64).mean(axis=0) / 255.0  # (H, W)
    full = reconstruct(raster, workdir / "raster_full.tif", weights, "--scale", "255")
    half = reconstruct(raster, workdir / "raster_half.tif", weights, "--scale", "510")
    valid = np.isfinite(full).all(axis=0) & np.isfinite(half).all(axis=0)
    # at half exposure a pixel stays at or above the level input's 32/255 only from 64/255
    parts = {
        "all": valid,
        ">= 64/255": valid & (level >= 64 / 255),
        "32-64/255": valid & (level >= 32 / 255) & (level < 64 / 255),
        "< 32/255": valid & (level < 32 / 255),
    }
    for label, mask in parts.items():
        if not mask.any():
            continue
        difference = np.abs(2 * half[:, mask] - full[:, mask]).sum() / np.abs(full[:, mask]).sum()
        print(
            f"{raster.name} camera unknown, pixels {label} ({mask.sum() / valid.sum():.0%}): "
            f"full vs 2 x half {difference:.3%}"
        )


if __name__ == "__main__":
    main()
