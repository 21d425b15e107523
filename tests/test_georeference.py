"""Issue 12 items 2-4: the output carries the input's georeference as it is (affine grid,
GCPs, RPCs or none), --warp resamples through GDAL's warper, Zarr grids GDAL cannot read
are refused, and GDAL (the 3.10 bundled with rasterio) reads the Zarr's grid, CRS and band
wavelengths. Tiny rasters, a constant test model."""

import json
import re
import warnings

import numpy as np
import pytest
import rasterio
import rioxarray
import xarray as xr
from affine import Affine
from click.testing import CliRunner
from rasterio.control import GroundControlPoint
from rasterio.crs import CRS
from rasterio.rpc import RPC
from rasterio.warp import transform_bounds
from scene_fixtures import gradient_rgb, save_model, write_raster

import geohsr  # noqa: F401 - registers .hsr
from geohsr.cli.main import cli
from geohsr.exceptions import InputError, OutputError
from geohsr.inference.scene import ReconstructOptions, reconstruct_scene
from geohsr.models import create_model
from geohsr.spectral import WAVELENGTHS_NM

FAST = ReconstructOptions(tile=64, overlap=16, batch_size=2, device="cpu")
GCP_CRS = CRS.from_epsg(4326)
#: 4 GCPs at the corners of a 200 x 200 scene: lon 15.0-15.2, lat 44.8-45.0
GCPS = [
    GroundControlPoint(row=0, col=0, x=15.0, y=45.0, id="ul"),
    GroundControlPoint(row=0, col=200, x=15.2, y=45.0, id="ur"),
    GroundControlPoint(row=200, col=0, x=15.0, y=44.8, id="ll"),
    GroundControlPoint(row=200, col=200, x=15.2, y=44.8, id="lr"),
]
GCP_FOOTPRINT = (15.0, 44.8, 15.2, 45.0)
ROTATED = Affine(9.89, 1.478, 500000, 1.478, -9.89, 4000000)
RPCS = RPC(
    height_off=100, height_scale=500, lat_off=45.0, lat_scale=0.1, long_off=15.0,
    long_scale=0.1, line_off=20, line_scale=20, samp_off=20, samp_scale=20,
    line_num_coeff=[0, 0, -1] + [0] * 17, line_den_coeff=[1] + [0] * 19,
    samp_num_coeff=[0, 1] + [0] * 18, samp_den_coeff=[1] + [0] * 19,
)  # fmt: skip


@pytest.fixture
def weights(tmp_path):
    return save_model(create_model("scene_test_constant", value=0.3), tmp_path / "c.safetensors")


