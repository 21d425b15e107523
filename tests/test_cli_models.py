"""`geohsr models` and `geohsr info`."""

import json

import pytest
from click.testing import CliRunner

from geohsr.cli.main import cli
from geohsr.models import create_model, list_models
from geohsr.models.weights import save_weights


@pytest.fixture()
def weights_file(tmp_path):
    model = create_model("rpr2")
    return save_weights(model, tmp_path / "rpr2_test.safetensors", {"metrics": {"mrae": 0.1}})


def test_models_lists_every_registered_model_with_parameters(tmp_path, monkeypatch, weights_file):
    shipped = tmp_path / "pretrained"
    shipped.mkdir()
    weights_file.rename(shipped / "rpr2_demo.safetensors")
    (shipped / "broken.safetensors").write_bytes(b"garbage")
    monkeypatch.setenv("GEOHSR_PRETRAINED_DIR", str(shipped))
    result = CliRunner().invoke(cli, ["models"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split()[:2] == ["model", "parameters"]
    rows = {line.split()[0]: line.split()[1:] for line in lines[1:]}
    assert sorted(rows) == list_models()
    assert rows["mxr_unet18"][0] == "31,355,146"
    assert rows["rpr2"] == [
        f"{sum(p.numel() for p in create_model('rpr2').parameters())}",
        "rpr2_demo",
    ]
    assert rows["mxr_unet50"][1] == "no"


def test_info_prints_metadata_lines(weights_file):
    result = CliRunner().invoke(cli, ["info", str(weights_file)])
    assert result.exit_code == 0, result.output
    assert "model: rpr2" in result.output.splitlines()
    assert 'metrics: {"mrae": 0.1}' in result.output
    assert "sha256: " in result.output
    assert "wavelengths_nm: 400..700 step 10 (31 values)" in result.output


def test_info_json_is_parseable(weights_file):
    result = CliRunner().invoke(cli, ["info", "--json", str(weights_file)])
    assert result.exit_code == 0, result.output
    meta = json.loads(result.output)
    assert meta["model"] == "rpr2" and meta["wavelengths_nm"][-1] == 700


@pytest.mark.parametrize("content", [b"garbage", None])
def test_info_on_bad_file_is_one_line_error_exit_2(tmp_path, content):
    path = tmp_path / "bad.safetensors"
    if content is not None:
        path.write_bytes(content)
    result = CliRunner().invoke(cli, ["info", str(path)])
    assert result.exit_code == 2
    assert result.output.startswith("Error: ")
    assert len(result.output.strip().splitlines()) == 1
    assert "Traceback" not in result.output
    assert isinstance(result.exception, SystemExit)  # a clean exit, not a crash


def test_cli_module_does_not_import_torch_at_import_time():
    import subprocess
    import sys

    code = "import sys, geohsr.cli.models_cmd; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_info_summary_names_cameras_without_their_tables(tmp_path):
    from geohsr.models import create_model
    from geohsr.models.weights import save_weights
    from geohsr.spectral.cameras import cie1964
    from geohsr.training.camera import CameraSampler

    meta = {
        "camera": CameraSampler([cie1964()]).to_metadata(),
        "train_scenes": ["a_ms", "b_ms"],
        "metrics": {"validation": {"mrae": 0.25}, "validation_images": [{"name": "x"}]},
    }
    path = save_weights(create_model("rpr2"), tmp_path / "w.safetensors", meta)
    output = CliRunner().invoke(cli, ["info", str(path)]).output
    assert "cameras: 1: cie1964" in output and "css_rgb" not in output
    assert "train_scenes: 2: a_ms, b_ms" in output and "validation: mrae 0.25" in output
    assert "css_rgb" in CliRunner().invoke(cli, ["info", "--json", str(path)]).output


def test_models_gives_shipped_weights_their_own_parameter_count(tmp_path, monkeypatch):
    from geohsr.models.catalog import count_parameters

    shipped = tmp_path / "pretrained"
    shipped.mkdir()
    half = create_model("mxr_unet18_rpr", width=0.5)
    save_weights(half, shipped / "half.safetensors", {})
    monkeypatch.setenv("GEOHSR_PRETRAINED_DIR", str(shipped))
    result = CliRunner().invoke(cli, ["models"])
    row = next(line for line in result.output.splitlines() if line.startswith("mxr_unet18_rpr "))
    counted = sum(p.numel() for p in half.parameters())
    assert counted == count_parameters("mxr_unet18_rpr", width=0.5) < 31_355_147 / 3
    assert f"half (width 0.5, {counted:,} parameters)" in row and "31,355,147" in row
