"""Accuracy benchmark at a fixed gain: conditions, metrics, references, tables, model card."""

from __future__ import annotations

import json

import numpy as np
import pytest
import rasterio
from residual_fixtures import tiny_residual_model
from training_fixtures import smooth_cube

from geohsr.exceptions import WeightsError
from geohsr.models import create_model
from geohsr.models.weights import file_sha256, save_weights
from geohsr.spectral.cameras import CameraResponse, cie1964
from geohsr.training.accuracy import (
    Condition,
    TestImage,
    airborne_test_images,
    fit_reference,
    format_improvement_table,
    format_metrics_table,
    image_metrics,
    mrae_reductions,
    reference_data_specs,
    relative_errors_by_level,
    run_accuracy,
    standard_conditions,
)
from geohsr.training.camera import CameraSampler
from geohsr.training.degradations import RealWorldDegradation
from geohsr.training.model_card import render_model_card


def mean(mrae: float, sam: float = 4.5678) -> dict[str, float]:
    return {"mrae": mrae, "rmse": 0.0123456, "psnr": 31.234, "sam": sam, "rerender": 0.001}


def fake_report() -> dict:
    """Two references and one network under two conditions (numbers chosen by hand)."""
    values = {  # label -> (clean, realworld) MRAE
        "rpr2": (0.40, 0.30),
        "rpr3": (0.20, 0.35),
        "net_cave": (0.10, 0.27),
    }
    conditions = [c for c in standard_conditions((), airborne=False) if c.key != "dark"]
    return {
        "test_sets": {"cave": ["a_ms", "b_ms"]},
        "seed": 3,
        "train_cameras": ["cie1964"],
        "conditions": [c.to_metadata() for c in conditions],
        "results": {
            label: {"clean": {"mean": mean(c)}, "realworld": {"mean": mean(r, 4.0)}}
            for label, (c, r) in values.items()
        },
    }


def test_standard_conditions_know_the_camera_only_where_a_user_would():
    conditions = standard_conditions(["Nikon D5100", "SONY NEX-5N"], jpeg_quality=80)
    keys = [c.key for c in conditions]
    assert keys == [
        "clean",
        "dark",
        "realworld",
        "camera_nikon_d5100",
        "camera_sony_nex_5n",
        "airborne",
        "airborne_camera_nikon_d5100",
    ]
    known = {c.key: c.camera_known for c in conditions}
    assert known["clean"] and known["realworld"] and known["airborne"]
    assert not known["camera_nikon_d5100"] and not known["airborne_camera_nikon_d5100"]
    assert conditions[1].exposure == 0.25
    assert conditions[2].degradation.jpeg_quality == (80, 80)


def test_image_metrics_leave_out_dark_targets_and_unscored_bands():
    target = np.full((31, 2, 2), 0.5)
    target[:, 0, 0] = 0.001  # a dark pixel
    pred = target * 1.1
    pred[:, 0, 0] = 0.5  # huge relative error on the dark pixel: not counted
    bands = np.ones(31, bool)
    bands[:3] = False
    pred[:3] = 9.0  # wrong but unscored bands
    metrics = image_metrics(pred, target, bands)
    assert metrics["mrae"] == pytest.approx(0.1)
    assert metrics["sam"] == pytest.approx(0.0, abs=1e-5)
    half = image_metrics(pred * 0.5, target * 0.5, bands, exposure=0.5)
    assert half["mrae"] == pytest.approx(0.1) and half["rmse"] == pytest.approx(metrics["rmse"])


def test_airborne_cubes_are_resampled_and_scored_where_the_sensor_measures(tmp_path):
    wavelengths = np.arange(424.0, 1000.0, 6.0)
    values = np.tile(np.linspace(0.1, 0.5, len(wavelengths))[:, None, None], (1, 4, 5))
    values[0, 0, 0] = -0.01  # slightly negative, as in the CASI data
    path = tmp_path / "air.tif"
    profile = dict(driver="GTiff", width=5, height=4, count=len(wavelengths), dtype="float32")
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(values.astype(np.float32))
        for band, wl in enumerate(wavelengths, start=1):
            dst.update_tags(band, wavelength=str(wl), wavelength_units="nm")
    (image,) = airborne_test_images(tmp_path)
    assert image.cube.shape == (31, 4, 5) and image.cube.min() >= 0
    assert image.bands.tolist() == [False] * 3 + [True] * 28  # 430-700 nm
    np.testing.assert_allclose(image.cube[:3, 1, 1], image.cube[0, 1, 1], rtol=1e-3)  # edge held
    assert image.valid.all()  # one slightly negative value is a surface, not fill


