"""ICNR initialisation survives weight normalisation: no checkerboard at init."""

import pytest
import torch
from torch import nn

from geohsr.layers import PixelShuffleICNR, icnr_
from geohsr.models import create_model


def assert_subpixel_groups_identical(y: torch.Tensor) -> None:
    """Every 2x2 block of ``(B, C, 2h, 2w)`` holds one value."""
    corner = y[..., 0::2, 0::2]
    for dy, dx in [(0, 1), (1, 0), (1, 1)]:
        torch.testing.assert_close(y[..., dy::2, dx::2], corner)


def test_icnr_repeats_each_kernel_over_its_subpixel_group():
    weight = icnr_(torch.empty(12, 5, 1, 1))
    groups = weight.view(3, 4, 5, 1, 1)
    assert torch.equal(groups, groups[:, :1].expand_as(groups))
    assert groups[:, 0].std() > 0


def test_pixel_shuffle_output_has_identical_subpixel_groups_at_init():
    torch.manual_seed(0)
    layer = PixelShuffleICNR(16, 8, blur=False)
    assert_subpixel_groups_identical(layer(torch.randn(2, 16, 6, 9)))


def test_icnr_survives_weight_norm_in_g_and_v():
    layer = PixelShuffleICNR(16, 8)
    g = layer.conv.parametrizations.weight.original0.view(8, 4)
    v = layer.conv.parametrizations.weight.original1.view(8, 4, 16)
    assert torch.equal(v, v[:, :1].expand_as(v))
    torch.testing.assert_close(g, g[:, :1].expand_as(g))


def test_a_random_conv_would_fail_the_check():
    layer = PixelShuffleICNR(16, 8, blur=False)
    with torch.no_grad():
        layer.conv.weight = torch.randn_like(layer.conv.weight)
    with pytest.raises(AssertionError):
        assert_subpixel_groups_identical(layer(torch.randn(1, 16, 4, 4)))


@pytest.mark.parametrize("name", ["mxr_unet18", "mxr_unet50", "resnet_unet34"])
def test_every_upsampler_in_a_model_is_checkerboard_free_at_init(name):
    torch.manual_seed(0)
    model = create_model(name, width=0.125)
    shuffles = [m for m in model.modules() if isinstance(m, PixelShuffleICNR)]
    assert len(shuffles) == 5
    outputs = []
    for module in shuffles:
        module.shuffle.register_forward_hook(lambda _m, _i, out: outputs.append(out))
    with torch.no_grad():
        model(torch.rand(1, 3, 64, 96))
    assert len(outputs) == 5
    for y in outputs:
        assert_subpixel_groups_identical(y)


def test_shuffle_is_torch_pixel_shuffle():
    assert isinstance(PixelShuffleICNR(4).shuffle, nn.PixelShuffle)
