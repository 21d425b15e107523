"""INT8 through OpenVINO + NNCF (``--precision int8``): when it is offered, its calibration,
what it quantises, and how close it stays to fp32. Skips where NNCF or OpenVINO is missing
(``pip install "geohsr[int8]"``)."""

from __future__ import annotations

import re

import numpy as np
import pytest
from backend_fixtures import needs_int8, shipped_openvino_difference
from residual_fixtures import tiny_residual_model

from geohsr.exceptions import ModelError
from geohsr.inference import backends
from geohsr.inference.backends.int8 import (
    CALIBRATION_EXPOSURES,
    FLOAT_CONVOLUTIONS,
    FLOAT_OPERATIONS,
    calibration_images,
)
from geohsr.inference.predictor import Predictor


def test_int8_is_offered_only_by_openvino_with_nncf(monkeypatch):
    monkeypatch.setattr(backends, "cpu_has_int8", lambda: True)
    monkeypatch.setattr(backends, "nncf_installed", lambda: True)
    assert backends.resolve_precision("int8", "openvino", "cpu") == "int8"
    with pytest.raises(ModelError, match="runs only with --backend openvino on the CPU"):
        backends.resolve_precision("int8", "torch", "cpu")
    with pytest.raises(ModelError, match="runs only with --backend openvino on the CPU"):
        backends.resolve_precision("int8", "torch", "cuda")
    monkeypatch.setattr(backends, "nncf_installed", lambda: False)
    with pytest.raises(ModelError, match=r"not available.*int8 needs NNCF: pip install"):
        backends.resolve_precision("int8", "openvino", "cpu")


def test_calibration_images_are_seeded_8_bit_and_span_the_exposures():
    model = tiny_residual_model()
    images = calibration_images(model, count=6, size=32)
    again = calibration_images(model, count=6, size=32)
    assert all(np.array_equal(a, b) for a, b in zip(images, again, strict=True))
    assert all(image.shape == (1, 3, 32, 32) and image.dtype == np.float32 for image in images)
    stacked = np.concatenate(images)
    assert stacked.min() >= 0 and stacked.max() <= 1
    np.testing.assert_allclose(stacked * 255, np.round(stacked * 255), atol=1e-4)  # 8-bit
    means = [float(image.mean()) for image in images[: len(CALIBRATION_EXPOSURES)]]
    assert means == sorted(means, reverse=True) and means[0] > 3 * means[-1]  # 1, 0.3, 0.08
    assert not np.array_equal(images[0], calibration_images(model, count=1, size=32, seed=1)[0])


@needs_int8
def test_int8_quantises_the_networks_convolutions_only_and_is_cached(tmp_path, monkeypatch, capfd):
    import openvino as ov

    monkeypatch.setenv("GEOHSR_CACHE_DIR", str(tmp_path / "cache"))
    model = tiny_residual_model(seed=3)
    first = Predictor(model, device="cpu", backend="openvino", precision="int8")
    assert "quantising the model to INT8" in capfd.readouterr().err
    quantised = first.backend.ir
    fed = [  # the operations a FakeQuantize feeds
        target.get_node()
        for op in quantised.get_ordered_ops()
        if op.get_type_name() == "FakeQuantize"
        for target in op.output(0).get_target_inputs()
    ]
    fed_types = {node.get_type_name() for node in fed}
    assert "Convolution" in fed_types and not fed_types & set(FLOAT_OPERATIONS)
    quantised_convolutions = {
        node.get_friendly_name() for node in fed if node.get_type_name() == "Convolution"
    }
    output_stage = [
        op.get_friendly_name()
        for op in quantised.get_ordered_ops()
        if op.get_type_name() == "Convolution"
        and any(re.fullmatch(pattern, op.get_friendly_name()) for pattern in FLOAT_CONVOLUTIONS)
    ]
    assert len(output_stage) == 2 and not quantised_convolutions & set(output_stage)
    Predictor(tiny_residual_model(seed=3), device="cpu", backend="openvino", precision="int8")
    assert "quantising" not in capfd.readouterr().err  # read from the cache
    assert isinstance(quantised, ov.Model)


@needs_int8
def test_int8_of_the_shipped_model_stays_within_two_percent_of_fp32():
    relative = shipped_openvino_difference("int8")
    assert 0 < relative < 0.02  # 4.3 % with the input and the multiplies quantised too


def test_auto_picks_int8_only_with_vnni_and_below_the_cost_limit(monkeypatch):
    monkeypatch.delenv("GEOHSR_PRECISION", raising=False)  # the suite sets fp32
    monkeypatch.setattr(backends, "cpu_has_int8", lambda: True)
    monkeypatch.setattr(backends, "nncf_installed", lambda: True)
    monkeypatch.setattr(backends, "cpu_has_bf16", lambda: True)
    monkeypatch.setattr(backends, "cpu_has_vnni", lambda: True)
    assert backends.MEASURED_MRAE_COST["int8"] < backends.MAX_AUTO_COST  # adapted weights
    assert backends.resolve_precision("auto", "openvino", "cpu") == "int8"
    assert backends.resolve_precision("auto", "torch", "cpu") == "bf16"
    monkeypatch.setattr(backends, "cpu_has_vnni", lambda: False)  # AVX2 only: slow, unmeasured
    assert backends.resolve_precision("auto", "openvino", "cpu") == "bf16"
    assert backends.resolve_precision("int8", "openvino", "cpu") == "int8"  # when asked for
    monkeypatch.setattr(backends, "cpu_has_vnni", lambda: True)
    monkeypatch.setitem(backends.MEASURED_MRAE_COST, "int8", 0.013)  # were it too costly
    assert backends.resolve_precision("auto", "openvino", "cpu") == "bf16"