def test_airborne_fill_and_nodata_pixels_are_not_scored(tmp_path):
    wavelengths = np.arange(400.0, 720.0, 10.0)
    values = np.full((len(wavelengths), 4, 5), 0.2, np.float32)
    values[:, 3, 3:] = np.linspace(-0.1, 0.02, len(wavelengths))[:, None]  # swath fill wedge
    values[:, 0, 0] = -9999.0  # the file's nodata value
    path = tmp_path / "air.tif"
    profile = dict(driver="GTiff", width=5, height=4, count=len(wavelengths), dtype="float32")
    with rasterio.open(path, "w", nodata=-9999.0, **profile) as dst:
        dst.write(values)
        for band, wl in enumerate(wavelengths, start=1):
            dst.update_tags(band, wavelength=str(wl), wavelength_units="nm")
    (image,) = airborne_test_images(tmp_path)
    expected = np.ones((4, 5), bool)
    expected[3, 3:] = expected[0, 0] = False
    np.testing.assert_array_equal(image.valid, expected)
    pred = image.cube.copy()
    pred[:, ~expected] = 5.0  # wrong only where nothing is measured
    assert image_metrics(pred, image.cube, image.bands, valid=image.valid)["mrae"] == 0.0
    assert image_metrics(pred, image.cube, image.bands)["mrae"] > 0.0
    rgb = np.full((3, 4, 5), 0.5, np.float32)
    sums = relative_errors_by_level(pred, image.cube, rgb, image.bands, valid=image.valid)
    assert sums[:, 0].sum() == 0.0 and sums[:, 1].sum() == 31 * expected.sum()


def test_camera_references_are_fitted_for_the_camera():
    spectra = smooth_cube(24, 24).reshape(31, -1).T
    other = CameraResponse("other", np.roll(cie1964().css, 3, axis=1) + 0.05)
    generic = fit_reference(2, spectra, [cie1964().normalised, other.normalised])
    own = fit_reference(2, spectra, [cie1964().normalised])
    assert not np.allclose(generic.head.weight.detach(), own.head.weight.detach())


def test_references_are_fitted_on_the_synthetic_aerial_scenes_a_network_saw():
    trained = ["cave:cave", "synthetic-aerial:100", "tiles:/data/pairs"]
    assert reference_data_specs("cave:/here/cave", trained) == [
        "cave:/here/cave",
        "synthetic-aerial:100",
    ]
    assert reference_data_specs("cave:/here/cave", []) == ["cave:/here/cave"]


def test_run_accuracy_scores_networks_and_references_on_identical_images():
    images = {
        "cave": [
            TestImage("s1", smooth_cube(24, 24, seed=5), np.ones(31, bool)),
            TestImage("s2", smooth_cube(24, 32, seed=6), np.ones(31, bool)),
        ]
    }
    noisy = RealWorldDegradation(shot_max=0.05, read_max=0.05, jpeg_quality=(50, 50))
    conditions = [
        Condition("clean", "clean", "cie1964", True),
        Condition("rw", "rw", "cie1964", True, degradation=noisy),
        Condition("air", "air", "cie1964", True, domain="airborne"),  # no such test set: skipped
    ]
    seen = []
    model = tiny_residual_model(residual_scale=0.05)  # a mild residual, as after training
    report = run_accuracy(
        {"a": model, "b": model},
        images,
        conditions,
        train_spectra=smooth_cube(20, 20).reshape(31, -1).T,
        train_cameras=[cie1964()],
        seed=1,
        on_result=lambda label, cond, r: seen.append((label, cond.key)),
    )
    assert seen[:4] == [("a", "clean"), ("b", "clean"), ("rpr2", "clean"), ("rpr3", "clean")]
    assert [c["key"] for c in report["conditions"]] == ["clean", "rw"]
    a, b = report["results"]["a"], report["results"]["b"]
    assert a["rw"]["mean"] == b["rw"]["mean"]  # same seeded degradation for every model
    assert a["clean"]["mean"]["rerender"] <= 1 / 255  # camera known: projected
    assert [img["name"] for img in a["clean"]["images"]] == ["s1", "s2"]
    assert model.camera_known.item() is False  # the camera is reset after scoring
    json.dumps(report)  # JSON-ready