def raster(path, size=(40, 50), *, transform=None, crs=None, gcps=None, rpcs=None):
    """An RGB GeoTIFF with exactly the georeference given (none by default)."""
    height, width = size
    profile = {"driver": "GTiff", "width": width, "height": height, "count": 3}
    profile.update(dtype="uint8", photometric="RGB")
    if transform is not None:
        profile.update(transform=transform, crs=crs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
        with rasterio.open(path, "w", **profile) as dataset:
            if gcps is not None:
                dataset.gcps = (gcps, crs)
            if rpcs is not None:
                dataset.rpcs = rpcs
            dataset.write(gradient_rgb(height, width))
    return path


def gdal_view(store):
    """The Zarr cube as GDAL's Zarr driver shows it (classic multiband view)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
        return rasterio.open(f'ZARR:"{store}":/reflectance')


def assert_same_transform(actual, expected):
    """Equal within 1e-8 pixel: the float64 rounding of the pixel-centre coordinates GDAL
    derives the transform from."""
    pixel = max(abs(expected.a), abs(expected.e))
    for got, want in zip(actual[:6], expected[:6], strict=True):
        assert abs(got - want) <= 1e-8 * pixel, (actual, expected)


def rpc_values(rpc):
    """The coefficients of ``rpc`` (GDAL fills the unknown error terms with -1)."""
    return {k: v for k, v in rpc.to_dict().items() if not k.startswith("err_")}


def cube_attrs(store):
    return json.loads((store / "reflectance" / ".zattrs").read_text())


# --- item 2: ground control points and RPCs are kept, never replaced ---------------------


def test_gcp_only_input_keeps_its_gcps_in_the_geotiff(tmp_path, weights):
    src = raster(tmp_path / "gcp.tif", (200, 200), gcps=GCPS, crs=GCP_CRS)
    result = reconstruct_scene(src, tmp_path / "out.tif", weights=weights, options=FAST)
    assert result.georeference == "gcps" and result.crs == "EPSG:4326"
    with rasterio.open(tmp_path / "out.tif") as cog:
        gcps, crs = cog.gcps
        assert crs == GCP_CRS
        assert [(g.row, g.col, g.x, g.y) for g in gcps] == [(g.row, g.col, g.x, g.y) for g in GCPS]
        assert cog.transform.is_identity and cog.crs is None  # no invented geotransform
        assert cog.tags()["GEOREFERENCE"] == "gcps"
        assert "ground control points only" in cog.tags()["GEOREFERENCED"]


def test_gcp_only_input_keeps_its_gcps_in_the_zarr_and_claims_no_grid(tmp_path, weights):
    src = raster(tmp_path / "gcp.tif", (200, 200), gcps=GCPS, crs=GCP_CRS)
    reconstruct_scene(src, tmp_path / "out.zarr", weights=weights, options=FAST)
    dataset = xr.open_zarr(tmp_path / "out.zarr", decode_coords="all")
    cube = dataset["reflectance"]
    assert [(g.row, g.col, g.x, g.y) for g in cube.rio.get_gcps()] == [
        (g.row, g.col, g.x, g.y) for g in GCPS
    ]
    assert cube.rio.crs == GCP_CRS
    assert "x" not in dataset.coords and "y" not in dataset.coords  # no pixel-index grid
    assert dataset.attrs["georeference"] == "gcps"
    attrs = cube_attrs(tmp_path / "out.zarr")
    assert "spatial:transform" not in attrs and "_CRS" not in attrs
    with gdal_view(tmp_path / "out.zarr") as gdal:
        assert gdal.transform.is_identity  # GDAL finds no geotransform: none is claimed


def test_rpc_only_input_keeps_its_rpcs(tmp_path, weights):
    src = raster(tmp_path / "rpc.tif", rpcs=RPCS)
    result = reconstruct_scene(src, tmp_path / "out.tif", weights=weights, options=FAST)
    assert result.georeference == "rpcs"
    with rasterio.open(tmp_path / "out.tif") as cog:
        assert rpc_values(cog.rpcs) == rpc_values(RPCS) and cog.transform.is_identity
    reconstruct_scene(src, tmp_path / "cube.zarr", weights=weights, options=FAST)
    dataset = xr.open_zarr(tmp_path / "cube.zarr")
    stored = RPC.from_gdal(json.loads(dataset["reflectance"].attrs["rpcs"]))
    assert rpc_values(stored) == rpc_values(RPCS)
    assert dataset.attrs["georeference"] == "rpcs"


def test_warp_to_the_gcp_crs_gives_a_map_grid_over_the_gcp_footprint(tmp_path, weights):
    src = raster(tmp_path / "gcp.tif", (200, 200), gcps=GCPS, crs=GCP_CRS)
    out = tmp_path / "warped.zarr"
    result = CliRunner().invoke(
        cli,
        [
            "reconstruct", str(src), str(out), "--weights", str(weights), "--tile", "64",
            "--overlap", "16", "--device", "cpu", "--quiet", "--warp", "gcps",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    with gdal_view(out) as gdal:
        assert gdal.crs == GCP_CRS and gdal.transform.b == gdal.transform.d == 0
        resolution = gdal.transform.a
        assert np.allclose(tuple(gdal.bounds), GCP_FOOTPRINT, atol=resolution / 2)
    dataset = xr.open_zarr(out, decode_coords="all")
    assert dataset.attrs["georeference"] == "affine" and "--warp gcps" in dataset.attrs["warp"]
    assert np.isfinite(dataset["reflectance"].values).all()  # the footprint fills the grid


def test_warp_to_a_projected_crs_masks_what_the_input_does_not_cover(tmp_path, weights):
    src = raster(tmp_path / "gcp.tif", (200, 200), gcps=GCPS, crs=GCP_CRS)
    options = ReconstructOptions(tile=64, overlap=16, batch_size=2, warp="EPSG:32632")
    reconstruct_scene(src, tmp_path / "utm.tif", weights=weights, options=options)
    with rasterio.open(tmp_path / "utm.tif") as cog:  # 6 degrees east of UTM 32's meridian
        assert cog.crs == CRS.from_epsg(32632) and not cog.gcps[0]
        expected = transform_bounds(GCP_CRS, cog.crs, *GCP_FOOTPRINT, densify_pts=21)
        assert np.allclose(tuple(cog.bounds), expected, atol=cog.transform.a)
        band = cog.read(1, masked=True)
    assert band.mask.any() and not band.mask[band.shape[0] // 2].all()  # corners only
    np.testing.assert_allclose(band.compressed(), 0.3, atol=1e-3)


@pytest.mark.parametrize(
    ("source", "warp", "message"),
    [
        ("none", "EPSG:4326", "no georeference"),
        ("affine", "gcps", "ground control points.*--warp EPSG:32633"),
        ("gcps", "EPSG:999999", "not a CRS"),
    ],
)
def test_impossible_warps_are_input_errors_with_the_fix(tmp_path, weights, source, warp, message):
    kinds = {
        "none": {},
        "affine": {"transform": Affine(10, 0, 500000, 0, -10, 4600000), "crs": "EPSG:32633"},
        "gcps": {"gcps": GCPS, "crs": GCP_CRS},
    }
    src = raster(tmp_path / "in.tif", **kinds[source])
    options = ReconstructOptions(tile=64, overlap=16, warp=warp)
    with pytest.raises(InputError, match=message):
        reconstruct_scene(src, tmp_path / "out.zarr", weights=weights, options=options)


# --- item 3: rotated/sheared grids and 1-pixel axes --------------------------------------


def test_rotated_grid_is_exact_in_the_geotiff_and_refused_for_zarr(tmp_path, weights):
    src = raster(tmp_path / "rot.tif", transform=ROTATED, crs="EPSG:32633")
    reconstruct_scene(src, tmp_path / "out.tif", weights=weights, options=FAST)
    with rasterio.open(tmp_path / "out.tif") as cog:
        assert cog.transform == ROTATED and cog.crs == CRS.from_epsg(32633)
    with pytest.raises(OutputError, match=r"rotated or sheared.*out\.tif.*--warp EPSG:32633"):
        reconstruct_scene(  # refused before the (missing) weights are even loaded
            src, tmp_path / "out.zarr", weights=tmp_path / "none.safetensors", options=FAST
        )
    assert not list(tmp_path.glob("out.zarr*"))


@pytest.mark.parametrize("size", [(1, 30), (30, 1)])
def test_one_pixel_axis_is_refused_for_zarr_and_kept_in_the_geotiff(tmp_path, weights, size):
    transform = Affine(10, 0, 500000, 0, -10, 4600000)
    src = raster(tmp_path / "thin.tif", size, transform=transform, crs="EPSG:32633")
    with pytest.raises(OutputError, match=r"1-pixel axis.*\.tif"):
        reconstruct_scene(src, tmp_path / "out.zarr", weights=weights, options=FAST)
    reconstruct_scene(src, tmp_path / "out.tif", weights=weights, options=FAST)
    with rasterio.open(tmp_path / "out.tif") as cog:
        assert cog.transform == transform and (cog.height, cog.width) == size


def test_rotated_grid_zarr_refusal_is_a_one_line_cli_error(tmp_path, weights):
    src = raster(tmp_path / "rot.tif", transform=ROTATED, crs="EPSG:32633")
    result = CliRunner().invoke(
        cli, ["reconstruct", str(src), str(tmp_path / "o.zarr"), "--weights", str(weights)]
    )
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and re.search(r"^Error: .*rotated.*GeoTIFF", lines[0]), lines


def test_warp_turns_a_rotated_grid_north_up_for_zarr(tmp_path, weights):
    src = raster(tmp_path / "rot.tif", transform=ROTATED, crs="EPSG:32633")
    options = ReconstructOptions(tile=64, overlap=16, batch_size=2, warp="EPSG:32633")
    reconstruct_scene(src, tmp_path / "out.zarr", weights=weights, options=options)
    with gdal_view(tmp_path / "out.zarr") as gdal:
        assert gdal.transform.b == gdal.transform.d == 0 and gdal.crs == CRS.from_epsg(32633)
        with rasterio.open(src) as original:
            assert np.allclose(tuple(gdal.bounds), tuple(original.bounds), atol=gdal.res[0])


def test_accessor_keeps_a_rotated_grid_and_gcps_in_memory(tmp_path, weights):
    rotated = rioxarray.open_rasterio(raster(tmp_path / "rot.tif", transform=ROTATED, crs=32633))
    cube = rotated.hsr.reconstruct(model=weights, tile=64, overlap=16, device="cpu")
    assert cube.rio.transform() == ROTATED and cube.rio.crs == CRS.from_epsg(32633)
    assert "x" not in cube.coords  # no pixel-index coordinates posing as a grid
    gcp = rioxarray.open_rasterio(raster(tmp_path / "gcp.tif", gcps=GCPS, crs=GCP_CRS))
    cube = gcp.hsr.reconstruct(model=weights, tile=64, overlap=16, device="cpu")
    assert len(cube.rio.get_gcps()) == 4 and cube.rio.crs == GCP_CRS
    assert cube.attrs["georeference"] == "gcps"
    with pytest.raises(InputError, match="reproject"):
        gcp.hsr.reconstruct(model=weights, warp="gcps")


# --- items 3 and 4: GDAL reads north-up Zarr grids, CRS and wavelengths ------------------


@pytest.mark.parametrize(
    ("transform", "crs", "size"),
    [
        (Affine(10, 0, 500000, 0, -10, 4600000), "EPSG:32633", (70, 90)),
        (
            Affine(0.000269494585236, 0, -73.1234567, 0, -0.000269494585236, 40.9),
            "EPSG:4326",
            (37, 53),
        ),
        (Affine(0.3, 0, 123456.7, 0, -0.3, 7654321.1), "EPSG:3857", (2, 2)),
        (Affine(30, 0, 399960, 0, 30, 4190220), "EPSG:32633", (20, 31)),  # south-up
    ],
)
def test_gdal_reads_the_zarr_grid_and_crs_of_the_input(tmp_path, weights, transform, crs, size):
    src = raster(tmp_path / "in.tif", size, transform=transform, crs=crs)
    reconstruct_scene(src, tmp_path / "out.zarr", weights=weights, options=FAST)
    with gdal_view(tmp_path / "out.zarr") as gdal:
        assert gdal.crs == CRS.from_string(crs) and (gdal.height, gdal.width) == size
        assert_same_transform(gdal.transform, transform)
    attrs = cube_attrs(tmp_path / "out.zarr")
    assert attrs["spatial:transform"] == list(transform)[:6]
    assert attrs["spatial:shape"] == list(size) and attrs["proj:code"] == crs


def test_gdal_shows_the_band_wavelengths(tmp_path, weights):
    src = write_raster(tmp_path / "in.tif", gradient_rgb(30, 40))
    reconstruct_scene(src, tmp_path / "out.zarr", weights=weights, options=FAST)
    with gdal_view(tmp_path / "out.zarr") as gdal:
        assert gdal.count == 31
        assert list(gdal.descriptions) == [f"{w} nm" for w in WAVELENGTHS_NM]
        assert gdal.tags(31, ns="IMAGERY")["CENTRAL_WAVELENGTH_UM"] == "0.7"
        assert gdal.tags(1)["DIM_wavelength_VALUE"] == "400"
        assert gdal.tags(1)["DIM_wavelength_UNIT"] == "nm"


def strip_cf_grid_mapping(store):
    """Remove the CF ``grid_mapping`` link, leaving GDAL only its ``_CRS`` (as GDAL < 3.9)."""
    for path in (store / "reflectance" / ".zattrs", store / ".zmetadata"):
        text = json.loads(path.read_text())
        attrs = text["metadata"]["reflectance/.zattrs"] if path.name == ".zmetadata" else text
        attrs.pop("grid_mapping")
        path.write_text(json.dumps(text))


@pytest.mark.parametrize(
    "crs",
    [
        CRS.from_epsg(32633),
        CRS.from_proj4("+proj=tmerc +lat_0=0 +lon_0=14 +k=0.9996 +x_0=500000 +datum=WGS84"),
    ],
)
def test_gdal_crs_attribute_alone_gives_gdal_the_crs(tmp_path, weights, crs):
    transform = Affine(10, 0, 500000, 0, -10, 4600000)
    src = raster(tmp_path / "in.tif", transform=transform, crs=crs)
    reconstruct_scene(src, tmp_path / "out.zarr", weights=weights, options=FAST)
    gdal_crs = cube_attrs(tmp_path / "out.zarr")["_CRS"]
    assert CRS.from_wkt(gdal_crs["wkt"]) == crs and gdal_crs["projjson"]["type"]
    assert ("url" in gdal_crs) == (crs.to_epsg() is not None)
    strip_cf_grid_mapping(tmp_path / "out.zarr")
    with gdal_view(tmp_path / "out.zarr") as gdal:
        assert gdal.crs == crs
        assert_same_transform(gdal.transform, transform)


def test_cli_notes_a_gcp_only_output_and_batch_takes_warp(tmp_path, weights):
    src = raster(tmp_path / "gcp.tif", (60, 60), gcps=GCPS, crs=GCP_CRS)
    args = ["--weights", str(weights), "--tile", "64", "--overlap", "16", "--device", "cpu"]
    result = CliRunner().invoke(cli, ["reconstruct", str(src), str(tmp_path / "o.tif"), *args])
    assert result.exit_code == 0, result.output
    assert "ground control points only" in result.output and "--warp" in result.output
    assert "--warp CRS" in CliRunner().invoke(cli, ["batch", "--help"]).output
    assert ReconstructOptions(warp="EPSG:32633").to_dict()["warp"] == "EPSG:32633"
