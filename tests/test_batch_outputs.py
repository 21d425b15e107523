"""`geohsr batch` and its outputs: one batch per output folder, per-scene output errors
without retries, no cluster when everything is done, a readable report, no bars in logs
(issue 12)."""

from __future__ import annotations

import errno
import json
import os
import re
import stat
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from scene_fixtures import gradient_rgb, save_model, write_raster

from geohsr.batch import (
    REPORT_FILENAME,
    BatchReport,
    ClusterOptions,
    PredictorSettings,
    Scene,
    SceneRecord,
    batch_reconstruct,
    open_cluster,
    plan_jobs,
    run_batch,
)
from geohsr.batch.progress import BatchProgress
from geohsr.cli.main import cli
from geohsr.exceptions import OutputError
from geohsr.inference.options import ReconstructOptions
from geohsr.inference.scene import is_complete_output, reconstruct_scene
from geohsr.io import lock as lock_module
from geohsr.io import zarr_writer
from geohsr.io.lock import lock_path, output_lock, owner_path
from geohsr.models import create_model

pytest.importorskip("distributed")

OPTIONS = ReconstructOptions(tile=64, overlap=16, threads=1, batch_size=2)
CLI_OPTIONS = ["--tile", "64", "--overlap", "16", "--threads", "1", "--quiet"]
IN_PROCESS = ClusterOptions(n_workers=1, threads_per_worker=1, processes=False)


@pytest.fixture
def weights(tmp_path) -> Path:
    return save_model(create_model("scene_test_linear"), tmp_path / "lin.safetensors")


@pytest.fixture
def scenes(tmp_path) -> Path:
    folder = tmp_path / "scenes"
    folder.mkdir()
    for seed, name in enumerate(("alpha", "beta")):
        write_raster(folder / f"{name}.tif", gradient_rgb(80, 70, seed=seed))
    return folder


def batch_cli(scenes: Path, out: Path, weights: Path, *extra: str):
    command = ["batch", str(scenes / "*.tif"), "--out-dir", str(out), "--weights", str(weights)]
    return CliRunner().invoke(cli, [*command, *CLI_OPTIONS, *extra])


def one_line_error(result, pattern: str) -> str:
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert re.search(pattern, lines[0]), lines[0]
    return lines[0]


@pytest.fixture
def no_cluster(monkeypatch):
    """Fail the test if a dask cluster is started."""
    import geohsr.batch.runner as runner

    def refuse(options):
        raise AssertionError("a cluster was started")

    monkeypatch.setattr(runner, "open_cluster", refuse)


def test_a_rerun_with_every_output_complete_starts_nothing(tmp_path, scenes, weights, no_cluster):
    out = tmp_path / "out"
    for name in ("alpha", "beta"):
        reconstruct_scene(
            scenes / f"{name}.tif", out / f"{name}.zarr", weights=weights, options=OPTIONS
        )
    report = out / REPORT_FILENAME
    report.write_text('{"summary": {"done": 2}}\n')

    result = batch_cli(scenes, out, weights)

    assert result.exit_code == 0, result.output
    assert "nothing to do: all 2 outputs" in result.stdout
    assert report.read_text() == '{"summary": {"done": 2}}\n'  # not "0 done"
    assert not lock_path(report).exists() and not owner_path(report).exists()


def test_a_second_batch_into_the_same_folder_stops_at_once(tmp_path, scenes, weights, no_cluster):
    out = tmp_path / "out"
    out.mkdir()
    with output_lock(out / REPORT_FILENAME):
        result = batch_cli(scenes, out, weights)
    one_line_error(
        result,
        rf"the batch output folder {re.escape(str(out))} is being written by another geohsr "
        rf"run \(pid {os.getpid()}@",
    )


