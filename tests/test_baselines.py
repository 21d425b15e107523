"""Linear and root-polynomial regression baselines: terms, exposure invariance, fitting."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from geohsr.models import create_model
from geohsr.models.baselines import (
    fit_least_squares,
    fit_pixel_regression,
    root_polynomial_exponents,
)


@pytest.mark.parametrize("degree, n_terms", [(1, 3), (2, 6), (3, 13), (4, 22)])
def test_root_polynomial_term_count(degree, n_terms):
    exponents = root_polynomial_exponents(degree)
    assert exponents.shape == (n_terms, 3)
    np.testing.assert_allclose(exponents.sum(axis=1), 1.0)
    assert len({tuple(row) for row in exponents.round(6)}) == n_terms


def test_degree_2_terms_are_rgb_and_square_roots_of_pairs():
    model = create_model("rpr2")
    rgb = torch.tensor([0.25, 0.16, 0.09]).view(1, 3, 1, 1)
    terms = model.features(rgb).flatten().tolist()
    r, g, b = 0.25, 0.16, 0.09
    expected = [r, g, b, (r * g) ** 0.5, (r * b) ** 0.5, (g * b) ** 0.5]
    assert terms == pytest.approx(expected, rel=1e-6)


@settings(max_examples=25, deadline=None)
@given(scale=st.floats(0.05, 20.0))
def test_rpr_features_scale_with_exposure(scale):
    model = create_model("rpr3")
    rgb = torch.rand(1, 3, 2, 2) + 0.01
    torch.testing.assert_close(
        model.features(rgb * scale), model.features(rgb) * scale, rtol=1e-4, atol=1e-6
    )


def test_negative_input_is_clamped_not_nan():
    y = create_model("rpr3")(torch.full((1, 3, 2, 2), -0.5))
    assert torch.isfinite(y).all()


def test_fit_least_squares_recovers_a_linear_map():
    rng = np.random.default_rng(0)
    x = rng.random((500, 6))
    w = rng.normal(size=(6, 31))
    np.testing.assert_allclose(fit_least_squares(x, x @ w, ridge=0.0), w, atol=1e-8)


@pytest.mark.parametrize("name", ["linear", "rpr2", "rpr3"])
def test_fitted_baseline_reproduces_spectra_it_can_represent(name):
    rng = np.random.default_rng(1)
    rgb = rng.random((400, 3)).astype(np.float32)
    model = create_model(name, width=0.5)  # width is accepted and ignored
    truth = create_model(name)
    with torch.no_grad():
        x = torch.from_numpy(rgb).T[None, :, :, None]
        spectra = truth(x)[0, :, :, 0].T.numpy()
    fitted = fit_pixel_regression(model, rgb, spectra, ridge=0.0)
    assert fitted is model
    with torch.no_grad():
        torch.testing.assert_close(model(x), truth(x), rtol=1e-3, atol=1e-4)
