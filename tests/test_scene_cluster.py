"""One scene in independent chunks: the accessor's graph on any scheduler (a 2-process
LocalCluster included), `geohsr reconstruct --scheduler`, resume after a worker dies, and
batch --split-scenes; every output equal to the sequential streaming one, bit for bit."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import cloudpickle
import numpy as np
import pytest
import rioxarray
import torch
import xarray as xr
from click.testing import CliRunner
from scene_fixtures import gradient_rgb, save_model, write_raster

import geohsr  # noqa: F401 - registers .hsr
from geohsr.cli.main import cli
from geohsr.exceptions import GeoHSRError
from geohsr.inference.backends import resolve_precision
from geohsr.inference.scene import ReconstructOptions, is_complete_output, reconstruct_scene
from geohsr.io.output import partial_path
from geohsr.io.zarr_chunks import done_chunks
from geohsr.models import create_model
from geohsr.tiling import make_grid
from geohsr.tiling.chunks import make_chunks, windows_touching

distributed = pytest.importorskip("distributed")
cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import tests/

SETTINGS = {"tile": 64, "overlap": 16, "batch_size": 2, "device": "cpu", "threads": 1}
OPTIONS = ReconstructOptions(**SETTINGS)
CLI_SETTINGS = ["--tile", "64", "--overlap", "16", "--batch-size", "2", "--threads", "1"]
CLI_SETTINGS += ["--device", "cpu"]


def tree_bytes(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("weights") / "tiny.safetensors"
    return save_model(create_model("mxr_unet18", width=0.125), path)


@pytest.fixture(scope="module")
def scene(tmp_path_factory) -> Path:
    data = gradient_rgb(250, 230)
    data[:, 100:130, 40:90] = 0  # a nodata hole across chunk borders
    return write_raster(tmp_path_factory.mktemp("scene") / "in.tif", data, nodata=0)


@pytest.fixture(scope="module")
def streamed(tmp_path_factory, scene, weights) -> Path:
    """The sequential single-process output every chunked run must equal."""
    out = tmp_path_factory.mktemp("streamed") / "streamed.zarr"
    reconstruct_scene(scene, out, weights=weights, options=OPTIONS, progress=False)
    return out


@pytest.fixture(scope="module")
def cluster():
    """2 single-threaded worker processes; a task whose worker dies is not retried, so a
    killed worker fails the run (as a preempted batch job would leave it)."""
    import dask

    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        with distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
        ) as local:
            with distributed.Client(local) as client:
                yield client


@pytest.mark.parametrize(
    "size, chunk_size, hole",
    [
        ((250, 230), 70, True),  # chunks not dividing the scene, nodata across borders
        ((37, 203), 50, False),  # odd sizes, a scene one window high
        ((40, 50), 16, True),  # smaller than one window, chunks smaller than the overlap
        ((129, 65), None, False),  # the default chunk size
    ],
)
def test_accessor_chunks_equal_the_streaming_output(tmp_path, weights, size, chunk_size, hole):
    data = gradient_rgb(*size)
    if hole:
        data[:, 10:30, 5:45] = 0
    src = write_raster(tmp_path / "in.tif", data, nodata=0)
    reconstruct_scene(src, tmp_path / "cli.zarr", weights=weights, options=OPTIONS)
    expected = xr.open_zarr(tmp_path / "cli.zarr")["reflectance"].values

    rgb = rioxarray.open_rasterio(src, chunks={"y": 33, "x": 47}, masked=True)
    cube = rgb.hsr.reconstruct(model=weights, chunk_size=chunk_size, **SETTINGS)
    values = cube.compute(scheduler="threads").values
    np.testing.assert_array_equal(values, expected)  # rounded, NaN at nodata, bit for bit


def _loaded_predictors() -> int:
    from geohsr.inference import model_cache

    return len(model_cache._CACHE)


def test_accessor_graph_has_independent_chunks_and_runs_on_a_two_process_cluster(
    cluster, scene, weights, streamed
):
    rgb = rioxarray.open_rasterio(scene, chunks={"y": 64, "x": 64}, masked=True)
    cube = rgb.hsr.reconstruct(model=str(weights), chunk_size=96, **SETTINGS)

    graph = cube.data.__dask_graph__()
    dependencies = graph.get_all_dependencies()
    chunk_keys = [key for key in dependencies if str(key).startswith("hsr-chunk-")]
    assert len(chunk_keys) == len(make_chunks(250, 230, 96)) == 6  # 3 x 2 chunks of 96 px
    for key in chunk_keys:  # no chain: a chunk never waits for another chunk
        assert not any(str(dep).startswith("hsr-chunk-") for dep in dependencies[key])

    values = cluster.compute(cube).result().values
    np.testing.assert_array_equal(values, xr.open_zarr(streamed)["reflectance"].values)
    workers = cluster.scheduler_info()["workers"]
    assert len(workers) == 2
    assert set(cluster.run(_loaded_predictors).values()) == {1}  # once per worker


def test_a_model_object_cannot_reach_other_processes_and_says_what_to_do(cluster, scene):
    from geohsr.inference.predictor import Predictor

    rgb = rioxarray.open_rasterio(scene, masked=True)
    predictor = Predictor(create_model("scene_test_constant"), device="cpu", batch_size=2)
    cube = rgb.hsr.reconstruct(model=predictor, chunk_size=128, **SETTINGS)
    with pytest.raises(GeoHSRError, match="model='<weights name or .safetensors path>'"):
        cluster.compute(cube).result()


def test_cli_scheduler_writes_the_same_bytes_and_refuses_tif(
    tmp_path, cluster, scene, weights, streamed
):
    out = tmp_path / "cluster.zarr"
    address = cluster.scheduler.address
    command = ["reconstruct", str(scene), str(out), "--weights", str(weights), *CLI_SETTINGS]
    run = CliRunner().invoke(cli, [*command, "--scheduler", address, "--chunk-size", "100"])
    assert run.exit_code == 0, run.output
    assert "4 independent chunks" in run.output and "extra windows" in run.output
    assert tree_bytes(out) == tree_bytes(streamed)  # data, attributes, metadata
    assert not partial_path(out).exists()

    tif = ["reconstruct", str(scene), str(tmp_path / "c.tif"), "--scheduler", address]
    refused = CliRunner().invoke(cli, tif)
    assert refused.exit_code == 2
    assert "writes Zarr only" in refused.output and "gdal_translate -of COG" in refused.output


def _kill_on_second_write() -> None:
    """Installed in one worker: its second region write kills the process (SIGKILL, no
    cleanup), in the middle of a chunk."""
    import os
    import signal

    from geohsr.io.zarr_chunks import ZarrChunkWriter

    original = ZarrChunkWriter.write
    calls = []

    def write(self, row, col, values):
        calls.append(1)
        if len(calls) == 2:
            os.kill(os.getpid(), signal.SIGKILL)
        return original(self, row, col, values)

    ZarrChunkWriter.write = write


def test_resume_after_a_worker_is_killed_mid_run(tmp_path, cluster, scene, weights, streamed):
    from geohsr.batch.cluster import ClusterOptions
    from geohsr.batch.scene_chunks import reconstruct_scene_on_cluster

    out = tmp_path / "killed.zarr"
    options = ReconstructOptions(**SETTINGS, chunk_size=96)  # 3 x 2 chunks
    on_cluster = ClusterOptions(scheduler=cluster.scheduler.address)
    first = sorted(cluster.scheduler_info()["workers"])[0]
    cluster.run(_kill_on_second_write, workers=[first])
    with pytest.raises(GeoHSRError, match="KilledWorker.*rerun with --resume"):
        reconstruct_scene_on_cluster(
            scene, out, cluster=on_cluster, weights=weights, options=options, progress=False
        )
    assert not out.exists() and not is_complete_output(out)
    recorded = done_chunks(partial_path(out))
    assert len(recorded) < 6  # the chunk being written when the worker died is not

    cluster.wait_for_workers(2)  # the nanny restarted the killed worker
    resumed = reconstruct_scene_on_cluster(
        scene, out, cluster=on_cluster, weights=weights, options=options, resume=True
    )
    grid, chunks = make_grid(250, 230, 64, 16), make_chunks(250, 230, 96)
    assert resumed.chunks == len(chunks) == 6
    assert resumed.n_windows < sum(windows_touching(grid, chunk) for chunk in chunks)
    assert tree_bytes(out) == tree_bytes(streamed)


def test_a_streaming_partial_resumes_on_the_cluster(tmp_path, cluster, scene, weights, streamed):
    from geohsr.batch.cluster import ClusterOptions
    from geohsr.batch.scene_chunks import reconstruct_scene_on_cluster
    from geohsr.inference.predictor import Predictor

    class CrashAfter(Predictor):
        calls = 4  # two bands (rows 0-96) written, the third interrupted

        def predict(self, batch, **kwargs):
            CrashAfter.calls -= 1
            if CrashAfter.calls < 0:
                raise KeyboardInterrupt
            return super().predict(batch, **kwargs)

    out = tmp_path / "mixed.zarr"
    model = Predictor.from_weights(weights, device="cpu", batch_size=2, threads=1).model
    crashing = CrashAfter(model, device="cpu", batch_size=2, weights=weights)
    with pytest.raises(KeyboardInterrupt):
        reconstruct_scene(scene, out, predictor=crashing, options=OPTIONS, progress=False)
    resumed = reconstruct_scene_on_cluster(
        scene,
        out,
        cluster=ClusterOptions(scheduler=cluster.scheduler.address),
        weights=weights,
        options=ReconstructOptions(**SETTINGS, chunk_size=96),
        resume=True,
    )
    grid, chunks = make_grid(250, 230, 64, 16), make_chunks(250, 230, 96)
    below = [chunk for chunk in chunks if chunk.row0 >= 96]  # rows 0-96: the first run's
    assert resumed.n_windows == sum(windows_touching(grid, chunk) for chunk in below)
    assert tree_bytes(out) == tree_bytes(streamed)


def test_batch_split_scenes_keeps_outputs_identical(tmp_path, cluster, scene, weights, streamed):
    small = write_raster(tmp_path / "small.tif", gradient_rgb(60, 50))
    command = ["batch", str(scene), str(small), "--out-dir", str(tmp_path / "out")]
    command += ["--weights", str(weights), *CLI_SETTINGS, "--quiet"]
    command += ["--scheduler", cluster.scheduler.address, "--split-scenes", "0.01"]
    command += ["--chunk-size", "96"]
    run = CliRunner().invoke(cli, command)
    assert run.exit_code == 0, run.output
    report = json.loads((tmp_path / "out" / "geohsr_batch_report.json").read_text())
    workers = {record["scene"]: record["worker"] for record in report["scenes"]}
    assert workers["in"] == "chunks" and workers["small"] in {"0", "1"}
    inference = {record["scene"]: record["inference"] for record in report["scenes"]}
    ran = f"torch {resolve_precision('auto', 'torch', 'cpu')}"  # bf16 on AVX512-BF16 CPUs
    assert inference == {"in": ran, "small": ran}
    assert tree_bytes(tmp_path / "out" / "in.zarr") == tree_bytes(streamed)
    reference = tmp_path / "small_reference.zarr"
    reconstruct_scene(small, reference, weights=weights, options=OPTIONS)
    np.testing.assert_array_equal(
        xr.open_zarr(tmp_path / "out" / "small.zarr")["reflectance"].values,
        xr.open_zarr(reference)["reflectance"].values,
    )


def test_cluster_run_keeps_the_one_writer_lock(tmp_path, scene, weights, monkeypatch):
    from geohsr.batch import scene_chunks
    from geohsr.batch.cluster import ClusterOptions
    from geohsr.exceptions import OutputError
    from geohsr.io.lock import output_lock

    def no_cluster(options):
        raise AssertionError("no cluster may start while another run owns the output")

    monkeypatch.setattr(scene_chunks, "open_cluster", no_cluster)
    out = tmp_path / "locked.zarr"
    with output_lock(out), pytest.raises(OutputError, match="being written by another"):
        scene_chunks.reconstruct_scene_on_cluster(
            scene, out, cluster=ClusterOptions(n_workers=2), weights=weights, options=OPTIONS
        )


def test_a_task_of_another_run_never_writes_into_the_store(tmp_path, scene, weights):
    from geohsr.exceptions import OutputError
    from geohsr.inference.predictor import Predictor
    from geohsr.io.encoding import CubeEncoding
    from geohsr.io.zarr_chunks import FINGERPRINT_ATTR, ZarrChunkWriter

    class Stop(Predictor):
        def predict(self, batch, **kwargs):
            raise KeyboardInterrupt

    out = tmp_path / "out.zarr"
    model = create_model("scene_test_constant")
    with pytest.raises(KeyboardInterrupt):
        reconstruct_scene(scene, out, predictor=Stop(model, device="cpu"), options=OPTIONS)
    import zarr

    fingerprint = zarr.open_group(str(partial_path(out)), mode="r").attrs[FINGERPRINT_ATTR]
    encoding = CubeEncoding("float32")
    ZarrChunkWriter(partial_path(out), fingerprint, encoding)  # this run's tasks: fine
    with pytest.raises(OutputError, match="no longer the store this task belongs to"):
        ZarrChunkWriter(partial_path(out), "an earlier run's settings", encoding)


def test_a_chunked_partial_resumes_in_one_process(tmp_path, scene, weights, streamed):
    """Chunks written by tasks (here in this process, no cluster) then an interruption:
    the single-process --resume continues below the rows the chunks finished."""
    from geohsr.inference.chunk_tasks import ChunkJob, write_chunk
    from geohsr.inference.model_cache import PredictorSpec

    def first_row_of_chunks_then_interrupt(prepared, progress):
        spec = PredictorSpec(str(weights), device="cpu", batch_size=2, threads=1)
        job = ChunkJob.for_scene(prepared, spec)
        for chunk in make_chunks(250, 230, 96):
            if chunk.row0 == 0:  # the first row of chunks
                write_chunk(job, chunk)
        raise KeyboardInterrupt

    out = tmp_path / "out.zarr"
    with pytest.raises(KeyboardInterrupt):
        reconstruct_scene(
            scene, out, weights=weights, options=OPTIONS, runner=first_row_of_chunks_then_interrupt
        )
    assert len(done_chunks(partial_path(out))) == 2
    resumed = reconstruct_scene(scene, out, weights=weights, options=OPTIONS, resume=True)
    assert resumed.resumed_from_band == 2  # rows 0-96: bands 0 and 1
    assert tree_bytes(out) == tree_bytes(streamed)
