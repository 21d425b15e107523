"""Scene reconstruction end to end: blending properties at scene level, both writers,
metadata, nodata, odd sizes, no-CRS input, safe output."""

import warnings

import numpy as np
import pytest
import rasterio
import xarray as xr
from scene_fixtures import CRS, TRANSFORM, gradient_rgb, save_model, write_raster

from geohsr.exceptions import OutputError
from geohsr.inference.predictor import Predictor
from geohsr.inference.scene import (
    ReconstructOptions,
    is_complete_output,
    reconstruct_scene,
)
from geohsr.io.zarr_gdal import GDALCompatibilityWarning, gdal_read_problem
from geohsr.models import create_model
from geohsr.spectral import WAVELENGTHS_NM

FAST = ReconstructOptions(tile=64, overlap=16, batch_size=2, precision_bits=None)  # exact values


def predictor(name, **config):
    return Predictor(create_model(name, **config), device="cpu", batch_size=2)


def read_zarr(path):
    return xr.open_zarr(path, decode_coords="all")


def test_constant_model_gives_a_constant_cube_with_nan_at_nodata(tmp_path):
    data = gradient_rgb(150, 130)
    data[:, :20, :] = 0
    src = write_raster(tmp_path / "in.tif", data, nodata=0)
    result = reconstruct_scene(
        src,
        tmp_path / "out.zarr",
        options=FAST,
        predictor=predictor("scene_test_constant", value=0.3),
    )
    cube = read_zarr(result.output)["reflectance"].values
    assert cube.shape == (31, 150, 130) == result.shape
    assert np.isnan(cube[:, :20]).all()
    np.testing.assert_allclose(cube[:, 20:], 0.3, rtol=1e-6)


def test_crs_transform_coords_and_wavelengths_survive_in_zarr(tmp_path):
    src = write_raster(tmp_path / "in.tif", gradient_rgb(70, 90))
    reconstruct_scene(
        src, tmp_path / "out.zarr", options=FAST, predictor=predictor("scene_test_constant")
    )
    ds = read_zarr(tmp_path / "out.zarr")
    cube = ds["reflectance"]
    assert cube.dims == ("wavelength", "y", "x")
    assert cube.rio.crs == rasterio.crs.CRS.from_string(CRS)
    assert cube.rio.transform().almost_equals(TRANSFORM)
    np.testing.assert_array_equal(ds["wavelength"].values, WAVELENGTHS_NM)
    assert ds["wavelength"].attrs["units"] == "nm"
    assert cube.dtype == np.float32
    attrs = ds.attrs
    assert attrs["model"] == "scene_test_constant" and attrs["tile"] == 64
    assert attrs["overlap"] == 16 and attrs["software"].startswith("geohsr ")
    assert attrs["source_file"].endswith("in.tif") and attrs["georeferenced"] == "yes"
    with rasterio.open(f'ZARR:"{tmp_path / "out.zarr"}":/reflectance') as gdal_view:
        assert gdal_view.crs == rasterio.crs.CRS.from_string(CRS) and gdal_view.count == 31


def test_weights_hash_is_recorded(tmp_path):
    weights = save_model(create_model("scene_test_constant"), tmp_path / "w.safetensors")
    src = write_raster(tmp_path / "in.tif", gradient_rgb(40, 40))
    reconstruct_scene(src, tmp_path / "out.zarr", weights=weights, options=FAST)
    from geohsr.models.weights import file_sha256

    attrs = read_zarr(tmp_path / "out.zarr").attrs
    assert attrs["weights_sha256"] == file_sha256(weights)
    assert attrs["weights"] == "w.safetensors"


def test_cog_output_is_tiled_compressed_with_overviews_and_band_wavelengths(tmp_path):
    src = write_raster(tmp_path / "in.tif", gradient_rgb(300, 280))
    out = tmp_path / "out.tif"
    reconstruct_scene(src, out, options=FAST, predictor=predictor("scene_test_linear"))
    with rasterio.open(out) as cog:
        assert cog.count == 31 and cog.dtypes[0] == "float32"
        assert cog.crs == rasterio.crs.CRS.from_string(CRS)
        assert cog.transform.almost_equals(TRANSFORM)
        assert cog.profile["tiled"] and cog.compression.name == "zstd"
        assert cog.overviews(1), "COG must carry overviews"
        assert cog.descriptions[0] == "400 nm" and cog.descriptions[-1] == "700 nm"
        assert cog.tags(31) == {"wavelength": "700", "wavelength_units": "nm"}
        assert cog.tags()["MODEL"] == "scene_test_linear"
        assert cog.tags(1, ns="IMAGERY")["CENTRAL_WAVELENGTH_UM"] == "0.4"
        assert cog.tags()["GEOHSR_COMPLETE"] == "yes"
        cog_values = cog.read()
    reconstruct_scene(
        src, tmp_path / "same.zarr", options=FAST, predictor=predictor("scene_test_linear")
    )
    zarr_values = read_zarr(tmp_path / "same.zarr")["reflectance"].values
    np.testing.assert_array_equal(cog_values, zarr_values)  # both writers, same numbers
    assert is_complete_output(out)


