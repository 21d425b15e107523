"""MXR-U-Net: a ResNet encoder + fastai-v1-style DynamicUnet decoder, 3 -> 31 bands.

Reproduces the paper's architecture (fastai 1.0.60 ``unet_learner`` with
``norm_type=Weight``, ``blur``, ``self_attention``, ``last_cross``) in plain PyTorch,
with two fixes: ICNR initialisation survives weight normalisation, and any input
height/width works (reflect-padded to a multiple of 32, cropped back).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from geohsr.layers import PixelShuffleICNR, SelfAttention, wn_conv, wn_conv_relu
from geohsr.models import mxresnet
from geohsr.models.registry import register_model
from geohsr.spectral import N_BANDS

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

#: total down-sampling of the encoders; inputs are padded to a multiple of it
STRIDE = 32


class UnetBlock(nn.Module):
    """Upsample the coarser map, merge the skip, two 3x3 convs (+ optional self-attention).

    ``up (B, up_in, h, w)``, ``skip (B, skip_c, 2h, 2w)`` -> ``(B, nf, 2h, 2w)`` with
    ``ni = up_in // 2 + skip_c`` and ``nf = ni`` (``ni // 2`` when ``halve_output``).
    """

    def __init__(
        self,
        up_in: int,
        skip_c: int,
        *,
        halve_output: bool = False,
        blur: bool = False,
        self_attention: bool = False,
    ) -> None:
        super().__init__()
        self.shuf = PixelShuffleICNR(up_in, up_in // 2, blur=blur)
        self.bn = nn.BatchNorm2d(skip_c)
        ni = up_in // 2 + skip_c
        self.out_channels = ni // 2 if halve_output else ni
        self.conv1 = wn_conv_relu(ni, self.out_channels)
        self.conv2 = wn_conv_relu(self.out_channels, self.out_channels)
        self.attention = SelfAttention(self.out_channels) if self_attention else nn.Identity()

    def forward(self, up: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        up = self.shuf(up)  # (B, up_in/2, 2h, 2w); inputs padded to 32: sizes match skip
        x = F.relu(torch.cat([up, self.bn(skip)], dim=1))  # (B, ni, 2h, 2w)
        return self.attention(self.conv2(self.conv1(x)))


class ResidualConvBlock(nn.Module):
    """``x + relu(conv3x3(relu(conv3x3(x))))`` with weight-normalised convs (fastai res_block)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.convs = nn.Sequential(
            wn_conv_relu(channels, channels), wn_conv_relu(channels, channels)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.convs(x)


class SpectralUnet(nn.Module):
    """U-Net mapping RGB in [0, 1] ``(B, 3, H, W)`` float32 to ``(B, 31, H, W)`` (linear output).

    The input is normalised with the ``mean``/``std`` buffers (part of the weights file),
    reflect-padded to a multiple of 32, run through encoder + decoder and cropped back.
    """

    def __init__(
        self,
        encoder: mxresnet.ResNetEncoder,
        *,
        out_channels: int = N_BANDS,
        self_attention: bool = True,
        blur: bool = True,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
    ) -> None:
        super().__init__()
        in_channels = len(mean)
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))
        self.encoder = encoder
        *skip_channels, ni = encoder.feature_channels
        self.encoder_bn = nn.BatchNorm2d(ni)
        self.middle = nn.Sequential(wn_conv_relu(ni, 2 * ni), wn_conv_relu(2 * ni, ni))
        blocks = []
        skips_coarse_first = skip_channels[::-1]
        for i, skip_c in enumerate(skips_coarse_first):
            block = UnetBlock(
                ni,
                skip_c,
                halve_output=i == len(skips_coarse_first) - 1,
                blur=blur,
                self_attention=self_attention and i == len(skips_coarse_first) - 3,
            )
            blocks.append(block)
            ni = block.out_channels
        self.blocks = nn.ModuleList(blocks)
        self.final_shuf = PixelShuffleICNR(ni, blur=False)
        self.head = nn.Sequential(
            ResidualConvBlock(ni + in_channels), wn_conv(ni + in_channels, out_channels, 1)
        )

    def forward(self, rgb: torch.Tensor) -> torch.Tensor:
        height, width = rgb.shape[-2:]
        x, crop = pad_to_multiple(rgb, STRIDE)  # (B, 3, H', W'), H', W' multiples of 32
        y = self.forward_padded(x)
        return y[..., crop[0] : crop[0] + height, crop[1] : crop[1] + width]

    def forward_padded(self, x: torch.Tensor) -> torch.Tensor:
        """The network on ``(B, 3, H, W)`` with H and W multiples of :data:`STRIDE`: no
        shape-dependent Python logic, so it traces and exports (ONNX, OpenVINO) with
        dynamic batch, height and width."""
        x = (x - self.mean) / self.std
        *skips, deepest = self.encoder(x)
        y = self.middle(F.relu(self.encoder_bn(deepest)))  # (B, c4, H'/32, W'/32)
        for block, skip in zip(self.blocks, reversed(skips), strict=True):
            y = block(y, skip)  # ... -> (B, nf, H'/2, W'/2)
        y = self.final_shuf(y)  # (B, nf, H', W')
        return self.head(torch.cat([y, x], dim=1))  # (B, 31, H', W')


