"""Parameter counts match the paper, counted on the meta device (nothing allocated)."""

import pytest
import torch

from geohsr.models import create_model, mxresnet
from geohsr.models.catalog import count_parameters

# (every parameter, fastai learn.summary() total: without weight-norm g and attention gamma,
#  the paper's rounded figure)
PAPER_COUNTS = {
    "mxr_unet18": (31_355_146, 31_347_172, 31.35e6),
    "mxr_unet34": (41_463_306, 41_455_332, 41.46e6),
    "mxr_unet50": (342_105_546, 342_074_532, 342.1e6),
}
ENCODER_COUNTS = {
    mxresnet.mxresnet18: 11_223_456,
    mxresnet.mxresnet34: 21_331_616,
    mxresnet.mxresnet50: 23_554_976,
    mxresnet.resnet34: 21_284_672,  # torchvision resnet34 without its fc layer
}


def fastai_summary_count(model: torch.nn.Module) -> int:
    """What fastai v1 reports: leaves out weight-norm ``g`` (original0) and ``gamma``."""
    return sum(
        p.numel()
        for name, p in model.named_parameters()
        if not name.endswith(("original0", "gamma"))
    )


@pytest.mark.parametrize("name", sorted(PAPER_COUNTS))
def test_model_parameter_count_matches_paper(name):
    with torch.device("meta"):
        model = create_model(name)
    assert next(model.parameters()).is_meta
    every, fastai, paper = PAPER_COUNTS[name]
    assert sum(p.numel() for p in model.parameters()) == every
    assert fastai_summary_count(model) == fastai
    assert abs(every - paper) / paper < 0.005


@pytest.mark.parametrize("encoder_fn", list(ENCODER_COUNTS), ids=lambda f: f.__name__)
def test_encoder_parameter_count(encoder_fn):
    with torch.device("meta"):
        encoder = encoder_fn()
    assert sum(p.numel() for p in encoder.parameters()) == ENCODER_COUNTS[encoder_fn]


def test_ablation_shares_the_decoder_of_mxr_unet34():
    decoder_34 = count_parameters("mxr_unet34") - ENCODER_COUNTS[mxresnet.mxresnet34]
    decoder_r34 = count_parameters("resnet_unet34") - ENCODER_COUNTS[mxresnet.resnet34]
    assert decoder_34 == decoder_r34


def test_switching_off_attention_removes_its_parameters():
    full = count_parameters("mxr_unet18")
    assert count_parameters("mxr_unet18", self_attention=False) == full - (
        2 * 384 * 48 + 384 * 384 + 1
    )
    assert count_parameters("mxr_unet18", blur=False) == full


def test_width_multiplier_shrinks_the_model():
    assert count_parameters("mxr_unet18", width=0.125) < count_parameters("mxr_unet18") / 50
