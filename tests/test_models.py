"""Every registered model honours the contract: (B, 3, H, W) in [0, 1] -> (B, 31, H, W)."""

import pytest
import torch

from geohsr.models import create_model, list_models
from geohsr.models.unet import pad_to_multiple
from geohsr.spectral import N_BANDS

TINY = {"width": 0.125}
#: the paper-faithful U-Nets (RGB normalised with mean/std buffers)
PAPER_UNETS = ["mxr_unet18", "mxr_unet34", "mxr_unet50", "resnet_unet34"]


@pytest.fixture(scope="module", params=list_models())
def tiny_model(request):
    torch.manual_seed(0)
    return create_model(request.param, **TINY)


@pytest.mark.parametrize("size", [(64, 96), (97, 131), (33, 31)])
def test_output_shape_and_finite(tiny_model, size):
    x = torch.rand(2, 3, *size)
    with torch.no_grad():
        y = tiny_model.eval()(x)
    assert y.shape == (2, N_BANDS, *size)
    assert y.dtype == torch.float32
    assert torch.isfinite(y).all()


def test_tiny_input_smaller_than_padding_works(tiny_model):
    with torch.no_grad():
        assert tiny_model.eval()(torch.rand(1, 3, 5, 3)).shape == (1, N_BANDS, 5, 3)


def test_gradient_reaches_every_parameter(tiny_model):
    tiny_model.train()
    y = tiny_model(torch.rand(2, 3, 40, 36))
    (y - 1).square().mean().backward()
    grads = {n: p.grad for n, p in tiny_model.named_parameters()}
    assert all(g is not None and torch.isfinite(g).all() for g in grads.values()), [
        n for n, g in grads.items() if g is None
    ]
    assert any(g.abs().sum() > 0 for g in grads.values())


def test_batch_items_are_independent_in_eval_mode(tiny_model):
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        both = tiny_model.eval()(x)
        first = tiny_model(x[:1])
    torch.testing.assert_close(both[:1], first, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", PAPER_UNETS)
def test_unet_switches_and_normalisation_buffers(name):
    model = create_model(name, width=0.125, self_attention=False, blur=False, mean=(0.5,) * 3)
    state = model.state_dict()
    assert not any("attention.query" in k for k in state)
    torch.testing.assert_close(state["mean"].flatten(), torch.full((3,), 0.5))
    assert state["std"].flatten().tolist() == pytest.approx([0.229, 0.224, 0.225])


def test_pad_to_multiple_reflects_and_records_offset():
    x = torch.arange(5.0).view(1, 1, 1, 5).expand(1, 1, 3, 5)
    padded, (top, left) = pad_to_multiple(x, 4)
    assert padded.shape == (1, 1, 4, 8)
    torch.testing.assert_close(padded[..., top : top + 3, left : left + 5], x)
    assert padded[0, 0, 0, : left + 2].tolist() == [1.0, 0.0, 1.0]  # reflected, not zeros


def test_padding_keeps_multiples_of_32_untouched():
    x = torch.rand(1, 3, 64, 32)
    padded, offset = pad_to_multiple(x, 32)
    assert padded is x and offset == (0, 0)


@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n in list_models() if "unet" in n])
def test_full_width_model_forward(name):
    model = create_model(name).eval()
    with torch.no_grad():
        y = model(torch.rand(1, 3, 70, 45))
    assert y.shape == (1, N_BANDS, 70, 45) and torch.isfinite(y).all()
