"""Sub-pixel upsampling with ICNR initialisation (checkerboard-free at init) and blur."""

from __future__ import annotations

import torch
from torch import nn

from geohsr.layers.conv import wn_conv


def icnr_(weight: torch.Tensor, scale: int = 2) -> torch.Tensor:
    """Fill a conv weight ``(nf * scale^2, ni, kh, kw)`` in place with ICNR (Aitken et al. 2017).

    Output channels ``c * scale^2 + k`` (k = 0..scale^2-1) share one Kaiming-normal kernel,
    so after :class:`~torch.nn.PixelShuffle` every ``scale x scale`` sub-pixel group of
    the output is identical at initialisation. Returns ``weight``.
    """
    n_out, ni, kh, kw = weight.shape
    subkernels = torch.empty(
        n_out // scale**2, ni, kh, kw, device=weight.device, dtype=weight.dtype
    )
    nn.init.kaiming_normal_(subkernels)
    with torch.no_grad():
        weight.copy_(subkernels.repeat_interleave(scale**2, dim=0))
    return weight


class PixelShuffleICNR(nn.Module):
    """Upsample x``scale``: weight-normalised 1x1 conv -> ReLU -> PixelShuffle -> optional blur.

    The conv's effective weight is ICNR-initialised *after* weight normalisation is set
    up (assigning the weight sets ``g`` and ``v`` from it), so the initialisation
    survives; fastai v1 lost it here (fastai issues #2846, #3315).
    ``blur`` = ReplicationPad2d((1, 0, 1, 0)) + AvgPool2d(2, stride=1) (Sugawara et al. 2018).
    Shapes: ``(B, ni, H, W) -> (B, nf, scale H, scale W)``.
    """

    def __init__(self, ni: int, nf: int | None = None, *, scale: int = 2, blur: bool = False):
        super().__init__()
        nf = ni if nf is None else nf
        self.conv = wn_conv(ni, nf * scale**2, kernel_size=1)
        with torch.no_grad():
            self.conv.weight = icnr_(torch.empty_like(self.conv.weight), scale)
        self.relu = nn.ReLU(inplace=True)
        self.shuffle = nn.PixelShuffle(scale)
        self.blur = (
            nn.Sequential(nn.ReplicationPad2d((1, 0, 1, 0)), nn.AvgPool2d(2, stride=1))
            if blur
            else nn.Identity()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blur(self.shuffle(self.relu(self.conv(x))))
