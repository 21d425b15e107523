"""`geohsr reconstruct` and `geohsr preview` through click's CliRunner: success, and every
bad input ends in one line on stderr with exit code 2."""

import numpy as np
import pytest
import xarray as xr
from click.testing import CliRunner
from scene_fixtures import gradient_rgb, save_model, write_raster

from geohsr.cli.main import cli
from geohsr.io.lock import output_lock
from geohsr.models import create_model

FAST = ["--tile", "64", "--overlap", "16", "--batch-size", "2", "--device", "cpu", "--quiet"]


@pytest.fixture
def weights(tmp_path):
    return str(save_model(create_model("scene_test_linear"), tmp_path / "t.safetensors"))


@pytest.fixture
def rgb(tmp_path):
    return str(write_raster(tmp_path / "in.tif", gradient_rgb(90, 80)))


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def assert_one_line_error(result, pattern):
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert __import__("re").search(pattern, lines[0]), lines[0]


def test_reconstruct_writes_a_cube_and_reports(tmp_path, rgb, weights):
    out = tmp_path / "cube.zarr"
    result = run("reconstruct", rgb, out, "--weights", weights, *FAST[:-1])
    assert result.exit_code == 0, result.output
    assert "wrote" in result.stdout and "MP/s" in result.stdout
    assert xr.open_zarr(out)["reflectance"].shape == (31, 90, 80)


def test_options_reach_the_pipeline(tmp_path, weights):
    data = np.stack([gradient_rgb(40, 40)[0]] * 4).astype(np.uint16) * 200
    src = write_raster(tmp_path / "ms.tif", data)
    out = tmp_path / "cube.tif"
    result = run(
        "reconstruct",
        src,
        out,
        "--weights",
        weights,
        *FAST,
        "--bands",
        "3,2,1",
        "--stretch",
        "p2,p98",
        "--dtype",
        "uint16",
    )
    assert result.exit_code == 0, result.output
    import rasterio

    with rasterio.open(out) as cog:
        tags = cog.tags()
        assert cog.dtypes[0] == "uint16" and tags["INPUT_BANDS"] == "3,2,1 (--bands)"
        assert tags["INPUT_SCALING"].startswith("stretch p2-p98")


def test_no_crs_input_is_noted(tmp_path, weights):
    src = write_raster(tmp_path / "p.png", gradient_rgb(30, 30), crs=None, driver="PNG")
    result = run("reconstruct", src, tmp_path / "c.zarr", "--weights", weights, *FAST[:-1])
    assert result.exit_code == 0 and "no CRS" in result.stdout


def test_existing_output_needs_overwrite(tmp_path, rgb, weights):
    out = tmp_path / "cube.zarr"
    assert run("reconstruct", rgb, out, "--weights", weights, *FAST).exit_code == 0
    assert_one_line_error(
        run("reconstruct", rgb, out, "--weights", weights, *FAST),
        "already exists; pass --overwrite",
    )
    result = run("reconstruct", rgb, out, "--weights", weights, *FAST, "--overwrite")
    assert result.exit_code == 0


def test_wrong_band_count(tmp_path, weights):
    src = write_raster(tmp_path / "two.tif", np.zeros((2, 20, 20), np.uint8))
    assert_one_line_error(
        run("reconstruct", src, tmp_path / "o.zarr", "--weights", weights, *FAST),
        "2 band.*--bands R,G,B",
    )


def test_16_bit_without_scale(tmp_path, weights):
    src = write_raster(tmp_path / "u16.tif", np.ones((3, 20, 20), np.uint16))
    assert_one_line_error(
        run("reconstruct", src, tmp_path / "o.zarr", "--weights", weights, *FAST),
        "no default scale for uint16.*--scale",
    )


def test_missing_and_corrupt_input(tmp_path, weights):
    assert_one_line_error(
        run("reconstruct", tmp_path / "nope.tif", tmp_path / "o.zarr", "--weights", weights, *FAST),
        "not found",
    )
    bad = tmp_path / "bad.tif"
    bad.write_bytes(b"\x00garbage" * 50)
    assert_one_line_error(
        run("reconstruct", bad, tmp_path / "o.zarr", "--weights", weights, *FAST), "cannot read"
    )


def test_missing_weights_and_bad_extension(tmp_path, rgb):
    assert_one_line_error(
        run(
            "reconstruct",
            rgb,
            tmp_path / "o.zarr",
            "--weights",
            tmp_path / "none.safetensors",
            *FAST,
        ),
        "not found",
    )
    assert_one_line_error(run("reconstruct", rgb, tmp_path / "o.png", *FAST), r"\.zarr")


def test_bad_option_values(tmp_path, rgb, weights):
    assert_one_line_error(
        run(
            "reconstruct",
            rgb,
            tmp_path / "o.zarr",
            "--weights",
            weights,
            "--tile",
            "64",
            "--overlap",
            "40",
        ),
        "overlap",
    )
    assert_one_line_error(
        run("reconstruct", rgb, tmp_path / "o.tif", "--weights", weights, *FAST, "--resume"),
        "--resume works for .zarr",
    )
    result = run("reconstruct", rgb, tmp_path / "o.zarr", "--bands", "1,2")
    assert result.exit_code == 2 and "3 comma-separated" in result.output


