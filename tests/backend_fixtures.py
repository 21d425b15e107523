"""Shared by the backend tests: how far a precision moves the shipped model from fp32."""

from __future__ import annotations

import numpy as np
import pytest
from scene_fixtures import gradient_rgb

from geohsr.inference.backends.capabilities import cpu_has_int8
from geohsr.inference.backends.int8 import nncf_installed
from geohsr.inference.predictor import Predictor

#: tests that quantise to INT8 (``pip install "geohsr[int8]"`` on a CPU OpenVINO runs it on)
needs_int8 = pytest.mark.skipif(
    not (nncf_installed() and cpu_has_int8()), reason="NNCF or OpenVINO INT8 not available"
)


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
