"""Inputs read the way GDAL describes them: colour interpretation, scale/offset, colour
tables, dataset masks (nodata in all bands, mask bands, alpha), and the same for DataArrays
handed to the accessor however rioxarray opened them."""

import numpy as np
import pytest
import rasterio
import rioxarray
from rasterio.enums import ColorInterp
from scene_fixtures import gradient_rgb, write_raster

from geohsr.exceptions import InputError
from geohsr.io.read import compute, open_raster, prepare_rgb


def _read(path, **kwargs):
    rgb, scaling = prepare_rgb(open_raster(path), **kwargs)
    return compute(rgb), scaling


def _with_colorinterp(path, interps):
    with rasterio.open(path, "r+") as dataset:
        dataset.colorinterp = interps
    return path


def test_bands_labelled_blue_green_red_are_read_as_red_green_blue(tmp_path):
    rgb = gradient_rgb(12, 10)
    reference, _ = _read(write_raster(tmp_path / "rgb.tif", rgb))
    bgr_path = write_raster(tmp_path / "bgr.tif", rgb[::-1].copy(), photometric="MINISBLACK")
    _with_colorinterp(bgr_path, [ColorInterp.blue, ColorInterp.green, ColorInterp.red])
    values, scaling = _read(bgr_path)
    np.testing.assert_array_equal(values, reference)
    assert scaling.bands == "3,2,1 (by colour interpretation red, green, blue)"
    forced, scaling = _read(bgr_path, bands=(1, 2, 3))  # --bands overrides the labels
    np.testing.assert_array_equal(forced, reference[::-1])
    assert scaling.bands == "1,2,3 (--bands)"


def test_unlabelled_three_band_files_are_read_by_position(tmp_path):
    data = gradient_rgb(6, 7).astype(np.uint16)
    values, scaling = _read(write_raster(tmp_path / "u16.tif", data), scale=255)
    np.testing.assert_allclose(values, data / 255.0, rtol=1e-6)
    assert scaling.bands.startswith("1,2,3 (by position")


def test_rgba_alpha_band_is_the_mask_and_not_a_colour(tmp_path):
    data = np.concatenate([gradient_rgb(8, 8), np.full((1, 8, 8), 255, np.uint8)])
    data[3, :2] = 0  # transparent rows
    values, scaling = _read(write_raster(tmp_path / "rgba.tif", data))
    assert values.shape == (3, 8, 8) and scaling.mask.startswith("the alpha band")
    assert np.isnan(values[:, :2]).all() and np.isfinite(values[:, 2:]).all()
    np.testing.assert_allclose(values[:, 2:], data[:3, 2:] / 255.0, rtol=1e-6)


def test_multispectral_file_with_labelled_rgb_needs_no_bands(tmp_path):
    data = np.stack([np.full((5, 5), v, np.uint16) for v in (100, 200, 300, 400, 500)])
    path = write_raster(tmp_path / "ms.tif", data, photometric="MINISBLACK")
    interps = [ColorInterp.undefined] * 5
    interps[1], interps[2], interps[4] = ColorInterp.blue, ColorInterp.green, ColorInterp.red
    _with_colorinterp(path, interps)
    values, scaling = _read(path, scale=1000)
    np.testing.assert_allclose(values[:, 0, 0], [0.5, 0.3, 0.2], rtol=1e-6)
    assert scaling.bands.startswith("5,3,2")


def test_file_scale_and_offset_are_applied_so_no_option_is_needed(tmp_path):
    reflectance = np.linspace(0.0, 0.8, 3 * 6 * 6).reshape(3, 6, 6)
    dn = np.rint((reflectance + 0.1) / 1e-4).astype(np.uint16)  # r = dn * 1e-4 - 0.1
    path = write_raster(tmp_path / "dn.tif", dn)
    with rasterio.open(path, "r+") as dataset:
        dataset.scales = (1e-4,) * 3
        dataset.offsets = (-0.1,) * 3
    values, scaling = _read(path)
    np.testing.assert_allclose(values, reflectance, atol=1e-4)
    assert "0.0001 + -0.1 (the file's scale/offset)" in scaling.description
    halved, _ = _read(path, scale=2)  # --scale divides the scaled values
    np.testing.assert_allclose(halved, reflectance / 2, atol=1e-4)


