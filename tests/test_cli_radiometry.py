"""Radiometry through the command line: exposure equivariance, --camera re-rendering,
--input-encoding, and the convention recorded in the output metadata."""

import numpy as np
import pytest
import rasterio
import xarray as xr
from click.testing import CliRunner
from residual_fixtures import tiny_residual_model
from scene_fixtures import save_model, write_raster
from training_fixtures import smooth_cube

from geohsr.cli.main import cli
from geohsr.models import create_model
from geohsr.spectral.cameras import cie1964
from geohsr.spectral.encoding import linear_to_srgb
from geohsr.spectral.metamer import SATURATION_LEVEL, rerender_error
from geohsr.spectral.render import render_fixed_gain

FAST = ["--tile", "64", "--overlap", "16", "--batch-size", "2", "--device", "cpu", "--quiet"]


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    path = tmp_path_factory.mktemp("w") / "residual.safetensors"
    return str(save_model(tiny_residual_model(), path))


@pytest.fixture(scope="module")
def scene_rgb():
    return render_fixed_gain(smooth_cube(80, 72, seed=4), cie1964().normalised, 0.9)


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def reconstruct(src, dst, weights, *extra):
    result = run("reconstruct", src, dst, "--weights", weights, *FAST, *extra)
    assert result.exit_code == 0, result.output
    return rasterio.open(dst)


def test_full_and_half_exposure_agree_after_scaling(tmp_path, weights, scene_rgb):
    full = write_raster(tmp_path / "full.tif", scene_rgb)
    half = write_raster(tmp_path / "half.tif", (scene_rgb * 0.5).astype(np.float32))
    with reconstruct(full, tmp_path / "full_cube.tif", weights, "--scale", "1") as a:
        cube_full = a.read()
    with reconstruct(half, tmp_path / "half_cube.tif", weights, "--scale", "1") as b:
        cube_half = b.read()
    difference = np.abs(2 * cube_half - cube_full).sum() / np.abs(cube_full).sum()
    assert difference <= 0.03, difference


def test_camera_option_rerenders_the_input_and_is_recorded(tmp_path, weights, scene_rgb):
    src = write_raster(tmp_path / "in.tif", scene_rgb)
    out = tmp_path / "cube.zarr"
    result = run("reconstruct", src, out, "--weights", weights, *FAST, "--scale", "1",
                 "--camera", "cie1964")  # fmt: skip
    assert result.exit_code == 0, result.output
    data = xr.open_zarr(out)
    cube = data["reflectance"].values
    unclipped = (scene_rgb < SATURATION_LEVEL).all(axis=0)
    error = rerender_error(cube, scene_rgb, cie1964().normalised)[unclipped]
    assert error.max() <= 1 / 255 and cube.min() >= 0
    assert data.attrs["camera"].startswith("cie1964 (known)")
    assert float(data.attrs["rerender_error_max"]) <= 1 / 255
    assert "flat reflectance-1 spectrum gives RGB (1, 1, 1)" in data.attrs["radiometric_convention"]
    assert data.attrs["input_encoding"].startswith("linear")


@pytest.fixture(scope="module")
def cell_weights(tmp_path_factory):
    model = tiny_residual_model()
    model.set_quantization_cell(True)  # as finetune --quantize-cell exports
    return str(save_model(model, tmp_path_factory.mktemp("w") / "cell.safetensors"))


def test_8bit_input_is_projected_within_its_quantisation_cell(
    tmp_path, weights, cell_weights, scene_rgb
):
    """An 8-bit file says only that the true RGB rounds to each value: with --camera,
    weights trained for it keep the network's rendering where it lies within half a level;
    the same values as float input, or weights trained for the exact projection, are
    projected exactly. The accessor does as the CLI does."""
    import rioxarray

    levels = np.round(np.clip(scene_rgb, 0, 1) * 255)
    rgb = (levels / 255).astype(np.float32)
    src8 = write_raster(tmp_path / "u8.tif", levels.astype(np.uint8))
    src_float = write_raster(tmp_path / "f.tif", rgb)
    out8, out_float = tmp_path / "u8.zarr", tmp_path / "f.zarr"
    out_plain = tmp_path / "plain.zarr"
    for src, out, chosen, extra in (
        (src8, out8, cell_weights, []),
        (src_float, out_float, cell_weights, ["--scale", "1"]),
        (src8, out_plain, weights, []),
    ):
        result = run("reconstruct", src, out, "--weights", chosen, *FAST, *extra,
                     "--camera", "cie1964")  # fmt: skip
        assert result.exit_code == 0, result.output
    cell = xr.open_zarr(out8)
    exact = xr.open_zarr(out_float)["reflectance"].values
    values = cell["reflectance"].values
    unclipped = (rgb < SATURATION_LEVEL).all(axis=0)
    css = cie1964().normalised
    moved = rerender_error(values, rgb, css)[unclipped]
    assert moved.max() <= 0.5 / 255 + 2e-4  # + float16 storage of the cube
    assert np.median(moved) > np.median(rerender_error(exact, rgb, css)[unclipped])
    assert "quantisation cell" in cell.attrs["camera"]
    assert "quantisation cell" not in xr.open_zarr(out_float).attrs["camera"]
    plain = xr.open_zarr(out_plain)
    assert "quantisation cell" not in plain.attrs["camera"]
    plain_error = rerender_error(plain["reflectance"].values, rgb, css)[unclipped]
    assert np.median(plain_error) < np.median(moved)
    data = rioxarray.open_rasterio(src8, masked=True)
    accessor = data.hsr.reconstruct(
        model=cell_weights, camera="cie1964", tile=64, overlap=16, batch_size=2, device="cpu"
    )
    np.testing.assert_array_equal(accessor.values, values)


