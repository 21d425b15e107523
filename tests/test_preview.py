"""`geohsr preview`: representative pixels (medoids of spectral clusters, away from edges and
nodata, deterministic) and the consistency panel |input - cube rendered to RGB|."""

import json

import numpy as np
import pytest
import rasterio
import xarray as xr
from affine import Affine
from click.testing import CliRunner
from PIL import Image
from scene_fixtures import CRS, gradient_rgb, write_raster

from geohsr.cli.main import cli
from geohsr.exceptions import InputError
from geohsr.inference.scene import INPUT_ENCODING_NOTES
from geohsr.io.read import open_raster, prepare_rgb
from geohsr.preview import consistency_check, make_preview, open_cube, pick_pixels
from geohsr.preview.consistency import input_options, open_options, recorded_camera
from geohsr.preview.pixels import eligible_mask, kmeans
from geohsr.spectral import N_BANDS, WAVELENGTHS_NM
from geohsr.spectral.cameras import cie1964, normalise_css
from geohsr.spectral.render import render_fixed_gain

WL = WAVELENGTHS_NM.astype(np.float64)
GREEN_LEAF = (
    0.05 + 0.4 / (1 + np.exp(-(WL - 700 + 15) / 8)) + 0.08 * np.exp(-(((WL - 550) / 25) ** 2))
)
RED_ROOF = 0.08 + 0.35 / (1 + np.exp(-(WL - 590) / 12))


