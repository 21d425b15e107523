"""Residual blocks: ResNet-D (MXResNet, Mish, AvgPool shortcut) and classic ResNet (ReLU).

Both blocks compute ``act(branch(x) + shortcut(x))``. The last BN of each branch is
zero-initialised so every block starts as (activation of) the identity.

Shortcuts:
- ``avg_down=True`` (ResNet-D, the MXResNet of the paper): ``AvgPool2d(2, ceil_mode=True)``
  when the stride is 2, then a 1x1 conv + BN when the channel count changes.
- ``avg_down=False`` (torchvision ResNet): a strided 1x1 conv + BN whenever the stride or
  the channel count changes.
"""

from __future__ import annotations

import torch
from torch import nn

from geohsr.layers.act import make_act
from geohsr.layers.conv import conv_bn_act


def make_shortcut(ni: int, nf: int, stride: int, *, avg_down: bool) -> nn.Module:
    """Shortcut path of a residual block mapping ``(B, ni, H, W)`` to ``(B, nf, H/s, W/s)``."""
    if avg_down:
        pool = nn.AvgPool2d(2, ceil_mode=True) if stride != 1 else nn.Identity()
        proj = conv_bn_act(ni, nf, 1, act=None) if ni != nf else nn.Identity()
        return nn.Sequential(pool, proj)
    if stride != 1 or ni != nf:
        return conv_bn_act(ni, nf, 1, stride=stride, act=None)
    return nn.Identity()


class BasicBlock(nn.Module):
    """Two 3x3 conv-BN layers (stride on the first); output channels ``nh``.

    Shapes: ``(B, ni, H, W) -> (B, nh, H/stride, W/stride)``.
    """

    expansion = 1

    def __init__(
        self, ni: int, nh: int, stride: int = 1, *, act: str = "mish", avg_down: bool = True
    ) -> None:
        super().__init__()
        nf = nh * self.expansion
        self.convs = nn.Sequential(
            conv_bn_act(ni, nh, 3, stride=stride, act=act),
            conv_bn_act(nh, nf, 3, act=None, zero_bn=True),
        )
        self.shortcut = make_shortcut(ni, nf, stride, avg_down=avg_down)
        self.act = make_act(act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.convs(x) + self.shortcut(x))


class Bottleneck(nn.Module):
    """1x1 reduce -> 3x3 (strided) -> 1x1 expand to ``4 * nh`` channels.

    Shapes: ``(B, ni, H, W) -> (B, 4 nh, H/stride, W/stride)``.
    """

    expansion = 4

    def __init__(
        self, ni: int, nh: int, stride: int = 1, *, act: str = "mish", avg_down: bool = True
    ) -> None:
        super().__init__()
        nf = nh * self.expansion
        self.convs = nn.Sequential(
            conv_bn_act(ni, nh, 1, act=act),
            conv_bn_act(nh, nh, 3, stride=stride, act=act),
            conv_bn_act(nh, nf, 1, act=None, zero_bn=True),
        )
        self.shortcut = make_shortcut(ni, nf, stride, avg_down=avg_down)
        self.act = make_act(act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.convs(x) + self.shortcut(x))