def test_without_camera_the_output_says_unknown(tmp_path, weights, scene_rgb):
    src = write_raster(tmp_path / "in.tif", scene_rgb)
    with reconstruct(src, tmp_path / "cube.tif", weights, "--scale", "1") as ds:
        tags = ds.tags()
    assert tags["CAMERA"].startswith("unknown")
    assert "RERENDER_ERROR_MAX" not in tags


def test_srgb_encoding_is_removed_before_the_model(tmp_path, weights, scene_rgb):
    linear = write_raster(tmp_path / "linear.tif", scene_rgb)
    encoded = np.round(linear_to_srgb(scene_rgb) * 255).astype(np.uint8)
    srgb = write_raster(tmp_path / "srgb.tif", encoded)
    with reconstruct(linear, tmp_path / "a.tif", weights, "--scale", "1") as a:
        expected = a.read()
    with reconstruct(srgb, tmp_path / "b.tif", weights, "--input-encoding", "srgb") as b:
        decoded = b.read()
        assert b.tags()["INPUT_ENCODING"].startswith("srgb")
    # 8-bit sRGB quantisation only: within 2 % overall
    assert np.abs(decoded - expected).sum() / np.abs(expected).sum() < 0.02


def test_camera_with_a_model_that_cannot_use_it_is_one_line_error(tmp_path, scene_rgb):
    plain = str(save_model(create_model("rpr2"), tmp_path / "rpr2.safetensors"))
    src = write_raster(tmp_path / "in.tif", scene_rgb)
    result = run("reconstruct", src, tmp_path / "c.tif", "--weights", plain, *FAST,
                 "--scale", "1", "--camera", "cie1964")  # fmt: skip
    assert result.exit_code == 2
    assert "not camera-aware" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_unknown_camera_name_is_one_line_error(tmp_path, weights, scene_rgb):
    src = write_raster(tmp_path / "in.tif", scene_rgb)
    result = run("reconstruct", src, tmp_path / "c.tif", "--weights", weights, *FAST,
                 "--scale", "1", "--camera", "No Such Camera")  # fmt: skip
    assert result.exit_code == 2 and "unknown camera" in result.stderr


def test_accessor_takes_camera_and_encoding(weights, scene_rgb):
    data = xr.DataArray(scene_rgb, dims=("band", "y", "x"))
    cube = data.hsr.reconstruct(
        model=weights, scale=1.0, camera="cie1964", tile=64, overlap=16, device="cpu"
    )
    values = cube.values
    unclipped = (scene_rgb < SATURATION_LEVEL).all(axis=0)
    assert rerender_error(values, scene_rgb, cie1964().normalised)[unclipped].max() <= 1 / 255
    assert cube.attrs["camera"].startswith("cie1964 (known)")


def test_accessor_leaves_the_callers_module_alone(scene_rgb):
    from geohsr.exceptions import InputError
    from geohsr.inference.predictor import Predictor

    model = tiny_residual_model()
    data = xr.DataArray(scene_rgb, dims=("band", "y", "x"))
    settings = dict(scale=1.0, tile=64, overlap=16, device="cpu")
    known = data.hsr.reconstruct(model=model, camera="cie1964", **settings)
    unknown = data.hsr.reconstruct(model=model, **settings)
    assert not bool(model.camera_known)
    assert not np.allclose(known.values, unknown.values)
    assert unknown.attrs["camera"].startswith("unknown")
    with pytest.raises(InputError, match="ready Predictor"):
        data.hsr.reconstruct(model=Predictor(model, device="cpu"), camera="cie1964", **settings)


def test_batch_resolves_the_camera_before_any_worker_starts(weights, tmp_path):
    from geohsr.batch.worker import PredictorSettings
    from geohsr.exceptions import InputError
    from geohsr.inference.options import ReconstructOptions

    settings = PredictorSettings.from_options(weights, ReconstructOptions(camera="cie1964"))
    assert settings.camera.name == "cie1964"
    bad = tmp_path / "bad.csv"
    bad.write_text("400,1,1,1\n700,1,1,1\n")
    with pytest.raises(InputError, match="not independent"):
        PredictorSettings.from_options(weights, ReconstructOptions(camera=str(bad)))
