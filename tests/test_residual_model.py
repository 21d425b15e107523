"""The exposure-equivariant, camera-aware residual model (issue: radiometry)."""

import numpy as np
import pytest
import torch
from residual_fixtures import tiny_residual_model
from training_fixtures import smooth_cube

from geohsr.models import create_model
from geohsr.models.baselines import root_polynomial_exponents, root_polynomial_features
from geohsr.models.residual import RECOMMENDED_CHROMA_FLOOR, ResidualSpectralModel
from geohsr.models.weights import load_weights, save_weights
from geohsr.spectral.cameras import cie1964
from geohsr.spectral.metamer import rerender_error
from geohsr.spectral.render import quantize, render_fixed_gain


def run(model, rgb: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model(torch.from_numpy(rgb)[None])[0].numpy()


def random_rgb(camera_known: bool) -> np.ndarray:
    """Uniform random RGB; with a known camera, RGB of random non-negative spectra (colours a
    surface can have: at the edge of the camera's gamut the projection may switch method)."""
    rng = np.random.default_rng(0)
    if not camera_known:
        return rng.uniform(0.0, 0.95, (3, 48, 40)).astype(np.float32)
    spectra = rng.uniform(0.0, 0.95, (31, 48, 40)).astype(np.float32)
    return render_fixed_gain(spectra, cie1964().normalised, 1.0)


@pytest.mark.parametrize("camera_known", [False, True])
def test_exposure_equivariance_on_random_inputs(camera_known):
    model = tiny_residual_model()
    if camera_known:
        model.set_camera(cie1964().normalised)
    rgb = random_rgb(camera_known)
    full = run(model, rgb)
    assert np.abs(full).max() > 0
    for k in (0.05, 0.25, 0.5):
        scaled = run(model, rgb * np.float32(k)) / k
        relative = np.abs(scaled - full).sum() / np.abs(full).sum()
        assert relative <= 0.01, (k, relative)


def dark_border_rgb() -> np.ndarray:
    """Bright random colours beside a dark band of 8-bit quantisation noise: black and pixels
    like (0, 1, 0) / 255, whose chromaticity rgb / I is a pure primary (the MUUFL water edge)."""
    rng = np.random.default_rng(4)
    rgb = rng.uniform(0.2, 0.6, (3, 64, 64)).astype(np.float32)
    one_level = np.eye(4, 3, k=-1, dtype=np.float32) / 255  # black or one primary at 1/255
    rgb[:, :, 40:] = one_level[rng.integers(0, 4, (64, 24))].transpose(2, 0, 1)
    return rgb


def test_chroma_floor_shows_neutral_chromaticity_below_the_floor():
    floor = RECOMMENDED_CHROMA_FLOOR
    floored = tiny_residual_model(chroma_floor=floor)
    x = torch.from_numpy(dark_border_rgb())[None]
    intensity = x.mean(1, keepdim=True)
    assert (intensity <= floor).any() and (intensity > floor).any()
    with torch.no_grad():
        got = floored.forward_unprojected(x)
        chroma = torch.where(intensity > floor, x / intensity, torch.ones_like(x))
        terms = root_polynomial_features(x.movedim(1, -1), floored.exponents)
        base = torch.einsum("bhwt,tl->blhw", terms, floored.base_weight)
        expected = base + floored.residual_scale * intensity * floored.net(chroma)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-6)


def test_chroma_floor_keeps_dark_noise_from_moving_bright_neighbours():
    rgb = dark_border_rgb()
    clean = rgb.copy()
    clean[:, :, 40:] = 0.0  # the same dark band without its quantisation noise
    for floor, moved in ((0.0, True), (RECOMMENDED_CHROMA_FLOOR, False)):
        model = tiny_residual_model(chroma_floor=floor)
        noisy, quiet = run(model, rgb)[:, :, :40], run(model, clean)[:, :, :40]
        differs = not np.allclose(noisy, quiet, rtol=1e-5, atol=1e-6)
        assert differs == moved, floor


def test_chroma_floor_is_recorded_in_weights_and_old_weights_have_none(tmp_path):
    model = tiny_residual_model(chroma_floor=RECOMMENDED_CHROMA_FLOOR)
    path = save_weights(model, tmp_path / "f.safetensors")
    loaded, meta = load_weights(path)
    assert loaded.chroma_floor == pytest.approx(RECOMMENDED_CHROMA_FLOOR)
    assert meta["config"]["chroma_floor"] == pytest.approx(RECOMMENDED_CHROMA_FLOOR)
    rgb = dark_border_rgb()
    np.testing.assert_allclose(run(loaded, rgb), run(model, rgb), rtol=1e-5, atol=1e-6)
    assert tiny_residual_model().chroma_floor == 0.0  # a config without the key: no floor


