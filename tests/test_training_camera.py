"""Camera simulation and real-world degradations."""

from __future__ import annotations

import numpy as np
import pytest
from training_fixtures import smooth_cube

from geohsr.exceptions import InputError
from geohsr.spectral import WAVELENGTHS_NM
from geohsr.spectral.cameras import (
    CameraResponse,
    camera_from_csv,
    cie1964,
    jiang28_path,
    resolve_cameras,
)
from geohsr.spectral.render import exposure_gain, render_rgb, shift_css, white_balance
from geohsr.training.camera import CameraSampler, CameraSampling
from geohsr.training.degradations import (
    RealWorldDegradation,
    add_sensor_noise,
    bayer_mosaic,
    demosaic_bilinear,
    jpeg_roundtrip,
)


def test_cie1964_shape_and_peaks():
    css = cie1964().css
    assert css.shape == (3, 31) and css.dtype == np.float32
    x_bar, y_bar, z_bar = css
    assert WAVELENGTHS_NM[np.argmax(y_bar)] == 560  # y-bar peaks at 556 nm (10 nm grid: 560)
    assert WAVELENGTHS_NM[np.argmax(z_bar)] == 450
    assert WAVELENGTHS_NM[np.argmax(x_bar)] == 600
    assert (css >= 0).all()


def test_cie1964_matches_colour_science():
    colour = pytest.importorskip("colour")
    cmfs = colour.MSDS_CMFS["CIE 1964 10 Degree Standard Observer"].copy()
    reference = cmfs.align(colour.SpectralShape(400, 700, 10)).values.T
    np.testing.assert_allclose(cie1964().css, reference, atol=1e-6)


def test_render_rgb_clips_and_is_linear_below_one():
    cube = smooth_cube(8, 8)
    css = cie1964().css
    low = render_rgb(cube, css, 0.01)
    np.testing.assert_allclose(render_rgb(cube, css, 0.02), 2 * low, rtol=1e-5)
    bright = render_rgb(cube, css, 100.0)
    assert bright.max() == 1.0 and bright.min() >= 0.0 and bright.shape == (3, 8, 8)


def test_white_balance_and_exposure_gain():
    css = cie1964().css
    white = np.ones((31, 4, 4), dtype=np.float32)
    np.testing.assert_allclose(render_rgb(white, css, white_balance(css)), 1.0, rtol=1e-5)
    cube = smooth_cube(16, 16)
    gain = exposure_gain(cube, css, level=0.9, percentile=100.0)
    assert render_rgb(cube, css, gain).max() == pytest.approx(0.9, rel=1e-4)
    dark = exposure_gain(np.zeros((31, 4, 4), np.float32), css, max_gain=4.0)
    np.testing.assert_allclose(dark, 4.0 * white_balance(css), rtol=1e-6)


def test_sampler_is_deterministic_given_the_generator():
    cube = smooth_cube(16, 16)
    cameras = [cie1964(), CameraResponse("flat", np.ones((3, 31), np.float32) * 0.5)]
    sampler = CameraSampler(cameras, CameraSampling(mix_prob=0.5, shift_nm=5, wb_jitter=0.1))
    a = sampler.render(cube, np.random.default_rng(3))
    b = sampler.render(cube, np.random.default_rng(3))
    c = sampler.render(cube, np.random.default_rng(4))
    np.testing.assert_array_equal(a.rgb, b.rgb)
    assert not np.array_equal(a.rgb, c.rgb)
    assert a.rgb.dtype == np.float32 and 0.0 <= a.rgb.min() and a.rgb.max() <= 1.0


def test_fixed_gain_rendering_scales_the_target_and_never_normalises_brightness():
    cube = smooth_cube(16, 16)
    sampler = CameraSampler([cie1964()], CameraSampling(exposure=(0.05, 1.5)))
    exposures = []
    for seed in range(40):
        sample = sampler.render(cube, np.random.default_rng(seed))
        exposures.append(sample.exposure)
        np.testing.assert_allclose(sample.target, cube * sample.exposure, rtol=1e-6)
        unclipped = np.clip(sample.exposure * np.einsum("cl,lhw->chw", sample.css, cube), 0, 1)
        np.testing.assert_allclose(sample.rgb, unclipped, rtol=1e-5, atol=1e-6)
    assert min(exposures) >= 0.05 and max(exposures) <= 1.5
    assert min(exposures) < 0.15 and max(exposures) > 0.8  # log-uniform over the range


def test_spectral_tilt_changes_spectra_smoothly_and_renders_the_tilted_target():
    cube = smooth_cube(16, 16)
    sampler = CameraSampler([cie1964()], CameraSampling(spectral_tilt=0.3))
    factors = []
    for seed in range(20):
        sample = sampler.render(cube, np.random.default_rng(seed))
        factor = (sample.target / (cube * sample.exposure))[:, 3, 5]  # per band, any pixel
        np.testing.assert_allclose(
            sample.target / (cube * sample.exposure),
            np.broadcast_to(factor[:, None, None], cube.shape),
            rtol=1e-5,
        )
        assert factor.mean() == pytest.approx(1.0, rel=1e-5) and (factor > 0).all()
        assert np.abs(np.diff(np.log(factor), 2)).max() < 0.02  # smooth: a quadratic in log
        rendered = np.clip(np.einsum("cl,lhw->chw", sample.css, sample.target), 0, 1)
        np.testing.assert_allclose(sample.rgb, rendered, rtol=1e-5, atol=1e-6)  # consistent
        factors.append(factor)
    spread = np.log(np.array(factors))[:, [0, -1]]  # log factor at 400 and 700 nm
    assert 0.1 < spread.std() < 1.0  # it varies, by about the strength asked
    for bad in (-0.1, float("nan"), float("inf"), 5.0):
        with pytest.raises(InputError, match="spectral tilt"):
            CameraSampling(spectral_tilt=bad)
    untilted = CameraSampler([cie1964()], CameraSampling()).render(cube, np.random.default_rng(0))
    np.testing.assert_allclose(untilted.target, cube * untilted.exposure, rtol=1e-6)


