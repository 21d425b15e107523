"""The .hsr accessor: lazy, same CRS/coords, same values as the command-line pipeline."""

import numpy as np
import pytest
import rioxarray
import torch
import xarray as xr
from scene_fixtures import gradient_rgb, save_model, write_raster

import geohsr  # noqa: F401 - registers .hsr
from geohsr.exceptions import InputError
from geohsr.inference.predictor import Predictor
from geohsr.inference.scene import ReconstructOptions, reconstruct_scene
from geohsr.models import create_model

SETTINGS = {"tile": 64, "overlap": 16, "batch_size": 2, "device": "cpu"}


class CountingPredictor(Predictor):
    calls = 0

    def predict(self, batch, **kwargs):
        CountingPredictor.calls += 1
        return super().predict(batch, **kwargs)


@pytest.fixture
def scene(tmp_path):
    data = gradient_rgb(170, 150)
    data[:, :, :12] = 0
    return write_raster(tmp_path / "in.tif", data, nodata=0)


@pytest.fixture
def weights(tmp_path):
    torch.manual_seed(1)
    return save_model(create_model("mxr_unet18", width=0.125), tmp_path / "tiny.safetensors")


def test_accessor_is_lazy_and_equals_the_cli_output_bit_for_bit(tmp_path, scene, weights):
    reconstruct_scene(
        scene, tmp_path / "cli.zarr", weights=weights, options=ReconstructOptions(**SETTINGS)
    )
    cli_dataset = xr.open_zarr(tmp_path / "cli.zarr", decode_coords="all")
    cli = cli_dataset["reflectance"]

    rgb = rioxarray.open_rasterio(scene, chunks={"y": 50, "x": 70}, masked=True)
    predictor = CountingPredictor(
        Predictor.from_weights(weights, device="cpu").model,
        device="cpu",
        batch_size=2,
        weights=weights,
    )
    CountingPredictor.calls = 0
    cube = rgb.hsr.reconstruct(model=predictor, **SETTINGS)
    assert CountingPredictor.calls == 0 and cube.chunks is not None  # lazy, dask-backed
    assert cube.dims == ("wavelength", "y", "x") and cube.shape == cli.shape
    assert cube.rio.crs == cli.rio.crs
    xr.testing.assert_equal(cube["x"], cli["x"])
    xr.testing.assert_equal(cube["y"], cli["y"])
    values = cube.compute().values
    assert CountingPredictor.calls > 0
    np.testing.assert_array_equal(values, cli.values)  # bit-for-bit, NaN where nodata
    assert np.isnan(values[:, :, :12]).all()
    for key in ("model", "tile", "overlap", "input_scaling", "weights_sha256"):
        assert cube.attrs[key] == cli_dataset.attrs[key]


def test_accessor_takes_a_weights_path_and_a_module(scene, weights):
    rgb = rioxarray.open_rasterio(scene, masked=True)
    from_path = rgb.hsr.reconstruct(model=weights, **SETTINGS)
    module, _ = __import__("geohsr.models.weights", fromlist=["x"]).load_weights(weights)
    from_module = rgb.hsr.reconstruct(model=module, **SETTINGS)
    window = {"x": slice(20, 60), "y": slice(0, 40)}
    np.testing.assert_array_equal(from_path.isel(window).values, from_module.isel(window).values)


def test_dataset_accessor_stacks_band_variables(scene):
    ds = rioxarray.open_rasterio(scene, masked=True, band_as_variable=True)
    out = ds.hsr.reconstruct(
        model=Predictor(create_model("scene_test_constant", value=0.5), device="cpu", batch_size=2),
        **SETTINGS,
    )
    cube = out["reflectance"]
    assert cube.shape == (31, 170, 150)
    values = cube.values
    assert np.isnan(values[:, :, :12]).all() and np.allclose(values[:, :, 12:], 0.5)


def test_dataset_without_a_clear_image_variable_is_an_input_error():
    ds = xr.Dataset({"a": (("t",), [1, 2])})
    with pytest.raises(InputError, match="variable="):
        ds.hsr.reconstruct(model="unused")


def test_accessor_errors_name_keywords_not_command_line_options():
    from geohsr.accessor import keyword_message

    model = Predictor(create_model("scene_test_constant"), device="cpu")
    four = xr.DataArray(np.zeros((4, 8, 8), np.uint8), dims=("band", "y", "x"))
    with pytest.raises(InputError, match=r"choose them with bands=\(R, G, B\)") as caught:
        four.hsr.reconstruct(model=model, **SETTINGS)
    assert "--bands" not in str(caught.value)
    floats = xr.DataArray(np.zeros((3, 8, 8), np.float32), dims=("band", "y", "x"))
    with pytest.raises(InputError, match=r"scale=1 for floats") as caught:
        floats.hsr.reconstruct(model=model, **SETTINGS)
    assert "stretch=(2, 98)" in str(caught.value) and "--" not in str(caught.value)
    assert keyword_message("use --warp EPSG:32633, --camera cie1964 or --resume") == (
        "use warp='EPSG:32633', camera='cie1964' or --resume"  # --resume: CLI only
    )