def two_material_cube(height=60, width=70, seed=0):
    """Left part GREEN_LEAF, right part RED_ROOF, a little noise, a nodata block, a noisy
    strip on the image edge and scattered noisy outliers; (cube, material, outliers)."""
    rng = np.random.default_rng(seed)
    material = np.zeros((height, width), dtype=int)
    material[:, width * 3 // 5 :] = 1
    spectra = np.stack([GREEN_LEAF, RED_ROOF])[material].transpose(2, 0, 1)
    cube = spectra * (1 + rng.normal(0, 0.02, (1, height, width))) + rng.normal(
        0, 0.003, spectra.shape
    )
    outliers = np.zeros((height, width), dtype=bool)
    outliers[:, 0] = True  # a noisy column on the edge
    outliers[rng.integers(5, height - 5, 12), rng.integers(5, width - 5, 12)] = True
    cube[:, outliers] += rng.normal(0, 0.3, (N_BANDS, outliers.sum()))
    cube[:, 40:52, 20:34] = np.nan
    return cube.astype(np.float32), material, outliers


def assert_interior_and_valid(cube, pixels):
    height, width = cube.shape[1:]
    for row, col in pixels:
        assert 0 < row < height - 1 and 0 < col < width - 1, (row, col)
        assert np.isfinite(cube[:, row - 1 : row + 2, col - 1 : col + 2]).all(), (row, col)


def test_pixels_are_interior_valid_and_deterministic():
    cube, _, outliers = two_material_cube()
    chosen = pick_pixels(cube, 4)
    assert len(chosen) == 4 and len(set(chosen)) == 4
    assert_interior_and_valid(cube, chosen)
    assert not any(outliers[row, col] for row, col in chosen)
    assert pick_pixels(cube, 4) == chosen  # deterministic
    assert pick_pixels(cube.copy(), 4) == chosen


def test_one_pixel_of_each_material_is_chosen():
    cube, material, outliers = two_material_cube()
    two = pick_pixels(cube, 2)
    assert sorted(material[row, col] for row, col in two) == [0, 1]
    four = pick_pixels(cube, 4)
    assert {material[row, col] for row, col in four} == {0, 1}
    for row, col in two:  # a medoid: close to its material's clean spectrum
        clean = (GREEN_LEAF, RED_ROOF)[material[row, col]]
        assert np.abs(cube[:, row, col] - clean).max() < 0.05


def test_eligible_pixels_keep_a_margin_from_edges_and_nodata():
    valid = np.ones((50, 50), dtype=bool)
    valid[20:25, 30:35] = False
    mask = eligible_mask(valid)  # margin 2 (4 % of 50)
    assert not mask[:2].any() and not mask[-2:].any() and not mask[:, :2].any()
    assert not mask[18:27, 28:37].any() and mask[17, 27] and mask[2, 2]
    assert eligible_mask(np.zeros((3, 3), dtype=bool)).sum() == 0
    tiny = np.ones((3, 3), dtype=bool)
    assert eligible_mask(tiny).tolist() == [[0, 0, 0], [0, 1, 0], [0, 0, 0]]


def test_constant_cube_gives_one_pixel_and_kmeans_labels_are_compact():
    assert len(pick_pixels(np.full((N_BANDS, 20, 20), 0.3, np.float32), 4)) == 1
    points = np.concatenate([np.zeros((10, 2)), np.ones((5, 2))])
    labels = kmeans(points, 3)
    assert sorted(set(labels.tolist())) == list(range(labels.max() + 1))
    assert len(set(labels[:10].tolist()) & set(labels[10:].tolist())) == 0


def write_cube(path, cube, attrs):
    """A geohsr-like Zarr cube (``reflectance`` on the ``(wavelength, y, x)`` grid)."""
    data = xr.DataArray(cube, dims=("wavelength", "y", "x"), coords={"wavelength": WAVELENGTHS_NM})
    xr.Dataset({"reflectance": data}, attrs=attrs).to_zarr(path, mode="w", zarr_format=2)
    return path


def test_preview_picks_full_resolution_pixels_off_the_edges(tmp_path):
    cube, material, outliers = two_material_cube(90, 100)
    path = write_cube(tmp_path / "c.zarr", cube, {"model": "test"})
    chosen = make_preview(path, tmp_path / "p.png", size=40)  # decimated by 3
    assert len(chosen) == 4
    assert_interior_and_valid(cube, [(y, x) for x, y in chosen])
    assert {material[y, x] for x, y in chosen} == {0, 1}
    assert not any(outliers[y, x] for x, y in chosen)
    assert make_preview(path, tmp_path / "q.png", size=40) == chosen


def camera_response_attr(css_normalised):
    rows = [[float(v) for v in row] for row in css_normalised]
    return json.dumps({"wavelengths_nm": "400-700/10", "css_rgb": rows})


def smooth_cube(height=40, width=50):
    rng = np.random.default_rng(3)
    weights = rng.uniform(0.05, 0.5, (3, height, width))
    basis = np.stack([GREEN_LEAF, RED_ROOF, np.full_like(WL, 0.5)])
    return np.einsum("kl,khw->lhw", basis, weights).astype(np.float32)


def test_difference_is_zero_through_the_recorded_camera(tmp_path):
    bumps = np.exp(-(((WL[None] - np.array([[610], [530], [450]])) / 40.0) ** 2))
    camera = normalise_css(bumps)
    cube = smooth_cube()
    rgb = render_fixed_gain(cube, camera, 1.0)
    rgb_path = write_raster(tmp_path / "in.tif", rgb.astype(np.float32))
    attrs = {
        "input_scaling": "float32 / 1",
        "camera": "bumps (known): classical base fitted for it",
        "camera_response": camera_response_attr(camera),
        "model": "test",
    }
    check = consistency_check(cube, attrs, rgb_path, 1)
    assert check.camera.recorded and "bumps" in check.camera.label
    assert np.nanmax(check.difference) < 1e-5
    assert "bumps (recorded camera)" in check.title
    unknown = consistency_check(cube, {"input_scaling": "float32 / 1"}, rgb_path, 1)
    assert not unknown.camera.recorded and "CIE 1964" in unknown.camera.label
    assert np.nanmax(unknown.difference) > 0.01  # the camera matters

    zarr = write_cube(tmp_path / "c.zarr", cube, attrs)
    opened = open_cube(zarr)
    assert recorded_camera(opened.attrs).recorded
    png = tmp_path / "p.png"
    assert len(make_preview(zarr, png, rgb_path=rgb_path)) == 4
    with Image.open(png) as image:
        assert image.size[0] > 3 * image.size[1]  # input, rendered, difference, spectra


def test_difference_of_8_bit_input_through_cie1964_is_rounding_only(tmp_path):
    cube = smooth_cube()
    cube[:, :4, :6] = np.nan
    rgb = render_fixed_gain(np.nan_to_num(cube), cie1964().normalised, 1.0)
    raw = np.round(rgb * 255).astype(np.uint8)
    raw[:, :4, :6] = 0
    rgb_path = write_raster(tmp_path / "in.tif", raw, nodata=0)
    check = consistency_check(cube, {"input_scaling": "uint8 / 255"}, rgb_path, 1)
    assert np.isnan(check.difference[:4, :6]).all()
    assert np.nanmax(check.difference) <= 0.5 / 255 + 1e-6
    assert check.camera.label == "CIE 1964 (camera unknown)"


def test_a_cube_of_another_size_is_an_input_error(tmp_path):
    rgb_path = write_raster(tmp_path / "in.tif", gradient_rgb(30, 20))
    with pytest.raises(Exception, match="give the raster the cube was made from"):
        consistency_check(smooth_cube(40, 50), {}, rgb_path, 1)


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"bands": (3, 1, 2)},
        {"scale": 400.0},
        {"stretch": (2.0, 98.0)},
        {"nodata": 9.0, "encoding": "srgb"},
    ],
)
def test_recorded_input_attributes_reproduce_the_model_input(tmp_path, options):
    raw = (gradient_rgb(30, 40).astype(np.uint16) * 3)[[0, 1, 2, 2]]
    raw[:, :3, :3] = 9
    path = write_raster(tmp_path / "in.tif", raw)
    full = {"scale": 255.0} | options
    if "bands" not in options:
        full["bands"] = (1, 2, 3)
    if "stretch" in options:
        del full["scale"]
    expected, scaling = prepare_rgb(open_raster(path), **full)
    attrs = {
        "input_bands": scaling.bands,
        "input_scaling": scaling.description,
        "input_mask": scaling.mask,
        "input_encoding": INPUT_ENCODING_NOTES[options.get("encoding", "linear")],
    }
    found = input_options(attrs)
    again, _ = prepare_rgb(open_raster(path), **found)
    np.testing.assert_array_equal(again.values, expected.values)


