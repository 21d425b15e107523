"""Shared by the backend tests: how far a precision moves the shipped model from fp32."""

from __future__ import annotations

import numpy as np
from scene_fixtures import gradient_rgb

from geohsr.inference.predictor import Predictor


def shipped_openvino_difference(precision: str) -> float:
    """Mean relative difference of the shipped model run by OpenVINO at ``precision`` from
    OpenVINO fp32, on a 96 x 128 gradient scaled to 0.8."""
    rgb = (gradient_rgb(96, 128).astype(np.float32) / 255 * 0.8)[None]
    runs = {
        name: Predictor.from_weights(
            "mxr_unet18_rpr_cave", device="cpu", backend="openvino", precision=name
        ).predict(rgb)
        for name in ("fp32", precision)
    }
    return float(np.abs(runs[precision] - runs["fp32"]).mean() / np.abs(runs["fp32"]).mean())
