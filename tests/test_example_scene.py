"""The shipped example scene: its RGB is exactly the rendering of its ground truth, and the
example script runs end to end."""

import runpy
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio
from scene_fixtures import save_model

from geohsr.models import create_model

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
sys.path.insert(0, str(EXAMPLES))

import make_example_scene as example  # noqa: E402


def test_committed_rgb_is_the_rendered_ground_truth():
    cube, labels, valid = example.build_scene()
    assert cube.shape == (31, example.HEIGHT, example.WIDTH) and cube.dtype == np.float32
    assert 0 < cube[:, valid].min() and cube.max() < 1
    with rasterio.open(example.RGB_TIF) as dataset:
        assert dataset.crs.to_string() == example.CRS and dataset.nodata == 0
        stored = dataset.read()
    np.testing.assert_array_equal(stored, example.render(cube, valid))
    assert np.array_equal((stored == 0).all(axis=0), ~valid)
    rows, _ = example.load_spectra()
    assert len(set(labels[valid].ravel())) == len(rows)  # every spectrum appears
    assert {row["source"] for row in rows} >= {"asd", "icraf-isric-soil-database"}


@pytest.mark.slow
def test_example_script_runs_end_to_end(tmp_path, monkeypatch, capsys):
    weights = save_model(create_model("scene_test_linear"), tmp_path / "w.safetensors")
    out = tmp_path / "out"
    monkeypatch.setattr(
        sys,
        "argv",
        [
            "reconstruct_example.py",
            "--weights",
            str(weights),
            "--out",
            str(out),
            "--tile",
            "128",
            "--overlap",
            "32",
        ],
    )
    runpy.run_path(str(EXAMPLES / "reconstruct_example.py"), run_name="__main__")
    printed = capsys.readouterr().out
    assert "all valid" in printed and "vegetation" in printed
    assert (out / "example_preview.png").stat().st_size > 10_000
    assert (out / "example_spectra_vs_truth.png").stat().st_size > 10_000


@pytest.mark.slow
def test_readme_command_reconstructs_the_example_with_the_shipped_weights(tmp_path):
    from click.testing import CliRunner

    from geohsr.cli.main import cli
    from geohsr.inference.options import DEFAULT_WEIGHTS
    from geohsr.models.weights import list_shipped_weights

    if DEFAULT_WEIGHTS not in list_shipped_weights():
        pytest.skip(f"{DEFAULT_WEIGHTS} is not shipped yet")
    out = tmp_path / "example_cube.zarr"
    result = CliRunner().invoke(cli, ["reconstruct", str(example.RGB_TIF), str(out)])
    assert result.exit_code == 0, result.output
    import xarray as xr

    cube = xr.open_zarr(out)["reflectance"].values
    truth, _, valid = example.build_scene()
    assert np.isfinite(cube[:, valid]).all() and np.isnan(cube[:, ~valid]).all()
