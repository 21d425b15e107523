"""Accuracy benchmark: conditions, the run on a tiny scene, the tables, the model card."""

from __future__ import annotations

import json

import numpy as np
import pytest
from baseline_fixtures import bump_cube, scene_of

from geohsr.exceptions import WeightsError
from geohsr.models.weights import file_sha256, save_weights
from geohsr.spectral.cameras import cie1964
from geohsr.training.accuracy import (
    Condition,
    format_improvement_table,
    format_metrics_table,
    mrae_reductions,
    run_accuracy,
    standard_conditions,
)
from geohsr.training.baseline_fit import PixelSampling, fit_baseline, sample_training_pixels
from geohsr.training.camera import CameraSampler
from geohsr.training.degradations import RealWorldDegradation
from geohsr.training.model_card import render_model_card


def mean(mrae: float) -> dict[str, float]:
    return {"mrae": mrae, "rmse": 0.0123456, "psnr": 31.234, "sam": 4.5678, "mrae_guarded": 0.02}


def fake_report() -> dict:
    """Three baselines and one network under two conditions (MRAE chosen by hand)."""
    mrae = {  # label -> (clean, realworld)
        "linear_cave": (0.50, 0.60),
        "rpr2_cave": (0.40, 0.30),
        "rpr3_cave": (0.20, 0.35),
        "net_cave": (0.10, 0.27),
    }
    return {
        "scenes": ["a_ms", "b_ms"],
        "seed": 3,
        "eps": 1e-3,
        "conditions": [c.to_metadata() for c in standard_conditions(held_out_cameras=())],
        "results": {
            label: {"clean": {"mean": mean(c)}, "realworld": {"mean": mean(r)}}
            for label, (c, r) in mrae.items()
        },
    }


MODEL_NAMES = {"linear_cave": "linear", "rpr2_cave": "rpr2", "rpr3_cave": "rpr3", "net_cave": "n"}


def test_standard_conditions_cover_clean_each_camera_and_realworld():
    conditions = standard_conditions(["Nikon D5100", "SONY NEX-5N"], jpeg_quality=80)
    keys = [c.key for c in conditions]
    assert keys == ["clean", "camera_nikon_d5100", "camera_sony_nex_5n", "realworld"]
    assert conditions[-1].degradation.jpeg_quality == (80, 80)
    assert [c.degradation for c in conditions[:-1]] == [None] * 3


def test_metrics_table_has_a_row_per_model_and_condition_and_states_the_guard():
    table = format_metrics_table(fake_report())
    lines = table.splitlines()
    assert lines[0] == "| Condition | Model | MRAE | RMSE | PSNR (dB) | SAM (deg) |"
    rows = [line for line in lines[2:] if line.startswith("|")]
    assert len(rows) == 8
    assert rows[0] == "| clean CIE 1964 | linear_cave | 0.5000 | 0.0123 | 31.23 | 4.57 |"
    assert rows[-1].startswith("| real-world CIE 1964 (JPEG q80) | net_cave | 0.2700 |")
    assert "guard eps = 0.001" in table and "2.00 % of the target values" in table
    assert "JPEG quality 80-80; seed 3" in table
    assert "2 whole validation images (a_ms, b_ms)" in table


def test_reductions_compare_with_the_best_rpr_per_condition():
    rows = mrae_reductions(fake_report(), MODEL_NAMES)
    assert [(r["model"], r["reference"]) for r in rows] == [
        ("net_cave", "rpr3_cave"),
        ("net_cave", "rpr2_cave"),
    ]
    assert rows[0]["reduction"] == pytest.approx(0.5)  # 0.10 vs 0.20
    assert rows[1]["reduction"] == pytest.approx(0.1)  # 0.27 vs 0.30
    table = format_improvement_table(rows, target=0.25).splitlines()
    assert table[2].endswith("| rpr3_cave | 0.2000 | 50.0% | yes |")
    assert table[3].endswith("| rpr2_cave | 0.3000 | 10.0% | no |")


def test_no_reductions_without_a_reference_model():
    report = fake_report()
    assert mrae_reductions(report, {"net_cave": "n", "linear_cave": "linear"}) == []


