"""Outputs are owned by one run, verified before they are published, and every file-system
failure is a one-line error (issue 12, items 1, 10 and 11)."""

from __future__ import annotations

import errno
import json
import os
import re
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import rasterio
import xarray as xr
from click.testing import CliRunner
from filelock import FileLock
from rasterio.errors import RasterioIOError
from scene_fixtures import CrashAfter, Interrupted, gradient_rgb, save_model, write_raster

from geohsr.cli.main import cli
from geohsr.exceptions import OutputError
from geohsr.inference.predictor import Predictor
from geohsr.inference.scene import ReconstructOptions, is_complete_output, reconstruct_scene
from geohsr.io import cog_writer, zarr_writer
from geohsr.io.cube import COMPLETE_ATTR
from geohsr.io.lock import lock_path, output_lock, owner_path
from geohsr.io.output import partial_path
from geohsr.models import create_model

TILE = ["--tile", "32", "--overlap", "8", "--batch-size", "2", "--device", "cpu", "--quiet"]
OPTIONS = ReconstructOptions(tile=32, overlap=8, batch_size=2, device="cpu")
TESTS = Path(__file__).parent


@pytest.fixture
def weights(tmp_path) -> str:
    return str(save_model(create_model("scene_test_linear"), tmp_path / "lin.safetensors"))


@pytest.fixture
def rgb(tmp_path) -> Path:
    return write_raster(tmp_path / "in.tif", gradient_rgb(150, 60))


def run(*args) -> object:
    return CliRunner().invoke(cli, [str(a) for a in args])


def one_line_error(result, pattern: str) -> str:
    """The single ``Error: ...`` line of a failed command, checked against ``pattern``."""
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert "Traceback" not in result.output
    assert re.search(pattern, lines[0]), lines[0]
    return lines[0]


def reference(rgb: Path, weights: str, out: Path) -> np.ndarray:
    reconstruct_scene(rgb, out, weights=weights, options=OPTIONS, progress=False)
    return xr.open_zarr(out)["reflectance"].values


def leftovers(out: Path) -> list[str]:
    """Lock, owner and partial files still beside ``out``."""
    names = [lock_path(out), owner_path(out), partial_path(out)]
    return [p.name for p in names if p.exists()]


# -- item 1: one writer per output -------------------------------------------------------

FIRST_RUN = """
import sys, time
from pathlib import Path
sys.path.insert(0, {tests!r})
import scene_fixtures  # registers the test models
from geohsr.inference.predictor import Predictor
from geohsr.inference.scene import ReconstructOptions, reconstruct_scene

started, go = Path({started!r}), Path({go!r})

class Waiting(Predictor):
    calls = 0
    def predict(self, batch, **kwargs):
        Waiting.calls += 1
        if Waiting.calls == 3:  # the .partial exists and holds a row of windows
            started.touch()
            deadline = time.monotonic() + 120
            while not go.exists() and time.monotonic() < deadline:
                time.sleep(0.02)
        return super().predict(batch, **kwargs)

base = Predictor.from_weights({weights!r}, device="cpu", batch_size=2)
predictor = Waiting(base.model, device="cpu", batch_size=2, weights={weights!r})
reconstruct_scene({src!r}, {out!r}, predictor=predictor, progress=False,
                  options=ReconstructOptions(tile=32, overlap=8, batch_size=2, device="cpu"))
"""


