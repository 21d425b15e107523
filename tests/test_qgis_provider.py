"""The QGIS Processing provider (qgis/geohsr_processing). Its QGIS-free half (runner.py) is
tested here without QGIS: parameters -> command lines, executable discovery, progress
parsing, error mapping and cancel of real subprocesses (a fake geohsr and the real one).
The tests marked slow load the provider in headless QGIS when QGIS's Python is there."""

from __future__ import annotations

import ast
import configparser
import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import rasterio
from click.testing import CliRunner
from geohsr_test_cli import write_executable
from scene_fixtures import TRANSFORM, gradient_rgb, save_model, write_raster

from geohsr.cli.main import cli
from geohsr.cli.reconstruct_cmd import reconstruct
from geohsr.inference import options as cli_options
from geohsr.io.output import is_complete_output
from geohsr.io.sampling import SPECTRUM_COLUMNS
from geohsr.models import create_model
from geohsr.spectral import WAVELENGTHS_NM
from geohsr.spectral.encoding import INPUT_ENCODINGS

REPO = Path(__file__).resolve().parents[1]
PLUGIN_PARENT = REPO / "qgis"
PLUGIN = PLUGIN_PARENT / "geohsr_processing"
sys.path.insert(0, str(PLUGIN_PARENT))

import build_zip  # noqa: E402
from geohsr_processing import help_texts, runner  # noqa: E402
from geohsr_processing.runner import (  # noqa: E402
    Canceled,
    GeohsrError,
    ReconstructRequest,
)

FAST = dict(tile=32, overlap=8, device="cpu")


# --- the plugin never imports geohsr, torch or QGIS outside its QGIS classes -------------


def imported_modules(path: Path) -> set[str]:
    """Top-level names of the absolute imports of a Python file."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_plugin_imports_neither_geohsr_nor_torch():
    for path in PLUGIN.glob("*.py"):
        assert not imported_modules(path) & {"geohsr", "torch", "numpy", "rasterio"}, path
    for pure in ("runner.py", "help_texts.py"):
        assert imported_modules(PLUGIN / pure) <= set(sys.stdlib_module_names) | {"__future__"}


def test_runner_loads_without_qgis():
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); "
        "import geohsr_processing.runner, geohsr_processing.help_texts; "
        "bad = {m.split('.')[0] for m in sys.modules} & {'qgis', 'geohsr', 'torch'}; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code, str(PLUGIN_PARENT)], check=True)


def test_metadata_declares_a_processing_provider_for_qgis_322():
    metadata = configparser.ConfigParser(interpolation=None)
    metadata.read(PLUGIN / "metadata.txt")
    general = metadata["general"]
    assert general["hasProcessingProvider"] == "yes"
    assert general["qgisMinimumVersion"] == "3.22"
    assert (PLUGIN / general["icon"]).is_file()


def test_help_texts_explain_the_numbers_and_cite_the_model():
    for text in (help_texts.RECONSTRUCT, help_texts.PREVIEW, help_texts.SAMPLE):
        assert "radiometric scale of the input" in text and "reflectance" in text
        assert "MXR-U-Nets for Real Time Hyperspectral Reconstruction" in text
        assert "Palrecha" in text and "GEOHSR_EXECUTABLE" in text


# --- the CLI's defaults and names ---------------------------------------------------------


def test_defaults_match_the_cli():
    assert runner.DEFAULT_WEIGHTS == cli_options.DEFAULT_WEIGHTS
    assert runner.DEFAULT_TILE == cli_options.DEFAULT_TILE
    assert runner.OUTPUT_DTYPES == cli_options.OUTPUT_DTYPES
    assert tuple(runner.INPUT_ENCODINGS) == tuple(INPUT_ENCODINGS)
    assert runner.WAVELENGTHS_NM == tuple(int(nm) for nm in WAVELENGTHS_NM)
    assert runner.SPECTRUM_FIELDS == SPECTRUM_COLUMNS
    defaults = parsed(["geohsr", "reconstruct", "in.tif", "out.tif"])
    assert defaults["weights"] == runner.DEFAULT_WEIGHTS and defaults["tile"] == 512
    assert defaults["device"] == runner.DEFAULT_DEVICE and defaults["overlap"] is None
    assert defaults["dtype"] == runner.OUTPUT_DTYPES[0]
    assert defaults["input_encoding"] == runner.INPUT_ENCODINGS[0]


# --- parameters -> command lines ----------------------------------------------------------


def parsed(command: list[str]) -> dict:
    """What `geohsr reconstruct` makes of a command line (click's own parser)."""
    return reconstruct.make_context("reconstruct", command[2:]).params


def test_reconstruct_command_with_defaults():
    command = runner.reconstruct_command("/x/geohsr", ReconstructRequest("in.tif", "out.tif"))
    assert command == [
        "/x/geohsr", "reconstruct", "in.tif", "out.tif",
        "--weights", "mxr_unet18_rpr_cave", "--tile", "512", "--device", "auto",
        "--dtype", "float32", "--input-encoding", "linear",
        "--overwrite", "--progress", "json",
    ]  # fmt: skip
    params = parsed(command)
    assert params["overlap"] is None and params["scale"] is None and params["bands"] is None
    assert params["overwrite"] and params["progress_mode"] == "json"


def test_reconstruct_command_maps_every_parameter():
    request = ReconstructRequest(
        input="/data/ms.tif",
        output="/data/cube.zarr",
        bands=" 4, 3 ,2",
        scale=10000,
        camera="Canon 5DMarkII",
        weights="/w/my.safetensors",
        tile=256,
        overlap=32,
        device="cuda:1",
        dtype="uint16",
        input_encoding="srgb",
    )
    params = parsed(runner.reconstruct_command("geohsr", request))
    assert params["src"] == "/data/ms.tif" and params["dst"] == "/data/cube.zarr"
    assert params["bands"] == (4, 3, 2) and params["scale"] == 10000.0
    assert params["camera"] == "Canon 5DMarkII" and params["weights"] == "/w/my.safetensors"
    assert (params["tile"], params["overlap"], params["device"]) == (256, 32, "cuda:1")
    assert (params["dtype"], params["input_encoding"]) == ("uint16", "srgb")
    stretched = ReconstructRequest("a.tif", "b.tif", stretch="p2, p98")
    assert parsed(runner.reconstruct_command("geohsr", stretched))["stretch"] == (2.0, 98.0)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (dict(scale=255.0, stretch="2,98"), "SCALE or STRETCH, not both"),
        (dict(bands="1,2"), "BANDS"),
        (dict(bands="0,1,2"), "BANDS"),
        (dict(bands="r,g,b"), "BANDS"),
        (dict(stretch="2"), "STRETCH"),
        (dict(output="cube.png"), "OUTPUT must end in .tif or .zarr"),
    ],
)
def test_reconstruct_command_refuses_bad_parameters(changes, message):
    request = ReconstructRequest(**{"input": "a.tif", "output": "b.tif", **changes})
    with pytest.raises(GeohsrError, match=message):
        runner.reconstruct_command("geohsr", request)


