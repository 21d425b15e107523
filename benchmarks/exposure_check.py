"""Exposure equivariance and re-rendering of the shipped model through the command line:
CAVE ``flowers_ms`` rendered through CIE 1964 at a fixed gain (exposure 1) and at half that,
as float GeoTIFFs, each reconstructed with ``geohsr reconstruct --scale 1``, without and with
``--camera cie1964``. Prints the relative difference between the full-exposure cube and
twice the half-exposure one (target <= 3 %) and, with the camera, the largest re-rendering
error over unclipped pixels (1/255 = 0.0039)::

    python benchmarks/exposure_check.py [--weights W] [--workdir /tmp/geohsr-exposure]
"""

from __future__ import annotations

import argparse
import subprocess
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
            subprocess.run(
                ["geohsr", "reconstruct", str(src), str(out), "--scale", "1", "--overwrite",
                 "--quiet", "--no-sidecars", "--weights", args.weights, *camera],
                check=True,
            )  # fmt: skip
            with rasterio.open(out) as dataset:
                cubes[name] = dataset.read()
        full, half = cubes["full"], cubes["half"]
        difference = np.abs(2 * half - full).sum() / np.abs(full).sum()
        label = "--camera cie1964" if camera else "camera unknown"
        line = f"{label}: full vs 2 x half {difference:.3%}"
        if camera:
            unclipped = (rgb < SATURATION_LEVEL).all(axis=0)
            line += f", re-render max {rerender_error(full, rgb, css)[unclipped].max():.5f}"
        print(line)


if __name__ == "__main__":
    main()
