"""Warning noise: the README's Python snippets run warning-free; the command line shows
warnings that matter as one-line notes and hides upstream ones."""

import os
import re
import subprocess
import sys
import threading
import warnings
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from rasterio.errors import NotGeoreferencedWarning
from scene_fixtures import gradient_rgb, write_raster
from test_preview import smooth_cube

import geohsr
from geohsr.cli.main import cli
from geohsr.cli.notes import note_for, warnings_as_notes

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
EXAMPLE_RGB = "examples/data/example_rgb.tif"
STRICT = ["-W", "error::FutureWarning", "-W", "error::PendingDeprecationWarning"]
STRICT += ["-W", "error::DeprecationWarning"]
GEOHSR = Path(sys.executable).with_name("geohsr")


def python_snippets() -> list[str]:
    """The ```python blocks of the README."""
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)


def run_quiet_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "GEOHSR_WARNINGS"}
    return env | {"PYTHONWARNINGS": "always"}  # stricter than a normal run: show everything


def test_readme_has_python_snippets_and_they_name_the_example():
    snippets = python_snippets()
    assert snippets and any(EXAMPLE_RGB in s for s in snippets)
    assert all('chunks="auto"' not in s for s in snippets)


@pytest.mark.parametrize("index", range(len(python_snippets())))
def test_readme_python_snippet_runs_warning_free(tmp_path, index):
    from geohsr.inference.options import DEFAULT_WEIGHTS
    from geohsr.models.weights import list_shipped_weights

    if DEFAULT_WEIGHTS not in list_shipped_weights():
        pytest.skip(f"{DEFAULT_WEIGHTS} is not shipped")
    raster = write_raster(tmp_path / "small.tif", gradient_rgb(48, 56))
    code = python_snippets()[index].replace(EXAMPLE_RGB, str(raster))
    result = subprocess.run(
        [sys.executable, *STRICT, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=run_quiet_env(),
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Warning" not in result.stderr, result.stderr
    if "rio.crs" in code:
        assert "EPSG:32633" in result.stdout


def test_importing_geohsr_hides_only_rioxarrays_affine_deprecation():
    code = (
        "import geohsr, pytest\n"
        "from affine import Affine\n"
        "from rioxarray.rioxarray import affine_to_coords\n"
        "affine_to_coords(Affine.scale(2), 3, 3)\n"  # rioxarray's own use: hidden
        "with pytest.raises(PendingDeprecationWarning):\n"
        "    Affine.identity() * Affine.scale(2)\n"  # anyone else's: still raised
        "print('ok')\n"
    )
    result = subprocess.run(
        [sys.executable, "-W", "error::PendingDeprecationWarning", "-c", code],
        capture_output=True,
        text=True,
    )
    assert result.stdout.strip() == "ok", result.stderr[-2000:]


def test_cli_normal_run_shows_no_warning_lines(tmp_path):
    # reflectance-like levels (the full-range gradient's saturated colours rightly get the
    # note that some bands exceed 1.2)
    dim = (gradient_rgb(48, 56) * 0.6).astype(np.uint8)
    raster = write_raster(tmp_path / "in.tif", dim)
    out, png = tmp_path / "cube.tif", tmp_path / "p.png"
    commands = [
        [str(GEOHSR), "reconstruct", str(raster), str(out), "--tile", "64", "--overlap", "16"],
        [str(GEOHSR), "preview", str(out), str(png), "--rgb", str(raster)],
    ]
    for command in commands:
        result = subprocess.run(
            command, capture_output=True, text=True, env=run_quiet_env(), timeout=300
        )
        assert result.returncode == 0, result.stderr[-3000:]
        assert "Warning" not in result.stderr, result.stderr
        assert "note:" not in result.stderr, result.stderr


def test_cli_turns_a_missing_georeference_into_one_note(tmp_path):
    photo = write_raster(tmp_path / "photo.tif", gradient_rgb(40, 30), crs=None)
    cube = write_raster(tmp_path / "cube.tif", smooth_cube(40, 30), crs=None)
    result = CliRunner().invoke(
        cli, ["preview", str(cube), str(tmp_path / "p.png"), "--rgb", str(photo)]
    )
    assert result.exit_code == 0, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("note: ") and "no CRS" in lines[0], lines
    assert "Warning" not in result.stderr


def test_notes_policy(capsys):
    site = "/usr/lib/python3/site-packages/somelib/module.py"
    ours = str(Path(geohsr.__file__).with_name("accessor.py"))
    assert note_for(NotGeoreferencedWarning("x"), NotGeoreferencedWarning, site)
    assert note_for(DeprecationWarning("old"), DeprecationWarning, site) is None
    assert note_for(FutureWarning("later"), FutureWarning, site) is None
    assert note_for(UserWarning("check this\nmore"), UserWarning, ours) == "check this"
    assert note_for(PendingDeprecationWarning("use @"), PendingDeprecationWarning, ours) is None

    def emit() -> None:
        warnings.warn_explicit("upstream", DeprecationWarning, site, 1)
        warnings.warn_explicit("no transform", NotGeoreferencedWarning, site, 2)

    with warnings_as_notes():
        worker = threading.Thread(target=emit)  # dask warns from its worker threads
        worker.start()
        worker.join()
        emit()
    err = capsys.readouterr().err
    assert err.count("note: ") == 1 and "no CRS" in err and "upstream" not in err