def test_preview_and_sample_commands():
    assert runner.preview_command("g", "c.tif", "p.png") == [
        "g", "preview", "c.tif", "p.png", "--count", "4"
    ]  # fmt: skip
    command = runner.preview_command("g", "c.zarr", "p.png", "in.tif", "1,2; 30,40", 3)
    assert command[4:] == [
        "--rgb",
        "in.tif",
        "--pixels",
        "1,2",
        "--pixels",
        "30,40",
        "--count",
        "3",
    ]
    with pytest.raises(GeohsrError, match="PIXELS"):
        runner.parse_pixels("1.5,2")
    assert runner.sample_command("g", "c.tif", "p.csv", "o.csv", "EPSG:4326") == [
        "g", "sample", "c.tif", "p.csv", "o.csv", "--crs", "EPSG:4326"
    ]  # fmt: skip
    assert runner.sample_command("g", "c.tif", "p.csv", "o.csv", "")[-1] == "o.csv"


def test_cube_path_of_qgis_sources():
    assert runner.cube_path('ZARR:"/d/cube.zarr":/reflectance') == "/d/cube.zarr"
    assert runner.cube_path("ZARR:/d/cube.zarr:/reflectance") == "/d/cube.zarr"
    assert runner.cube_path("/d/cube.tif|layername=x") == "/d/cube.tif"
    assert runner.zarr_layer_source("/d/c.zarr") == 'ZARR:"/d/c.zarr":/reflectance'


# --- executable discovery -----------------------------------------------------------------


def fake_which(found: str | None):
    return lambda name: found if name == "geohsr" else None


