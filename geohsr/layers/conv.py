"""Convolution helpers: conv-BN-act for encoders, weight-normalised conv for the decoder."""

from __future__ import annotations

from torch import nn
from torch.nn.utils.parametrizations import weight_norm

from geohsr.layers.act import make_act


def conv_bn_act(
    ni: int,
    nf: int,
    kernel_size: int = 3,
    *,
    stride: int = 1,
    act: str | None = "mish",
    zero_bn: bool = False,
) -> nn.Sequential:
    """Conv2d (no bias, "same" padding, Kaiming init) -> BatchNorm2d -> optional activation.

    ``zero_bn`` initialises the BN scale to 0 (last BN of a residual branch, so every
    block starts as the identity). ``act=None`` leaves the activation out.
    """
    conv = nn.Conv2d(ni, nf, kernel_size, stride=stride, padding=kernel_size // 2, bias=False)
    nn.init.kaiming_normal_(conv.weight)
    bn = nn.BatchNorm2d(nf)
    nn.init.constant_(bn.weight, 0.0 if zero_bn else 1.0)
    layers: list[nn.Module] = [conv, bn]
    if act is not None:
        layers.append(make_act(act))
    return nn.Sequential(*layers)


def wn_conv(ni: int, nf: int, kernel_size: int = 3) -> nn.Conv2d:
    """Weight-normalised Conv2d with bias and "same" padding (fastai ``NormType.Weight``).

    Kaiming-normal weight, zero bias; the weight is then split into ``g`` (one norm per
    output channel) and ``v`` so that the initial weight is unchanged.
    """
    conv = nn.Conv2d(ni, nf, kernel_size, padding=kernel_size // 2, bias=True)
    nn.init.kaiming_normal_(conv.weight)
    nn.init.zeros_(conv.bias)
    return weight_norm(conv)


def wn_conv_relu(ni: int, nf: int, kernel_size: int = 3) -> nn.Sequential:
    """:func:`wn_conv` followed by an in-place ReLU (the decoder's standard layer)."""
    return nn.Sequential(wn_conv(ni, nf, kernel_size), nn.ReLU(inplace=True))
