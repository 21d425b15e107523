"""The level input of residual models: each pixel's brightness in 8-bit levels, and growing
trained weights without it into a model with it (geohsr.training.grow)."""

import numpy as np
import pytest
import torch
from residual_fixtures import tiny_residual_model

from geohsr.exceptions import TrainingError
from geohsr.models.residual import LEVEL_UNITS
from geohsr.models.weights import load_weights, save_weights
from geohsr.training.grow import load_grown_state
from geohsr.training.trainer import with_level_input

SATURATION = 32 / 255


def run(model, rgb: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model(torch.from_numpy(rgb)[None])[0].numpy()


def test_level_map_counts_8bit_levels_on_a_log_scale_and_saturates():
    model = tiny_residual_model(level_input=SATURATION)
    levels = torch.tensor([0.0, 1.0, 7.0, 32.0, 100.0, 255.0]) / LEVEL_UNITS
    got = model.level_map(levels.view(1, 1, 1, -1)).flatten()
    expected = np.minimum(1.0, np.log1p([0, 1, 7, 32, 100, 255]) / np.log1p(32.0))
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-6)
    assert got[1] < got[2] < got[3] == 1.0


def test_network_sees_chromaticity_and_level():
    model = tiny_residual_model(level_input=SATURATION)
    assert model.net.mean.shape[1] == 4
    x = torch.rand(1, 3, 32, 32) * 0.2
    with torch.no_grad():
        intensity = x.mean(1, keepdim=True)
        features = torch.cat([x / intensity, model.level_map(intensity)], dim=1)
        residual = model.residual_scale * intensity * model.net(features)
        got = model.forward_unprojected(x)
        model.residual_scale.zero_()
        base = model.forward_unprojected(x)
    torch.testing.assert_close(got, base + residual, rtol=1e-4, atol=1e-5)


def test_level_changes_dark_pixels_only():
    model = tiny_residual_model(level_input=SATURATION)
    rgb = np.random.default_rng(0).uniform(0.7, 0.95, (3, 48, 40)).astype(np.float32)
    full = run(model, rgb)
    for k in (0.5, 0.2):  # every pixel stays at or above the saturation: equivariant
        relative = np.abs(run(model, rgb * np.float32(k)) / k - full).sum() / np.abs(full).sum()
        assert relative <= 0.01, (k, relative)
    dark = np.float32(0.02)  # far below it: the network sees another level
    relative = np.abs(run(model, rgb * dark) / dark - full).sum() / np.abs(full).sum()
    assert relative > 0.01


def test_grown_model_computes_exactly_what_the_trained_one_did():
    trained = tiny_residual_model(seed=3)
    grown = with_level_input(trained, SATURATION).eval()
    assert grown.level_input == pytest.approx(SATURATION)
    assert grown.geohsr_config["level_input"] == pytest.approx(SATURATION)
    rgb = np.random.default_rng(1).uniform(0.0, 0.6, (3, 40, 36)).astype(np.float32)
    np.testing.assert_allclose(run(grown, rgb), run(trained, rgb), rtol=1e-5, atol=1e-6)
    # and the new channel is trainable: its weights get gradients
    grown.train()
    grown(torch.from_numpy(rgb)[None]).abs().mean().backward()
    stem = grown.net.encoder.stem[0][0].weight
    assert stem.shape[1] == 4 and stem.grad[:, 3].abs().sum() > 0


def test_grown_weights_round_trip(tmp_path):
    grown = with_level_input(tiny_residual_model(seed=3), SATURATION).eval()
    with torch.no_grad():
        grown.net.encoder.stem[0][0].weight[:, 3] += 0.5  # as if trained
    path = save_weights(grown, tmp_path / "g.safetensors")
    loaded, meta = load_weights(path)
    assert meta["config"]["level_input"] == pytest.approx(SATURATION)
    rgb = np.random.default_rng(2).uniform(0.0, 0.6, (3, 32, 32)).astype(np.float32)
    np.testing.assert_allclose(run(loaded, rgb), run(grown, rgb), rtol=1e-5, atol=1e-6)


def test_growing_refuses_shrinking_and_missing_tensors():
    big = tiny_residual_model(level_input=SATURATION)
    small = tiny_residual_model()
    with pytest.raises(TrainingError, match="cannot grow"):
        load_grown_state(small, big.state_dict())
    state = dict(small.state_dict())
    state.pop("residual_scale")
    with pytest.raises(TrainingError, match="lack"):
        load_grown_state(big, state)
    with pytest.raises(TrainingError, match="need their level input"):
        with_level_input(big, 0.0)