def test_executable_setting_wins_then_variable_then_path(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first, second = write_executable(tmp_path / "a"), write_executable(tmp_path / "b")
    env = {runner.EXECUTABLE_ENV: str(second)}
    assert runner.find_executable(str(first), env, fake_which("/p/geohsr")) == str(first)
    assert runner.find_executable("", env, fake_which("/p/geohsr")) == str(second)
    assert runner.find_executable("  ", {}, fake_which("/p/geohsr")) == "/p/geohsr"
    assert runner.find_executable(None, {}, fake_which("/p/geohsr")) == "/p/geohsr"


def test_a_folder_setting_finds_the_executable_inside(tmp_path):
    (tmp_path / "venv" / "bin").mkdir(parents=True)
    exe = write_executable(tmp_path / "venv" / "bin")
    assert runner.find_executable(str(tmp_path / "venv"), {}, fake_which(None)) == str(exe)


def test_a_wrong_setting_or_variable_is_an_error_not_skipped(tmp_path):
    not_executable = tmp_path / "geohsr"
    not_executable.write_text("")
    for setting, env in (
        (str(tmp_path / "missing"), {}),
        ("", {"GEOHSR_EXECUTABLE": str(not_executable)}),
    ):
        with pytest.raises(GeohsrError) as err:
            runner.find_executable(setting, env, fake_which("/p/geohsr"))
        assert "not an executable geohsr" in str(err.value)


def test_missing_executable_says_how_to_set_it():
    with pytest.raises(GeohsrError) as err:
        runner.find_executable("", {}, fake_which(None))
    message = str(err.value)
    assert "not found" in message and "'geohsr executable'" in message
    assert "GEOHSR_EXECUTABLE" in message and "PATH" in message


# --- output lines -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "percent"),
    [
        ('{"done": 3, "total": 12}', 25.0),
        ('  {"done": 12, "total": 12}\n', 100.0),
        ('{"done": 0, "total": 0}', 100.0),
        ('{"done": 20, "total": 10}', 100.0),
        ('{"done": "x", "total": 10}', None),
        ('{"total": 10}', None),
        ("{not json", None),
        ("note: a raster read has no georeference", None),
        ("Error: something", None),
    ],
)
def test_parse_progress(line, percent):
    assert runner.parse_progress(line) == percent


def test_error_message_is_geohsrs_one_line():
    lines = ["note: x", "Error: the input has 4 bands; pass --bands R,G,B"]
    assert runner.error_message(lines, 2, ["g"]) == "the input has 4 bands; pass --bands R,G,B"
    usage = ["Usage: geohsr reconstruct ...", "", "Error: No such option: --progress"]
    message = runner.error_message(usage, 2, ["/old/geohsr"])
    assert "No such option: --progress" in message and "/old/geohsr is older" in message
    crash = ["Traceback (most recent call last):", '  File "x"', "MemoryError"]
    message = runner.error_message(crash, 1, ["g"])
    assert message.startswith("geohsr stopped with exit code 1") and "MemoryError" in message


def test_child_environment_drops_qgis_python_and_gdal_paths():
    env = runner.child_environment(
        {"PYTHONPATH": "/usr/share/qgis/python", "PROJ_LIB": "/x", "GDAL_DATA": "/y", "HOME": "/h"}
    )
    assert env["HOME"] == "/h" and env["PYTHONUNBUFFERED"] == "1"
    assert not {"PYTHONPATH", "PROJ_LIB", "GDAL_DATA"} & set(env)


# --- running a fake geohsr ----------------------------------------------------------------

FAKE = textwrap.dedent(
    """\
    #!{python}
    import json, os, signal, sys, time
    mode, out = os.environ["FAKE_MODE"], sys.argv[3]
    if mode == "stubborn":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    def publish_then_exit(signum, frame):  # as geohsr does when stopped while publishing
        os.replace(out + ".partial", out)
        print("note: " + out + " is complete; the stop came as it was published", file=sys.stderr)
        sys.exit(0)
    if mode == "publishing":
        signal.signal(signal.SIGTERM, publish_then_exit)
    open(out + ".partial", "w").write("half")
    print("note: a raster read has no georeference", file=sys.stderr, flush=True)
    for done in range(1, 5):
        print(json.dumps({{"done": done, "total": 4}}), file=sys.stderr, flush=True)
        if mode in ("slow", "stubborn", "publishing"):
            time.sleep(60)
    if mode == "error":
        print("Error: the input has 4 bands; pass --bands R,G,B", file=sys.stderr)
        sys.exit(2)
    os.replace(out + ".partial", out)
    print("wrote " + out)
    """
)