def pad_to_multiple(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """Pad ``(B, C, H, W)`` on all sides so H and W become multiples of ``multiple``.

    Reflect padding, or edge replication where the image is too small to reflect.
    Returns the padded tensor and the (top, left) offset of the original image in it.
    """
    height, width = x.shape[-2:]
    pad_h, pad_w = -height % multiple, -width % multiple
    if pad_h == 0 and pad_w == 0:
        return x, (0, 0)
    top, left = pad_h // 2, pad_w // 2
    mode = "reflect" if pad_h < height and pad_w < width else "replicate"
    padded = F.pad(x, (left, pad_w - left, top, pad_h - top), mode=mode)
    return padded, (top, left)


def _unet_factory(
    encoder_fn: Callable[..., mxresnet.ResNetEncoder],
    width: float,
    self_attention: bool,
    blur: bool,
    mean: Sequence[float],
    std: Sequence[float],
) -> SpectralUnet:
    return SpectralUnet(
        encoder_fn(width=width), self_attention=self_attention, blur=blur, mean=mean, std=std
    )


@register_model
def mxr_unet18(
    *,
    width: float = 1.0,
    self_attention: bool = True,
    blur: bool = True,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
) -> SpectralUnet:
    """MXR-U-Net with an MXResNet-18 encoder (paper: 31.35M parameters)."""
    return _unet_factory(mxresnet.mxresnet18, width, self_attention, blur, mean, std)


@register_model
def mxr_unet34(
    *,
    width: float = 1.0,
    self_attention: bool = True,
    blur: bool = True,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
) -> SpectralUnet:
    """MXR-U-Net with an MXResNet-34 encoder (paper: 41.46M parameters)."""
    return _unet_factory(mxresnet.mxresnet34, width, self_attention, blur, mean, std)


@register_model
def mxr_unet50(
    *,
    width: float = 1.0,
    self_attention: bool = True,
    blur: bool = True,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
) -> SpectralUnet:
    """MXR-U-Net with an MXResNet-50 encoder (paper: 342.07M parameters)."""
    return _unet_factory(mxresnet.mxresnet50, width, self_attention, blur, mean, std)


@register_model
def resnet_unet34(
    *,
    width: float = 1.0,
    self_attention: bool = True,
    blur: bool = True,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
) -> SpectralUnet:
    """The paper's ablation: the same decoder on a plain ReLU ResNet-34 encoder."""
    return _unet_factory(mxresnet.resnet34, width, self_attention, blur, mean, std)
