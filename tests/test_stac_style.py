"""STAC Items / Collections and QGIS true-colour styles of output cubes."""

import dataclasses
import json
import os
import shutil
import subprocess
from pathlib import Path
from xml.etree import ElementTree as ET

import numpy as np
import pystac
import pytest
import rasterio
from scene_fixtures import CRS, TRANSFORM, gradient_rgb, save_model, write_raster

from geohsr.exceptions import OutputError
from geohsr.inference.options import ReconstructOptions
from geohsr.inference.predictor import Predictor
from geohsr.inference.scene import reconstruct_scene
from geohsr.io.qgis_style import style_path, true_colour_bands, write_style
from geohsr.io.stac import item_path, write_collection, write_item
from geohsr.models import create_model

OPTIONS = ReconstructOptions(tile=64, overlap=16, batch_size=2, device="cpu")
OUTPUT_DTYPES = {"cube.tif": "float32", "cube16.tif": "uint16", "cubez.zarr": "float32"}
#: QGIS's Python (Debian's python3-qgis), not the project's environment
QGIS_PYTHON = "/usr/bin/python3"
QGIS_PROBE = Path(__file__).with_name("qgis_probe.py")


@pytest.fixture(scope="module")
def cubes(tmp_path_factory):
    folder = tmp_path_factory.mktemp("stac_cubes")
    weights = save_model(create_model("scene_test_linear"), folder / "t.safetensors")
    predictor = Predictor.from_weights(weights, device="cpu", batch_size=2)
    source = write_raster(folder / "scene.tif", gradient_rgb(70, 90))
    with rasterio.open(source, "r+") as dataset:
        dataset.update_tags(TIFFTAG_DATETIME="2024:06:01 10:30:00")
    outputs = {}
    for name, dtype in OUTPUT_DTYPES.items():
        options = dataclasses.replace(OPTIONS, dtype=dtype)
        outputs[name] = reconstruct_scene(
            source, folder / name, predictor=predictor, options=options, progress=False
        ).output
    return source, outputs


def test_item_describes_the_cog_and_validates_offline(cubes):
    from stac_pydantic import Item

    source, outputs = cubes
    path = write_item(outputs["cube.tif"], source=source)
    assert path == item_path(outputs["cube.tif"]) and path.name == "cube.json"
    document = json.loads(path.read_text())
    Item.model_validate(document)  # core schema, no network
    props = document["properties"]
    assert props["proj:code"] == CRS and props["proj:shape"] == [70, 90]
    assert props["proj:transform"] == list(TRANSFORM)[:6]
    assert props["datetime"].startswith("2024-06-01T10:30:00")
    assert props["processing:software"]["geohsr"] and len(props["geohsr:weights_sha256"]) == 64
    asset = document["assets"]["data"]
    assert asset["href"] == "./cube.tif"
    bands = asset["eo:bands"]
    assert len(bands) == 31 and bands[0]["center_wavelength"] == pytest.approx(0.4)
    assert bands[30]["center_wavelength"] == pytest.approx(0.7)
    assert all(b["full_width_half_max"] == pytest.approx(0.01) for b in bands)
    assert asset["raster:bands"][0] == {
        "nodata": "nan",
        "data_type": "float32",
        "spatial_resolution": 10.0,
    }
    (link,) = [lk for lk in document["links"] if lk["rel"] == "derived_from"]
    assert link["href"] == "scene.tif"  # relative: no machine path
    west, south, east, north = document["bbox"]
    assert west < east and south < north and -180 <= west <= 180


def test_odc_stac_loads_the_cog_through_the_item(cubes):
    odc_stac = pytest.importorskip("odc.stac")
    source, outputs = cubes
    item = pystac.Item.from_file(str(write_item(outputs["cube.tif"], source=source)))
    names = [f"{w} nm" for w in (400, 550, 700)]
    loaded = odc_stac.load([item], bands=names).isel(time=0)
    with rasterio.open(outputs["cube.tif"]) as dataset:
        assert loaded.odc.crs == dataset.crs
        assert tuple(loaded.odc.geobox.affine)[:6] == tuple(dataset.transform)[:6]
        for name, band in zip(names, (1, 16, 31), strict=True):
            np.testing.assert_array_equal(loaded[name].values, dataset.read(band))


