"""A stop (Ctrl+C, SIGTERM) that comes as a finished cube is published waits until it is,
sidecars included (:mod:`geohsr._stops`): no complete cube reported as unpublished, no
cube without its STAC item and QGIS style. Each case runs in a fresh interpreter: a
signal sent to the whole test process also reaches native threads earlier tests left."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
from scene_fixtures import gradient_rgb, save_model, write_raster

from geohsr.cli.main import after_a_stop, published_before_stop
from geohsr.models import create_model


def run_python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=300
    )


def run_cli_script(script: str, args: list[str]) -> subprocess.CompletedProcess:
    """``geohsr reconstruct ARGS --device cpu`` through ``script`` in a fresh interpreter."""
    command = [sys.executable, "-c", script, "reconstruct", *args, "--device", "cpu"]
    return subprocess.run(command, capture_output=True, text=True, timeout=300)


HELD = """
import os, signal
from pathlib import Path
from geohsr._stops import PUBLISHED_ATTR, hold_stops, publishing

try:
    with publishing("out.zarr"):
        hold_stops()
        os.kill(os.getpid(), signal.SIGINT)
        for _ in range(1000):  # the handler would have run by now
            sum(range(100))
        print("held")
except KeyboardInterrupt as err:
    assert getattr(err, PUBLISHED_ATTR) == Path("out.zarr")
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    print("delivered")
"""


def test_a_stop_while_publishing_waits_for_the_end_of_the_run():
    result = run_python(HELD)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["held", "delivered"]


BEFORE_THE_HOLD = """
import os, signal
from geohsr._stops import PUBLISHED_ATTR, publishing

try:
    with publishing("out.zarr"):
        os.kill(os.getpid(), signal.SIGINT)
        for _ in range(1000):
            sum(range(100))
        print("not stopped")
except KeyboardInterrupt as err:
    assert not hasattr(err, PUBLISHED_ATTR)
    print("stopped at once")
"""


def test_a_stop_before_publishing_acts_at_once():
    result = run_python(BEFORE_THE_HOLD)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["stopped", "at", "once"]


ERROR_WINS = """
import os, signal
from geohsr._stops import hold_stops, publishing

try:
    with publishing("out.zarr"):
        hold_stops()
        os.kill(os.getpid(), signal.SIGINT)
        raise OSError("disk full")
except OSError as err:
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    print("error:", err)
"""


def test_an_error_while_publishing_wins_over_the_held_stop():
    result = run_python(ERROR_WINS)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "error: disk full"


DEFAULT_SIGTERM = """
import os, signal
from geohsr._stops import hold_stops, publishing

with publishing("out.zarr"):
    hold_stops()
    os.kill(os.getpid(), signal.SIGTERM)
    print("published", flush=True)
print("never")
"""


def test_a_held_sigterm_with_the_default_handler_ends_the_process_afterwards():
    result = run_python(DEFAULT_SIGTERM)
    assert result.returncode == -15 and result.stdout.split() == ["published"]


#: reconstruct through the CLI; SIGTERM arrives as the output is renamed into place
CLI_STOP = """
import os, signal, sys
import geohsr.io.output as output
import geohsr.io.cog_writer as cog_writer
import geohsr.io.zarr_writer as zarr_writer
from geohsr.cli.main import cli

real_publish = output.publish

def publish_under_sigterm(partial, path):
    os.kill(os.getpid(), signal.SIGTERM)
    for _ in range(1000):
        sum(range(100))
    real_publish(partial, path)

zarr_writer.publish = cog_writer.publish = publish_under_sigterm
cli(sys.argv[1:])
"""


@pytest.mark.parametrize("suffix", [".zarr", ".tif"])
def test_sigterm_as_the_cube_is_published_ends_complete_with_its_sidecars(tmp_path, suffix):
    # a registered model: the subprocess does not see the test-only ones
    weights = save_model(create_model("linear"), tmp_path / "t.safetensors")
    rgb = write_raster(tmp_path / "in.tif", gradient_rgb(70, 60))
    out = tmp_path / f"cube{suffix}"
    args = [str(rgb), str(out), "--weights", str(weights), "--tile", "32", "--overlap", "8"]
    result = run_cli_script(CLI_STOP, args)
    assert result.returncode == 0, result.stderr
    assert f"note: {out} is complete; the stop (SIGTERM) came as it was published" in (
        result.stderr
    )
    assert out.exists() and not (tmp_path / f"cube{suffix}.partial").exists()
    assert (tmp_path / "cube.json").exists() and (tmp_path / "cube.qml").exists()


def test_the_advice_names_the_output_of_the_stopped_run(tmp_path):
    out = tmp_path / "a.zarr"
    (tmp_path / "a.zarr.partial").mkdir()
    advice = after_a_stop("reconstruct", str(out))
    assert f"{out}.partial keeps its finished rows" in advice and "--resume" in advice
    assert "DST" not in advice
    (tmp_path / "a.tif.partial").touch()
    assert "--overwrite" in after_a_stop("reconstruct", str(tmp_path / "a.tif"))
    assert "DST.partial" in after_a_stop("reconstruct")  # the output is not known


def test_published_before_stop_reads_the_attribute():
    err = KeyboardInterrupt()
    assert published_before_stop(err) is None
    err.published_output = "a.zarr"
    assert published_before_stop(err) == "a.zarr"


#: a stop right after the library's hold would have ended (before the command's summary)
STOP_AFTER_THE_LIBRARY = """
import os, signal, sys
import geohsr.inference.scene as scene
from geohsr.cli.main import cli