def test_paletted_image_is_expanded_through_its_colour_table(tmp_path):
    indexes = np.array([[0, 1, 2], [2, 1, 0]], np.uint8)[None]
    path = write_raster(tmp_path / "pal.tif", indexes, photometric="PALETTE")
    table = {0: (255, 0, 0, 255), 1: (0, 128, 0, 255), 2: (10, 20, 30, 255)}
    with rasterio.open(path, "r+") as dataset:
        dataset.write_colormap(1, table)
    values, scaling = _read(path)
    assert values.shape == (3, 2, 3) and "colour table expanded" in scaling.bands
    np.testing.assert_allclose(values[:, 0, 0], [1, 0, 0])
    np.testing.assert_allclose(values[:, 0, 1], [0, 128 / 255, 0], rtol=1e-6)
    np.testing.assert_allclose(values[:, 1, 0], [10 / 255, 20 / 255, 30 / 255], rtol=1e-6)
    with pytest.raises(InputError, match="paletted image.*drop --bands"):
        _read(path, bands=(1, 1, 1))


def test_nodata_masks_only_pixels_missing_in_every_band(tmp_path):
    data = gradient_rgb(6, 6) + 1
    data[:, 0, 0] = 0
    data[0, 1, 1] = 0  # (0, g, b): valid for GDAL
    path = write_raster(tmp_path / "nd.tif", data, nodata=0)
    with rasterio.open(path) as dataset:
        gdal_mask = dataset.dataset_mask()
    values, scaling = _read(path)
    np.testing.assert_array_equal(np.isfinite(values).all(axis=0), gdal_mask > 0)
    assert values[0, 1, 1] == 0 and scaling.mask == "nodata 0 in all bands"


def test_internal_mask_band_is_followed(tmp_path):
    data = gradient_rgb(16, 16)
    path = write_raster(tmp_path / "m.tif", data)
    mask = np.full((16, 16), 255, np.uint8)
    mask[4:8, 2:5] = 0
    with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True):
        with rasterio.open(path, "r+") as dataset:
            dataset.write_mask(mask)
    values, scaling = _read(path)
    assert scaling.mask == "the file's mask band"
    np.testing.assert_array_equal(np.isfinite(values).all(axis=0), mask > 0)


@pytest.mark.parametrize("masked", [False, True])
def test_dataarray_nodata_is_honoured_however_it_was_opened(tmp_path, masked):
    data = gradient_rgb(8, 8) + 1
    data[:, :, :2] = 0
    data[2, 5, 5] = 0  # one band at nodata: valid
    path = write_raster(tmp_path / "nd.tif", data, nodata=0)
    opened = rioxarray.open_rasterio(path, masked=masked)
    rgb, _ = prepare_rgb(opened)
    values = compute(rgb)
    assert np.isnan(values[:, :, :2]).all() and np.isfinite(values[:, :, 2:]).all()
    assert values[2, 5, 5] == 0


def test_dataarray_from_a_bgr_file_uses_the_file_colour_interpretation(tmp_path):
    rgb = gradient_rgb(6, 6)
    path = write_raster(tmp_path / "bgr.tif", rgb[::-1].copy(), photometric="MINISBLACK")
    _with_colorinterp(path, [ColorInterp.blue, ColorInterp.green, ColorInterp.red])
    values = compute(prepare_rgb(rioxarray.open_rasterio(path))[0])
    np.testing.assert_allclose(values, rgb / 255.0, rtol=1e-6)


def test_transparent_colour_table_entries_are_missing():
    import xarray as xr

    from geohsr.io.bands import colormap_lut
    from geohsr.io.read import expand_palette

    indexes = xr.DataArray(np.array([[[0, 1, 7]]], np.uint8), dims=("band", "y", "x"))
    rgb, valid = expand_palette(indexes, colormap_lut({0: (9, 8, 7, 255), 1: (1, 2, 3, 0)}))
    np.testing.assert_array_equal(rgb.values[:, 0, 0], [9, 8, 7])
    np.testing.assert_array_equal(valid.values, [[True, False, False]])  # 7: not in the table


def test_unlabelled_bands_plus_alpha_are_read_by_position(tmp_path):
    data = np.concatenate([gradient_rgb(6, 6), np.full((1, 6, 6), 255, np.uint8)])
    data[3, 0] = 0
    path = write_raster(tmp_path / "ga.tif", data, photometric="MINISBLACK")
    _with_colorinterp(
        path, [ColorInterp.gray, ColorInterp.undefined, ColorInterp.undefined, ColorInterp.alpha]
    )
    values, scaling = _read(path)
    assert scaling.bands.startswith("1,2,3 (by position")
    assert np.isnan(values[:, 0]).all()
    np.testing.assert_allclose(values[:, 1:], data[:3, 1:] / 255.0, rtol=1e-6)
