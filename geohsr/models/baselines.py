"""Per-pixel regression baselines: linear (affine) and root-polynomial regression (RPR).

Root-polynomial regression (Finlayson, Mackiewicz & Hurlbert 2015, "Color correction
using root-polynomial regression", IEEE TIP 24(5)): every monomial of (r, g, b) of degree
k <= d is raised to the power 1/k, duplicates dropped, giving terms that scale linearly
with exposure. Degree 2: r, g, b, sqrt(rg), sqrt(gb), sqrt(rb) (6 terms); degree 3 adds
cbrt of r g^2, r^2 g, g b^2, g^2 b, r b^2, r^2 b and rgb (13 terms). A linear map (no
offset, preserving the exposure invariance) takes the terms to 31 bands.

The modules follow the model contract, ``(B, 3, H, W)`` RGB in [0, 1] -> ``(B, 31, H, W)``,
and are fitted in closed form with :func:`fit_pixel_regression` (no gradient training).
Their factories accept ``width`` for a uniform registry interface and ignore it.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import torch
from torch import nn

from geohsr.models.registry import register_model
from geohsr.spectral import N_BANDS


def root_polynomial_exponents(degree: int) -> np.ndarray:
    """Exponents ``(T, 3)`` float64 of the root-polynomial terms of ``degree`` over (r, g, b).

    Row ``(a, b, c)`` is the term ``r^a g^b b^c``; each row sums to 1. Terms are ordered by
    degree, then lexicographically (r first). T = 3, 6, 13, 22 for degree 1..4.
    """
    rows: list[tuple[float, ...]] = []
    for k in range(1, degree + 1):
        for powers in sorted(itertools.product(range(k + 1), repeat=3), reverse=True):
            if sum(powers) == k and math.gcd(*powers) == 1:
                rows.append(tuple(p / k for p in powers))
    return np.array(rows, dtype=np.float64)


#: logarithm standing for log(0): times the smallest positive exponent (1/3) it underflows
#: exp to exactly 0, and times a zero exponent it is 0 (log(0) = -inf would give NaN there)
LOG_ZERO = -1.0e4


def root_polynomial_features(rgb: torch.Tensor, exponents: torch.Tensor) -> torch.Tensor:
    """``(..., 3)`` RGB (clamped at 0) -> ``(..., T)`` terms ``prod_c rgb_c ** exponents[t, c]``
    (exponents >= 0), computed as ``exp(log(rgb) @ exponents.T)``: one logarithm per channel
    and one exponential per term, 3x faster than the powers on the CPU. A term of a zero
    channel is exactly 0, as the power is (:data:`LOG_ZERO`): taking zero as the smallest
    normal float instead gave black pixels a ~1e-13 spectrum with a direction, which moved
    the benchmark's SAM of dark conditions by up to 0.5 deg (MRAE unchanged)."""
    logs = torch.log(rgb.clamp_min(0.0)).clamp_min(LOG_ZERO)
    return torch.exp(logs @ exponents.to(logs.dtype).transpose(0, 1))


class PixelRegression(nn.Module):
    """Per-pixel features of the RGB input followed by a linear map (1x1 conv) to 31 bands.

    ``exponents (T, 3)`` defines the features ``prod_c rgb_c ** exponents[t, c]``; the input
    is clamped to >= 0 first so roots are real. ``bias`` adds a constant term (affine map).
    """

    def __init__(self, exponents: np.ndarray, *, bias: bool, out_channels: int = N_BANDS):
        super().__init__()
        self.register_buffer("exponents", torch.as_tensor(exponents, dtype=torch.float32))
        self.head = nn.Conv2d(len(exponents), out_channels, 1, bias=bias)

    def features(self, rgb: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, W) -> (B, T, H, W)`` regression terms."""
        return root_polynomial_features(rgb.movedim(1, -1), self.exponents).movedim(-1, 1)

    def forward(self, rgb: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(rgb))  # (B, 31, H, W)


def fit_least_squares(features: np.ndarray, spectra: np.ndarray, ridge: float = 1e-6) -> np.ndarray:
    """Ridge least squares: the ``(F, K)`` matrix W minimising ``|X W - Y|^2 + lam |W|^2``.

    ``features`` X is ``(N, F)``, ``spectra`` Y is ``(N, K)``. ``lam`` is ``ridge`` times the
    mean diagonal of ``X^T X``, so ``ridge`` is relative to the feature scale. float64 maths.
    """
    x = np.asarray(features, dtype=np.float64)
    y = np.asarray(spectra, dtype=np.float64)
    gram = x.T @ x
    lam = ridge * float(np.trace(gram)) / max(gram.shape[0], 1)
    return np.linalg.solve(gram + lam * np.eye(gram.shape[0]), x.T @ y)


def fit_pixel_regression(
    model: PixelRegression, rgb: np.ndarray, spectra: np.ndarray, ridge: float = 1e-6
) -> PixelRegression:
    """Fit ``model``'s linear map in place from paired pixels and return it.

    ``rgb`` is ``(N, 3)`` in [0, 1], ``spectra`` ``(N, 31)`` (the targets, e.g. reflectance).
    """
    rgb_t = torch.as_tensor(np.asarray(rgb, dtype=np.float32)).T[None, :, :, None]  # (1,3,N,1)
    with torch.no_grad():
        feats = model.features(rgb_t)[0, :, :, 0].T.double().numpy()  # (N, T)
    if model.head.bias is not None:
        feats = np.concatenate([feats, np.ones((len(feats), 1))], axis=1)
    weights = fit_least_squares(feats, spectra, ridge)  # (T [+1], 31)
    n_terms = len(model.exponents)
    with torch.no_grad():
        model.head.weight.copy_(torch.as_tensor(weights[:n_terms].T).view_as(model.head.weight))
        if model.head.bias is not None:
            model.head.bias.copy_(torch.as_tensor(weights[n_terms]))
    return model


@register_model
def linear(*, width: float = 1.0) -> PixelRegression:
    """Affine per-pixel map 3 -> 31 (``width`` is ignored)."""
    return PixelRegression(root_polynomial_exponents(1), bias=True)


@register_model
def rpr2(*, width: float = 1.0) -> PixelRegression:
    """Root-polynomial regression of degree 2 (6 terms; ``width`` is ignored)."""
    return PixelRegression(root_polynomial_exponents(2), bias=False)


@register_model
def rpr3(*, width: float = 1.0) -> PixelRegression:
    """Root-polynomial regression of degree 3 (13 terms; ``width`` is ignored)."""
    return PixelRegression(root_polynomial_exponents(3), bias=False)