def test_references_fitted_on_each_named_pixel_set_compete_for_best():
    images = {"cave": [TestImage("s1", smooth_cube(24, 24, seed=5), np.ones(31, bool))]}
    matching = smooth_cube(20, 20, seed=5).reshape(31, -1).T  # the test scene's own spectra
    unrelated = np.abs(np.random.default_rng(0).normal(0.3, 0.2, (400, 31))).astype(np.float32)
    report = run_accuracy(
        {"net": tiny_residual_model(residual_scale=0.05)},
        images,
        [Condition("clean", "clean", "cie1964", True)],
        train_spectra={"": unrelated, "own": matching},
        train_cameras=[cie1964()],
    )
    assert report["references"] == ["rpr2", "rpr3", "rpr2:own", "rpr3:own"]
    mrae = {ref: report["results"][ref]["clean"]["mean"]["mrae"] for ref in report["references"]}
    assert mrae["rpr2:own"] < mrae["rpr2"]  # fitted on matching spectra: a stronger reference
    (row,) = mrae_reductions(report, ["net"])
    assert row["reference"] == min(mrae, key=mrae.get)
    assert "rpr2 / rpr3 / rpr2:own / rpr3:own" in format_metrics_table(report)


def test_run_accuracy_scores_only_the_pixels_with_data():
    cube = smooth_cube(24, 24, seed=5)
    padded = np.concatenate([cube, np.full((31, 24, 6), 0.9, np.float32)], axis=2)
    valid = np.zeros((24, 30), bool)
    valid[:, :24] = True
    images = {
        "airborne": [
            TestImage("plain", cube, np.ones(31, bool)),
            TestImage("with_fill", padded, np.ones(31, bool), valid),
        ]
    }
    report = run_accuracy(
        {},
        images,
        [Condition("air", "air", "cie1964", True, domain="airborne")],
        train_spectra=smooth_cube(20, 20).reshape(31, -1).T,
        train_cameras=[cie1964()],
    )
    plain, with_fill = report["results"]["rpr2"]["air"]["images"]  # per pixel: no context
    assert with_fill["pixels"] == plain["pixels"] == 24 * 24
    assert with_fill["mrae"] == pytest.approx(plain["mrae"], rel=1e-6)
    assert with_fill["rmse"] == pytest.approx(plain["rmse"], rel=1e-6)


def test_reductions_compare_with_the_best_rpr_per_condition():
    rows = mrae_reductions(fake_report(), ["net_cave"])
    assert [r["reference"] for r in rows] == ["rpr3", "rpr2"]
    assert rows[0]["reduction"] == pytest.approx(0.5)  # 0.10 vs 0.20
    assert rows[1]["reduction"] == pytest.approx(0.1)  # 0.27 vs 0.30
    table = format_improvement_table(rows, target=0.25).splitlines()
    assert table[2].endswith("| rpr3 | 0.2000 | 4.57 | 50.0% | no |")  # SAM not lower
    assert table[3].endswith("| rpr2 | 0.3000 | 4.00 | 10.0% | no |")


def test_metrics_table_has_a_row_per_model_and_condition_and_states_the_protocol():
    table = format_metrics_table(fake_report())
    rows = [line for line in table.splitlines()[2:] if line.startswith("|")]
    assert len(rows) == 6
    assert rows[0] == (
        "| CAVE clean CIE 1964 (camera known) | rpr2 | 0.4000 | 0.0123 | 31.23 | 4.57 | 0.0010 |"
    )
    assert "Fixed gain" in table and "cave: a_ms, b_ms" in table


