"""The traceable part of a model and its eager finish, for compiled backends.

A compiled backend (OpenVINO) runs :class:`ExportableCore`: the network on inputs padded to a
multiple of :data:`~geohsr.models.unet.STRIDE` with no shape-dependent Python logic, so one
conversion with dynamic batch, height and width serves every tile size. The caller pads
(:func:`~geohsr.models.unet.pad_to_multiple`), crops, then applies :func:`finish`: the metamer
projection of camera-aware models, whose Newton refinement works on a data-dependent subset
of pixels and stays in torch, as does the float32 classical base. Padding the RGB instead
of the network's input gives the same values: the classical base and the chromaticity
``rgb / I`` are per-pixel, so the padded chromaticity equals the network's own padding of it.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np
import torch
from torch import nn

from geohsr.models.residual import ResidualSpectralModel
from geohsr.models.unet import STRIDE, SpectralUnet, pad_to_multiple

#: bump when the exported graph changes for the same weights (invalidates cached exports)
EXPORT_VERSION = 3  # 2: the classical base left the exported graph; 3: fused attention


class ExportableCore(nn.Module):
    """``(B, 3, H, W)`` float32 RGB, H and W multiples of 32 -> what :func:`finish` completes:
    the network's output, ``(B, 31, H, W)`` float32 (for a residual model its term
    ``gamma * I * U``; per-pixel regressions pass the RGB through). Wraps a model prepared
    for inference (eval, folded). Only the network is exported: compiled backends run it at
    reduced precision, while classical regressions stay float32 (bfloat16 rounding of the
    degree-3 root-polynomial terms moved their outputs by 2 %)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, rgb: torch.Tensor) -> torch.Tensor:
        if isinstance(self.model, ResidualSpectralModel):
            return self.model.forward_residual_term(rgb)  # + the float32 base in finish
        if isinstance(self.model, SpectralUnet):
            return self.model.forward_padded(rgb)
        return rgb  # per-pixel regression: no network, all of it float32 in finish


def pad_input(rgb: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
    """``rgb`` padded to multiples of 32 as the models pad (reflect, or edge replication
    when too small) and the ``(top, left)`` offset of the original in it."""
    return pad_to_multiple(rgb, STRIDE)


def finish(
    model: nn.Module, spectra: torch.Tensor, rgb: torch.Tensor, out: torch.Tensor | None = None
) -> torch.Tensor:
    """Eager end of a forward pass: ``spectra`` ``(B, 31, H, W)`` from :class:`ExportableCore`
    (cropped to ``rgb``'s size) -> the model's output for ``rgb`` ``(B, 3, H, W)``: ``out``
    (contiguous float32 of that shape) when given, else a new tensor (``spectra`` may be a
    view of a backend's buffer that its next call reuses)."""
    if isinstance(model, ResidualSpectralModel):
        unprojected = model.current_base(rgb, out=out)  # float32, ours: add in place
        unprojected += spectra
        projected = model.project_current(unprojected, rgb, in_place=True)
    elif isinstance(model, SpectralUnet):
        projected = spectra
    else:
        with torch.autocast(rgb.device.type, enabled=False):
            projected = model(rgb.float())  # per-pixel regression
    if out is None:
        return projected.clone() if projected is spectra else projected
    if projected is not out:
        out.copy_(projected)
    return out


def core_fingerprint(model: nn.Module) -> str:
    """SHA-256 (hex) of what the exported core computes: model name and configuration,
    every parameter and buffer (the current camera's base included) and
    :data:`EXPORT_VERSION`. Keys cached exports, so any change of weights or camera
    converts again."""
    digest = hashlib.sha256()
    header = {
        "name": getattr(model, "geohsr_name", type(model).__name__),
        "config": getattr(model, "geohsr_config", {}),
        "export_version": EXPORT_VERSION,
    }
    digest.update(json.dumps(header, sort_keys=True, default=str).encode())
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(np.ascontiguousarray(tensor.detach().cpu().float().numpy()).tobytes())
    return digest.hexdigest()
