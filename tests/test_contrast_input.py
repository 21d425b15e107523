"""The contrast input of residual models: log(I / local mean I), grown from weights without
it, exposure-equivariant, the same in torch and the exported core."""

import numpy as np
import pytest
import torch
from residual_fixtures import tiny_residual_model

from geohsr.exceptions import TrainingError
from geohsr.inference.backends.capabilities import openvino_installed
from geohsr.inference.predictor import Predictor
from geohsr.models import create_model
from geohsr.models.residual import CONTRAST_CLIP
from geohsr.models.unet import STRIDE, pad_to_multiple
from geohsr.models.weights import load_weights, save_weights
from geohsr.training.config import TrainConfig
from geohsr.training.trainer import build_model, with_contrast_input, with_level_input

SIDE = 7


def run(model, rgb: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model(torch.from_numpy(rgb)[None])[0].numpy()


def with_contrast_used(model):
    """``model`` grown with the contrast input, its new stem weights made non-zero."""
    grown = with_contrast_input(model, SIDE).eval()
    with torch.no_grad():
        grown.net.encoder.stem[0][0].weight[:, -1].normal_(0.0, 0.5)
    return grown


def config(out_dir, **values) -> TrainConfig:
    return TrainConfig(data=[], out_dir=out_dir, width=0.125, **values)


def test_contrast_map_is_the_clipped_log_ratio_to_the_local_mean():
    model = with_contrast_input(tiny_residual_model(), SIDE)
    flat = torch.full((1, 1, 9, 9), 0.3)
    assert model.contrast_map(flat).abs().max() < 1e-6  # the mean's rounding only
    spot = torch.full((1, 1, 9, 9), 0.1)
    spot[..., 4, 4] = 0.5
    got = model.contrast_map(spot)
    local = (48 * 0.1 + 0.5) / 49
    assert got[0, 0, 4, 4].item() == pytest.approx(np.log(0.5 / local), rel=1e-5)
    assert got[0, 0, 4, 1] < 0  # a dark pixel whose neighbourhood holds the bright one
    black = torch.zeros_like(spot)
    black[..., 4, 4] = 1.0
    assert model.contrast_map(black).abs().max().item() == pytest.approx(CONTRAST_CLIP)


def test_contrast_is_scale_free_so_outputs_stay_exposure_equivariant():
    model = with_contrast_used(tiny_residual_model(seed=1))
    rgb = np.random.default_rng(0).uniform(0.05, 0.9, (3, 50, 70)).astype(np.float32)
    full = run(model, rgb)
    for k in (0.5, 0.25):
        relative = np.abs(run(model, rgb * np.float32(k)) / k - full).max() / np.abs(full).max()
        assert relative < 1e-4, (k, relative)


def test_contrast_changes_the_output_once_its_weights_are_trained():
    trained = tiny_residual_model(seed=2)
    rgb = np.random.default_rng(1).uniform(0.0, 0.6, (3, 40, 36)).astype(np.float32)
    grown = with_contrast_input(trained, SIDE).eval()
    np.testing.assert_allclose(run(grown, rgb), run(trained, rgb), rtol=1e-5, atol=1e-6)
    assert grown.net.mean.shape[1] == 4 and grown.geohsr_config["contrast_input"] == SIDE
    used = with_contrast_used(trained)
    assert np.abs(run(used, rgb) - run(trained, rgb)).max() > 1e-3


def test_grown_with_both_inputs_and_saved_weights_round_trip(tmp_path):
    model = with_contrast_used(with_level_input(tiny_residual_model(seed=3), 32 / 255))
    assert model.net.mean.shape[1] == 5
    path = save_weights(model, tmp_path / "c.safetensors")
    loaded, meta = load_weights(path)
    assert meta["config"]["contrast_input"] == SIDE
    rgb = np.random.default_rng(2).uniform(0.0, 0.6, (3, 45, 33)).astype(np.float32)
    np.testing.assert_allclose(run(loaded, rgb), run(model, rgb), rtol=1e-5, atol=1e-6)


def test_unpadded_input_gets_the_contrast_of_the_padded_rgb():
    """The exported core runs on RGB the caller padded; torch must compute the same."""
    model = with_contrast_used(tiny_residual_model(seed=4))
    x = torch.rand(2, 3, 45, 70)
    padded, (top, left) = pad_to_multiple(x, STRIDE)
    with torch.no_grad():
        direct = model.forward_residual_term(padded)[..., top : top + 45, left : left + 70]
        unpadded = model._residual_term(x, padded=False)
    torch.testing.assert_close(unpadded, direct)


@pytest.mark.skipif(not openvino_installed(), reason="OpenVINO not installed")
def test_openvino_runs_the_contrast_input_as_torch_does():
    model = with_contrast_used(tiny_residual_model(seed=5))
    x = np.random.default_rng(3).random((2, 3, 45, 70), dtype=np.float32)
    expected = Predictor(model, device="cpu", backend="torch", precision="fp32").predict(x)
    converted = Predictor(
        with_contrast_used(tiny_residual_model(seed=5)),
        device="cpu",
        backend="openvino",
        precision="fp32",
    )
    got = converted.predict(x)
    np.testing.assert_allclose(got, expected, rtol=0, atol=2e-5 * np.abs(expected).max())


def test_contrast_input_settings_are_checked(tmp_path):
    with pytest.raises(ValueError, match="odd"):
        create_model("mxr_unet18_rpr", width=0.125, contrast_input=6)
    model = with_contrast_input(tiny_residual_model(), SIDE)
    with pytest.raises(TrainingError, match="contrast input over 7"):
        with_contrast_input(model, 5)
    with pytest.raises(TrainingError, match="level input cannot be added"):
        with_level_input(model, 32 / 255)
    with pytest.raises(TrainingError, match="applies to the \\*_rpr models"):
        build_model(config(tmp_path, model="mxr_unet18", contrast_input=SIDE))
    for trained in (None, tiny_residual_model()):  # a new model, or grown from weights
        with pytest.raises(TrainingError, match="odd number of pixels, got 6"):
            if trained is None:
                build_model(config(tmp_path, model="mxr_unet18_rpr", contrast_input=6))
            else:
                with_contrast_input(trained, 6)
    fresh, _ = build_model(config(tmp_path, model="mxr_unet18_rpr", contrast_input=SIDE))
    assert fresh.contrast_input == SIDE and "level_input" not in fresh.geohsr_config
