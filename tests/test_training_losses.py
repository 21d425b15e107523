"""Perceptual loss (VGG16 with a 31-band first conv) and the plain losses."""

from __future__ import annotations

import pytest
import torch
from training_fixtures import write_fake_vgg16

from geohsr.exceptions import TrainingError
from geohsr.training.losses import PerceptualLoss, build_loss, gram_matrix
from geohsr.training.vgg import (
    SpectralVGGFeatures,
    band_channels,
    find_vgg16_weights,
    load_vgg16_state,
    spectral_first_conv,
    vgg16_features,
)


@pytest.fixture(scope="module")
def vgg_npz(tmp_path_factory):
    return write_fake_vgg16(tmp_path_factory.mktemp("vgg") / "vgg16.npz")


def test_perceptual_loss_zero_for_identical_positive_otherwise_and_differentiable(vgg_npz):
    loss_fn = PerceptualLoss(vgg_weights=vgg_npz)
    target = torch.rand(2, 31, 32, 32)
    assert loss_fn(target, target).item() == 0.0
    pred = (target + 0.05 * torch.randn_like(target)).requires_grad_()
    loss = loss_fn(pred, target)
    assert loss.item() > 0
    loss.backward()
    assert pred.grad is not None and pred.grad.abs().sum() > 0
    assert all(p.grad is None for p in loss_fn.vgg.parameters())  # VGG stays frozen


def test_perceptual_loss_terms_match_the_formula(vgg_npz):
    loss_fn = PerceptualLoss(vgg_weights=vgg_npz, pixel_weight=10.0)
    pred, target = torch.rand(1, 31, 32, 32), torch.rand(1, 31, 32, 32)
    fp, ft = loss_fn.vgg(pred), loss_fn.vgg(target)
    expected = 10.0 * torch.nn.functional.mse_loss(pred, target)
    for w, a, b in zip((3.0, 9.0, 2.0), fp, ft, strict=True):
        expected = expected + w * (a - b).abs().mean()
        expected = expected + 5e3 * w**2 * (gram_matrix(a) - gram_matrix(b)).abs().mean()
    assert loss_fn(pred, target).item() == pytest.approx(expected.item(), rel=1e-5)


def test_mrae_pixel_term_and_gram_factor_are_applied(vgg_npz):
    loss_fn = PerceptualLoss(
        vgg_weights=vgg_npz, pixel_weight=2.0, pixel_loss="mrae", gram_factor=7.0
    )
    pred, target = torch.rand(1, 31, 32, 32), torch.rand(1, 31, 32, 32) + 0.1
    fp, ft = loss_fn.vgg(pred), loss_fn.vgg(target)
    expected = 2.0 * ((pred - target).abs() / target).mean()
    for w, a, b in zip((3.0, 9.0, 2.0), fp, ft, strict=True):
        expected = expected + w * (a - b).abs().mean()
        expected = expected + 7.0 * w**2 * (gram_matrix(a) - gram_matrix(b)).abs().mean()
    assert loss_fn(pred, target).item() == pytest.approx(expected.item(), rel=1e-5)
    with pytest.raises(TrainingError, match="pixel loss"):
        PerceptualLoss(vgg_weights=vgg_npz, pixel_loss="huber")


def test_default_layers_are_relus_before_pools_3_4_5(vgg_npz):
    features = SpectralVGGFeatures(vgg_npz)
    assert features.layer_ids == [15, 22, 29]  # relu3_3, relu4_3, relu5_3
    assert SpectralVGGFeatures(vgg_npz, pools=(2, 3, 4)).layer_ids == [8, 15, 22]
    with pytest.raises(TrainingError, match="pools"):
        SpectralVGGFeatures(vgg_npz, pools=(6,))


def test_gram_matrix_normalisation():
    x = torch.ones(1, 2, 3, 4)
    assert torch.allclose(gram_matrix(x), torch.full((1, 2, 2), 12.0 / 24.0))


def test_flat_spectrum_equals_grey_rgb_through_imagenet_normalisation(vgg_npz):
    stack = vgg16_features()
    stack.load_state_dict(load_vgg16_state(vgg_npz))
    rgb_conv = stack[0]
    conv31 = spectral_first_conv(rgb_conv)
    value = 0.37
    grey = torch.full((1, 3, 8, 8), value)
    mean = torch.tensor((0.485, 0.456, 0.406)).view(1, 3, 1, 1)
    std = torch.tensor((0.229, 0.224, 0.225)).view(1, 3, 1, 1)
    expected = rgb_conv((grey - mean) / std)
    got = conv31(torch.full((1, 31, 8, 8), value))
    # interior pixels (zero padding differs at the border by the folded mean)
    assert torch.allclose(got[..., 1:-1, 1:-1], expected[..., 1:-1, 1:-1], atol=1e-4)
    assert list(torch.bincount(torch.from_numpy(band_channels()))) == [13, 8, 10]


def test_missing_vgg_weights_raise_training_error(monkeypatch, tmp_path):
    monkeypatch.delenv("GEOHSR_VGG16_WEIGHTS", raising=False)
    monkeypatch.setenv("GEOHSR_SHARED_DATA", str(tmp_path / "nothing"))
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    with pytest.raises(TrainingError, match="GEOHSR_VGG16_WEIGHTS"):
        find_vgg16_weights()
    with pytest.raises(TrainingError, match="--loss mrae"):
        build_loss("perceptual")


def test_env_variable_selects_weights(monkeypatch, vgg_npz):
    monkeypatch.setenv("GEOHSR_VGG16_WEIGHTS", str(vgg_npz))
    assert find_vgg16_weights() == vgg_npz


def test_plain_losses():
    target = torch.full((1, 31, 2, 2), 0.5)
    pred = torch.full((1, 31, 2, 2), 0.4)
    assert build_loss("mse")(pred, target).item() == pytest.approx(0.01)
    assert build_loss("l1")(pred, target).item() == pytest.approx(0.1)
    assert build_loss("mrae")(pred, target).item() == pytest.approx(0.2)
    assert build_loss("mrae")(pred, torch.zeros_like(target)).item() == pytest.approx(400.0)
    with pytest.raises(TrainingError, match="unknown loss"):
        build_loss("ssim")
