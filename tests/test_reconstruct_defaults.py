"""Smaller things of issue 12: the default overlap follows the tile, outputs record the input
path as given, `geohsr models` does not import torch."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import rasterio
from click.testing import CliRunner
from scene_fixtures import CrashAfter, Interrupted, gradient_rgb, save_model, write_raster

from geohsr.cli.main import cli
from geohsr.exceptions import InputError
from geohsr.inference.options import ReconstructOptions, default_overlap
from geohsr.inference.scene import reconstruct_scene
from geohsr.models import create_model, registry
from geohsr.models.catalog import BUILTIN_PARAMETERS, count_parameters

FAST = ["--batch-size", "2", "--device", "cpu", "--quiet"]


@pytest.fixture
def weights(tmp_path) -> str:
    return str(save_model(create_model("scene_test_linear"), tmp_path / "lin.safetensors"))


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


@pytest.mark.parametrize(
    "tile, overlap", [(16, 4), (64, 16), (128, 32), (256, 64), (512, 64), (1024, 64)]
)
def test_the_default_overlap_follows_the_tile(tile, overlap):
    assert default_overlap(tile) == overlap
    assert ReconstructOptions(tile=tile).overlap == overlap
    assert ReconstructOptions(tile=tile, overlap=2).overlap == 2


def test_only_an_overlap_the_user_gave_is_refused():
    with pytest.raises(InputError, match="tile/2 = 8, got 64"):
        ReconstructOptions(tile=16, overlap=64)


def test_tile_16_on_the_command_line(tmp_path, weights):
    src = write_raster(tmp_path / "in.tif", gradient_rgb(40, 30))
    out = tmp_path / "cube.zarr"
    result = run("reconstruct", src, out, "--weights", weights, "--tile", "16", *FAST)
    assert result.exit_code == 0, result.output
    attrs = json.loads((out / ".zattrs").read_text())
    assert (attrs["tile"], attrs["overlap"]) == (16, 4)
    result = run("reconstruct", src, out, "--weights", weights, "--tile", "16", "--overlap", "64")
    assert result.exit_code == 2 and "got 64" in result.stderr


@pytest.mark.parametrize("suffix", [".zarr", ".tif"])
def test_source_file_is_the_path_as_given(tmp_path, weights, monkeypatch, suffix):
    write_raster(tmp_path / "in.tif", gradient_rgb(40, 30))
    monkeypatch.chdir(tmp_path)
    result = run("reconstruct", "in.tif", f"cube{suffix}", "--weights", weights, *FAST)
    assert result.exit_code == 0, result.output
    if suffix == ".zarr":
        source = json.loads(Path("cube.zarr/.zattrs").read_text())["source_file"]
    else:
        with rasterio.open("cube.tif") as cog:
            source = cog.tags()["SOURCE_FILE"]
    assert source == "in.tif"


def test_resume_from_another_folder_still_matches(tmp_path, weights, monkeypatch):
    write_raster(tmp_path / "in.tif", gradient_rgb(150, 60))
    options = ReconstructOptions(tile=32, overlap=8, batch_size=2, device="cpu")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(Interrupted):
        reconstruct_scene("in.tif", "cube.zarr", predictor=CrashAfter(weights, 2), options=options)
    monkeypatch.chdir(tmp_path.parent)
    result = reconstruct_scene(
        tmp_path / "in.tif", tmp_path / "cube.zarr", weights=weights, options=options, resume=True
    )
    assert result.resumed_from_band > 0


def test_models_does_not_import_torch():
    script = (
        "import sys; from click.testing import CliRunner; from geohsr.cli.main import cli; "
        "result = CliRunner().invoke(cli, ['models']); print(result.output); "
        "print('torch imported:', 'torch' in sys.modules)"
    )
    output = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    ).stdout
    assert "torch imported: False" in output
    rows = {line.split()[0]: line.split()[1] for line in output.splitlines()[1:10]}
    assert rows["mxr_unet18"] == "31,355,146" and rows["rpr3"] == "403"


def test_the_recorded_parameter_counts_are_the_registry_s():
    registry.list_models()
    builtin = {
        name
        for name, factory in registry._REGISTRY.items()
        if factory.__module__.startswith("geohsr.models.")
    }
    assert set(BUILTIN_PARAMETERS) == builtin
    assert {name: count_parameters(name) for name in builtin} == BUILTIN_PARAMETERS
