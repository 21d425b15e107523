"""Integration on the real georeferenced RGB GeoTIFFs in ../shared/data/examples (skipped
when that folder is absent): CRS, transform and nodata survive."""

import numpy as np
import pytest
import rasterio
import rioxarray
import xarray as xr
from scene_fixtures import SHARED_EXAMPLES

from geohsr.inference.predictor import Predictor
from geohsr.inference.scene import ReconstructOptions, reconstruct_scene
from geohsr.models import create_model

OPTIONS = ReconstructOptions(tile=128, overlap=32, batch_size=4)


def shared(name):
    path = SHARED_EXAMPLES / name
    if not path.is_file():
        pytest.skip(f"{path} not available")
    return path


def constant():
    return Predictor(create_model("scene_test_constant", value=0.4), device="cpu", batch_size=4)


@pytest.mark.parametrize("suffix", [".zarr", pytest.param(".tif", marks=pytest.mark.slow)])
def test_landsat_scene_keeps_crs_transform_and_nodata(tmp_path, suffix):
    src = shared("RGB.byte.tif")
    out = reconstruct_scene(
        src, tmp_path / f"cube{suffix}", predictor=constant(), options=OPTIONS
    ).output
    with rasterio.open(src) as dataset:
        crs, transform = dataset.crs, dataset.transform
        nodata = dataset.dataset_mask() == 0  # GDAL: nodata 0 in every band
    if suffix == ".zarr":
        cube = xr.open_zarr(out, decode_coords="all")["reflectance"]
        assert cube.rio.crs == crs and cube.rio.transform().almost_equals(transform)
        values = cube.values
    else:
        with rasterio.open(out) as cog:
            assert cog.crs == crs and cog.transform.almost_equals(transform)
            values = cog.read()
    assert values.shape == (31, 718, 791)
    assert np.array_equal(np.isnan(values).any(axis=0), nodata)
    assert nodata.sum() > 180_000  # the collar really is there
    np.testing.assert_allclose(values[:, ~nodata], 0.4, atol=2.0**-14)  # default rounding


def test_world_map_in_geographic_coordinates(tmp_path):
    src = shared("world.rgb.tif")
    out = reconstruct_scene(src, tmp_path / "world.zarr", predictor=constant(), options=OPTIONS)
    cube = xr.open_zarr(out.output, decode_coords="all")["reflectance"]
    original = rioxarray.open_rasterio(src)
    assert cube.rio.crs.to_epsg() == 4326
    assert cube.rio.transform().almost_equals(original.rio.transform())
    np.testing.assert_array_equal(cube["x"].values, original["x"].values)
    assert np.isfinite(cube.values).all()
