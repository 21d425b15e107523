"""Out-of-range input and output values get notes (a nodata sentinel not declared, a wrong
--scale, spectra above what reflectance can be, colours the named camera cannot record)."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from click.testing import CliRunner
from scene_fixtures import gradient_rgb, save_model, write_raster

from geohsr.cli.main import cli
from geohsr.inference.value_range import RangeWatch, ValueReport, value_notes
from geohsr.models import create_model

FAST = ["--tile", "64", "--overlap", "16", "--batch-size", "2", "--device", "cpu", "--quiet"]


def test_range_watch_ignores_nan_and_counts_pixels_above():
    watch = RangeWatch(high=1.2)
    values = np.full((3, 4, 5), 0.5, np.float32)
    values[:, 0, 0] = np.nan  # a masked pixel
    values[1, 2, 3] = 2.0  # one band of one pixel high
    values[0, 3, 4] = -0.5
    threads = [threading.Thread(target=watch.update, args=(values,)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert (watch.minimum, watch.maximum) == (-0.5, 2.0)
    assert (watch.above, watch.pixels) == (4, 4 * 19)
    watch.update(np.full((3, 2, 2), np.nan, np.float32))  # all masked: nothing changes
    assert (watch.minimum, watch.maximum, watch.pixels) == (-0.5, 2.0, 76)
    read = watch.watching(lambda rows, cols: np.full((3, 2, 2), 7.0, np.float32))
    assert read(slice(0, 2), slice(0, 2)).shape == (3, 2, 2) and watch.maximum == 7.0


def test_value_notes_only_for_values_out_of_range():
    assert value_notes(ValueReport(0.0, 1.0, 1.1, 0, 1000, 0.001), "cie1964") == []
    notes = value_notes(ValueReport(-9999.0, 12.0, 4.7, 20, 1000, 0.37), "cie1964")
    assert len(notes) == 4
    assert "--nodata -9999" in notes[0] and "check --scale" in notes[1]
    assert notes[2].startswith("20 pixels (2.0%) have a band above 1.2 (up to 4.70)")
    assert "--camera cie1964" in notes[3] and "0.370" in notes[3]
    assert value_notes(ValueReport(output_max=1.5, output_above=1, output_pixels=10_000)) == []


@pytest.fixture
def weights(tmp_path):
    return str(save_model(create_model("scene_test_linear"), tmp_path / "t.safetensors"))


def reconstruct(tmp_path, weights, data, name):
    src = write_raster(tmp_path / f"{name}.tif", data)
    out = tmp_path / f"{name}.zarr"
    args = ["reconstruct", src, out, "--weights", weights, *FAST, "--scale", "1"]
    result = CliRunner().invoke(cli, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return [line for line in result.stderr.splitlines() if line.startswith("note: ")]


def test_reconstruct_notes_a_sentinel_and_a_wrong_scale_even_when_quiet(tmp_path, weights):
    data = gradient_rgb(70, 60).astype(np.float32) / 510  # the test model's output stays < 1.2
    assert reconstruct(tmp_path, weights, data, "clean") == []
    sentinel = data.copy()
    sentinel[:, :10, :10] = -9999
    (note,) = reconstruct(tmp_path, weights, sentinel, "sentinel")
    assert "goes down to -9999" in note and "--nodata -9999" in note
    notes = reconstruct(tmp_path, weights, data * 10, "unscaled")
    assert any("reaches" in n and "check --scale" in n for n in notes)
