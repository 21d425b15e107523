"""A tiny camera-aware residual model with a fitted base and a non-zero random residual."""

import numpy as np
import torch
from training_fixtures import smooth_cube

from geohsr.models import create_model
from geohsr.models.residual import ResidualSpectralModel
from geohsr.spectral.cameras import CameraResponse, cie1964


def reference_spectra(count: int = 512) -> np.ndarray:
    """``(count, 31)`` smooth reflectance spectra from the synthetic cube fixture."""
    cube = smooth_cube(32, 32, seed=3)
    return cube.reshape(31, -1).T[:count].copy()


def tiny_residual_model(
    residual_scale: float = 0.5, seed: int = 0, chroma_floor: float = 0.0, level_input: float = 0.0
) -> ResidualSpectralModel:
    """``mxr_unet18_rpr`` at width 0.125 with its base fitted on the fixture spectra (generic
    over CIE 1964 and a second, flatter response) and a random residual switched on."""
    torch.manual_seed(seed)
    model = create_model(
        "mxr_unet18_rpr",
        width=0.125,
        n_reference=512,
        chroma_floor=chroma_floor,
        level_input=level_input,
    )
    model.set_reference_spectra(reference_spectra())
    flat = CameraResponse("flat", 0.5 + 0.5 * cie1964().css / cie1964().css.max())
    model.fit_generic(np.stack([cie1964().normalised, flat.normalised]))
    with torch.no_grad():
        model.residual_scale.fill_(residual_scale)
    return model.eval()