def test_model_card_is_rendered_from_metadata_and_matching_report(tmp_path):
    model = create_model("rpr2")
    meta = {
        "training_data": ["cave:/somewhere/cave"],
        "train_scenes": ["t1_ms", "t2_ms"],
        "val_scenes": ["a_ms", "b_ms"],
        "recipe": {"exclude_cameras": ["Nikon D5100"], "degrade_prob": 0.3, "init": None},
        "camera": CameraSampler([cie1964()]).to_metadata(),
        "degradation": RealWorldDegradation().to_metadata(),
        "metrics": {"validation": {"mrae": 0.31, "rmse": 0.01, "psnr": 30.0, "sam": 4.0}},
    }
    path = save_weights(model, tmp_path / "net_cave.safetensors", meta)
    report = fake_report()
    report["models"] = {label: {"sha256": "0" * 64} for label in report["results"]}
    with pytest.raises(WeightsError, match="no results for these weights"):
        render_model_card(path, report)
    report["models"]["net_cave"]["sha256"] = file_sha256(path)
    report["reductions"] = mrae_reductions(report, ["net_cave"])
    card = render_model_card(path, report)
    assert card.startswith("# net_cave\n")
    assert "Training scenes (2): t1_ms, t2_ms." in card
    assert "Cameras held out of training (test only): Nikon D5100." in card
    assert "quantisation cell" not in card  # trained for the exact projection
    assert "| CAVE clean CIE 1964 (camera known) | net_cave | 0.1000 |" in card
    assert "| CAVE clean CIE 1964 (camera known) | rpr3 | 0.2000 |" in card
    assert "- CAVE clean CIE 1964 (camera known): 50.0%" in card
    assert "**not met**" in card
    assert file_sha256(path) in card
    assert "None" not in card and "/somewhere" not in card
    assert "Run through the inference backends" not in card  # no backend runs reported
    assert "':cave' suffix" not in card  # an old report does not say what its references saw
    assert "':cave' suffix" in render_model_card(path, {**report, "references": ["rpr2"]})
    meta["recipe"]["quantize_cell"] = True
    cell = save_weights(model, tmp_path / "net_cave.safetensors", meta)
    report["models"]["net_cave"]["sha256"] = file_sha256(cell)
    assert "8-bit quantisation cell of their RGB" in render_model_card(cell, report)
    assert "sqrt(level)" not in render_model_card(cell, report)
    model.geohsr_config["render_sigma"] = [0.1, 0.2]  # as set_render_sigma records it
    sigma = save_weights(model, tmp_path / "net_cave.safetensors", meta)
    report["models"]["net_cave"]["sha256"] = file_sha256(sigma)
    assert "0.1 + 0.2 sqrt(level) levels" in render_model_card(sigma, report)
    assert "saturation is scaled" not in render_model_card(sigma, report)  # no gain
    model.geohsr_config["bright_residual_gain"] = 0.75  # as set_bright_residual_gain records
    gain = save_weights(model, tmp_path / "net_cave.safetensors", meta)
    report["models"]["net_cave"]["sha256"] = file_sha256(gain)
    assert "saturation is scaled by 0.75" in render_model_card(gain, report)
    report["results"]["net_cave@openvino-int8"] = {
        key: {"mean": {**value["mean"], "mrae": value["mean"]["mrae"] * 1.005}}
        for key, value in report["results"]["net_cave"].items()
    }
    card = render_model_card(path, report)
    assert (
        "| CAVE clean CIE 1964 (camera known) | net_cave@openvino-int8 | 0.1005 | +0.50% |" in card
    )


def test_relative_errors_by_level_bins_by_input_brightness():
    rgb = np.zeros((3, 1, 3), np.float32)
    rgb[:, 0, 1] = 4 / 255  # 4 levels: the 2-8 bin
    rgb[:, 0, 2] = 100 / 255  # the 32+ bin
    target = np.full((31, 1, 3), 0.5, np.float32)
    target[:, 0, 0] = 0.005  # a black pixel with a dark target: not scored
    pred = target * np.array([1.0, 1.1, 0.8], np.float32)
    bands = np.ones(31, bool)
    bands[30] = False
    sums = relative_errors_by_level(pred, target, rgb, bands)
    assert sums.shape == (5, 2)
    np.testing.assert_allclose(sums[:, 1], [0, 0, 30, 0, 30])
    np.testing.assert_allclose(sums[:, 0], [0, 0, 3.0, 0, 6.0], rtol=1e-5)


def test_reference_cameras_are_the_training_cameras_minus_the_held_out_ones():
    from geohsr.spectral.cameras import jiang28_path
    from geohsr.training.accuracy import reference_cameras

    if not jiang28_path().is_file():
        pytest.skip("camera_sensitivities_jiang28.npz not available")
    recorded = {"camera": {"cameras": [{"name": "cie1964"}, {"name": "Nikon D5100"}]}}
    assert [c.name.lower() for c in reference_cameras(recorded)] == ["cie1964"]
    assert len(reference_cameras(recorded, held_out=())) == 2
    unrecorded = [c.name.lower() for c in reference_cameras({})]  # CIE 1964 + Jiang's 28
    assert unrecorded[0] == "cie1964" and "nikon d5100" not in unrecorded
