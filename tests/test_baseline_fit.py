"""Fitting the regression baselines on rendered training pixels; the shipped baseline weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from baseline_fixtures import bump_cube, endmember_cube, scene_of

from geohsr.exceptions import TrainingError
from geohsr.spectral.cameras import cie1964
from geohsr.training import baseline_fit
from geohsr.training.baseline_fit import PixelSampling, fit_baseline, sample_training_pixels
from geohsr.training.camera import CameraSampler, CameraSampling

SHIPPED_DIR = Path(__file__).resolve().parents[1] / "pretrained"
FIXED_EXPOSURE = CameraSampling(exposure=(0.5, 0.5))


def predict(model: torch.nn.Module, rgb: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        x = torch.from_numpy(rgb.astype(np.float32)).T[None, :, :, None]  # (1, 3, N, 1)
        return model(x)[0, :, :, 0].T.double().numpy()  # (N, 31)


def test_linear_fit_recovers_the_known_linear_map():
    cube, endmembers = endmember_cube()
    camera = CameraSampler([cie1964()], FIXED_EXPOSURE)
    rgb, spectra = sample_training_pixels(
        [scene_of(cube)], camera, PixelSampling(renders_per_scene=1, pixels_per_render=500)
    )
    model = fit_baseline("linear", rgb, spectra, ridge=0.0)
    # rgb = k Cn E a, target = k E a  =>  target = E (Cn E)^-1 rgb, no offset
    expected = endmembers @ np.linalg.inv(cie1964().normalised @ endmembers)
    weight = model.head.weight.detach().double().numpy()[:, :, 0, 0]  # (31, 3)
    np.testing.assert_allclose(weight, expected, rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(model.head.bias.detach().numpy(), 0.0, atol=1e-4)


def test_rpr_beats_linear_on_spectra_that_are_not_linear_in_rgb():
    camera = CameraSampler([cie1964()], FIXED_EXPOSURE)
    sampling = PixelSampling(renders_per_scene=1, pixels_per_render=1600)
    rgb, spectra = sample_training_pixels([scene_of(bump_cube(seed=0))], camera, sampling)
    test_rgb, test_spectra = sample_training_pixels([scene_of(bump_cube(seed=1))], camera, sampling)
    errors = {
        name: np.mean((predict(fit_baseline(name, rgb, spectra), test_rgb) - test_spectra) ** 2)
        for name in ("linear", "rpr3")
    }
    assert errors["rpr3"] < 0.8 * errors["linear"]


def test_sampling_is_seeded_counts_renders_and_skips_invalid_pixels():
    cube, _ = endmember_cube(16, 16)
    cube[:, 8:] = 0.0  # invalid half
    valid = np.zeros((16, 16), dtype=bool)
    valid[:8] = True
    scenes = [scene_of(cube, "a", valid), scene_of(cube[:, ::-1].copy(), "b")]
    camera = CameraSampler([cie1964()], CameraSampling(wb_jitter=0.1))
    sampling = PixelSampling(renders_per_scene=3, pixels_per_render=100, seed=7)
    rgb, spectra = sample_training_pixels(scenes, camera, sampling)
    assert rgb.shape == (2 * 3 * 100, 3) and spectra.shape == (600, 31)
    assert spectra[:300].min() > 0.0  # scene "a": only its valid (non-zero) half
    again, _ = sample_training_pixels(scenes, camera, sampling)
    np.testing.assert_array_equal(rgb, again)
    other, _ = sample_training_pixels(scenes, camera, PixelSampling(3, 100, seed=8))
    assert not np.array_equal(rgb, other)


def test_only_regression_baselines_are_fitted_and_scenes_are_required(monkeypatch):
    monkeypatch.setattr(baseline_fit, "create_model", lambda name: torch.nn.Identity())
    with pytest.raises(TrainingError, match="not a per-pixel regression"):
        fit_baseline("mxr_unet18", np.zeros((4, 3)), np.zeros((4, 31)))
    with pytest.raises(TrainingError, match="no training scenes"):
        sample_training_pixels([], CameraSampler([cie1964()]))
