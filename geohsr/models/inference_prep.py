"""Make a trained model fast for inference without changing its outputs."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils import parametrize


def fold_parametrizations(model: nn.Module) -> nn.Module:
    """Replace weight-norm / spectral-norm parametrizations by their current plain weights.

    The model must be in eval mode (spectral norm then uses its stored singular vectors
    instead of taking a power-iteration step). Modifies ``model`` in place and returns it.
    """
    for module in model.modules():
        if parametrize.is_parametrized(module):
            for name in list(module.parametrizations):
                parametrize.remove_parametrizations(module, name, leave_parametrized=True)
    return model


def prepare_for_inference(model: nn.Module, *, channels_last: bool = False) -> nn.Module:
    """Eval mode, gradients off, weight/spectral norm folded into plain weights (in place).

    Outputs are unchanged (up to float rounding); the forward pass skips recomputing the
    normalised weights on every call. ``channels_last=True`` also converts the weights to
    the NHWC memory format (faster convolutions on CPU and on CUDA with fp16; feed inputs
    as ``x.contiguous(memory_format=torch.channels_last)``).
    Returns ``model``; ``model.geohsr_name``/``geohsr_config`` are kept.
    """
    model.eval()
    with torch.no_grad():
        fold_parametrizations(model)
    model.requires_grad_(False)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    return model
