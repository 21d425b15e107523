"""SAGAN self-attention (Zhang et al. 2019) as used by fastai's DynamicUnet."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm


def _sn_conv1x1(ni: int, nf: int) -> nn.Conv1d:
    conv = nn.Conv1d(ni, nf, 1, bias=False)
    nn.init.kaiming_normal_(conv.weight)
    return spectral_norm(conv)


class SelfAttention(nn.Module):
    """Global self-attention over all pixels, added to the input with a learned scale.

    Query/key are spectral-normalised 1x1 convs ``C -> C // 8``, value ``C -> C``; the
    scale ``gamma`` starts at 0, so the layer starts as the identity.
    Shapes: ``(B, C, H, W) -> (B, C, H, W)``; memory grows as ``(H W)^2``.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.query = _sn_conv1x1(channels, max(1, channels // 8))
        self.key = _sn_conv1x1(channels, max(1, channels // 8))
        self.value = _sn_conv1x1(channels, channels)
        self.gamma = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape
        flat = x.flatten(2)  # (B, C, N), N = H * W
        query, key, value = self.query(flat), self.key(flat), self.value(flat)
        # beta[b, i, j]: weight of position i for output position j (softmax over i, dim 1).
        beta = torch.softmax(torch.bmm(query.transpose(1, 2), key), dim=1)  # (B, N, N)
        out = self.gamma * torch.bmm(value, beta) + flat  # (B, C, N)
        return out.view(size)
