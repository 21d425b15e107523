"""The shipped default weights through the command line: exposure equivariance, re-rendering
with --camera, no negative output, metadata without machine paths."""

import json

import numpy as np
import rasterio
from click.testing import CliRunner
from scene_fixtures import write_raster
from training_fixtures import smooth_cube

from geohsr.cli.main import cli
from geohsr.inference.options import DEFAULT_WEIGHTS
from geohsr.models.weights import read_metadata
from geohsr.spectral.cameras import cie1964
from geohsr.spectral.metamer import SATURATION_LEVEL, rerender_error
from geohsr.spectral.render import render_fixed_gain

FAST = ["--tile", "64", "--overlap", "16", "--device", "cpu", "--quiet", "--scale", "1"]


def reconstruct(src, dst, *extra):
    result = CliRunner().invoke(cli, ["reconstruct", str(src), str(dst), *FAST, *extra])
    assert result.exit_code == 0, result.output
    with rasterio.open(dst) as ds:
        return ds.read(), ds.tags()


def test_default_weights_full_and_half_exposure_agree(tmp_path):
    rgb = render_fixed_gain(smooth_cube(72, 80, seed=7), cie1964().normalised, 0.8)
    full = write_raster(tmp_path / "full.tif", rgb)
    half = write_raster(tmp_path / "half.tif", (rgb * 0.5).astype(np.float32))
    cube_full, _ = reconstruct(full, tmp_path / "a.tif")
    cube_half, _ = reconstruct(half, tmp_path / "b.tif")
    assert np.abs(2 * cube_half - cube_full).sum() / np.abs(cube_full).sum() <= 0.03
    assert cube_full.min() >= 0


def test_default_weights_rerender_the_input_with_the_camera(tmp_path):
    rgb = render_fixed_gain(smooth_cube(72, 80, seed=8), cie1964().normalised, 0.9)
    src = write_raster(tmp_path / "in.tif", rgb)
    cube, tags = reconstruct(src, tmp_path / "c.tif", "--camera", "cie1964")
    unclipped = (rgb < SATURATION_LEVEL).all(axis=0)
    assert rerender_error(cube, rgb, cie1964().normalised)[unclipped].max() <= 1 / 255
    assert float(tags["RERENDER_ERROR_MAX"]) <= 1 / 255 and cube.min() >= 0


def test_default_weights_metadata_is_portable_and_camera_aware():
    meta = read_metadata(DEFAULT_WEIGHTS)
    text = json.dumps(meta)
    assert "/work/" not in text and "/home/" not in text and "/tmp/" not in text
    assert meta["model"].endswith("_rpr") and meta["dtype"] == "float16"
    assert not set(meta["val_scenes"]) & set(meta["train_scenes"])
