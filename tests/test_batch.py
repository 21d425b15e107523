"""Batch runs on real dask clusters with a tiny model and tiny GeoTIFFs.

The main test drives `geohsr batch` against a LocalCluster of 2 worker processes; the
others use in-process (threaded) clusters, which start in well under a second.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from click.testing import CliRunner
from scene_fixtures import gradient_rgb, write_raster

from geohsr.batch import (
    REPORT_FILENAME,
    ClusterOptions,
    PredictorSettings,
    Scene,
    open_cluster,
    plan_jobs,
    run_batch,
)
from geohsr.cli.main import cli
from geohsr.inference.backends import resolve_precision
from geohsr.inference.options import ReconstructOptions
from geohsr.inference.scene import reconstruct_scene
from geohsr.models import create_model
from geohsr.models.weights import save_weights

distributed = pytest.importorskip("distributed")

HEIGHT, WIDTH = 96, 80
GOOD = ("alpha", "beta", "gamma")
OPTIONS = ReconstructOptions(tile=64, overlap=16, threads=1)
CLI_OPTIONS = ["--tile", "64", "--overlap", "16", "--threads", "1", "--quiet"]


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("weights") / "tiny.safetensors"
    return save_weights(create_model("mxr_unet18", width=0.125), path)


@pytest.fixture(scope="module")
def two_worker_processes():
    """Address of a LocalCluster with 2 single-threaded worker processes."""
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
    ) as cluster:
        yield cluster.scheduler_address


def _write_scenes(folder: Path) -> None:
    folder.mkdir()
    for seed, name in enumerate(GOOD):
        write_raster(folder / f"{name}.tif", gradient_rgb(HEIGHT, WIDTH, seed=seed))
    (folder / "broken.tif").write_bytes(b"II*\x00 this is not a GeoTIFF")


def _output_stamp(path: Path) -> tuple[int, int]:
    """(inode, mtime_ns) of a Zarr output's attributes: both change when it is rewritten."""
    stat = (path / ".zattrs").stat()
    return stat.st_ino, stat.st_mtime_ns


def test_cli_batch_isolates_failures_matches_single_process_and_resumes(
    tmp_path, weights, two_worker_processes
):
    scenes, out = tmp_path / "scenes", tmp_path / "out"
    _write_scenes(scenes)
    command = ["batch", str(scenes / "*.tif"), "--out-dir", str(out), "--weights", str(weights)]
    command += [*CLI_OPTIONS, "--scheduler", two_worker_processes]

    first = CliRunner().invoke(cli, command)

    assert first.exit_code == 1, first.output
    assert "3 done, 0 skipped, 1 failed" in first.output
    assert "failed broken: InputError" in first.output
    saved = json.loads((out / REPORT_FILENAME).read_text())
    assert saved["summary"]["done"] == 3 and saved["summary"]["megapixels_per_second"] > 0
    (failure,) = [scene for scene in saved["scenes"] if scene["status"] == "failed"]
    assert failure["scene"] == "broken" and failure["error"].startswith("InputError")
    assert {scene["worker"] for scene in saved["scenes"]} <= {"0", "1"}
    ran = f"torch {resolve_precision('auto', 'torch', 'cpu')}"  # bf16 on AVX512-BF16 CPUs
    assert {s["inference"] for s in saved["scenes"] if s["status"] == "done"} == {ran}
    assert not (out / "broken.zarr").exists()

    for name in GOOD:
        reference = reconstruct_scene(
            scenes / f"{name}.tif",
            tmp_path / f"reference_{name}.zarr",
            weights=weights,
            options=OPTIONS,
            progress=False,
        )
        expected = xr.open_zarr(reference.output)
        actual = xr.open_zarr(out / f"{name}.zarr")
        np.testing.assert_array_equal(actual["reflectance"].values, expected["reflectance"].values)
        assert actual["reflectance"].attrs == expected["reflectance"].attrs

    stamps = {name: _output_stamp(out / f"{name}.zarr") for name in GOOD}
    (scenes / "broken.tif").unlink()
    write_raster(scenes / "broken.tif", gradient_rgb(HEIGHT, WIDTH, seed=9))  # repaired

    second = CliRunner().invoke(cli, command)

    assert second.exit_code == 0, second.output
    assert "1 done, 3 skipped, 0 failed" in second.output
    saved = json.loads((out / REPORT_FILENAME).read_text())
    assert [s["scene"] for s in saved["scenes"] if s["status"] == "done"] == ["broken"]
    assert {s["inference"] for s in saved["scenes"]} == {ran}  # skipped: what made the cube
    assert {name: _output_stamp(out / f"{name}.zarr") for name in GOOD} == stamps
    assert (out / "broken.zarr" / ".zattrs").is_file()
    import pystac

    collection = pystac.Collection.from_file(str(out / "collection.json"))
    items = {item.id: item for item in collection.get_items()}
    assert set(items) == {*GOOD, "broken"}  # every scene, read back through pystac
    assert all(
        (out / f"{name}.json").is_file() and (out / f"{name}.qml").is_file() for name in items
    )

    # a rerun with a setting that changes the values redoes the scenes made otherwise
    retiled = [*command]
    retiled[retiled.index("64")] = "96"
    third = CliRunner().invoke(cli, retiled)
    assert third.exit_code == 0, third.output
    assert "4 done, 0 skipped, 0 failed" in third.output
    assert "redid alpha: its earlier output had another tile" in third.output
    saved = json.loads((out / REPORT_FILENAME).read_text())
    assert {s["replaced"] for s in saved["scenes"]} == {"tile"}
    assert xr.open_zarr(out / "alpha.zarr").attrs["tile"] == 96
    assert "nothing to do" in CliRunner().invoke(cli, retiled).output


