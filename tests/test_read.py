"""Reading and scaling input imagery: dtypes, bands, nodata, stretch, bad files."""

import numpy as np
import pytest
from scene_fixtures import gradient_rgb, write_raster

from geohsr.exceptions import InputError
from geohsr.io.read import compute, open_raster, prepare_rgb, stretch_limits


def test_uint8_is_divided_by_255_and_nodata_in_all_bands_becomes_nan(tmp_path):
    data = gradient_rgb(40, 30)
    data[:, :5, :] = 0
    data[0, 10, 10] = 0  # nodata in one band only: valid for GDAL (dataset mask 255)
    path = write_raster(tmp_path / "rgb.tif", data, nodata=0)
    rgb, scaling = prepare_rgb(open_raster(path))
    values = compute(rgb)
    assert values.dtype == np.float32 and scaling.description == "uint8 / 255"
    assert np.isnan(values[:, :5]).all()
    assert values[0, 10, 10] == 0 and np.isfinite(values[:, 10, 10]).all()
    np.testing.assert_allclose(values[:, 20:, :], data[:, 20:, :] / 255.0, rtol=1e-6)


def test_bands_pick_red_green_blue_from_a_multispectral_file(tmp_path):
    data = np.stack([np.full((8, 9), v, np.uint8) for v in (10, 20, 30, 40)])
    path = write_raster(tmp_path / "ms.tif", data)
    rgb, _ = prepare_rgb(open_raster(path), bands=(3, 2, 1))
    np.testing.assert_allclose(compute(rgb)[:, 0, 0], np.array([30, 20, 10]) / 255.0)


def test_wrong_band_count_names_the_fix(tmp_path):
    path = write_raster(tmp_path / "ms.tif", np.zeros((4, 8, 8), np.uint16))
    with pytest.raises(InputError, match="--bands R,G,B.*1 gray, 2 undefined"):
        prepare_rgb(open_raster(path))
    with pytest.raises(InputError, match="between 1 and 4"):
        prepare_rgb(open_raster(path), bands=(1, 2, 5), scale=1)


def test_uint16_needs_an_explicit_scale_or_stretch(tmp_path):
    data = (gradient_rgb(20, 20).astype(np.uint16) * 100).astype(np.uint16)
    path = write_raster(tmp_path / "u16.tif", data)
    with pytest.raises(InputError, match="no default scale for uint16.*--scale 65535"):
        prepare_rgb(open_raster(path))
    rgb, scaling = prepare_rgb(open_raster(path), scale=25500)
    np.testing.assert_allclose(compute(rgb), data / 25500.0, rtol=1e-6)
    assert scaling.description == "uint16 / 25500"


def test_float_input_needs_a_scale(tmp_path):
    path = write_raster(tmp_path / "f.tif", np.full((3, 5, 5), 0.5, np.float32))
    with pytest.raises(InputError, match="--scale 1 for floats"):
        prepare_rgb(open_raster(path))
    rgb, _ = prepare_rgb(open_raster(path), scale=1)
    np.testing.assert_allclose(compute(rgb), 0.5)


def test_stretch_maps_percentiles_to_0_and_1_with_one_range_for_all_bands(tmp_path):
    data = np.arange(3 * 50 * 40, dtype=np.uint16).reshape(3, 50, 40)
    path = write_raster(tmp_path / "u16.tif", data)
    low, high = stretch_limits(open_raster(path), (2, 98))
    np.testing.assert_allclose([low, high], np.percentile(data, [2, 98]), rtol=1e-3)
    rgb, scaling = prepare_rgb(open_raster(path), stretch=(2, 98))
    values = compute(rgb)
    assert values.min() == 0 and values.max() == 1
    assert "stretch p2-p98" in scaling.description


def test_stretch_reads_a_decimated_view(tmp_path, monkeypatch):
    import geohsr.io.read as read

    monkeypatch.setattr(read, "STRETCH_SAMPLE_PIXELS", 100)
    seen = []
    original = read.compute
    monkeypatch.setattr(read, "compute", lambda data: seen.append(data.shape) or original(data))
    path = write_raster(
        tmp_path / "u16.tif", np.ones((3, 100, 80), np.uint16) * np.arange(80, dtype=np.uint16)
    )
    read.stretch_limits(open_raster(path), (2, 98))
    assert len(seen) == 1 and seen[0][0] == 3 and seen[0][1] * seen[0][2] <= 110  # 12 x 9


