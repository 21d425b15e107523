"""Weights files: round trip, float16, and clear errors for wrong or damaged files."""

import json

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from geohsr.exceptions import GeoHSRError, WeightsError
from geohsr.models import create_model
from geohsr.models.weights import load_weights, read_metadata, save_weights


@pytest.fixture()
def tiny_model():
    torch.manual_seed(0)
    model = create_model("mxr_unet18", width=0.125)
    with torch.no_grad():  # make buffers and gamma non-default so the round trip is tested
        model.mean.fill_(0.4)
        for name, param in model.named_parameters():
            if name.endswith("gamma"):
                param.fill_(0.3)
    return model.eval()


@pytest.fixture()
def weights_file(tmp_path, tiny_model):
    return save_weights(tiny_model, tmp_path / "tiny.safetensors", {"training_data": "unit test"})


def test_round_trip_gives_identical_outputs(tiny_model, weights_file):
    loaded, meta = load_weights(weights_file)
    x = torch.rand(1, 3, 40, 50)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), tiny_model(x), rtol=0, atol=0)
    assert not loaded.training
    assert meta["model"] == "mxr_unet18" and meta["config"] == {"width": 0.125}
    assert meta["training_data"] == "unit test"
    assert meta["wavelengths_nm"][0] == 400 and len(meta["wavelengths_nm"]) == 31


def test_half_precision_file_is_smaller_and_close(tmp_path, tiny_model, weights_file):
    half = save_weights(tiny_model, tmp_path / "half.safetensors", half=True)
    assert half.stat().st_size < 0.6 * weights_file.stat().st_size
    loaded, meta = load_weights(half)
    assert meta["dtype"] == "float16"
    assert all(p.dtype == torch.float32 for p in loaded.parameters())
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        ref = tiny_model(x)
        torch.testing.assert_close(loaded(x), ref, rtol=0, atol=2e-2 * ref.abs().max().item())


def test_expect_model_mismatch_is_refused(weights_file):
    with pytest.raises(WeightsError, match="mxr_unet34"):
        load_weights(weights_file, expect_model="mxr_unet34")


def test_file_for_another_model_is_refused(tmp_path):
    impostor = create_model("rpr2")
    impostor.geohsr_name = "mxr_unet18"  # metadata claims a U-Net, tensors are RPR
    path = save_weights(impostor, tmp_path / "impostor.safetensors")
    with pytest.raises(WeightsError, match="does not fit"):
        load_weights(path)


def test_truncated_file_is_a_weights_error(tmp_path, weights_file):
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(weights_file.read_bytes()[: weights_file.stat().st_size // 2])
    with pytest.raises(WeightsError):
        load_weights(truncated)


@pytest.mark.parametrize("content", [b"", b"not a safetensors file at all", b"\xff" * 64])
def test_garbage_file_is_a_weights_error(tmp_path, content):
    path = tmp_path / "garbage.safetensors"
    path.write_bytes(content)
    with pytest.raises(WeightsError):
        read_metadata(path)


def test_plain_safetensors_without_metadata_is_refused(tmp_path):
    path = tmp_path / "plain.safetensors"
    save_file({"w": torch.zeros(2)}, str(path))
    with pytest.raises(WeightsError, match="no geohsr metadata"):
        load_weights(path)


def test_corrupt_metadata_json_is_refused(tmp_path):
    path = tmp_path / "badjson.safetensors"
    save_file({"w": torch.zeros(2)}, str(path), metadata={"geohsr": "{not json"})
    with pytest.raises(WeightsError, match="corrupt"):
        read_metadata(path)


def test_unknown_model_in_metadata_is_a_geohsr_error(tmp_path):
    path = tmp_path / "unknown.safetensors"
    meta = {"model": "no_such_model", "config": {}}
    save_file({"w": torch.zeros(2)}, str(path), metadata={"geohsr": json.dumps(meta)})
    with pytest.raises(GeoHSRError, match="unknown model"):
        load_weights(path)


def test_missing_file_is_a_weights_error(tmp_path):
    with pytest.raises(WeightsError, match="not found"):
        load_weights(tmp_path / "absent.safetensors")


def test_convert_to_fp16_keeps_metadata_and_outputs(tmp_path):
    from click.testing import CliRunner

    from geohsr.cli.main import cli
    from geohsr.models.weights import read_metadata

    model = create_model("mxr_unet18_rpr", width=0.125, n_reference=16)
    with torch.no_grad():
        model.reference_spectra.uniform_(0.1, 0.9)
    model.fit_generic(np.stack([np.eye(3, 31, k=10) + 0.01] * 2))
    src = save_weights(model, tmp_path / "a.safetensors", {"training_data": ["cave:/x/y/cave"]})
    result = CliRunner().invoke(cli, ["convert", str(src), str(tmp_path / "b.safetensors")])
    assert result.exit_code == 0, result.output
    meta = read_metadata(tmp_path / "b.safetensors")
    assert meta["dtype"] == "float16" and meta["training_data"] == ["cave:cave"]
    assert meta["converted_from"]["weights"] == "a.safetensors"
    half, _ = load_weights(tmp_path / "b.safetensors")
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(half.eval()(x), model.eval()(x), rtol=5e-3, atol=5e-3)


def test_saved_weights_get_the_usual_file_permissions(tmp_path, tiny_model):
    import os

    mask = os.umask(0o022)
    try:
        path = save_weights(tiny_model, tmp_path / "w.safetensors")
    finally:
        os.umask(mask)
    assert path.stat().st_mode & 0o777 == 0o644  # safetensors alone creates 0600
