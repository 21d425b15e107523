"""NTIRE metrics against hand-computed values, the zero-target guard and properties."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from geohsr.training.metrics import mrae, psnr, rmse, sam, spectral_metrics


def _two_pixel_pair():
    # 2 bands x 1 x 2 pixels. pixel A: t=(0.5, 0.5) p=(0.4, 0.6); pixel B: t=(0.2, 0.0) p=(0.3, 0.1)
    target = np.array([[[0.5, 0.2]], [[0.5, 0.0]]])
    pred = np.array([[[0.4, 0.3]], [[0.6, 0.1]]])
    return pred, target


def test_mrae_hand_computed_with_zero_guard():
    pred, target = _two_pixel_pair()
    # |p-t| / max(t, 1e-3): 0.1/0.5, 0.1/0.5, 0.1/0.2, 0.1/1e-3 -> mean (0.2+0.2+0.5+100)/4
    assert mrae(pred, target) == pytest.approx((0.2 + 0.2 + 0.5 + 100.0) / 4)
    # a larger guard weighs the zero less: 0.1/0.1 = 1
    assert mrae(pred, target, eps=0.1) == pytest.approx((0.2 + 0.2 + 0.5 + 1.0) / 4)
    assert math.isfinite(mrae(pred, np.zeros_like(target)))


def test_rmse_psnr_hand_computed():
    pred, target = _two_pixel_pair()
    assert rmse(pred, target) == pytest.approx(0.1)  # every error is 0.1
    assert psnr(pred, target) == pytest.approx(20.0)  # 10 log10(1 / 0.01)
    assert psnr(target, target) == math.inf


def test_sam_hand_computed():
    pred, target = _two_pixel_pair()
    angle_a = math.degrees(math.acos((0.2 + 0.3) / (math.hypot(0.4, 0.6) * math.hypot(0.5, 0.5))))
    angle_b = math.degrees(math.acos(0.06 / (math.hypot(0.3, 0.1) * 0.2)))
    assert sam(pred, target) == pytest.approx((angle_a + angle_b) / 2)


def test_sam_excludes_zero_targets_and_scores_zero_prediction_90():
    target = np.array([[[1.0, 0.0]], [[1.0, 0.0]]])
    assert sam(np.zeros_like(target), target) == pytest.approx(90.0)
    assert math.isnan(sam(target, np.zeros_like(target)))


def test_spectral_metrics_reports_guarded_fraction_and_accepts_torch():
    pred, target = _two_pixel_pair()
    report = spectral_metrics(torch.tensor(pred, dtype=torch.float32), target)
    assert report["mrae_guarded"] == pytest.approx(0.25)
    assert set(report) == {"mrae", "mrae_bright", "rmse", "psnr", "sam", "mrae_guarded"}
    # mrae_bright leaves out the target values below 0.01 instead of flooring them
    # (0.1/0.5 + 0.1/0.2 + 0.1/0.5) / 3; the zero target is not counted
    assert report["mrae_bright"] == pytest.approx(0.3)


def test_shape_mismatch_raises():
    with pytest.raises(ValueError, match="differ"):
        mrae(np.ones((31, 2, 2)), np.ones((31, 2, 3)))


arrays = st.integers(0, 2**31 - 1).map(
    lambda seed: np.random.default_rng(seed).uniform(0.01, 1.0, size=(31, 3, 4))
)


@settings(max_examples=25, deadline=None)
@given(target=arrays, scale=st.floats(0.1, 10.0))
def test_properties(target, scale):
    assert mrae(target, target) == 0.0
    assert rmse(target, target) == 0.0
    assert sam(target, target) == pytest.approx(0.0, abs=1e-5)
    # SAM ignores brightness; MRAE of a scaled prediction is |scale - 1|
    assert sam(target * scale, target) == pytest.approx(0.0, abs=1e-5)
    assert mrae(target * scale, target) == pytest.approx(abs(scale - 1.0))
