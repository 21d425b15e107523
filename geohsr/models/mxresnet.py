"""Encoders: MXResNet 18/34/50 (ResNet-D with Mish, the paper's) and plain ResNet-34.

An encoder maps ``(B, 3, H, W)`` (H, W multiples of 32) to five feature maps, finest
first: the stem output at 1/2 resolution (the first skip) and stages 1-4 at 1/4, 1/8,
1/16, 1/32. ``encoder.feature_channels`` lists their channel counts. The classification
head (pool, flatten, linear) of the original networks is not built.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from geohsr.layers import BasicBlock, Bottleneck, conv_bn_act

ResidualBlock = type[BasicBlock] | type[Bottleneck]

STAGE_WIDTHS = (64, 128, 256, 512)


def scale_channels(channels: int, width: float) -> int:
    """``channels * width`` rounded, at least 1 (the width multiplier of every model)."""
    return max(1, round(channels * width))


class ResNetEncoder(nn.Module):
    """Stem -> MaxPool 3x3/2 -> four residual stages; returns the five skip features.

    ``stem`` must end at 1/2 resolution with ``stem_channels`` channels.
    Returns ``[(B, c0, H/2, W/2), (B, c1, H/4, W/4), ..., (B, c4, H/32, W/32)]``.
    """

    def __init__(
        self,
        stem: nn.Module,
        stem_channels: int,
        block: ResidualBlock,
        layers: Sequence[int],
        *,
        width: float = 1.0,
        act: str = "mish",
        avg_down: bool = True,
    ) -> None:
        super().__init__()
        self.stem = stem
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        stages = []
        ni = stem_channels
        for i, (n_blocks, nh) in enumerate(zip(layers, STAGE_WIDTHS, strict=True)):
            nh = scale_channels(nh, width)
            blocks = []
            for j in range(n_blocks):
                stride = 2 if i > 0 and j == 0 else 1
                blocks.append(block(ni, nh, stride, act=act, avg_down=avg_down))
                ni = nh * block.expansion
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.ModuleList(stages)
        self.feature_channels = [stem_channels] + [
            scale_channels(nh, width) * block.expansion for nh in STAGE_WIDTHS
        ]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.stem(x)  # (B, c0, H/2, W/2)
        features = [x]
        x = self.maxpool(x)  # (B, c0, H/4, W/4)
        for stage in self.stages:
            x = stage(x)
            features.append(x)
        return features


def mxresnet_stem(width: float = 1.0, in_channels: int = 3) -> tuple[nn.Sequential, int]:
    """MXResNet stem: three 3x3 conv-BN-Mish, in_channels -> 32 (stride 2) -> 64 -> 64."""
    sizes = [in_channels] + [scale_channels(c, width) for c in (32, 64, 64)]
    convs = [
        conv_bn_act(sizes[i], sizes[i + 1], 3, stride=2 if i == 0 else 1, act="mish")
        for i in range(3)
    ]
    return nn.Sequential(*convs), sizes[-1]


def resnet_stem(width: float = 1.0, in_channels: int = 3) -> tuple[nn.Sequential, int]:
    """Classic ResNet stem: one 7x7 stride-2 conv-BN-ReLU, in_channels -> 64 channels."""
    channels = scale_channels(64, width)
    return conv_bn_act(in_channels, channels, 7, stride=2, act="relu"), channels


def mxresnet18(*, width: float = 1.0, in_channels: int = 3) -> ResNetEncoder:
    """MXResNet-18 encoder (BasicBlock [2, 2, 2, 2]); 11,223,456 parameters at width 1."""
    return ResNetEncoder(*mxresnet_stem(width, in_channels), BasicBlock, [2, 2, 2, 2], width=width)


def mxresnet34(*, width: float = 1.0, in_channels: int = 3) -> ResNetEncoder:
    """MXResNet-34 encoder (BasicBlock [3, 4, 6, 3]); 21,331,616 parameters at width 1."""
    return ResNetEncoder(*mxresnet_stem(width, in_channels), BasicBlock, [3, 4, 6, 3], width=width)


def mxresnet50(*, width: float = 1.0, in_channels: int = 3) -> ResNetEncoder:
    """MXResNet-50 encoder (Bottleneck [3, 4, 6, 3]); 23,554,976 parameters at width 1."""
    return ResNetEncoder(*mxresnet_stem(width, in_channels), Bottleneck, [3, 4, 6, 3], width=width)


def resnet34(*, width: float = 1.0, in_channels: int = 3) -> ResNetEncoder:
    """Plain ResNet-34 encoder (torchvision layout, ReLU, strided 1x1 shortcuts).

    The paper's ablation encoder; 21,284,672 parameters at width 1.
    """
    return ResNetEncoder(
        *resnet_stem(width, in_channels),
        BasicBlock,
        [3, 4, 6, 3],
        width=width,
        act="relu",
        avg_down=False,
    )