@pytest.fixture(scope="module")
def fitted_rpr2():
    camera = CameraSampler([cie1964()])
    rgb, spectra = sample_training_pixels(
        [scene_of(bump_cube(24, 24))], camera, PixelSampling(1, 400)
    )
    return fit_baseline("rpr2", rgb, spectra)


def test_run_accuracy_scores_every_model_on_identical_degraded_images(fitted_rpr2):
    scenes = [scene_of(bump_cube(24, 24, seed=5), "s1"), scene_of(bump_cube(24, 32, seed=6), "s2")]
    noisy = RealWorldDegradation(shot_max=0.05, read_max=0.05, jpeg_quality=(50, 50))
    conditions = [Condition("clean", "clean", "cie1964"), Condition("rw", "rw", "cie1964", noisy)]
    seen = []
    report = run_accuracy(
        {"a": fitted_rpr2, "b": fitted_rpr2},
        scenes,
        conditions,
        seed=1,
        on_result=lambda label, cond, r: seen.append((label, cond.key)),
    )
    assert seen == [("a", "clean"), ("b", "clean"), ("a", "rw"), ("b", "rw")]
    assert report["scenes"] == ["s1", "s2"]
    a, b = report["results"]["a"], report["results"]["b"]
    assert a["rw"]["mean"] == b["rw"]["mean"]  # same seeded degradation for every model
    assert a["rw"]["mean"]["mrae"] > a["clean"]["mean"]["mrae"]
    assert [img["name"] for img in a["clean"]["images"]] == ["s1@cie1964", "s2@cie1964"]
    json.dumps(report)  # JSON-ready


def test_model_card_is_rendered_from_metadata_and_matching_report(tmp_path, fitted_rpr2):
    meta = {
        "training_data": ["cave:/somewhere/cave"],
        "train_scenes": ["t1_ms", "t2_ms"],
        "val_scenes": ["a_ms", "b_ms"],
        "recipe": {
            "ridge": 1e-6,
            "exclude_cameras": ["Nikon D5100"],
            "degrade_prob": 0.3,
            "init": None,
        },
        "camera": CameraSampler([cie1964()]).to_metadata(),
        "degradation": RealWorldDegradation().to_metadata(),
        "metrics": {"validation": mean(0.31)},
    }
    path = save_weights(fitted_rpr2, tmp_path / "rpr2_cave.safetensors", meta)
    report = fake_report()
    report["models"] = {
        label: {"model": name, "sha256": "0" * 64} for label, name in MODEL_NAMES.items()
    }
    with pytest.raises(WeightsError, match="no results for these weights"):
        render_model_card(path, report)
    report["models"]["rpr2_cave"]["sha256"] = file_sha256(path)
    card = render_model_card(path, report)
    assert card.startswith("# rpr2_cave\n")
    assert "CAVE Multispectral Image Database" in card
    assert "Training scenes (2): t1_ms, t2_ms." in card
    assert "Cameras held out of training (test only): Nikon D5100." in card
    assert "| clean CIE 1964 | rpr2_cave | 0.4000 | 0.0123 | 31.23 | 4.57 |" in card
    assert "| real-world CIE 1964 (JPEG q80) | rpr2_cave | 0.3000 |" in card
    assert "MRAE 0.3100" in card and file_sha256(path) in card
    assert "None" not in card and "/somewhere" not in card


def test_network_card_lists_its_reduction_over_rpr(tmp_path, fitted_rpr2):
    path = save_weights(fitted_rpr2, tmp_path / "net_cave.safetensors", {})
    report = fake_report()
    report["models"] = {label: {"sha256": "0" * 64} for label in MODEL_NAMES}
    report["models"]["net_cave"]["sha256"] = file_sha256(path)
    report["reductions"] = mrae_reductions(report, MODEL_NAMES)
    card = render_model_card(path, report)
    assert "| clean CIE 1964 | rpr3_cave | 0.2000 |" in card  # the reference row
    assert "- clean CIE 1964: 50.0%" in card and "- real-world CIE 1964 (JPEG q80): 10.0%" in card
    assert np.isfinite(report["reductions"][0]["reduction"])