def test_uint16_output_is_scaled_with_nodata_stated(tmp_path):
    data = gradient_rgb(60, 60)
    data[:, :4] = 0
    src = write_raster(tmp_path / "in.tif", data, nodata=0)
    options = ReconstructOptions(tile=64, overlap=16, batch_size=2, dtype="uint16")
    constant = predictor("scene_test_constant", value=0.12341)
    reconstruct_scene(src, tmp_path / "out.zarr", options=options, predictor=constant)
    decoded = read_zarr(tmp_path / "out.zarr")["reflectance"].values
    np.testing.assert_allclose(decoded[:, 4:], 0.1234, atol=1e-6)
    assert np.isnan(decoded[:, :4]).all()
    raw = xr.open_zarr(tmp_path / "out.zarr", mask_and_scale=False)["reflectance"]
    assert raw.dtype == np.uint16 and raw.attrs["scale_factor"] == 1e-4
    reconstruct_scene(src, tmp_path / "cog.tif", options=options, predictor=constant)
    with rasterio.open(tmp_path / "cog.tif") as cog:
        assert cog.dtypes[0] == "uint16" and cog.nodata == 65535 and cog.scales[0] == 1e-4
        assert cog.read(1)[0, 0] == 65535 and cog.read(1)[10, 10] == 1234


def test_float16_zarr_and_zarr_format_3(tmp_path):
    src = write_raster(tmp_path / "in.tif", gradient_rgb(50, 40))
    options = ReconstructOptions(tile=64, overlap=16, batch_size=2, dtype="float16", zarr_format=3)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        reconstruct_scene(
            src,
            tmp_path / "out.zarr",
            options=options,
            predictor=predictor("scene_test_constant", value=0.5),
        )
    assert (tmp_path / "out.zarr" / "zarr.json").is_file()
    # a note exactly when this environment's GDAL cannot open it (GDAL 3.10: it cannot)
    gdal_notes = [w for w in caught if issubclass(w.category, GDALCompatibilityWarning)]
    problem = gdal_read_problem(tmp_path / "out.zarr")
    assert len(gdal_notes) == (problem is not None)
    if problem is not None:
        assert "--zarr-format 2" in str(gdal_notes[0].message) and problem in str(
            gdal_notes[0].message
        )
    cube = xr.open_zarr(tmp_path / "out.zarr", decode_coords="all")["reflectance"]
    assert cube.dtype == np.float16 and float(cube.max()) == 0.5
    assert cube.rio.crs == rasterio.crs.CRS.from_string(CRS)
    assert is_complete_output(tmp_path / "out.zarr")


def test_gdal_opens_the_default_zarr_format_and_no_note_is_given(tmp_path):
    src = write_raster(tmp_path / "in.tif", gradient_rgb(50, 40))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        reconstruct_scene(
            src,
            tmp_path / "out.zarr",
            options=ReconstructOptions(tile=64, overlap=16, batch_size=2),
            predictor=predictor("scene_test_constant", value=0.5),
        )
    assert gdal_read_problem(tmp_path / "out.zarr") is None
    assert not [w for w in caught if issubclass(w.category, GDALCompatibilityWarning)]


def test_zarr_format_for_a_geotiff_is_refused_with_the_fix(tmp_path):
    src = write_raster(tmp_path / "in.tif", gradient_rgb(20, 20))
    options = ReconstructOptions(tile=64, overlap=16, zarr_format=3)
    with pytest.raises(OutputError, match="--zarr-format applies to .zarr output"):
        reconstruct_scene(
            src, tmp_path / "out.tif", options=options, predictor=predictor("scene_test_constant")
        )


def test_float16_geotiff_is_refused_with_the_fix(tmp_path):
    src = write_raster(tmp_path / "in.tif", gradient_rgb(20, 20))
    options = ReconstructOptions(tile=64, overlap=16, dtype="float16")
    with pytest.raises(OutputError, match="float32 or uint16, or write .zarr"):
        reconstruct_scene(
            src, tmp_path / "out.tif", options=options, predictor=predictor("scene_test_constant")
        )


@pytest.mark.parametrize("size", [(1, 1), (5, 200), (37, 203), (64, 64), (129, 65)])
def test_odd_sizes_are_fully_covered(tmp_path, size):
    # a georeferenced 1-pixel axis is refused for Zarr (GDAL misreads it; test_georeference)
    crs = None if min(size) == 1 else CRS
    src = write_raster(tmp_path / "in.tif", gradient_rgb(*size), crs=crs)
    reconstruct_scene(
        src,
        tmp_path / "out.zarr",
        options=FAST,
        predictor=predictor("scene_test_linear", artefact=0.0),
    )
    cube = read_zarr(tmp_path / "out.zarr")["reflectance"].values
    assert cube.shape == (31, *size) and np.isfinite(cube).all()
    rgb = gradient_rgb(*size).astype(np.float32) / 255  # linear model, no artefact: exact
    mix = create_model("scene_test_linear").mix.detach().numpy()
    np.testing.assert_allclose(cube, np.einsum("bc,chw->bhw", mix, rgb), rtol=1e-5, atol=1e-6)