real = scene.reconstruct_scene

def then_sigterm(*args, **kwargs):
    result = real(*args, **kwargs)
    os.kill(os.getpid(), signal.SIGTERM)
    for _ in range(1000):
        sum(range(100))
    return result

scene.reconstruct_scene = then_sigterm
cli(sys.argv[1:])
"""


def test_a_stop_after_publishing_before_the_summary_still_ends_complete(tmp_path):
    weights = save_model(create_model("linear"), tmp_path / "t.safetensors")
    rgb = write_raster(tmp_path / "in.tif", gradient_rgb(40, 30))
    out = tmp_path / "cube.zarr"
    args = [str(rgb), str(out), "--weights", str(weights), "--tile", "32", "--overlap", "8"]
    result = run_cli_script(STOP_AFTER_THE_LIBRARY, args)
    assert result.returncode == 0, result.stderr
    assert "is complete; the stop (SIGTERM) came as it was published" in result.stderr
    assert "wrote" in result.stdout and out.exists()


#: a stop during the interpreter's teardown, after the command ended: in an exit function
#: that runs while Python still handles signals (registered during the command), or in
#: one that runs after geohsr's last one (registered before it), where it is ignored
STOP_IN_TEARDOWN = """
import atexit, os, signal, sys, time
from geohsr.cli import models_cmd
from geohsr.cli.main import main

def stop_then_wait():
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep({wait})
    print("teardown went on", flush=True)

{register_before}
listed = models_cmd.models.callback
def models_registering(*args, **kwargs):
    {register_during}
    return listed(*args, **kwargs)
models_cmd.models.callback = models_registering
sys.argv = ["geohsr", "models"]
main()
"""


@pytest.mark.parametrize("phase", ["python", "native"])
def test_a_stop_during_teardown_keeps_the_commands_exit_code(phase):
    during = phase == "python"
    script = STOP_IN_TEARDOWN.format(
        wait=30 if during else 1,
        register_before="" if during else "atexit.register(stop_then_wait)",
        register_during="atexit.register(stop_then_wait)" if during else "pass",
    )
    result = run_python(script)
    assert result.returncode == 0, result.stderr
    assert "mxr_unet18" in result.stdout and "Traceback" not in result.stderr
    # ended at once by the stop, or the stop ignored and the teardown finished
    assert ("teardown went on" in result.stdout) == (not during)


def test_stop_advice_when_nothing_was_written_or_the_run_replaced_an_output(tmp_path):
    out = tmp_path / "a.zarr"
    nothing = after_a_stop("reconstruct", str(out))
    assert "nothing was written yet: rerun the same command" in nothing
    (tmp_path / "a.zarr.partial").mkdir()
    advice = after_a_stop("reconstruct", str(out), overwrite=True)
    assert "with --resume in place of --overwrite to continue" in advice


def test_finetune_stop_advice_depends_on_a_saved_checkpoint(tmp_path):
    assert "no checkpoint was saved yet" in after_a_stop("finetune", str(tmp_path))
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "last.pt").touch()
    assert "--resume" in after_a_stop("finetune", str(tmp_path))


#: Ctrl+C twice: the second one comes while the first is being reported
CTRL_C_TWICE = """
import os, signal, sys
import geohsr.cli.main as main_module
from geohsr.cli import reconstruct_cmd

def interrupted(*args, **kwargs):
    raise KeyboardInterrupt

def advice_under_a_second_stop(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGINT)
    for _ in range(1000):
        sum(range(100))
    return "never shown"

reconstruct_cmd.reconstruct_on = interrupted
main_module.after_a_stop = advice_under_a_second_stop
sys.argv = ["geohsr", "reconstruct", "in.tif", "out.zarr"]
main_module.main()
"""


def test_a_second_ctrl_c_ends_the_console_command_at_once_without_tracebacks(tmp_path):
    (tmp_path / "in.tif").write_bytes(b"")
    result = subprocess.run(
        [sys.executable, "-c", CTRL_C_TWICE], capture_output=True, text=True, cwd=tmp_path
    )
    assert result.returncode == 130 and "Traceback" not in result.stderr, result.stderr
