"""prepare_for_inference folds weight/spectral norm without changing outputs."""

import pytest
import torch
from torch.nn.utils import parametrize

from geohsr.models import create_model
from geohsr.models.inference_prep import prepare_for_inference


def _trained_looking(name: str) -> torch.nn.Module:
    torch.manual_seed(0)
    model = create_model(name, width=0.125)
    with torch.no_grad():
        for param_name, param in model.named_parameters():
            if param_name.endswith("gamma"):
                param.fill_(0.7)  # attention switched on, as after training
    return model.eval()


@pytest.mark.parametrize("name", ["mxr_unet18", "resnet_unet34", "rpr2"])
@pytest.mark.parametrize("channels_last", [False, True])
def test_outputs_identical_after_folding(name, channels_last):
    model = _trained_looking(name)
    x = torch.rand(1, 3, 97, 131)
    with torch.no_grad():
        before = model(x)
    prepared = prepare_for_inference(model, channels_last=channels_last)
    assert prepared is model
    with torch.no_grad():
        after = prepared(x)
    # channels_last changes the summation order: float rounding relative to the output scale
    atol = 1e-5 * before.abs().max().item() if channels_last else 1e-6
    torch.testing.assert_close(after, before, rtol=0.0, atol=atol)


def test_no_parametrizations_or_gradients_left():
    model = prepare_for_inference(_trained_looking("mxr_unet18"))
    assert not any(parametrize.is_parametrized(m) for m in model.modules())
    assert not any(p.requires_grad for p in model.parameters())
    assert not model.training
    assert model.geohsr_name == "mxr_unet18"