def test_cli_keeps_pixels_option_and_adds_count(tmp_path):
    cube, _, _ = two_material_cube()
    path = write_cube(tmp_path / "c.zarr", cube, {})
    result = CliRunner().invoke(
        cli, ["preview", str(path), str(tmp_path / "p.png"), "--count", "2"]
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.count(",") == 3  # "x,y, x,y"
    result = CliRunner().invoke(
        cli, ["preview", str(path), str(tmp_path / "p.png"), "--pixels", "5,6"]
    )
    assert result.exit_code == 0 and "spectra at 5,6)" in result.stdout


def test_a_warped_cube_opens_its_input_warped_the_same_way():
    note = "--warp EPSG:32633: the input was resampled by GDAL's warper (nearest neighbour)"
    assert open_options({"warp": note}) == {"warp": "EPSG:32633"}
    assert open_options({"WARP": "--warp gcps: resampled"}) == {"warp": "gcps"}
    assert open_options({}) == {}


def test_an_input_on_another_grid_is_an_input_error(tmp_path):
    from scene_fixtures import TRANSFORM

    cube = smooth_cube()
    cube_path = write_raster(tmp_path / "cube.tif", cube)  # 31 bands on the fixtures' grid
    rgb = np.round(render_fixed_gain(cube, cie1964().normalised, 1.0) * 255).astype(np.uint8)
    same = write_raster(tmp_path / "same.tif", rgb)
    assert len(make_preview(cube_path, tmp_path / "ok.png", rgb_path=same)) == 4
    other_crs = write_raster(tmp_path / "crs.tif", rgb, crs="EPSG:4326")
    with pytest.raises(InputError, match="EPSG:4326.*give the raster the cube was made from"):
        make_preview(cube_path, tmp_path / "p.png", rgb_path=other_crs)
    shifted = tmp_path / "shifted.tif"
    profile = dict(driver="GTiff", width=50, height=40, count=3, dtype="uint8")
    moved = TRANSFORM * Affine.translation(5, 0)
    with rasterio.open(shifted, "w", crs=CRS, transform=moved, **profile) as dst:
        dst.write(rgb)
    with pytest.raises(InputError, match="another grid"):
        make_preview(cube_path, tmp_path / "p.png", rgb_path=shifted)
    assert not (tmp_path / "p.png").exists()