@pytest.mark.parametrize(
    ("stretch", "message"), [((98, 2), "low < high"), ((2, 98), "nearly constant")]
)
def test_bad_stretch_is_an_input_error(tmp_path, stretch, message):
    path = write_raster(tmp_path / "c.tif", np.full((3, 6, 6), 7, np.uint16))
    with pytest.raises(InputError, match=message):
        prepare_rgb(open_raster(path), stretch=stretch)


def test_scale_and_stretch_together_are_refused(tmp_path):
    path = write_raster(tmp_path / "u.tif", np.ones((3, 6, 6), np.uint16))
    with pytest.raises(InputError, match="either --scale or --stretch"):
        prepare_rgb(open_raster(path), scale=2, stretch=(2, 98))


def test_extra_nodata_value_is_masked(tmp_path):
    data = gradient_rgb(10, 10)
    data[:, 0, 0] = 255
    rgb, _ = prepare_rgb(open_raster(write_raster(tmp_path / "a.tif", data)), nodata=255)
    assert np.isnan(compute(rgb)[:, 0, 0]).all()


def test_missing_file_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="not found"):
        open_raster(tmp_path / "nope.tif")


def test_file_that_is_no_raster_is_an_input_error(tmp_path):
    path = tmp_path / "garbage.tif"
    path.write_bytes(b"this is not a tiff" * 20)
    with pytest.raises(InputError, match="cannot read .* as a raster"):
        open_raster(path)


def test_corrupt_pixel_data_is_an_input_error(tmp_path):
    data = np.random.default_rng(0).integers(0, 255, (3, 256, 256), dtype=np.uint8)
    path = write_raster(
        tmp_path / "c.tif", data, tiled=True, blockxsize=64, blockysize=64, compress="deflate"
    )
    raw = bytearray(path.read_bytes())
    middle = len(raw) // 2
    raw[middle : middle + 4000] = b"\xff" * 4000
    path.write_bytes(bytes(raw))
    rgb, _ = prepare_rgb(open_raster(path))
    with pytest.raises(InputError, match="corrupt or truncated") as caught:
        compute(rgb)
    message = str(caught.value)
    assert "c.tif, band" in message and "See previous exception" not in message  # GDAL's cause


@pytest.mark.parametrize(("name", "driver"), [("photo.png", "PNG"), ("photo.jpg", "JPEG")])
def test_photos_without_georeference_read_without_crs(tmp_path, name, driver):
    path = write_raster(tmp_path / name, gradient_rgb(12, 16), crs=None, driver=driver)
    rgb, _ = prepare_rgb(open_raster(path))
    assert rgb.rio.crs is None and rgb.shape == (3, 12, 16)


def test_vrt_input_reads_like_its_source(tmp_path):
    import rasterio.shutil

    source = write_raster(tmp_path / "a.tif", gradient_rgb(20, 30))
    vrt = tmp_path / "a.vrt"
    rasterio.shutil.copy(source, vrt, driver="VRT")
    from_vrt, _ = prepare_rgb(open_raster(vrt))
    from_tif, _ = prepare_rgb(open_raster(source))
    np.testing.assert_array_equal(compute(from_vrt), compute(from_tif))
    assert from_vrt.rio.crs == from_tif.rio.crs


def test_quantisation_step_is_one_raw_count_of_linear_integer_input(tmp_path):
    data = gradient_rgb(20, 20)
    u8 = write_raster(tmp_path / "u8.tif", data)
    u16 = write_raster(tmp_path / "u16.tif", data.astype(np.uint16) * 100)
    f32 = write_raster(tmp_path / "f.tif", data.astype(np.float32) / 255)
    assert prepare_rgb(open_raster(u8))[1].step == pytest.approx(1 / 255)
    assert prepare_rgb(open_raster(u16), scale=25500)[1].step == pytest.approx(1 / 25500)
    _, stretched = prepare_rgb(open_raster(u16), stretch=(2, 98))
    assert stretched.step == pytest.approx(1 / stretched.divisor)
    assert prepare_rgb(open_raster(f32), scale=1)[1].step == 0.0  # float: no step
    assert prepare_rgb(open_raster(u8), encoding="srgb")[1].step == 0.0  # not uniform