def test_untrained_residual_is_exactly_the_classical_base():
    model = tiny_residual_model(residual_scale=0.0)
    rgb = render_fixed_gain(smooth_cube(32, 32), cie1964().normalised, 0.7)
    base_only = run(model, rgb)
    with torch.no_grad():
        model.residual_scale.fill_(0.3)
    assert not np.allclose(run(model, rgb), base_only)
    # the base is root-polynomial regression: linear in its 13 terms
    exps = model.exponents.numpy().astype(np.float64)
    terms = np.prod(rgb.reshape(3, -1).T[:, None, :].astype(np.float64) ** exps, axis=-1)
    expected = (terms @ model.base_weight.numpy().astype(np.float64)).T.reshape(base_only.shape)
    np.testing.assert_allclose(base_only, np.clip(expected, 0, None), atol=1e-5)


def test_known_camera_rerenders_within_one_level_and_is_never_negative():
    model = tiny_residual_model()
    css = cie1964().normalised
    model.set_camera(css)
    cube = smooth_cube(40, 40, seed=1)
    for exposure in (1.0, 0.3, 0.06):
        rgb = quantize(render_fixed_gain(cube, css, exposure))
        out = run(model, rgb)
        assert out.min() >= 0.0
        assert rerender_error(out, rgb, css).max() <= 1 / 255


def test_quantisation_cell_projection_keeps_within_half_a_level_towards_the_network():
    model = tiny_residual_model(residual_scale=2.0)
    css = cie1964().normalised
    model.set_camera(css)
    rgb = quantize(render_fixed_gain(smooth_cube(40, 40, seed=1), css, 0.1))
    exact = run(model, rgb)
    step = 1 / 255
    model.set_input_step(step)
    np.testing.assert_array_equal(run(model, rgb), exact)  # weights not trained for the cell
    model.set_quantization_cell(True)
    cell = run(model, rgb)
    model.set_input_step(0.0)
    np.testing.assert_array_equal(run(model, rgb), exact)  # step 0: the exact projection
    assert cell.min() >= 0.0
    moved = rerender_error(cell, rgb, css)
    assert moved.max() <= step / 2 + 1e-5  # within the cell of values that round to rgb
    assert np.median(moved) > 0.1 * step  # and it used the cell: the network's RGB differs
    with torch.no_grad():
        x = torch.from_numpy(rgb)[None]
        network = model._unprojected(x, model.base_weight.expand(1, -1, -1))[0].numpy()
    # the cell's point nearest to the network's own rendering, so closer to it than exact
    own = np.einsum("cl,lhw->chw", css, network)
    to_own = lambda p: np.abs(np.einsum("cl,lhw->chw", css, p) - own).mean()  # noqa: E731
    assert to_own(cell) < to_own(exact)


def test_render_sigma_switches_the_cell_on_and_is_kept_in_the_weights(tmp_path):
    model = tiny_residual_model(residual_scale=2.0)
    css = cie1964().normalised
    model.set_camera(css)
    rgb = quantize(render_fixed_gain(smooth_cube(40, 40, seed=1), css, 0.1))
    model.set_input_step(1 / 255)
    exact = run(model, rgb)
    model.set_render_sigma(0.1, 0.2)
    soft = run(model, rgb)
    model.set_quantization_cell(True)
    model.set_render_sigma(1e-4, 0.0)
    hard = run(model, rgb)
    model.set_render_sigma(0.1, 0.2)
    error = lambda p: rerender_error(p, rgb, css)  # noqa: E731
    assert error(soft).max() <= 0.5 / 255 + 1e-5
    assert np.median(error(exact)) < np.median(error(soft)) < np.median(error(hard))
    path = save_weights(model, tmp_path / "sigma.safetensors")
    loaded, meta = load_weights(path)
    assert loaded.render_sigma == (0.1, 0.2) and meta["config"]["render_sigma"] == [0.1, 0.2]
    from geohsr.exceptions import WeightsError

    model.geohsr_config["render_sigma"] = [-1.0, 0.2]  # a damaged record
    damaged = save_weights(model, tmp_path / "damaged.safetensors")
    with pytest.raises(WeightsError, match="render_sigma needs two finite values"):
        load_weights(damaged)
    with pytest.raises(ValueError, match="render_sigma"):
        model.set_render_sigma(0.0, 0.0)
    with pytest.raises(ValueError, match="render_sigma"):
        model.set_render_sigma(-1.0, 0.2)


