"""Training losses on ``(B, 31, H, W)`` cubes: the paper's perceptual loss and plain ones.

Perceptual loss (paper eq. 1-4 as in the original code)::

    pixel_weight * pixel(p, t)
      + sum_i w_i * L1(phi_i(p), phi_i(t))
      + sum_i gram_factor * w_i**2 * L1(G(phi_i(p)), G(phi_i(t)))

with phi_i the VGG16 features of :class:`~geohsr.training.vgg.SpectralVGGFeatures` (cubes fed
as stored, see that module), w = (3, 9, 2), gram_factor = 5e3, pixel_weight = 100 (the MXR
variant of the paper used 10), and the Gram matrix G(psi) = psi psi^T / (C H W). ``pixel`` is
MSE as in the paper; ``pixel_loss="mrae"`` swaps in the relative error (useful on scenes
with dark regions, where MSE barely sees errors), and ``gram_factor`` rebalances the style
terms.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from geohsr.exceptions import TrainingError
from geohsr.training.metrics import DEFAULT_EPS
from geohsr.training.vgg import SpectralVGGFeatures


def gram_matrix(features: torch.Tensor) -> torch.Tensor:
    """``(B, C, H, W)`` -> ``(B, C, C)``: psi psi^T / (C H W), computed in float32."""
    b, c, h, w = features.shape
    flat = features.float().reshape(b, c, h * w)
    return flat @ flat.transpose(1, 2) / (c * h * w)


class PerceptualLoss(nn.Module):
    """Pixel MSE + VGG16 feature L1 + Gram L1 (see module docstring)."""

    def __init__(
        self,
        *,
        vgg_weights: str | Path | None = None,
        pixel_weight: float = 100.0,
        feature_weights: Sequence[float] = (3.0, 9.0, 2.0),
        pools: Sequence[int] = (3, 4, 5),
        gram_factor: float = 5e3,
        pixel_loss: str = "mse",
    ) -> None:
        super().__init__()
        if len(feature_weights) != len(pools):
            raise TrainingError(
                f"{len(feature_weights)} feature weights for {len(pools)} VGG layers; "
                "give one weight per layer"
            )
        if pixel_loss not in PIXEL_LOSSES:
            raise TrainingError(
                f"unknown pixel loss {pixel_loss!r}; choose one of {', '.join(PIXEL_LOSSES)}"
            )
        self.vgg = SpectralVGGFeatures(vgg_weights, pools)
        self.pixel = PIXEL_LOSSES[pixel_loss]()
        self.pixel_weight = pixel_weight
        self.feature_weights = tuple(float(w) for w in feature_weights)
        self.gram_factor = gram_factor

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Scalar loss of ``pred`` against ``target`` (both ``(B, 31, H, W)``)."""
        loss = self.pixel_weight * self.pixel(pred, target)
        pred_features = self.vgg(pred)
        with torch.no_grad():
            target_features = self.vgg(target)
        for weight, fp, ft in zip(
            self.feature_weights, pred_features, target_features, strict=True
        ):
            loss = loss + weight * F.l1_loss(fp.float(), ft.float())
            loss = loss + self.gram_factor * weight**2 * F.l1_loss(gram_matrix(fp), gram_matrix(ft))
        return loss


class MRAELoss(nn.Module):
    """Mean relative absolute error with the target clipped below at ``eps`` (as the metric)."""

    def __init__(self, eps: float = DEFAULT_EPS) -> None:
        super().__init__()
        self.eps = eps

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Scalar MRAE of ``pred`` against ``target``."""
        pred, target = pred.float(), target.float()
        return ((pred - target).abs() / target.clamp_min(self.eps)).mean()


class _Elementwise(nn.Module):
    def __init__(self, fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.fn(pred.float(), target.float())


PIXEL_LOSSES: dict[str, Callable[[], nn.Module]] = {
    "mse": lambda: _Elementwise(F.mse_loss),
    "mrae": MRAELoss,
}

LOSSES: dict[str, Callable[..., nn.Module]] = {
    "perceptual": PerceptualLoss,
    "mrae": MRAELoss,
    "mse": lambda: _Elementwise(F.mse_loss),
    "l1": lambda: _Elementwise(F.l1_loss),
}


def build_loss(name: str, **options) -> nn.Module:
    """Loss module by name (``perceptual``, ``mrae``, ``mse``, ``l1``); ``options`` go to
    :class:`PerceptualLoss` (``vgg_weights``, ``pixel_weight``, ``feature_weights``,
    ``pools``, ``gram_factor``, ``pixel_loss``) or :class:`MRAELoss` (``eps``)."""
    try:
        factory = LOSSES[name]
    except KeyError:
        raise TrainingError(f"unknown loss {name!r}; choose one of {', '.join(LOSSES)}") from None
    return factory(**options)