def test_collection_over_a_batch_reads_back_every_item(cubes):
    source, outputs = cubes
    for output in outputs.values():
        write_item(output, source=source)
    folder = outputs["cube.tif"].parent
    path = write_collection(
        list(outputs.values()), folder, collection_id="run", description="test batch"
    )
    collection = pystac.Collection.from_file(str(path))
    items = {item.id: item for item in collection.get_items()}
    assert set(items) == {"cube", "cube16", "cubez"}
    assert items["cubez"].assets["data"].media_type == "application/vnd+zarr"
    assert collection.extent.spatial.bboxes[0] == items["cube"].bbox


def test_qml_style_picks_true_colour_bands_and_a_2_98_cut(cubes):
    _, outputs = cubes
    for name, output in outputs.items():
        # reflectance, also for uint16 (QGIS applies GDAL's scale: test_qgis_shows_...)
        tolerance = {"abs": 1e-4} if OUTPUT_DTYPES[name] == "uint16" else {"rel": 1e-5}
        path = write_style(output)
        assert path == style_path(output) and path.suffix == ".qml"
        renderer = ET.parse(path).getroot().find("pipe/rasterrenderer")
        assert renderer.get("type") == "multibandcolor"
        bands = [int(renderer.get(k)) for k in ("redBand", "greenBand", "blueBand")]
        assert bands == list(true_colour_bands()) == [25, 16, 7]
        origin = renderer.find("minMaxOrigin")
        assert origin.findtext("limits") == "CumulativeCut"
        assert float(origin.findtext("cumulativeCutLower")) == 0.02
        with rasterio.open(outputs["cube.tif"]) as dataset:
            for name, band in zip(("red", "green", "blue"), bands, strict=True):
                values = dataset.read(band).ravel()
                low, high = np.quantile(values[np.isfinite(values)], [0.02, 0.98])
                enhancement = renderer.find(f"{name}ContrastEnhancement")
                assert float(enhancement.findtext("minValue")) == pytest.approx(low, **tolerance)
                assert float(enhancement.findtext("maxValue")) == pytest.approx(high, **tolerance)


def test_reconstruct_writes_the_sidecars_unless_told_not_to(cubes, tmp_path):
    source, outputs = cubes
    for output in outputs.values():
        assert item_path(output).is_file() and style_path(output).is_file()
    weights = save_model(create_model("scene_test_linear"), tmp_path / "t.safetensors")
    options = ReconstructOptions(tile=64, overlap=16, batch_size=2, sidecars=False)
    out = reconstruct_scene(source, tmp_path / "bare.tif", weights=weights, options=options)
    assert out.output.is_file() and not item_path(out.output).exists()
    assert not style_path(out.output).exists()


def test_sidecar_names_taken_by_another_output_or_the_user_are_refused_before_any_work(
    cubes, tmp_path
):
    source, _ = cubes
    weights = save_model(create_model("scene_test_linear"), tmp_path / "t.safetensors")
    options = ReconstructOptions(tile=64, overlap=16, batch_size=2)
    reconstruct_scene(source, tmp_path / "v.zarr", weights=weights, options=options)
    item_before = item_path(tmp_path / "v.zarr").read_text()
    with pytest.raises(OutputError, match=r"v.json exists \(the STAC item of ./v.zarr\)"):
        reconstruct_scene(source, tmp_path / "v.tif", weights=weights, options=options)
    assert not (tmp_path / "v.tif").exists() and not (tmp_path / "v.tif.partial").exists()
    assert item_path(tmp_path / "v.zarr").read_text() == item_before
    bare = dataclasses.replace(options, sidecars=False)
    assert reconstruct_scene(source, tmp_path / "v.tif", weights=weights, options=bare).output
    again = reconstruct_scene(
        source, tmp_path / "v.zarr", weights=weights, options=options, overwrite=True
    )  # its own sidecars are replaced
    assert again.output == tmp_path / "v.zarr"
    (tmp_path / "mine.json").write_text('{"notes": "the user\'s own file"}')
    with pytest.raises(OutputError, match="not a STAC item of geohsr.*--no-sidecars"):
        reconstruct_scene(source, tmp_path / "mine.zarr", weights=weights, options=options)
    (tmp_path / "solo.qml").write_text("<qgis/>")
    with pytest.raises(OutputError, match="solo.qml exists"):
        reconstruct_scene(source, tmp_path / "solo.tif", weights=weights, options=options)