def test_transient_errors_retry_and_unexpected_errors_fail_only_their_scene(
    tmp_path, weights, monkeypatch
):
    import geohsr.inference.predictor as predictor_module
    import geohsr.inference.scene as scene_module

    calls: dict[str, int] = {}
    loads: list[str] = []
    real_reconstruct = scene_module.reconstruct_scene
    real_from_weights = predictor_module.Predictor.from_weights.__func__

    def flaky_reconstruct(src, dst, **kwargs):
        name = Path(src).stem
        calls[name] = calls.get(name, 0) + 1
        if name == "flaky" and calls[name] == 1:
            raise TimeoutError("storage did not answer")
        if name == "buggy":
            raise ValueError("a bug in a library")
        return real_reconstruct(src, dst, **kwargs)

    def counted_from_weights(cls, spec, **kwargs):
        loads.append(str(spec))
        return real_from_weights(cls, spec, **kwargs)

    monkeypatch.setattr(scene_module, "reconstruct_scene", flaky_reconstruct)
    monkeypatch.setattr(
        predictor_module.Predictor, "from_weights", classmethod(counted_from_weights)
    )
    for seed, name in enumerate(("flaky", "buggy", "fine", "other")):
        write_raster(tmp_path / f"{name}.tif", gradient_rgb(HEIGHT, WIDTH, seed=seed))
    scenes = [Scene(name, str(tmp_path / f"{name}.tif")) for name in ("flaky", "buggy", "fine")]
    scenes.append(Scene("other", str(tmp_path / "other.tif")))
    jobs = plan_jobs(scenes, tmp_path / "out", "tif")
    (tmp_path / "out").mkdir()

    cluster_options = ClusterOptions(n_workers=2, threads_per_worker=1, processes=False)
    with open_cluster(cluster_options) as cluster:
        report = run_batch(
            jobs,
            cluster,
            PredictorSettings(str(weights), threads=1),
            options=OPTIONS,
            retries=1,
            show_progress=False,
        )

    status = {record.scene: record.status for record in report.records}
    assert status == {"flaky": "done", "buggy": "failed", "fine": "done", "other": "done"}
    assert calls["flaky"] == 2 and calls["buggy"] == 1  # only the transient error retried
    (buggy,) = report.with_status("failed")
    assert buggy.error == "ValueError: a bug in a library"
    assert "flaky_reconstruct" in buggy.traceback
    assert len(loads) == 2  # once per worker, not once per scene


def test_transient_error_that_persists_fails_after_its_retries(tmp_path, weights, monkeypatch):
    import geohsr.inference.scene as scene_module

    attempts: list[str] = []

    def always_unreachable(src, dst, **kwargs):
        attempts.append(str(src))
        raise OSError("network file system unreachable")

    monkeypatch.setattr(scene_module, "reconstruct_scene", always_unreachable)
    write_raster(tmp_path / "far.tif", gradient_rgb(HEIGHT, WIDTH))
    jobs = plan_jobs([Scene("far", str(tmp_path / "far.tif"))], tmp_path, "zarr")

    with open_cluster(ClusterOptions(n_workers=1, processes=False)) as cluster:
        report = run_batch(
            jobs,
            cluster,
            PredictorSettings(str(weights), threads=1),
            retries=2,
            show_progress=False,
        )

    (record,) = report.records
    assert record.status == "failed" and len(attempts) == 3
    assert record.error.startswith("OSError: network file system unreachable")
    assert "after 2 retries" in record.error


def test_local_cluster_layout_and_bad_scheduler_address(tmp_path):
    with open_cluster(ClusterOptions(n_workers=2, threads_per_worker=1, processes=False)) as c:
        assert c.n_workers == 2 and c.threads_per_worker == 1 and c.local_gpus == 0
        assert c.address.startswith(("inproc://", "tcp://"))
    from geohsr.exceptions import GeoHSRError

    with pytest.raises(GeoHSRError, match="either --scheduler or --scheduler-file"):
        with open_cluster(ClusterOptions(scheduler="tcp://x:1", scheduler_file=tmp_path / "s")):
            pass