@pytest.fixture
def fake(tmp_path):
    path = tmp_path / "fake_geohsr"
    path.write_text(FAKE.format(python=sys.executable))
    path.chmod(0o755)
    return path


def run_fake(fake, out, mode, **kwargs):
    command = [str(fake), "reconstruct", "in.tif", str(out)]
    return runner.run_geohsr(command, environ={**os.environ, "FAKE_MODE": mode}, **kwargs)


def test_run_reports_progress_and_messages(tmp_path, fake):
    percents, messages = [], []
    result = run_fake(
        fake, tmp_path / "o.tif", "ok", on_progress=percents.append, on_message=messages.append
    )
    assert result.returncode == 0 and percents == [25.0, 50.0, 75.0, 100.0]
    # stderr and stdout are read separately: lines of one stream keep their order, but not
    # relative to the other's (the order flipped under load)
    assert sorted(messages) == sorted(
        ["note: a raster read has no georeference", f"wrote {tmp_path / 'o.tif'}"]
    )
    assert result.stdout == [f"wrote {tmp_path / 'o.tif'}"]


def test_run_turns_the_error_line_into_geohsr_error(tmp_path, fake):
    with pytest.raises(GeohsrError) as err:
        run_fake(fake, tmp_path / "o.tif", "error")
    assert str(err.value) == "the input has 4 bands; pass --bands R,G,B"