def test_quantised_samples_sit_on_8_bit_levels_and_known_flag_follows_probability():
    cube = smooth_cube(16, 16)
    sampler = CameraSampler([cie1964()], CameraSampling(quantize_prob=1.0, known_prob=0.5))
    samples = [sampler.render(cube, np.random.default_rng(s)) for s in range(40)]
    levels = samples[0].rgb * 255
    np.testing.assert_allclose(levels, np.round(levels), atol=1e-3)
    assert 5 < sum(s.known for s in samples) < 35


def test_shift_css_moves_the_peak():
    css = cie1964().css
    shifted = shift_css(css, 10.0)
    assert WAVELENGTHS_NM[np.argmax(shifted[1])] == 570


def test_camera_from_csv_resamples_and_checks_range(tmp_path):
    path = tmp_path / "cam.csv"
    wl = np.arange(380, 781, 5)
    rows = ["wavelength,r,g,b"] + [
        f"{w},{w / 780},{np.exp(-(((w - 550) / 60) ** 2))},{1 - w / 780}" for w in wl
    ]
    path.write_text("\n".join(rows))
    camera = camera_from_csv(path)
    assert camera.name == "cam" and camera.css.shape == (3, 31)
    np.testing.assert_allclose(camera.css[0] / camera.css[0, -1], WAVELENGTHS_NM / 700, rtol=1e-5)
    short = tmp_path / "short.csv"
    short.write_text("\n".join(f"{w},1,1,1" for w in range(450, 701, 10)))
    with pytest.raises(InputError, match="cover"):
        camera_from_csv(short)


def test_resolve_cameras_names_and_errors():
    if not jiang28_path().is_file():
        pytest.skip("camera_sensitivities_jiang28.npz not available")
    cameras = resolve_cameras(["cie1964", "canon 5dmarkii", "jiang28"])
    assert cameras[0].name == "cie1964" and cameras[1].name == "Canon 5DMarkII"
    assert len(cameras) == 2 + 28
    with pytest.raises(InputError, match="unknown camera"):
        resolve_cameras(["Kodak Brownie"])


def test_mosaic_demosaic_keeps_constant_images_and_sampled_pixels():
    rgb = np.stack([np.full((6, 8), v, np.float32) for v in (0.2, 0.5, 0.8)])
    np.testing.assert_allclose(demosaic_bilinear(bayer_mosaic(rgb)), rgb, atol=1e-6)
    random = np.random.default_rng(0).random((3, 6, 8)).astype(np.float32)
    raw = bayer_mosaic(random)
    out = demosaic_bilinear(raw)
    assert out[0, 0, 0] == pytest.approx(random[0, 0, 0])  # R sampled at (0, 0)
    assert out[2, 1, 1] == pytest.approx(random[2, 1, 1])  # B sampled at (1, 1)


def test_noise_statistics_and_jpeg():
    rng = np.random.default_rng(0)
    flat = np.full((200, 200), 0.5, np.float32)
    noisy = add_sensor_noise(flat, rng, shot=0.01, read=0.02)
    assert noisy.std() == pytest.approx(np.sqrt(0.01 * 0.5 + 0.02**2), rel=0.05)
    np.testing.assert_array_equal(add_sensor_noise(flat, rng, shot=0.0, read=0.0), flat)
    rgb = np.repeat(smooth_cube(32, 32)[:3], 1, axis=0)
    decoded = jpeg_roundtrip(rgb, 95)
    assert decoded.shape == rgb.shape and np.abs(decoded - rgb).mean() < 0.01
    assert np.abs(jpeg_roundtrip(rgb, 5) - rgb).mean() > np.abs(decoded - rgb).mean()


def test_real_world_degradation_changes_image_deterministically():
    rgb = smooth_cube(32, 32)[:3]
    degrade = RealWorldDegradation()
    a = degrade(rgb, np.random.default_rng(1))
    b = degrade(rgb, np.random.default_rng(1))
    np.testing.assert_array_equal(a, b)
    assert a.shape == rgb.shape and 0 <= a.min() and a.max() <= 1
    assert np.abs(a - rgb).mean() > 1e-3


def test_a_camera_name_without_the_database_says_how_to_point_to_it(tmp_path, monkeypatch):
    monkeypatch.setenv("GEOHSR_CAMERA_SENSITIVITIES", str(tmp_path / "missing.npz"))
    with pytest.raises(InputError, match="set GEOHSR_CAMERA_SENSITIVITIES to your copy of"):
        resolve_cameras(["Nikon D5100"])
