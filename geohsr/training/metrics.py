"""NTIRE spectral-reconstruction metrics, pure functions of one predicted and one true cube.

Inputs are ``(31, H, W)`` arrays or tensors (numpy or torch, any float dtype); they are
compared in float64. Every metric scores the whole image, like the paper.

- MRAE = mean(|p - t| / max(t, eps)), eps = 1e-3 by default. The guard: target values below
  ``eps`` (zeros, dark noise) are divided by ``eps`` instead, so MRAE stays finite but such
  pixels weigh heavily (error 0.01 at t = 0 counts 10). :func:`spectral_metrics` reports the
  guarded fraction ``mrae_guarded`` so a large MRAE from dark pixels is visible, not silent.
- MRAE_bright = mean(|p - t| / t) over target values t >= 0.01 only (the dark values, where
  a relative error mostly measures noise, are left out rather than floored).
- RMSE = sqrt(mean((p - t)^2)).
- PSNR = 10 log10(1 / MSE) dB, data range 1 (reflectance); infinite for identical cubes.
- SAM = mean over pixels of the angle (degrees) between predicted and true spectra. Pixels
  whose true spectrum is all zero have no direction and are left out; a zero prediction
  against a non-zero truth scores 90 degrees. NaN when every pixel is left out.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

DEFAULT_EPS = 1e-3
BRIGHT_FLOOR = 0.01
METRIC_NAMES = ("mrae", "mrae_bright", "rmse", "psnr", "sam")


def _as_float64(x: Any) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x.detach().to(device="cpu", dtype=torch.float64)
    return torch.as_tensor(np.asarray(x), dtype=torch.float64)


def _pair(pred: Any, target: Any) -> tuple[torch.Tensor, torch.Tensor]:
    p, t = _as_float64(pred), _as_float64(target)
    if p.shape != t.shape:
        raise ValueError(f"prediction {tuple(p.shape)} and target {tuple(t.shape)} differ")
    return p, t


def mrae(pred: Any, target: Any, eps: float = DEFAULT_EPS) -> float:
    """Mean relative absolute error; the target is clipped below at ``eps`` (see module doc)."""
    p, t = _pair(pred, target)
    return float(((p - t).abs() / t.clamp_min(eps)).mean())


def mrae_bright(pred: Any, target: Any, floor: float = BRIGHT_FLOOR) -> float:
    """MRAE over target values ``>= floor`` only (NaN when there are none)."""
    p, t = _pair(pred, target)
    keep = t >= floor
    if not bool(keep.any()):
        return float("nan")
    return float(((p - t).abs()[keep] / t[keep]).mean())


def rmse(pred: Any, target: Any) -> float:
    """Root mean squared error, in the units of the cubes."""
    p, t = _pair(pred, target)
    return float(((p - t) ** 2).mean().sqrt())


def psnr(pred: Any, target: Any, data_range: float = 1.0) -> float:
    """Peak signal-to-noise ratio in dB for peak value ``data_range``."""
    p, t = _pair(pred, target)
    mse = float(((p - t) ** 2).mean())
    return math.inf if mse == 0 else 10.0 * math.log10(data_range**2 / mse)


def sam(pred: Any, target: Any) -> float:
    """Mean spectral angle in degrees over pixels; band axis first (``(31, H, W)``)."""
    p, t = _pair(pred, target)
    p, t = p.reshape(p.shape[0], -1), t.reshape(t.shape[0], -1)  # (31, N)
    t_norm = t.norm(dim=0)
    valid = t_norm > 0
    if not bool(valid.any()):
        return math.nan
    p, t, t_norm = p[:, valid], t[:, valid], t_norm[valid]
    cosine = (p * t).sum(dim=0) / (p.norm(dim=0).clamp_min(1e-300) * t_norm)
    return float(torch.rad2deg(torch.arccos(cosine.clamp(-1.0, 1.0))).mean())


def spectral_metrics(pred: Any, target: Any, eps: float = DEFAULT_EPS) -> dict[str, float]:
    """The metrics of :data:`METRIC_NAMES` plus ``mrae_guarded``: the fraction of target values
    below ``eps``."""
    t = _as_float64(target)
    return {
        "mrae": mrae(pred, target, eps),
        "mrae_bright": mrae_bright(pred, target),
        "rmse": rmse(pred, target),
        "psnr": psnr(pred, target),
        "sam": sam(pred, target),
        "mrae_guarded": float((t < eps).double().mean()),
    }
