"""Colour science in geohsr.spectral: normalisation, rendering, metamer sets, encodings."""

import subprocess
import sys

import numpy as np
import pytest
from training_fixtures import smooth_cube

from geohsr.exceptions import InputError
from geohsr.spectral.cameras import cie1964, normalise_css, resolve_cameras
from geohsr.spectral.encoding import decode_input, linear_to_srgb, srgb_to_linear
from geohsr.spectral.metamer import (
    SATURATION_LEVEL,
    fundamental_metamer_matrix,
    project_nonnegative,
    project_to_metamer_set,
    rerender_error,
)
from geohsr.spectral.render import quantize, render_fixed_gain


def test_normalised_response_renders_white_to_one():
    css = cie1964().normalised
    white = np.ones((31, 2, 2), np.float32)
    np.testing.assert_allclose(render_fixed_gain(white, css, 1.0), 1.0, rtol=1e-5)
    np.testing.assert_allclose(render_fixed_gain(white, css, 0.25), 0.25, rtol=1e-5)
    with pytest.raises(InputError, match="no sensitivity"):
        normalise_css(np.zeros((3, 31)))


def test_fundamental_metamer_matrix_is_a_right_inverse():
    css = cie1964().normalised
    a = fundamental_metamer_matrix(css)
    np.testing.assert_allclose(css @ a, np.eye(3), atol=1e-9)


def test_projection_rerenders_real_like_spectra_and_keeps_the_metameric_black():
    css = cie1964().normalised
    cube = smooth_cube(24, 24)
    rgb = render_fixed_gain(cube, css, 0.8)
    guess = np.clip(cube * 0.8 + 0.05 * np.sin(np.arange(31))[:, None, None], 0, None)
    projected = project_to_metamer_set(guess, rgb, css)
    assert projected.min() >= 0
    assert rerender_error(projected, rgb, css).max() < 1e-4
    # the true spectra are in the set: projecting them changes nothing
    np.testing.assert_allclose(project_to_metamer_set(cube * 0.8, rgb, css), cube * 0.8, atol=1e-5)


def test_alternation_on_the_pixels_that_need_it_equals_it_on_every_pixel():
    """Only pixels with negatives after the first projection alternate; the result is the
    plain alternation's on every pixel (two images with different cameras, channels-last
    input, saturated pixels)."""
    import torch

    cameras = [cie1964().normalised, resolve_cameras(["cie1964"])[0].normalised[::-1].copy()]
    css = torch.tensor(np.stack(cameras), dtype=torch.float32)  # (2, 3, 31)
    projector = torch.tensor(np.stack([fundamental_metamer_matrix(c) for c in cameras]))
    projector = projector.float()
    cube = torch.tensor(np.stack([smooth_cube(16, 20, seed=1), smooth_cube(16, 20, seed=2)]))
    cube = cube * 0.2  # dark, so that the noisy guess projects below 0 in places
    rgb = torch.einsum("bcl,blhw->bchw", css, cube)
    rgb[0, :, :2, :2] = 1.0  # saturated
    noise = torch.tensor(np.random.default_rng(0).normal(0, 0.08, cube.shape), dtype=cube.dtype)
    guess = (cube + noise).contiguous(memory_format=torch.channels_last)
    expected = guess.clone()
    unclipped = (rgb < SATURATION_LEVEL).all(dim=1, keepdim=True)
    for _ in range(20):  # the plain alternation on every pixel
        gap = rgb - torch.einsum("bcl,blhw->bchw", css, expected)
        expected = expected + torch.einsum("blc,bchw->blhw", projector, gap) * unclipped
        expected = expected.clamp_min(0)
    some_need_it = (
        guess
        + torch.einsum(
            "blc,bchw->blhw", projector, rgb - torch.einsum("bcl,blhw->bchw", css, guess)
        )
        < 0
    ).any(1)
    assert 0 < some_need_it.float().mean() < 1
    result = project_nonnegative(guess, rgb, css, projector, alternations=20)
    torch.testing.assert_close(result, expected, rtol=0, atol=1e-5)


def test_clipped_pixels_are_left_as_predicted():
    css = cie1964().normalised
    rgb = np.ones((3, 2, 2), np.float32)
    guess = np.full((31, 2, 2), 2.0, np.float32)
    np.testing.assert_array_equal(project_to_metamer_set(guess, rgb, css), guess)


def test_srgb_round_trip_and_known_values():
    x = np.linspace(0, 1, 101, dtype=np.float32)
    np.testing.assert_allclose(linear_to_srgb(srgb_to_linear(x)), x, atol=1e-5)
    assert srgb_to_linear(np.float32(0.5)) == pytest.approx(0.21404, abs=1e-4)
    np.testing.assert_array_equal(decode_input(x, "linear"), x)
    assert np.isnan(decode_input(np.array([np.nan], np.float32), "srgb")[0])
    with pytest.raises(InputError, match="encoding"):
        decode_input(x, "gamma")


def test_quantize_to_8_bits():
    np.testing.assert_allclose(quantize(np.array([0.0, 0.5, 1.2])), [0, 128 / 255, 1])


def test_training_cameras_in_weights_resolve_without_the_database(monkeypatch, tmp_path):
    monkeypatch.setenv("GEOHSR_CAMERA_SENSITIVITIES", str(tmp_path / "missing.npz"))
    known = [cie1964().__class__("My Drone", cie1964().css)]
    assert resolve_cameras(["my drone"], known=known)[0].name == "My Drone"
    with pytest.raises(InputError, match="not available"):
        resolve_cameras(["Canon 5DMarkII"])