def test_preview_draws_input_cube_and_spectra(tmp_path, rgb, weights):
    out = tmp_path / "cube.zarr"
    assert run("reconstruct", rgb, out, "--weights", weights, *FAST).exit_code == 0
    png = tmp_path / "p.png"
    result = run("preview", out, png, "--rgb", rgb, "--pixels", "5,6", "--pixels", "70,80")
    assert result.exit_code == 0, result.output
    assert "5,6, 70,80" in result.stdout
    from PIL import Image

    with Image.open(png) as image:
        assert image.size[0] > 2 * image.size[1]  # three panels side by side
        assert np.asarray(image).std() > 10  # not blank
    assert_one_line_error(run("preview", out, png, "--pixels", "500,5"), "outside")
    assert_one_line_error(run("preview", tmp_path / "no.zarr", png), "not found")


def test_preview_of_a_geotiff_cube_picks_pixels(tmp_path, rgb, weights):
    out = tmp_path / "cube.tif"
    assert run("reconstruct", rgb, out, "--weights", weights, *FAST).exit_code == 0
    result = run("preview", out, tmp_path / "p.png")
    assert result.exit_code == 0, result.output
    assert result.stdout.count(",") >= 4  # several automatically picked pixels


def test_missing_output_folders_are_created(tmp_path, rgb, weights):
    out = tmp_path / "new" / "nested" / "cube.zarr"
    result = run("reconstruct", rgb, out, "--weights", weights, *FAST)
    assert result.exit_code == 0, result.output
    assert xr.open_zarr(out)["reflectance"].shape == (31, 90, 80)


def test_unwritable_output_folder_is_one_line_error(tmp_path, rgb, weights):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    result = run("reconstruct", rgb, blocker / "cube.zarr", "--weights", weights, *FAST)
    assert_one_line_error(result, "cannot create the output folder")


@pytest.mark.parametrize(
    "args, message",
    [
        (["reconstruct", "a.tif", "b.zarr", "--tile", "abc"], "Invalid value for '--tile'"),
        (["reconstruct", "a.tif", "b.zarr", "--bogus"], "No such option"),
        (["reconstruct"], "Missing argument 'SRC'"),
        (["nosuch"], "No such command"),
    ],
)
def test_usage_mistakes_are_one_line_errors(args, message):
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and message in lines[0], lines
    assert "--help" in lines[0]


@pytest.mark.parametrize("suffix", ["zarr", "tif"])
def test_info_summarises_a_cube_and_names_an_unfinished_one(tmp_path, rgb, weights, suffix):
    out = tmp_path / f"cube.{suffix}"
    assert run("reconstruct", rgb, out, "--weights", weights, *FAST).exit_code == 0
    result = run("info", out)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert "size: 31 bands x 90 x 80 pixels, float32" in lines
    assert "wavelengths: 400..700 nm step 10" in lines and "complete: yes" in lines
    assert "crs: EPSG:32633" in lines and "pixel size: 10 x 10" in lines
    assert "model: scene_test_linear" in lines and "weights: t.safetensors" in lines
    assert any(line.startswith("inference: torch fp32") for line in lines)
    keys = [line.split(":")[0] for line in lines]  # provenance as reconstruct writes it
    assert (
        keys.index("software")
        < keys.index("model")
        < keys.index("weights")
        < keys.index("inference")
        < keys.index("tile")
        < keys.index("encoding")
    )
    as_json = __import__("json").loads(run("info", "--json", out).stdout)
    assert as_json["model"] == "scene_test_linear" and as_json["complete"] is True
    assert (as_json["bands"], as_json["height"], as_json["width"]) == (31, 90, 80)
    assert as_json["crs"] == "EPSG:32633" and as_json["transform"][1] == 10.0
    assert as_json["tile"] == 64 and isinstance(as_json["model_config"], dict)
    # an interrupted run: only the .partial exists
    partial = tmp_path / f"cube.{suffix}.partial"
    out.rename(partial)
    fix = r"--resume" if suffix == "zarr" else r"cannot resume: rerun the command with --overwrite"
    assert_one_line_error(run("info", out), rf"not finished.*{fix}")
    assert_one_line_error(run("info", partial), r"scratch copy of an interrupted.*geohsr info on")
    with output_lock(out):  # a run is writing it: not "interrupted"
        assert_one_line_error(run("info", out), r"not finished: a geohsr run is writing it \(pid")
        assert_one_line_error(run("info", partial), r"scratch copy of a geohsr run writing")
    assert_one_line_error(run("info", partial), r"scratch copy of an interrupted")
    partial.rename(out)
    assert_one_line_error(run("info", partial), r"not found; .* is published: run geohsr info")
    assert_one_line_error(run("info", tmp_path / "none.zarr.partial"), r"none.zarr.partial' not")
    with output_lock(out):  # a run replacing a published cube (--overwrite)
        shown = run("info", out)
        assert shown.exit_code == 0 and "a geohsr run is writing a new" in shown.stdout
    assert_one_line_error(run("info", tmp_path), r"is a folder: geohsr info reads weights")


def test_info_on_a_raster_that_is_not_a_cube_says_so(tmp_path, rgb):
    assert_one_line_error(run("info", rgb), r"3 bands, not a 31-band")


def test_resume_of_a_finished_cube_says_it_is_complete(tmp_path, rgb, weights):
    out = tmp_path / "cube.zarr"
    assert run("reconstruct", rgb, out, "--weights", weights, *FAST).exit_code == 0
    result = run("reconstruct", rgb, out, "--weights", weights, *FAST[:-1], "--resume")
    assert result.exit_code == 0, result.output
    assert "is already complete" in result.stdout and "windows" not in result.stdout