def test_a_second_run_on_the_same_output_stops_and_the_first_publishes(tmp_path, rgb, weights):
    """The issue's scenario: `reconstruct a.tif out.zarr` is writing when
    `reconstruct b.tif out.zarr` starts (with any flags)."""
    out = tmp_path / "out.zarr"
    other = write_raster(tmp_path / "b.tif", gradient_rgb(50, 40, seed=3))
    started, go = tmp_path / "started", tmp_path / "go"
    script = textwrap.dedent(FIRST_RUN).format(
        tests=str(TESTS), started=str(started), go=str(go), weights=weights, src=str(rgb),
        out=str(out),
    )  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    first = subprocess.Popen(
        [sys.executable, "-c", script], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 180
        while not started.exists():
            assert first.poll() is None, first.communicate()[1].decode()[-2000:]
            assert time.monotonic() < deadline, "the first run did not start writing"
            time.sleep(0.05)
        owner = json.loads(owner_path(out).read_text())
        assert owner["pid"] == first.pid and owner["host"] == socket.gethostname()
        for flags in ([], ["--overwrite"], ["--resume"]):
            second = run("reconstruct", other, out, "--weights", weights, *TILE, *flags)
            one_line_error(
                second,
                rf"out\.zarr is being written by another geohsr run \(pid {first.pid}@"
                rf"{re.escape(socket.gethostname())} since {re.escape(owner['started'])}",
            )
            assert partial_path(out).is_dir() and not out.exists()  # nothing deleted
    finally:
        go.touch()
        _, stderr = first.communicate(timeout=300)
    assert first.returncode == 0, stderr.decode()[-2000:]

    assert is_complete_output(out) and leftovers(out) == []
    cube = xr.open_zarr(out, decode_coords="all")
    assert cube.rio.crs == "EPSG:32633" and cube.attrs[COMPLETE_ATTR] is True
    expected = reference(rgb, weights, tmp_path / "reference.zarr")
    np.testing.assert_array_equal(cube["reflectance"].values, expected)
    assert run("preview", out, tmp_path / "p.png").exit_code == 0


class Paused(Predictor):
    """Predicts normally, but waits for ``go`` after announcing ``started`` at call 2."""

    def __init__(self, model, started: threading.Event, go: threading.Event) -> None:
        super().__init__(model, device="cpu", batch_size=2)
        self.calls, self.started, self.go = 0, started, go

    def predict(self, batch, **kwargs):
        self.calls += 1
        if self.calls == 2:
            self.started.set()
            self.go.wait(60)
        return super().predict(batch, **kwargs)


def test_a_second_run_on_a_geotiff_being_written_stops(tmp_path, rgb, weights):
    out = tmp_path / "out.tif"
    started, go = threading.Event(), threading.Event()
    predictor = Paused(create_model("scene_test_linear"), started, go)
    errors: list[BaseException] = []

    def first_run() -> None:
        try:
            reconstruct_scene(rgb, out, predictor=predictor, options=OPTIONS, progress=False)
        except BaseException as err:  # noqa: BLE001 - reported below
            errors.append(err)

    thread = threading.Thread(target=first_run)
    thread.start()
    try:
        assert started.wait(60)
        for flags in ([], ["--overwrite"]):
            second = run("reconstruct", rgb, out, "--weights", weights, *TILE, *flags)
            one_line_error(second, r"out\.tif is being written by another geohsr run \(pid ")
        assert partial_path(out).is_file()
    finally:
        go.set()
        thread.join(120)
    assert not errors, errors
    with rasterio.open(out) as cog:
        assert cog.count == 31 and cog.tags()["GEOHSR_COMPLETE"] == "yes"
    assert leftovers(out) == []


def test_a_held_lock_whose_owner_is_gone_is_reported_not_taken(tmp_path, rgb, weights):
    out = tmp_path / "out.zarr"
    gone = subprocess.Popen(["true"])
    gone.wait()
    dead_pid = gone.pid
    holder = FileLock(lock_path(out), timeout=0)  # e.g. a child process that inherited it
    holder.acquire()
    try:
        record = {"pid": dead_pid, "host": socket.gethostname(), "started": "then"}
        owner_path(out).write_text(json.dumps(record))
        result = run("reconstruct", rgb, out, "--weights", weights, *TILE)
        line = one_line_error(result, rf"locked .* by pid {dead_pid}@.* which no longer exists")
        assert f"delete {lock_path(out)}" in line
        assert lock_path(out).exists()  # never stolen
    finally:
        holder.release()


def test_a_lock_left_by_a_killed_run_does_not_block(tmp_path, rgb, weights):
    out = tmp_path / "out.zarr"
    lock_path(out).write_text("")
    owner_path(out).write_text(json.dumps({"pid": 999_999_999, "host": "elsewhere"}))
    result = run("reconstruct", rgb, out, "--weights", weights, *TILE)
    assert result.exit_code == 0, result.output
    assert is_complete_output(out) and leftovers(out) == []


def test_the_lock_is_released_after_a_failure(tmp_path, weights):
    out = tmp_path / "out.zarr"
    bad = tmp_path / "bad.tif"
    bad.write_bytes(b"\x00garbage" * 50)
    one_line_error(run("reconstruct", bad, out, "--weights", weights, *TILE), "cannot read")
    assert leftovers(out) == []
    with output_lock(out):  # free again
        assert json.loads(owner_path(out).read_text())["pid"] == os.getpid()
    assert leftovers(out) == []


def test_the_owner_record_names_the_process(tmp_path):
    out = tmp_path / "x.zarr"
    with output_lock(out):
        record = json.loads(owner_path(out).read_text())
        with pytest.raises(OutputError, match=rf"pid {os.getpid()}@") as caught:
            with output_lock(out):
                pass
    assert set(record) == {"pid", "host", "started", "command"}
    assert "\n" not in str(caught.value)


# -- item 2: never mark complete unless verified ----------------------------------------


def test_missing_rows_are_never_marked_complete(tmp_path, rgb, weights, monkeypatch):
    out = tmp_path / "out.zarr"
    monkeypatch.setattr(zarr_writer.ZarrCubeWriter, "band_done", lambda self, *args: None)
    result = run("reconstruct", rgb, out, "--weights", weights, *TILE)
    one_line_error(
        result, r"incomplete: 0 of \d+ rows of windows were written; rerun with --resume"
    )
    assert not out.exists() and partial_path(out).is_dir()
    attrs = json.loads((partial_path(out) / ".zattrs").read_text())
    assert attrs[COMPLETE_ATTR] is False


def test_a_store_whose_array_lost_its_metadata_is_not_published(
    tmp_path, rgb, weights, monkeypatch
):
    out = tmp_path / "out.zarr"
    finish = zarr_writer.ZarrCubeWriter.finish

    def finish_without_array_attrs(self, *args, **kwargs):
        (self.partial / "reflectance" / ".zattrs").unlink()  # what a concurrent run did
        return finish(self, *args, **kwargs)

    monkeypatch.setattr(zarr_writer.ZarrCubeWriter, "finish", finish_without_array_attrs)
    result = run("reconstruct", rgb, out, "--weights", weights, *TILE)
    one_line_error(result, r"failed its check .* so it was not published")
    assert not out.exists() and not is_complete_output(out)
    attrs = json.loads((partial_path(out) / ".zattrs").read_text())
    assert attrs[COMPLETE_ATTR] is False


def test_a_wrong_cog_is_not_published(tmp_path, rgb, weights, monkeypatch):
    out = tmp_path / "out.tif"

    def bad_copy(src, dst, **options):
        write_raster(Path(dst), np.zeros((3, 10, 10), np.float32))

    monkeypatch.setattr(cog_writer.rasterio.shutil, "copy", bad_copy)
    result = run("reconstruct", rgb, out, "--weights", weights, *TILE)
    line = one_line_error(result, r"failed its check \(3 bands, expected 31; 10 x 10 pixels")
    assert "tags missing" in line
    assert not out.exists() and not Path(f"{out}.partial.cog").exists()
    assert partial_path(out).is_file()  # only the scratch file stays


# -- item 10: unwritable outputs and full disks -------------------------------------------


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
@pytest.mark.parametrize("suffix", [".zarr", ".tif"])
def test_read_only_folder_is_a_one_line_error(tmp_path, rgb, weights, suffix):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        result = run("reconstruct", rgb, folder / f"cube{suffix}", "--weights", weights, *TILE)
        one_line_error(result, rf"cannot write {re.escape(str(folder))}.*Permission denied; "
                       "choose a folder you can write to")  # fmt: skip
        assert list(folder.iterdir()) == []
    finally:
        folder.chmod(0o755)


def test_read_only_file_system_for_zarr(tmp_path, rgb, weights, monkeypatch):
    def read_only(self, *args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system", str(self.partial))

    monkeypatch.setattr(zarr_writer.ZarrCubeWriter, "_create", read_only)
    out = tmp_path / "cube.zarr"
    result = run("reconstruct", rgb, out, "--weights", weights, *TILE)
    one_line_error(
        result,
        rf"cannot write {re.escape(str(out))}: Read-only file system; choose an output on a "
        "writable disk",
    )
    assert not out.exists() and leftovers(out) == []


def test_read_only_file_system_for_geotiff(tmp_path, rgb, weights, monkeypatch):
    real_open = rasterio.open

    def refuse(path, mode="r", *args, **kwargs):
        if mode == "r":
            return real_open(path, mode, *args, **kwargs)
        raise RasterioIOError(
            f"Attempt to create new tiff file '{path}' failed: Read-only file system"
        )

    monkeypatch.setattr(cog_writer.rasterio, "open", refuse)
    out = tmp_path / "cube.tif"
    result = run("reconstruct", rgb, out, "--weights", weights, *TILE)
    one_line_error(result, r"cube\.tif: Read-only file system; choose an output on a writable")
    assert not out.exists()


def test_full_disk_during_a_zarr_write_then_resume(tmp_path, rgb, weights, monkeypatch):
    out = tmp_path / "cube.zarr"
    write = zarr_writer.ZarrCubeWriter.write
    calls = []

    def fill_up(self, row, col, values):
        calls.append(row)
        if len(calls) > 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        return write(self, row, col, values)

    monkeypatch.setattr(zarr_writer.ZarrCubeWriter, "write", fill_up)
    result = run("reconstruct", rgb, out, "--weights", weights, *TILE)
    one_line_error(
        result,
        rf"cannot write {re.escape(str(out))}: No space left on device; free some space or "
        "write to another disk, then rerun with --resume to continue",
    )
    assert not out.exists() and partial_path(out).is_dir() and not is_complete_output(out)
    monkeypatch.setattr(zarr_writer.ZarrCubeWriter, "write", write)
    result = run("reconstruct", rgb, out, "--weights", weights, *TILE, "--resume")
    assert result.exit_code == 0, result.output
    expected = reference(rgb, weights, tmp_path / "reference.zarr")
    np.testing.assert_array_equal(xr.open_zarr(out)["reflectance"].values, expected)


def test_full_disk_during_a_geotiff_write(tmp_path, rgb, weights, monkeypatch):
    def full(self, row, col, values):
        raise RasterioIOError("Write error: No space left on device")

    monkeypatch.setattr(cog_writer.CogCubeWriter, "write", full)
    out = tmp_path / "cube.tif"
    result = run("reconstruct", rgb, out, "--weights", weights, *TILE)
    one_line_error(result, r"No space left on device; free some space or write to another disk$")
    assert not out.exists() and leftovers(out) == []  # the scratch file cannot resume: gone


@pytest.mark.parametrize("suffix", [".tif", ".zarr"])
def test_a_corrupt_input_leaves_nothing_that_blocks_the_next_run(tmp_path, weights, suffix):
    data = np.random.default_rng(0).integers(0, 255, (3, 256, 256), dtype=np.uint8)
    source = write_raster(
        tmp_path / "c.tif", data, tiled=True, blockxsize=64, blockysize=64, compress="deflate"
    )
    raw = bytearray(source.read_bytes())
    raw[len(raw) // 2 : len(raw) // 2 + 4000] = b"\xff" * 4000  # damaged tiles mid-file
    corrupt = tmp_path / "corrupt.tif"
    corrupt.write_bytes(bytes(raw))
    out = tmp_path / f"cube{suffix}"
    result = run("reconstruct", corrupt, out, "--weights", weights, *TILE)
    line = one_line_error(result, "corrupt or truncated")
    assert str(corrupt) in line and "See previous exception" not in line
    assert not out.exists()
    if suffix == ".tif":  # cannot resume: the scratch file is removed, a rerun just works
        assert leftovers(out) == []
        result = run("reconstruct", source, out, "--weights", weights, *TILE)
        assert result.exit_code == 0, result.output
    else:  # a Zarr keeps its finished rows for --resume, and says so
        assert partial_path(out).exists() and f"stay in {partial_path(out)}" in line


# -- item 11: an interrupted run's .partial ------------------------------------------------


def test_an_interrupted_zarr_needs_resume_or_overwrite(tmp_path, rgb, weights):
    out = tmp_path / "cube.zarr"
    with pytest.raises(Interrupted):
        reconstruct_scene(
            rgb, out, predictor=CrashAfter(weights, 2), options=OPTIONS, progress=False
        )
    before = sorted(p.name for p in partial_path(out).rglob("*"))
    result = run("reconstruct", rgb, out, "--weights", weights, *TILE)
    line = one_line_error(result, "interrupted")
    assert line == (
        f"Error: an interrupted run left {out}.partial: pass --resume to continue or "
        "--overwrite to start again"
    )
    assert sorted(p.name for p in partial_path(out).rglob("*")) == before  # untouched
    resumed = reconstruct_scene(rgb, out, weights=weights, options=OPTIONS, resume=True)
    assert resumed.resumed_from_band > 0


def test_an_interrupted_geotiff_needs_overwrite(tmp_path, rgb, weights):
    out = tmp_path / "cube.tif"
    with pytest.raises(Interrupted):
        reconstruct_scene(
            rgb, out, predictor=CrashAfter(weights, 2), options=OPTIONS, progress=False
        )
    result = run("reconstruct", rgb, out, "--weights", weights, *TILE)
    line = one_line_error(result, "interrupted")
    assert line == (
        f"Error: an interrupted run left {out}.partial: pass --overwrite to start again "
        "(.tif output cannot resume)"
    )
    result = run("reconstruct", rgb, out, "--weights", weights, *TILE, "--overwrite")
    assert result.exit_code == 0, result.output
    assert is_complete_output(out) and leftovers(out) == []


def test_a_resume_that_stopped_just_before_publishing_finishes(tmp_path, rgb, weights):
    out = tmp_path / "cube.zarr"
    finish = zarr_writer.ZarrCubeWriter.finish
    with pytest.MonkeyPatch.context() as patch:

        def crash(self, *args, **kwargs):
            raise Interrupted

        patch.setattr(zarr_writer.ZarrCubeWriter, "finish", crash)
        with pytest.raises(Interrupted):
            reconstruct_scene(rgb, out, weights=weights, options=OPTIONS, progress=False)
    assert zarr_writer.ZarrCubeWriter.finish is finish
    result = reconstruct_scene(rgb, out, weights=weights, options=OPTIONS, resume=True)
    assert result.n_windows == 0 and is_complete_output(out)
    expected = reference(rgb, weights, tmp_path / "reference.zarr")
    np.testing.assert_array_equal(xr.open_zarr(out)["reflectance"].values, expected)


# -- --overwrite replaces earlier outputs only ----------------------------------------------


def test_the_input_itself_is_never_an_output(tmp_path, rgb, weights):
    before = rgb.read_bytes()
    for extra in ([], ["--overwrite"]):
        result = run("reconstruct", rgb, rgb, "--weights", weights, *TILE, *extra)
        one_line_error(result, "is the input itself")
    link = tmp_path / "link.tif"
    link.symlink_to(rgb)
    one_line_error(
        run("reconstruct", rgb, link, "--weights", weights, *TILE, "--overwrite"),
        "is the input itself",
    )
    assert rgb.read_bytes() == before


@pytest.mark.parametrize("name", ["photos.zarr", "docs.tif"])
def test_overwrite_does_not_delete_a_folder_it_did_not_write(tmp_path, rgb, weights, name):
    folder = tmp_path / name
    (folder / "sub").mkdir(parents=True)
    (folder / "notes.txt").write_text("precious")
    result = run("reconstruct", rgb, folder, "--weights", weights, *TILE, "--overwrite")
    one_line_error(result, "will not delete it")
    assert (folder / "notes.txt").read_text() == "precious" and (folder / "sub").is_dir()


def test_overwrite_refuses_a_file_named_like_a_zarr_and_replaces_a_cube(tmp_path, rgb, weights):
    out = tmp_path / "cube.zarr"
    out.write_text("not a store")
    one_line_error(
        run("reconstruct", rgb, out, "--weights", weights, *TILE, "--overwrite"),
        "is a file, not a Zarr store",
    )
    out.unlink()
    for _ in range(2):  # the second run replaces the first one's cube
        result = run("reconstruct", rgb, out, "--weights", weights, *TILE, "--overwrite")
        assert result.exit_code == 0, result.output
    assert is_complete_output(out)