def test_inference_preview_and_accessor_never_import_training():
    code = (
        "import sys, geohsr.inference.scene, geohsr.inference.predictor, geohsr.preview, "
        "geohsr.accessor, geohsr.batch.worker, geohsr.models.residual\n"
        "bad = sorted(m for m in sys.modules if m.startswith('geohsr.training'))\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_projection_reaches_narrow_band_colours_from_a_poor_guess():
    """Saturated colours of narrow-band spectra sit near the edge of the camera's gamut, where
    alternating projections converge slowly: the Newton step finishes them."""
    css = cie1964().normalised
    wl = np.arange(400, 701, 10, dtype=np.float32)
    centres = np.linspace(420, 680, 16, dtype=np.float32)
    spectra = np.exp(-(((wl[:, None] - centres[None]) / 30.0) ** 2))[:, None, :]  # (31, 1, 16)
    rgb = render_fixed_gain(spectra * 0.8, css, 1.0)
    guess = np.full_like(spectra, 0.3)
    projected = project_to_metamer_set(guess, rgb, css)
    assert projected.min() >= 0
    assert rerender_error(projected, rgb, css).max() <= 1 / 255
    assert projected.max() <= 3 * max(guess.max(), rgb.max())


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("400,1,1,1\n\n700,1,1,1\n", None),  # blank line: fine
        ("400,1,1,1\n700,1,1,1\n", "not independent"),
        ("400,1,0.5,nan\n700,1,0.5,0.1\n", "finite"),
        ("400,1,0.5,-1\n700,1,0.5,0.1\n", ">= 0"),
        ("400,1,0.5,0.1,9\n700,1,0.5,0.1,9\n", "four numbers"),
    ],
)
def test_camera_csv_problems_are_input_errors(tmp_path, text, message):
    from geohsr.spectral.cameras import camera_from_csv

    path = tmp_path / "cam.csv"
    if message is None:
        path.write_text("wavelength,r,g,b\n400,1,0.2,0.1\n\n550,0.2,1,0.2\n700,0.1,0.2,1\n")
        assert camera_from_csv(path).css.shape == (3, 31)
        return
    path.write_text(text)
    with pytest.raises(InputError, match=message):
        camera_from_csv(path)


def test_camera_csv_header_gives_the_column_order_and_missing_files_are_input_errors(tmp_path):
    from geohsr.spectral.cameras import camera_from_csv

    rows = ["400,1,0.2,0.1", "550,0.2,1,0.2", "700,0.1,0.2,1"]
    (tmp_path / "rgb.csv").write_text("\n".join(["wavelength,r,g,b", *rows]))
    swapped = [",".join([r.split(",")[0], *r.split(",")[1:][::-1]]) for r in rows]
    (tmp_path / "bgr.csv").write_text("\n".join(["nm,blue,green,red", *swapped]))
    np.testing.assert_allclose(
        camera_from_csv(tmp_path / "rgb.csv").css, camera_from_csv(tmp_path / "bgr.csv").css
    )
    with pytest.raises(InputError, match="cannot read"):
        camera_from_csv(tmp_path / "missing.csv")
    with pytest.raises(InputError, match="cannot read"):
        camera_from_csv(tmp_path)


def test_quantization_cell_target_clamps_towards_the_rendering_and_keeps_clipped_channels():
    import torch

    from geohsr.spectral.metamer import SATURATION_LEVEL, quantization_cell_target

    rgb = torch.tensor([0.5, 0.2, 1.0]).view(1, 3, 1, 1)
    rendered = torch.tensor([0.51, 0.2005, 0.9]).view(1, 3, 1, 1)
    step = 1 / 255
    target = quantization_cell_target(rgb, rendered, step)[0, :, 0, 0]
    assert target[0] == pytest.approx(0.5 + step / 2)  # clamped to the cell's edge
    assert target[1] == pytest.approx(0.2005)  # inside the cell: the rendering itself
    assert target[2] == 1.0  # a clipped channel keeps its value
    top = torch.full((1, 3, 1, 1), 254 / 255)
    up = quantization_cell_target(top, top + 1, step)
    assert bool((up < SATURATION_LEVEL).all())  # never moved up to the saturation level
    assert torch.equal(quantization_cell_target(rgb, rendered, 0.0), rgb)


def test_cell_target_with_a_rendering_error_is_the_truncated_normal_mean():
    import torch

    from geohsr.spectral.metamer import quantization_cell_target

    step = 1 / 255
    rgb = torch.full((1, 3, 1, 4), 10 * step)
    offsets = torch.tensor([0.2, -0.4, 3.0, -40.0]) * step  # in the cell, near, far, very far
    rendered = rgb + offsets.view(1, 1, 1, 4)
    clamp = quantization_cell_target(rgb, rendered, step)
    precise = quantization_cell_target(rgb, rendered, step, (1e-4, 0.0))
    torch.testing.assert_close(precise, clamp)  # a precise rendering: the nearest point
    vague = quantization_cell_target(rgb, rendered, step, (50.0, 0.0))
    assert (vague - rgb).abs().max() < 0.02 * step  # an unreliable one: the centre
    middle = quantization_cell_target(rgb, rendered, step, (0.5, 0.0))
    assert bool(torch.isfinite(middle).all()) and (middle - rgb).abs().max() <= step / 2
    shift = (middle - rgb)[0, 0, 0] / step
    assert 0 < shift[0] < 0.2 and -0.4 < shift[1] < 0  # pulled towards the centre
    # the truncated normal's mean, by numerical integration (in steps)
    x = torch.linspace(-0.5, 0.5, 20001, dtype=torch.float64)
    for got, mean in zip(shift.tolist(), (offsets / step).tolist(), strict=True):
        log_weight = -0.5 * ((x - mean) / 0.5) ** 2
        weight = torch.exp(log_weight - log_weight.max())
        assert got == pytest.approx(float((x * weight).sum() / weight.sum()), abs=1e-3)
