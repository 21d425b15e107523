"""The bright-residual gain of residual models: the learnt residual of pixels at and above
the level input's saturation scaled by a factor chosen on training scenes, ramping from 1
two stops darker; recorded in the weights' config, applied by the INT8-adapted copy, reset
for training."""

import numpy as np
import pytest
import torch
from residual_fixtures import tiny_residual_model

from geohsr.inference.backends.int8 import (
    ADAPTED_FROM_KEY,
    adapted_weights_path,
    load_adapted_network,
)
from geohsr.models.residual import LEVEL_UNITS
from geohsr.models.weights import file_sha256, load_weights, save_metadata_edit, save_weights
from geohsr.training.config import TrainConfig
from geohsr.training.trainer import build_model

SATURATION = 32 / 255


def gated(gain: float, seed: int = 0):
    model = tiny_residual_model(seed=seed, level_input=SATURATION)
    with torch.no_grad():  # let the level channel matter, as in trained weights
        model.net.encoder.stem[0][0].weight[:, 3].normal_()
    model.set_bright_residual_gain(gain)
    return model


def parts(model, rgb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(output, residual term) of ``model`` before the projection."""
    with torch.no_grad():
        return model.forward_unprojected(rgb), model.forward_residual_term(rgb)


def test_gate_is_the_gain_when_bright_one_when_dark_and_continuous_between():
    model = gated(0.3)
    levels = torch.tensor([0.0, 2.0, 8.0, 12.0, 16.0, 31.9, 32.0, 80.0, 255.0])
    gate = model.residual_gate((levels / LEVEL_UNITS).view(1, 1, 1, -1)).flatten().numpy()
    np.testing.assert_allclose(gate[:3], 1.0, atol=1e-6)  # at and below 8 levels
    np.testing.assert_allclose(gate[6:], 0.3, atol=1e-6)  # at and above 32 levels
    assert np.all(np.diff(gate) <= 1e-7) and 0.3 < gate[5] < gate[4] < gate[3] < 1.0
    ramp = (np.log1p(16) - np.log1p(8)) / (np.log1p(32) - np.log1p(8))  # linear in log level
    assert gate[4] == pytest.approx(1 - 0.7 * ramp, abs=1e-6)


def test_gain_scales_only_the_residual_of_bright_pixels():
    rgb = torch.rand(1, 3, 32, 32) * 0.8 + 0.2  # every pixel above 32 levels
    rgb[..., :8, :] *= 0.02  # a band of pixels under 8 levels
    full_out, full_res = parts(gated(1.0), rgb)
    out, res = parts(gated(0.25), rgb)
    torch.testing.assert_close(res[..., 8:, :], 0.25 * full_res[..., 8:, :], rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(res[..., :8, :], full_res[..., :8, :])
    torch.testing.assert_close(out - res, full_out - full_res)  # the classical base
    assert (full_res[..., 8:, :].abs() > 1e-4).any()  # a residual to shrink


def test_gain_keeps_exposure_equivariance_of_bright_pixels():
    model = gated(0.5)
    rgb = torch.rand(1, 3, 40, 48) * 0.25 + 0.7
    with torch.no_grad():
        full = model(rgb)
        for k in (0.5, 0.2):  # every pixel stays at or above the saturation
            scaled = model(rgb * k) / k
            assert ((scaled - full).abs().sum() / full.abs().sum()) <= 0.01


def test_gain_is_checked():
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        gated(1.5)
    with pytest.raises(ValueError, match="level input"):
        tiny_residual_model().set_bright_residual_gain(0.5)
    tiny_residual_model().set_bright_residual_gain(1.0)  # off: always allowed


def test_gain_rides_in_the_config_and_an_edit_keeps_the_int8_copy(tmp_path, capsys):
    weights = save_weights(gated(1.0, seed=2), tmp_path / "w.safetensors")
    copy = gated(1.0, seed=2)
    with torch.no_grad():
        for parameter in copy.net.parameters():
            parameter.mul_(1.01)
    save_weights(
        copy, adapted_weights_path(weights), {ADAPTED_FROM_KEY: {"sha256": file_sha256(weights)}}
    )
    model, _ = load_weights(weights)
    model.set_bright_residual_gain(0.5)
    save_metadata_edit(model, weights, weights)  # same tensors: the copy stays valid
    loaded, meta = load_weights(weights)
    assert meta["config"]["bright_residual_gain"] == 0.5 and loaded.bright_residual_gain == 0.5
    network, _ = load_adapted_network(loaded)
    assert network.bright_residual_gain == 0.5  # the copy applies the weights' gain
    assert "not adapted" not in capsys.readouterr().err


def test_training_starts_without_the_gain(tmp_path, capsys):
    model = gated(0.5)
    path = save_weights(model, tmp_path / "gated.safetensors")
    trained, _ = build_model(
        TrainConfig(
            data=["cave:x"], out_dir=str(tmp_path / "run"), model="mxr_unet18_rpr", init=str(path)
        )
    )
    assert trained.bright_residual_gain == 1.0
    assert trained.geohsr_config["bright_residual_gain"] == 1.0
    assert "without the --init weights' bright-residual gain (0.5)" in capsys.readouterr().err