@pytest.mark.parametrize("mode", ["slow", "stubborn"])
def test_cancel_stops_the_process_and_no_output_remains(tmp_path, fake, mode):
    out = tmp_path / "o.tif"
    percents = []
    started = time.monotonic()
    with pytest.raises(Canceled):
        run_fake(
            fake,
            out,
            mode,
            on_progress=percents.append,
            is_canceled=lambda: bool(percents),
            grace_s=0.5,
        )
    assert time.monotonic() - started < 20  # SIGTERM, or a kill after the grace period
    assert percents == [25.0] and not out.exists()
    assert runner.remove_partials(str(out)) == [tmp_path / "o.tif.partial"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fake_geohsr"]


def test_a_cancel_that_comes_as_geohsr_publishes_returns_the_complete_run(tmp_path, fake):
    out = tmp_path / "o.tif"
    percents, messages = [], []
    result = run_fake(
        fake,
        out,
        "publishing",
        on_progress=percents.append,
        on_message=messages.append,
        is_canceled=lambda: bool(percents),
        grace_s=10,
    )
    assert result.returncode == 0 and out.read_text() == "half"
    assert runner.TOO_LATE_TO_CANCEL in messages
    assert any("is complete" in line for line in result.stderr)
    assert runner.partial_paths(str(out))[0].exists() is False


def test_cannot_start_says_how_to_set_the_executable(tmp_path):
    with pytest.raises(GeohsrError, match="cannot run .*GEOHSR_EXECUTABLE"):
        runner.run_geohsr([str(tmp_path / "nothing"), "reconstruct"])


def test_a_callback_error_never_leaves_geohsr_running(tmp_path, fake, monkeypatch):
    started, popen = [], subprocess.Popen

    def recording_popen(*args, **kwargs):
        started.append(popen(*args, **kwargs))
        return started[-1]

    def explode(percent):
        raise RuntimeError("boom")

    monkeypatch.setattr(subprocess, "Popen", recording_popen)
    with pytest.raises(RuntimeError):
        run_fake(fake, tmp_path / "o.tif", "stubborn", on_progress=explode, grace_s=0.5)
    assert started and started[0].poll() is not None


# --- running the real geohsr (test models) ------------------------------------------------


@pytest.fixture(scope="module")
def real(tmp_path_factory):
    """The real geohsr executable with test models, a small input and weights."""
    folder = tmp_path_factory.mktemp("real")
    return {
        "exe": str(write_executable(folder)),
        "rgb": str(write_raster(folder / "in.tif", gradient_rgb(60, 50))),
        "linear": str(save_model(create_model("scene_test_linear"), folder / "lin.safetensors")),
        "slow": str(save_model(create_model("scene_test_slow"), folder / "slow.safetensors")),
    }


def test_real_run_progress_reaches_100_and_the_cube_is_complete(tmp_path, real):
    out = tmp_path / "cube.tif"
    request = ReconstructRequest(real["rgb"], str(out), weights=real["linear"], **FAST)
    percents = []
    runner.run_geohsr(runner.reconstruct_command(real["exe"], request), on_progress=percents.append)
    assert percents == sorted(percents) and percents[-1] == 100.0 and len(percents) > 1
    assert is_complete_output(out) and out.with_suffix(".qml").is_file()


def test_real_error_is_the_one_line_message(tmp_path, real):
    uint16 = write_raster(tmp_path / "u16.tif", np.ones((3, 20, 20), np.uint16))
    request = ReconstructRequest(str(uint16), str(tmp_path / "c.tif"), weights=real["linear"])
    with pytest.raises(GeohsrError) as err:
        runner.run_geohsr(runner.reconstruct_command(real["exe"], request))
    assert "--scale" in str(err.value) and "\n" not in str(err.value)
    assert not str(err.value).startswith("Error")


@pytest.mark.parametrize("suffix", [".tif", ".zarr"])
def test_real_cancel_publishes_nothing_and_releases_the_lock(tmp_path, real, suffix):
    out = tmp_path / f"cube{suffix}"
    request = ReconstructRequest(
        real["rgb"], str(out), weights=real["slow"], tile=16, overlap=4, device="cpu"
    )
    percents = []
    with pytest.raises(Canceled):
        runner.run_geohsr(
            runner.reconstruct_command(real["exe"], request),
            on_progress=percents.append,
            is_canceled=lambda: bool(percents),
            environ={**os.environ, "GEOHSR_TEST_SLOW_S": "0.5"},
        )
    assert 0 < percents[0] < 100
    assert not out.exists() and not is_complete_output(out)
    # geohsr unwound on SIGTERM: its lock files are gone, only the scratch output is left
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == [f"cube{suffix}.partial"], left
    assert runner.remove_partials(str(out)) and not any(tmp_path.iterdir())


# --- sample_spectra tables ----------------------------------------------------------------


def test_points_and_spectra_csv_round_trip_through_geohsr_sample(tmp_path, real):
    cube = tmp_path / "cube.tif"
    args = ["--weights", real["linear"], "--tile", "32", "--overlap", "8", "--quiet"]
    assert CliRunner().invoke(cli, ["reconstruct", real["rgb"], str(cube), *args]).exit_code == 0
    x, y = TRANSFORM * (10.5, 20.5)
    rows = [(0, x, y), (1, None, None), (2, -1.0, -1.0)]
    assert runner.write_points_csv(rows, str(tmp_path / "p.csv")) == 3
    command = runner.sample_command(
        "g", str(cube), str(tmp_path / "p.csv"), str(tmp_path / "s.csv"), "EPSG:32633"
    )
    result = CliRunner().invoke(cli, command[1:])
    assert result.exit_code == 0, result.output
    spectra = runner.read_spectra_csv(str(tmp_path / "s.csv"))
    assert sorted(spectra) == [0, 1, 2] and spectra[1] == spectra[2] == [None] * 31
    with rasterio.open(cube) as dataset:
        np.testing.assert_allclose(spectra[0], dataset.read()[:, 20, 10], rtol=1e-6)


# --- the zip ------------------------------------------------------------------------------


def test_build_zip_holds_the_plugin_folder(tmp_path):
    (PLUGIN / "__pycache__").mkdir(exist_ok=True)
    target = build_zip.build_zip(tmp_path)
    assert target.name == f"geohsr_processing-{build_zip.plugin_version()}.zip"
    names = zipfile.ZipFile(target).namelist()
    assert {"geohsr_processing/__init__.py", "geohsr_processing/metadata.txt"} <= set(names)
    assert {"geohsr_processing/runner.py", "geohsr_processing/provider.py"} <= set(names)
    assert all(n.startswith("geohsr_processing/") and "__pycache__" not in n for n in names)


# --- in QGIS (slow; skipped where QGIS's Python is missing) -------------------------------

QGIS_PYTHON = "/usr/bin/python3"
#: run in QGIS's Python: load the plugin, run jobs ``[{"alg", "params", "load", "cancel",
#: "points"}]`` and print a report (algorithm ids, each job's result or error, loaded layers)
QGIS_SCRIPT = textwrap.dedent(
    """\
    import json, sys
    from qgis.core import (QgsApplication, QgsFeature, QgsGeometry, QgsPointXY,
        QgsProcessingException, QgsProcessingFeedback, QgsProject, QgsVectorLayer)
    QgsApplication.setPrefixPath("/usr", True)
    app = QgsApplication([], False)
    app.initQgis()
    sys.path.append("/usr/share/qgis/python/plugins")
    import processing
    from processing.core.Processing import Processing
    Processing.initialize()
    sys.path.insert(0, sys.argv[1])
    import geohsr_processing
    plugin = geohsr_processing.classFactory(None)
    plugin.initProcessing()
    provider = QgsApplication.processingRegistry().providerById("geohsr")
    report = {"ids": sorted(a.id() for a in provider.algorithms()), "jobs": []}
    report["extensions"] = provider.supportedOutputRasterLayerExtensions()

    def points(rows):
        layer = QgsVectorLayer("Point?crs=EPSG:32633&field=name:string", "points", "memory")
        features = []
        for name, x, y in rows:
            feature = QgsFeature(layer.fields())
            feature.setAttributes([name])
            feature.setGeometry(QgsGeometry.fromPointXY(QgsPointXY(x, y)))
            features.append(feature)
        layer.dataProvider().addFeatures(features)
        return layer

    for job in json.loads(sys.argv[2]):
        feedback = QgsProcessingFeedback()
        progress = []
        feedback.progressChanged.connect(progress.append)
        if job.get("cancel"):
            feedback.progressChanged.connect(lambda _: feedback.cancel())
        params = dict(job["params"])
        if "points" in job:
            params["POINTS"] = points(job["points"])
        run = processing.runAndLoadResults if job.get("load") else processing.run
        entry = {"progress": progress}
        try:
            result = run(job["alg"], params, feedback=feedback)
            output = result["OUTPUT"]
            if isinstance(output, QgsVectorLayer):
                output = [f.attributes() for f in output.getFeatures()]
            entry["output"] = output
        except QgsProcessingException as err:
            entry["error"] = str(err)
        report["jobs"].append(entry)
    report["layers"] = []
    for layer in QgsProject.instance().mapLayers().values():
        renderer = layer.renderer()
        bands = [renderer.redBand(), renderer.greenBand(), renderer.blueBand()]
        report["layers"].append({"source": layer.source(), "renderer": renderer.type(),
                                 "bands": bands})
    print("REPORT " + json.dumps(report, default=str))
    """
)


def read_cube(path: Path) -> np.ndarray:
    """The 31 bands of a georeferenced cube (checked: same grid as the test rasters)."""
    with rasterio.open(path) as cube:
        assert cube.count == 31 and cube.crs == "EPSG:32633"
        return cube.read()


def cli_cube(tmp_path: Path, rgb: str, weights: str) -> np.ndarray:
    """The cube `geohsr reconstruct` makes of ``rgb`` (tile 32, overlap 8)."""
    out = tmp_path / "cli.tif"
    args = ["--weights", weights, "--tile", "32", "--overlap", "8", "--device", "cpu"]
    assert CliRunner().invoke(cli, ["reconstruct", rgb, str(out), *args]).exit_code == 0
    return read_cube(out)


def qgis_available() -> bool:
    if not Path(QGIS_PYTHON).is_file():
        return False
    probe = subprocess.run([QGIS_PYTHON, "-c", "import qgis.core"], capture_output=True)
    return probe.returncode == 0


needs_qgis = pytest.mark.skipif(not qgis_available(), reason="QGIS's Python (qgis.core) is absent")


def run_in_qgis(tmp_path: Path, jobs: list[dict], env: dict | None = None) -> dict:
    """Run ``jobs`` in headless QGIS with the plugin loaded; the report."""
    script = tmp_path / "in_qgis.py"
    script.write_text(QGIS_SCRIPT)
    env = {**os.environ, **(env or {}), "QT_QPA_PLATFORM": "offscreen", "HOME": str(tmp_path)}
    env.pop("PYTHONPATH", None)
    env.pop("VIRTUAL_ENV", None)
    done = subprocess.run(
        [QGIS_PYTHON, str(script), str(PLUGIN_PARENT), json.dumps(jobs)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    reports = [line for line in done.stdout.splitlines() if line.startswith("REPORT ")]
    assert done.returncode == 0 and reports, done.stdout + done.stderr
    return json.loads(reports[-1][len("REPORT ") :])


@pytest.mark.slow
@needs_qgis
def test_qgis_registers_the_provider_and_its_algorithms(tmp_path):
    report = run_in_qgis(tmp_path, [])
    ids = ["geohsr:preview", "geohsr:reconstruct", "geohsr:sample_spectra"]
    assert report["ids"] == ids and report["extensions"] == ["tif", "zarr"]


@pytest.mark.slow
@needs_qgis
def test_qgis_algorithms_run_load_styled_and_cancel(tmp_path, real):
    out, png = tmp_path / "qgis.tif", tmp_path / "p.png"
    fast = {"WEIGHTS": real["linear"], "TILE": 32, "OVERLAP": 8, "DEVICE": "cpu"}
    slow = {**fast, "WEIGHTS": real["slow"], "TILE": 16, "OVERLAP": 4}
    inside = TRANSFORM * (10.5, 20.5)
    rgb = real["rgb"]

    def job(alg: str, output: str, **params) -> dict:
        return {"alg": f"geohsr:{alg}", "params": {"OUTPUT": output, **params}}

    jobs = [
        {**job("reconstruct", str(out), INPUT=rgb, **fast), "load": True},
        job("preview", str(png), CUBE=str(out), RGB=rgb),
        {**job("sample_spectra", "memory:", CUBE=str(out)), "points": [["in", *inside]]},
        {**job("reconstruct", str(tmp_path / "c.tif"), INPUT=rgb, **slow), "cancel": True},
        job("reconstruct", str(tmp_path / "e.tif"), INPUT=rgb, BANDS="1,2"),
    ]
    jobs[2]["points"].append(["out", 0.0, 0.0])
    env = {"GEOHSR_EXECUTABLE": real["exe"], "GEOHSR_TEST_SLOW_S": "0.5"}
    report = run_in_qgis(tmp_path, jobs, env)
    made, preview, sampled, cancelled, refused = report["jobs"]
    # the cube equals the CLI's, and QGIS loads it with its .qml (640, 550, 460 nm)
    assert made["output"] == str(out) and made["progress"][-1] == 100
    style = {"source": str(out), "renderer": "multibandcolor", "bands": [25, 16, 7]}
    assert report["layers"] == [style]
    cube = read_cube(out)
    np.testing.assert_array_equal(cube, cli_cube(tmp_path, rgb, real["linear"]))
    assert preview["output"] == str(png) and png.stat().st_size > 0
    (name, *values), (outside, *empty) = sampled["output"]
    assert name == "in" and outside == "out" and len(values) == 31
    np.testing.assert_allclose(values, cube[:, 20, 10], rtol=1e-6)
    assert all(v is None or v == "NULL" for v in empty)
    assert "cancelled" in cancelled["error"] and not (tmp_path / "c.tif").exists()
    assert not list(tmp_path.glob("c.tif*"))  # scratch files removed, lock released
    assert "BANDS" in refused["error"]


def qgis_process() -> str | None:
    return shutil.which("qgis_process.bin") or shutil.which("qgis_process")


@pytest.mark.slow
@pytest.mark.skipif(qgis_process() is None, reason="qgis_process is absent")
def test_qgis_process_runs_reconstruct_headless(tmp_path, real):
    profile = tmp_path / "data" / "QGIS" / "QGIS3" / "profiles" / "default" / "QGIS"
    profile.mkdir(parents=True)
    (profile / "QGIS3.ini").write_text("[PythonPlugins]\ngeohsr_processing=true\n")
    env = {
        **os.environ,
        "QGIS_PLUGINPATH": str(PLUGIN_PARENT),
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "QT_QPA_PLATFORM": "offscreen",
        "GEOHSR_EXECUTABLE": real["exe"],
        "QGIS_OPTS": "",
        "HOME": str(tmp_path),
    }
    for name in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV"):
        env.pop(name, None)  # QGIS embeds the system Python: keep this venv's out of it
    venv_bin = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join(p for p in env["PATH"].split(os.pathsep) if p != venv_bin)
    rgb = str(shutil.copy(REPO / "examples" / "data" / "example_rgb.tif", tmp_path))
    out = tmp_path / "out.tif"  # QGIS writes .aux.xml statistics beside the input: a copy
    params = [f"INPUT={rgb}", f"OUTPUT={out}", f"WEIGHTS={real['linear']}", "TILE=32"]
    done = subprocess.run(
        [qgis_process(), "run", "geohsr:reconstruct", "--", *params, "OVERLAP=8", "DEVICE=cpu"],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    np.testing.assert_array_equal(read_cube(out), cli_cube(tmp_path, rgb, real["linear"]))