@pytest.mark.parametrize("sigma", [None, (0.1, 0.2)])
def test_cell_projection_is_never_further_from_the_input_than_the_exact_one(sigma):
    """Dark 8-bit pixels near the gamut's edge (e.g. (2, 10, 10) / 255): where the chosen
    point of the cell is out of reach but the input is not, the exact projection is kept."""
    model = tiny_residual_model(residual_scale=2.0)
    css = cie1964().normalised
    model.set_camera(css)
    rgb = np.random.default_rng(5).integers(0, 13, (3, 32, 32)).astype(np.float32) / 255
    model.set_input_step(1 / 255)
    exact = rerender_error(run(model, rgb), rgb, css)
    model.set_quantization_cell(True)
    if sigma is not None:
        model.set_render_sigma(*sigma)
    cell = rerender_error(run(model, rgb), rgb, css)
    assert (cell <= np.maximum(exact, 0.5 / 255) + 1e-5).all()
    assert (cell > 0.5 / 255 + 1e-5).sum() <= (exact > 0.5 / 255 + 1e-5).sum()


@pytest.mark.parametrize("step", [-1.0, float("nan"), float("inf")])
def test_input_step_must_be_finite_and_not_negative(step):
    with pytest.raises(ValueError, match="input step"):
        tiny_residual_model().set_input_step(step)


def test_unknown_camera_is_not_projected_and_never_negative():
    model = tiny_residual_model(residual_scale=3.0)
    rgb = np.random.default_rng(1).uniform(0.0, 1.0, (3, 32, 32)).astype(np.float32)
    out = run(model, rgb)
    assert out.min() >= 0.0
    model.set_camera(cie1964().normalised)
    model.set_camera(None)
    np.testing.assert_array_equal(run(model, rgb), out)


def test_camera_base_fits_the_reference_spectra_better_than_the_generic_base():
    model = tiny_residual_model(residual_scale=0.0)
    cube = smooth_cube(32, 32, seed=5)
    rgb = render_fixed_gain(cube, cie1964().normalised, 1.0)
    generic = np.abs(run(model, rgb) - cube).mean()
    model.set_camera(cie1964().normalised)
    known = np.abs(run(model, rgb) - cube).mean()
    assert known < generic


def test_training_forward_takes_per_sample_cameras():
    model = tiny_residual_model().train()
    rgb = torch.rand(3, 3, 32, 32)
    css = torch.as_tensor(np.stack([cie1964().normalised] * 3))
    known = torch.tensor([True, False, True])
    out = model(rgb, css=css, known=known)
    assert out.shape == (3, 31, 32, 32)
    (out - 1).abs().mean().backward()
    assert model.residual_scale.grad is not None and model.residual_scale.grad != 0
    # the unknown sample uses the generic base and no projection: same as the plain forward
    model.eval()
    with torch.no_grad():
        plain = model(rgb[1:2])
        per_sample = model(rgb, css=css, known=known)[1:2]
    torch.testing.assert_close(per_sample, plain, rtol=1e-4, atol=1e-5)


def test_weights_round_trip_keeps_base_and_reference_spectra(tmp_path):
    model = tiny_residual_model()
    path = save_weights(model, tmp_path / "r.safetensors", {"training_data": "test"})
    loaded, _ = load_weights(path)
    assert isinstance(loaded, ResidualSpectralModel)
    rgb = np.random.default_rng(2).uniform(0, 1, (3, 32, 32)).astype(np.float32)
    np.testing.assert_allclose(run(loaded, rgb), run(model, rgb), rtol=1e-5, atol=1e-6)


def test_paper_models_are_unchanged_by_the_residual_variant():
    """mxr_unet18 keeps its ImageNet input normalisation and its seeded outputs: these sums
    were computed with the code before the residual model existed (commit 37c2f20)."""
    torch.manual_seed(0)
    model = create_model("mxr_unet18", width=0.125).eval()
    torch.manual_seed(1)
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        y = model(x)
    assert y.double().sum().item() == pytest.approx(PAPER_MODEL_OUTPUT_SUM, rel=1e-5)
    assert not isinstance(model, ResidualSpectralModel)


PAPER_MODEL_OUTPUT_SUM = 52271.116899526794


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_root_polynomial_features_are_the_products_of_powers(dtype):
    rgb = torch.rand(4, 5, 3, dtype=dtype) * 2
    rgb[0, 0] = torch.tensor([0.0, 0.5, 0.0], dtype=dtype)  # zero channels
    rgb[1, 1] = -0.25  # negative input counts as zero
    rgb[2, 2] = 0.0  # black
    exponents = torch.as_tensor(root_polynomial_exponents(3), dtype=dtype)
    expected = (rgb.clamp_min(0).unsqueeze(-2) ** exponents).prod(dim=-1)
    features = root_polynomial_features(rgb, exponents)
    torch.testing.assert_close(features, expected, rtol=1e-5, atol=1e-9)
    # terms of zero channels are exactly 0 (a black pixel's base spectrum too): a tiny
    # non-zero value would give it a direction and change the spectral angles scored
    assert torch.equal(features[expected == 0], torch.zeros_like(features[expected == 0]))
    assert not torch.isnan(features).any()
