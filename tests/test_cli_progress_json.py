"""`--progress json` (one machine-readable line per update on stderr) and SIGTERM, which
unwinds a command like Ctrl+C (exit 143, no output published, locks released)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner
from scene_fixtures import gradient_rgb, save_model, write_raster

from geohsr.cli.main import cli
from geohsr.cli.progress_output import print_json_progress, progress_arg
from geohsr.models import create_model

FAST = ["--tile", "32", "--overlap", "8", "--batch-size", "2", "--device", "cpu"]


@pytest.fixture
def weights(tmp_path):
    return str(save_model(create_model("scene_test_linear"), tmp_path / "t.safetensors"))


def test_progress_json_prints_one_line_per_update(tmp_path, weights):
    rgb = write_raster(tmp_path / "in.tif", gradient_rgb(70, 60))
    args = ["reconstruct", str(rgb), str(tmp_path / "c.tif"), "--weights", weights, *FAST]
    result = CliRunner().invoke(cli, [*args, "--progress", "json"])
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    assert records and all(set(r) == {"done", "total"} for r in records)
    totals = {r["total"] for r in records}
    done = [r["done"] for r in records]
    assert len(totals) == 1 and done == sorted(done) and done[-1] == totals.pop()
    assert "wrote" in result.stdout  # the summary still goes to stdout


def test_progress_modes():
    assert progress_arg("json", quiet=True) is print_json_progress
    assert progress_arg("bar", quiet=True) is True
    assert progress_arg("none", quiet=False) is False
    assert progress_arg("auto", quiet=True) is False
    assert progress_arg("auto", quiet=False) is None  # a bar on a terminal only


def test_print_json_progress(capsys):
    print_json_progress(3, 12)
    assert capsys.readouterr().err == '{"done": 3, "total": 12}\n'


SIGTERM_CHECK = """
import os, signal, time
from geohsr.cli.main import Terminated, sigterm_unwinds
before = signal.getsignal(signal.SIGTERM)
try:
    with sigterm_unwinds():
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(10)  # the handler raises at once
except Terminated:
    assert signal.getsignal(signal.SIGTERM) is before
    print("unwound")
"""


def test_sigterm_raises_terminated_inside_and_restores_the_handler():
    # in a fresh interpreter: a signal sent to the whole test process also reaches the
    # native threads earlier tests left there (OpenVINO, dask), which crashed it once
    result = subprocess.run(
        [sys.executable, "-c", SIGTERM_CHECK], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0 and result.stdout.strip() == "unwound", result.stderr


def test_ctrl_c_ends_in_one_line_saying_how_to_go_on(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from geohsr.cli import reconstruct_cmd
    from geohsr.cli.main import cli

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(reconstruct_cmd, "reconstruct_on", interrupted)
    src = tmp_path / "in.tif"
    src.write_bytes(b"")
    result = CliRunner().invoke(cli, ["reconstruct", str(src), str(tmp_path / "o.zarr")])
    assert result.exit_code == 130
    (line,) = result.stderr.strip().splitlines()
    out = tmp_path / "o.zarr"  # stopped before anything was written
    expected = f"Error: stopped by Ctrl+C; {out} is not published; nothing was written yet"
    assert line == expected + ": rerun the same command"
    assert "Aborted" not in result.output
    assert "finetune" not in line and "batch" not in line  # only what applies to reconstruct


def test_the_advice_after_a_stop_fits_the_command():
    from geohsr.cli.main import after_a_stop

    assert "last checkpoint" in after_a_stop("finetune") and "--resume" in after_a_stop("finetune")
    assert "skips the scenes it finished" in after_a_stop("batch")
    assert "--overwrite" in after_a_stop("reconstruct")
    assert (
        after_a_stop("preview")
        == after_a_stop(None)
        == "unfinished outputs are not published; rerun the command"
    )
