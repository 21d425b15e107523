"""--resume: an interrupted Zarr write continues and ends byte-identical to a clean run."""

import json
import os
import subprocess
import sys
import textwrap
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from scene_fixtures import CrashAfter, gradient_rgb, save_model, write_raster

from geohsr.exceptions import OutputError
from geohsr.inference.scene import ReconstructOptions, is_complete_output, reconstruct_scene
from geohsr.io.output import partial_path
from geohsr.io.zarr_writer import BANDS_DONE_ATTR, SETTINGS_ATTR, stored_attrs
from geohsr.models import create_model

OPTIONS = ReconstructOptions(tile=64, overlap=16, batch_size=2)


def tree_bytes(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


@pytest.fixture
def scene(tmp_path):
    data = gradient_rgb(250, 230)
    data[:, 100:130, 40:90] = 0  # a nodata hole across band borders
    return write_raster(tmp_path / "in.tif", data, nodata=0)


@pytest.fixture
def weights(tmp_path):
    torch.manual_seed(0)
    return save_model(create_model("mxr_unet18", width=0.125), tmp_path / "tiny.safetensors")


def test_resume_after_a_crash_gives_the_same_bytes(tmp_path, scene, weights):
    clean = reconstruct_scene(scene, tmp_path / "clean.zarr", weights=weights, options=OPTIONS)
    out = tmp_path / "out.zarr"
    with pytest.raises(KeyboardInterrupt):
        reconstruct_scene(
            scene, out, predictor=CrashAfter(weights, 5, KeyboardInterrupt), options=OPTIONS
        )
    assert not out.exists() and not is_complete_output(out)
    import zarr

    done = zarr.open_group(str(partial_path(out)), mode="r").attrs[BANDS_DONE_ATTR]
    assert 0 < done < 4  # stopped midway
    resumed = reconstruct_scene(scene, out, weights=weights, options=OPTIONS, resume=True)
    assert resumed.resumed_from_band == done and resumed.n_windows < clean.n_windows
    assert tree_bytes(out) == tree_bytes(tmp_path / "clean.zarr")
    assert not partial_path(out).exists()


def test_resume_of_a_finished_output_does_nothing(tmp_path, scene, weights):
    out = tmp_path / "out.zarr"
    reconstruct_scene(scene, out, weights=weights, options=OPTIONS)
    before = tree_bytes(out)
    again = reconstruct_scene(scene, out, weights=weights, options=OPTIONS, resume=True)
    assert again.n_windows == 0 and tree_bytes(out) == before


def test_resume_of_a_finished_output_made_otherwise_is_refused(tmp_path, scene, weights):
    out = tmp_path / "out.zarr"
    reconstruct_scene(scene, out, weights=weights, options=OPTIONS)
    before = tree_bytes(out)
    other_input = tmp_path / "other.tif"
    other_input.write_bytes(scene.read_bytes())
    cases = (
        (scene, replace(OPTIONS, dtype="uint16"), "--dtype: float32 -> uint16"),
        (other_input, OPTIONS, f"the input file (the run read {scene}, as given then)"),
    )
    for source, options, named in cases:
        with pytest.raises(OutputError, match="complete but was made from another input") as e:
            reconstruct_scene(source, out, weights=weights, options=options, resume=True)
        assert f"it differs in {named}" in str(e.value)  # names the setting that differs
    assert tree_bytes(out) == before


def test_resume_with_other_settings_is_refused_naming_them(tmp_path, scene, weights):
    out = tmp_path / "out.zarr"
    with pytest.raises(KeyboardInterrupt):
        reconstruct_scene(
            scene, out, predictor=CrashAfter(weights, 5, KeyboardInterrupt), options=OPTIONS
        )
    partial = tmp_path / "out.zarr.partial"
    before = tree_bytes(partial)
    cases = (
        (replace(OPTIONS, tile=32, overlap=8), "differs in --tile: 64 -> 32; --overlap: 16 -> 8"),
        (replace(OPTIONS, threads=1), "it differs in --threads: default -> 1"),
        (replace(OPTIONS, sidecars=False), "it differs in --sidecars: on -> off"),
    )
    for options, named in cases:
        with pytest.raises(OutputError, match="was started from another input or with") as err:
            reconstruct_scene(scene, out, weights=weights, options=options, resume=True)
        assert named in str(err.value) and "--overwrite to start again" in str(err.value)
    other_weights = save_model(
        create_model("scene_test_linear", artefact=0.3), tmp_path / "other.safetensors"
    )
    with pytest.raises(OutputError, match=r"was started with other weights \(SHA-256 \w{12}…"):
        reconstruct_scene(scene, out, weights=other_weights, options=OPTIONS, resume=True)
    assert tree_bytes(partial) == before  # its finished rows are kept
    recorded = json.loads(stored_attrs(partial)[SETTINGS_ATTR])
    assert str(tmp_path) not in json.dumps(recorded)  # no machine path in the cube
    same = replace(OPTIONS, device="cpu")  # "auto" resolves to the CPU here: no difference
    result = reconstruct_scene(scene, out, weights=weights, options=same, resume=True)
    assert result.resumed_from_band > 0 and is_complete_output(out)


KILL_SCRIPT = """
import os, signal, sys
from geohsr.inference.predictor import Predictor
from geohsr.inference.scene import ReconstructOptions, reconstruct_scene

class KillAfter(Predictor):
    calls = 0
    def predict(self, batch, **kwargs):
        KillAfter.calls += 1
        if KillAfter.calls > {calls}:
            os.kill(os.getpid(), signal.SIGKILL)  # no cleanup, no exception handling
        return super().predict(batch, **kwargs)

base = Predictor.from_weights({weights!r}, device="cpu", batch_size=2)
predictor = KillAfter(base.model, device="cpu", batch_size=2, weights={weights!r})
reconstruct_scene({scene!r}, {out!r}, predictor=predictor,
                  options=ReconstructOptions(tile=64, overlap=16, batch_size=2), progress=False)
"""


def test_resume_after_the_process_is_killed(tmp_path, scene, weights):
    out = tmp_path / "killed.zarr"
    script = textwrap.dedent(KILL_SCRIPT).format(
        calls=5, weights=str(weights), scene=str(scene), out=str(out)
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    run = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True)
    assert run.returncode == -9, run.stderr.decode()[-2000:]
    assert not out.exists() and partial_path(out).exists() and not is_complete_output(out)
    reconstruct_scene(scene, out, weights=weights, options=OPTIONS, resume=True)
    reconstruct_scene(scene, tmp_path / "clean.zarr", weights=weights, options=OPTIONS)
    assert tree_bytes(out) == tree_bytes(tmp_path / "clean.zarr")
    import xarray as xr

    cube = xr.open_zarr(out)["reflectance"].values
    assert np.isnan(cube[:, 100:130, 40:90]).all() and np.isfinite(cube[:, :100]).all()


def test_a_resumed_run_reports_on_the_values_of_the_whole_cube(tmp_path):
    from geohsr.inference.value_range import value_notes

    scene = write_raster(tmp_path / "in.tif", gradient_rgb(150, 40))
    bright = save_model(create_model("scene_test_constant", value=1.5), tmp_path / "b.st")
    out = tmp_path / "out.zarr"
    with pytest.raises(KeyboardInterrupt):
        reconstruct_scene(
            scene, out, predictor=CrashAfter(bright, 1, KeyboardInterrupt), options=OPTIONS
        )
    result = reconstruct_scene(scene, out, weights=bright, options=OPTIONS, resume=True)
    assert result.resumed_from_band > 0
    values = result.values
    assert (values.output_pixels, values.output_above) == (150 * 40, 150 * 40)
    assert values.output_max == pytest.approx(1.5) and not values.partial
    assert "6000 pixels (100.0%) have a band above 1.2" in value_notes(values)[0]
    assert "geohsr_values_seen" not in stored_attrs(out)  # a record of the run only


def test_resume_continues_an_interrupted_overwrite_and_then_replaces_the_cube(
    tmp_path, scene, weights
):
    out = tmp_path / "out.zarr"
    reconstruct_scene(scene, out, weights=weights, options=OPTIONS)
    expected = tree_bytes(out)
    with pytest.raises(KeyboardInterrupt):
        reconstruct_scene(
            scene,
            out,
            predictor=CrashAfter(weights, 5, KeyboardInterrupt),
            options=OPTIONS,
            overwrite=True,
        )
    with pytest.raises(OutputError, match=r"interrupted run left .*\(it was replacing out.zarr\)"):
        reconstruct_scene(scene, out, weights=weights, options=OPTIONS)
    result = reconstruct_scene(scene, out, weights=weights, options=OPTIONS, resume=True)
    assert not result.already_complete and result.resumed_from_band > 0
    assert not partial_path(out).exists() and tree_bytes(out) == expected