def test_cog_bands_nearest_640_550_460_nm_are_red_green_blue_inside_the_tiff(cubes, tmp_path):
    _, outputs = cubes
    for name in ("cube.tif", "cube16.tif"):
        assert not Path(f"{outputs[name]}.aux.xml").exists()
        alone = shutil.copy(outputs[name], tmp_path / name)  # without any sidecar
        with rasterio.open(alone) as dataset:
            interps = [interp.name for interp in dataset.colorinterp]
        assert [interps[band - 1] for band in true_colour_bands()] == ["red", "green", "blue"]
        assert interps.count("undefined") == 28
    assert not list(tmp_path.glob("*.aux.xml"))


def qgis_probe(uris: list[str], cwd: Path) -> dict:
    """What QGIS (run by :data:`QGIS_PYTHON`, headless) shows for each of ``uris``;
    skips the test when QGIS's Python is not installed."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env["QT_QPA_PLATFORM"] = "offscreen"
    try:
        found = subprocess.run(
            [QGIS_PYTHON, "-c", "import qgis.core"], cwd=cwd, env=env, capture_output=True
        )
    except OSError:
        pytest.skip(f"no {QGIS_PYTHON}")
    if found.returncode != 0:
        pytest.skip("QGIS's Python (python3-qgis) is not installed")
    done = subprocess.run(
        [QGIS_PYTHON, str(QGIS_PROBE), *uris],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def qml_stretch(output: Path) -> list[list[float]]:
    """``[[min, max]]`` of red, green and blue in the ``.qml`` beside ``output``."""
    renderer = ET.parse(style_path(output)).getroot().find("pipe/rasterrenderer")
    return [
        [float(renderer.findtext(f"{name}ContrastEnhancement/{limit}")) for limit in limits]
        for name in ("red", "green", "blue")
        for limits in [("minValue", "maxValue")]
    ]


def expected_centre_colour(output: Path) -> list[float]:
    """0-255 red, green, blue of the centre pixel stretched with the ``.qml`` limits."""
    with rasterio.open(output) as dataset:
        row, col = dataset.height // 2, dataset.width // 2
        window = rasterio.windows.Window(col, row, 1, 1)
        values = dataset.read(list(true_colour_bands()), window=window).ravel()
        reflectance = values * dataset.scales[0] + dataset.offsets[0]
    return [
        float(np.clip((value - low) / (high - low) * 255, 0, 255))
        for value, (low, high) in zip(reflectance, qml_stretch(output), strict=True)
    ]


@pytest.mark.slow
def test_qgis_shows_the_cog_in_true_colour_from_the_qml(cubes, tmp_path, record_property):
    _, outputs = cubes
    zarr = outputs["cubez.zarr"]
    plain = shutil.copy(outputs["cube.tif"], tmp_path / "no_style.tif")  # no .qml
    zarr_uris = [f'ZARR:"{zarr}":/reflectance', f'ZARR:"{zarr}":/reflectance:15']
    tifs = [str(outputs["cube.tif"]), str(outputs["cube16.tif"])]
    shown = qgis_probe([*tifs, str(plain), *zarr_uris], tmp_path)
    record_property("qgis_version", shown["qgis_version"])
    for uri in tifs:
        layer = shown[uri]
        assert layer["valid"] and layer["band_count"] == 31 and layer["crs"] == CRS
        assert layer["renderer"] == "multibandcolor"
        assert layer["bands"] == list(true_colour_bands()) == [25, 16, 7]
        np.testing.assert_allclose(layer["stretch"], qml_stretch(Path(uri)), rtol=1e-9)
        interps = [layer["colour_interpretation"][band - 1] for band in true_colour_bands()]
        assert interps == ["Red", "Green", "Blue"]
        # QGIS draws the .qml's reflectance stretch on reflectance (uint16 scaled by GDAL)
        np.testing.assert_allclose(
            layer["centre_colour"], expected_centre_colour(Path(uri)), atol=1.5
        )
    assert shown[tifs[1]]["scale_offset"] == [1e-4, 0.0]
    for uri in (str(plain), *zarr_uris):  # reported, not required
        record_property(uri, {k: shown[uri].get(k) for k in ("valid", "renderer", "bands")})