def test_an_unwritable_output_folder_is_one_line_error(tmp_path, scenes, weights, no_cluster):
    def read_only(self, *args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(lock_module.FileLock, "acquire", read_only)
        result = batch_cli(scenes, tmp_path / "out", weights)
    one_line_error(result, r"cannot write .*geohsr_batch_report\.json: Read-only file system; ")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_output_folder_is_one_line_error(tmp_path, scenes, weights, no_cluster):
    out = tmp_path / "out"
    out.mkdir()
    out.chmod(0o555)
    try:
        one_line_error(batch_cli(scenes, out, weights), r"Permission denied; choose a folder")
    finally:
        out.chmod(0o755)


def test_output_errors_fail_their_scene_once_without_traceback(tmp_path, scenes, monkeypatch):
    import geohsr.inference.scene as scene_module

    weights = save_model(create_model("scene_test_linear"), tmp_path / "w.safetensors")
    calls: list[str] = []
    real_reconstruct = scene_module.reconstruct_scene

    def counted(src, dst, **kwargs):
        calls.append(Path(src).stem)
        return real_reconstruct(src, dst, **kwargs)

    def disk_full(self, row, col, values):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(scene_module, "reconstruct_scene", counted)
    monkeypatch.setattr(zarr_writer.ZarrCubeWriter, "write", disk_full)
    out = tmp_path / "out"
    out.mkdir()
    jobs = plan_jobs(
        [Scene(name, str(scenes / f"{name}.tif")) for name in ("alpha", "beta")], out, "zarr"
    )
    with output_lock(jobs[1].output):  # beta: another run is writing it
        with open_cluster(IN_PROCESS) as cluster:
            report = run_batch(
                jobs,
                cluster,
                PredictorSettings(str(weights), threads=1),
                options=OPTIONS,
                retries=2,
                show_progress=False,
            )
    alpha, beta = report.records
    assert alpha.status == beta.status == "failed"
    assert alpha.error.startswith("OutputError: cannot write ") and "No space left" in alpha.error
    assert alpha.error.endswith("then rerun the batch to continue")
    assert beta.error.startswith("OutputError: ") and "is being written by another" in beta.error
    assert alpha.traceback is None and beta.traceback is None
    assert sorted(calls) == ["alpha", "beta"]  # no retries
    assert not jobs[0].output.exists() and not jobs[1].output.exists()


def test_an_interrupted_geotiff_is_redone(tmp_path, scenes, weights):
    out = tmp_path / "out"
    out.mkdir()
    (out / "alpha.tif.partial").write_bytes(b"left by a killed run")
    jobs = plan_jobs([Scene("alpha", str(scenes / "alpha.tif"))], out, "tif")
    with open_cluster(IN_PROCESS) as cluster:
        report = run_batch(
            jobs, cluster, PredictorSettings(str(weights), threads=1), options=OPTIONS,
            show_progress=False,
        )  # fmt: skip
    assert report.records[0].status == "done", report.records[0].error
    assert is_complete_output(out / "alpha.tif") and not (out / "alpha.tif.partial").exists()


def test_a_report_that_cannot_be_written_is_an_output_error(tmp_path, scenes, weights):
    out = tmp_path / "out"
    (out / REPORT_FILENAME).mkdir(parents=True)  # something in the way
    with pytest.raises(OutputError) as caught:
        batch_reconstruct(
            [str(scenes / "alpha.tif")],
            out,
            weights=weights,
            options=OPTIONS,
            cluster=IN_PROCESS,
            show_progress=False,
        )
    message = str(caught.value)
    assert "\n" not in message and f"cannot write {out / REPORT_FILENAME}" in message
    assert "(the scenes themselves: 1 done, 0 skipped, 0 failed" in message
    assert is_complete_output(out / "alpha.zarr")


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_the_report_file_has_the_usual_permissions(tmp_path, umask, mode):
    report = BatchReport([SceneRecord("a", "a.tif", "a.zarr", "done")], 1.0, 1, "x", "w", "t")
    old = os.umask(umask)
    try:
        path = report.write_json(tmp_path)
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == mode
    assert json.loads(path.read_text())["summary"]["done"] == 1
    assert [p.name for p in tmp_path.iterdir()] == [REPORT_FILENAME]  # no temporary left


def test_progress_off_a_terminal_prints_lines_and_no_bars(capsys):
    record = SceneRecord("alpha", "a.tif", "a.zarr", "done", seconds=2.0, megapixels=1.0)
    with BatchProgress(2, complete=1) as progress:  # pytest's stderr is not a terminal
        progress.on_event((0.0, {"scene": "alpha", "done": 3, "total": 10}))
        progress.finished(record)
    err = capsys.readouterr().err
    assert err.splitlines() == [
        "skipping 1 scene(s) whose outputs are complete",
        "done     alpha  1.00 MP in 2.0 s (0.500 MP/s, worker None)",
    ]
    with BatchProgress(2, bars=True) as progress:
        progress.on_event((0.0, {"scene": "alpha", "done": 3, "total": 10}))
    assert "scenes:" in capsys.readouterr().err


@pytest.mark.parametrize("suffix", [".tif", ".zarr"])
def test_changed_settings_name_what_differs_from_a_complete_output(tmp_path, weights, suffix):
    from dataclasses import replace

    from geohsr.batch.runner import changed_settings, read_cube_attrs, value_settings

    src = write_raster(tmp_path / "in.tif", gradient_rgb(40, 48))
    out = reconstruct_scene(
        src, tmp_path / f"out{suffix}", weights=weights, options=OPTIONS, progress=False
    ).output
    attrs = read_cube_attrs(out)
    settings = PredictorSettings.from_options(str(weights), OPTIONS)
    assert changed_settings(attrs, value_settings(settings, OPTIONS)) == []
    other = replace(OPTIONS, overlap=8, dtype="uint16")
    assert changed_settings(attrs, value_settings(settings, other)) == ["overlap", "encoding"]
    camera = replace(OPTIONS, camera="cie1964")  # made without a camera, now with one
    told = PredictorSettings.from_options(str(weights), camera)
    assert changed_settings(attrs, value_settings(told, camera)) == ["camera_response"]
    model = create_model("scene_test_linear")
    with torch.no_grad():
        next(model.parameters()).add_(0.5)  # as if retrained
    retrained = save_model(model, tmp_path / "new.safetensors")
    moved = PredictorSettings.from_options(str(retrained), OPTIONS)
    assert changed_settings(attrs, value_settings(moved, OPTIONS)) == ["weights_sha256"]
    (tmp_path / "broken.tif").write_bytes(b"not a cube")
    assert read_cube_attrs(tmp_path / "broken.tif") is None
    assert changed_settings(None, value_settings(settings, OPTIONS)) == list(
        value_settings(settings, OPTIONS)
    )