def test_smooth_model_leaves_no_seams(tmp_path):
    """The scene varies by < 0.04 per pixel and per band at most sum(mix) x that; the
    model's window-position artefact (0.1 x r^2) would jump by ~0.1 at hard window borders;
    feathered, it changes by < 0.1 x 2 x pi / (2 x overlap) per pixel."""
    src = write_raster(tmp_path / "in.tif", gradient_rgb(200, 190))
    reconstruct_scene(
        src,
        tmp_path / "out.zarr",
        options=FAST,
        predictor=predictor("scene_test_linear", artefact=0.1),
    )
    cube = read_zarr(tmp_path / "out.zarr")["reflectance"].values
    rgb = gradient_rgb(200, 190).astype(np.float32) / 255
    mix = create_model("scene_test_linear").mix.detach().numpy()
    artefact = cube - np.einsum("bc,chw->bhw", mix, rgb)  # the blended artefact alone
    jump = max(np.abs(np.diff(artefact, axis=1)).max(), np.abs(np.diff(artefact, axis=2)).max())
    assert jump < 0.1 * 2 * np.pi / (2 * 16)


def test_no_crs_input_gives_output_without_crs_that_says_so(tmp_path):
    src = write_raster(tmp_path / "photo.png", gradient_rgb(40, 50), crs=None, driver="PNG")
    result = reconstruct_scene(
        src, tmp_path / "out.zarr", options=FAST, predictor=predictor("scene_test_constant")
    )
    assert result.crs is None
    ds = read_zarr(tmp_path / "out.zarr")
    assert ds["reflectance"].rio.crs is None
    assert ds.attrs["georeferenced"].startswith("no")
    reconstruct_scene(
        src, tmp_path / "cog.tif", options=FAST, predictor=predictor("scene_test_constant")
    )
    with rasterio.open(tmp_path / "cog.tif") as cog:
        assert cog.crs is None


def test_existing_output_is_not_overwritten_without_overwrite(tmp_path):
    src = write_raster(tmp_path / "in.tif", gradient_rgb(20, 20))
    out = tmp_path / "out.zarr"
    out.mkdir()
    with pytest.raises(OutputError, match="--overwrite"):
        reconstruct_scene(src, out, options=FAST, predictor=predictor("scene_test_constant"))
    reconstruct_scene(
        src, out, options=FAST, overwrite=True, predictor=predictor("scene_test_constant")
    )
    assert is_complete_output(out)


def test_unknown_output_extension_is_an_output_error(tmp_path):
    src = write_raster(tmp_path / "in.tif", gradient_rgb(20, 20))
    with pytest.raises(OutputError, match=r"\.zarr .* or \.tif"):
        reconstruct_scene(src, tmp_path / "out.nc", options=FAST)


class Interrupted(Exception):
    pass


class FailingPredictor(Predictor):
    """Raises after ``calls`` predict calls (a crash in the middle of a run)."""

    def __init__(self, model, calls):
        super().__init__(model, device="cpu", batch_size=2)
        self.calls = calls

    def predict(self, batch, **kwargs):
        if self.calls == 0:
            raise Interrupted
        self.calls -= 1
        return super().predict(batch, **kwargs)


@pytest.mark.parametrize("suffix", [".zarr", ".tif"])
def test_interrupted_run_leaves_no_complete_looking_output(tmp_path, suffix):
    src = write_raster(tmp_path / "in.tif", gradient_rgb(250, 250))
    out = tmp_path / f"out{suffix}"
    with pytest.raises(Interrupted):
        reconstruct_scene(
            src,
            out,
            options=FAST,
            predictor=FailingPredictor(create_model("scene_test_constant"), 3),
        )
    assert not out.exists() and not is_complete_output(out)
    assert (tmp_path / f"out{suffix}.partial").exists()
    with pytest.raises(OutputError, match="only"):
        reconstruct_scene(src, tmp_path / "x.tif", options=FAST, resume=True)


def test_float32_output_is_rounded_to_the_stated_precision_by_default(tmp_path):
    src = write_raster(tmp_path / "in.tif", gradient_rgb(50, 70))
    model = predictor("scene_test_linear")
    exact = ReconstructOptions(tile=64, overlap=16, batch_size=2, precision_bits=None)
    rounded = ReconstructOptions(tile=64, overlap=16, batch_size=2)
    assert rounded.precision_bits == 13
    for name, options in (("exact.tif", exact), ("rounded.tif", rounded)):
        reconstruct_scene(src, tmp_path / name, options=options, predictor=model)
    with rasterio.open(tmp_path / "exact.tif") as a, rasterio.open(tmp_path / "rounded.tif") as b:
        full, kept = a.read(), b.read()
        assert "2^-13" in b.tags()["ENCODING"] and "as stored" in a.tags()["ENCODING"]
    assert np.abs(kept - full).max() <= 2.0**-14
    np.testing.assert_array_equal(kept * 2**13, np.round(kept * 2**13))  # on the grid
    assert np.abs(kept - full).max() > 0  # the rounding happened
