"""Accuracy benchmark: several models x several test conditions on the same validation scenes.

A condition is a way of making RGB from the validation cubes: one camera response (CIE 1964,
or a camera held out of training) rendered with the deterministic evaluation exposure, and
optionally a fixed-seed real-world degradation (Bayer mosaic + noise + demosaic + JPEG).
Every model is scored on whole images with :func:`~geohsr.training.evaluate.evaluate_model`
(the code path of training validation and ``geohsr evaluate``)::

    report = run_accuracy({"rpr3_cave": model}, scenes, standard_conditions())
    print(format_metrics_table(report))
    print(format_improvement_table(report))
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from torch import nn

from geohsr.spectral.cameras import CIE1964, resolve_cameras
from geohsr.training.camera import CameraSampler
from geohsr.training.datasets.samples import evaluation_pairs
from geohsr.training.datasets.scene import Scene, SceneCache
from geohsr.training.degradations import RealWorldDegradation
from geohsr.training.evaluate import evaluate_model
from geohsr.training.metrics import DEFAULT_EPS

#: Cameras of the Jiang et al. database left out of training the shipped weights.
HELD_OUT_CAMERAS = ("Nikon D5100", "SONY NEX-5N", "Olympus E-PL2")
#: Registry names of the per-pixel regression baselines; the RPR ones are the reference.
BASELINE_MODELS = ("linear", "rpr2", "rpr3")
REFERENCE_MODELS = ("rpr2", "rpr3")
#: The model should reach this relative MRAE reduction over the best reference.
TARGET_REDUCTION = 0.25


@dataclass(frozen=True)
class Condition:
    """One test condition: RGB from ``camera`` (a camera spec, see
    :func:`~geohsr.training.camera.resolve_cameras`), then ``degradation`` if given."""

    key: str
    label: str
    camera: str
    degradation: RealWorldDegradation | None = None

    def to_metadata(self) -> dict[str, Any]:
        """JSON-ready record of the condition."""
        return {
            "key": self.key,
            "label": self.label,
            "camera": self.camera,
            "degradation": self.degradation.to_metadata() if self.degradation else None,
        }


def standard_conditions(
    held_out_cameras: Sequence[str] = HELD_OUT_CAMERAS, jpeg_quality: int = 80
) -> list[Condition]:
    """Clean CIE 1964 RGB, each held-out camera, and CIE 1964 RGB through the real-world
    pipeline (RGGB mosaic, shot + read noise each drawn up to 0.01, bilinear demosaic, JPEG at
    ``jpeg_quality``)."""
    conditions = [Condition("clean", "clean CIE 1964", CIE1964)]
    for name in held_out_cameras:
        key = "camera_" + "".join(c if c.isalnum() else "_" for c in name.lower())
        conditions.append(Condition(key, f"unseen camera {name}", name))
    degradation = RealWorldDegradation(jpeg_quality=(jpeg_quality, jpeg_quality))
    conditions.append(
        Condition("realworld", f"real-world CIE 1964 (JPEG q{jpeg_quality})", CIE1964, degradation)
    )
    return conditions


def run_accuracy(
    models: Mapping[str, nn.Module],
    scenes: Sequence[Scene],
    conditions: Sequence[Condition],
    *,
    seed: int = 0,
    device: str = "cpu",
    on_result: Callable[[str, Condition, dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Score every model (label -> model in eval mode) under every condition.

    Returns ``{"scenes", "seed", "eps", "conditions": [...], "results": {label: {condition key:
    {"mean", "images", "seconds"}}}}``. The degradation of image ``i`` uses a generator seeded
    by ``(seed, i)``, identical for every model. ``on_result`` is called after each score.
    """
    cache = SceneCache()
    results: dict[str, dict[str, Any]] = {label: {} for label in models}
    for condition in conditions:
        camera = CameraSampler(resolve_cameras([condition.camera]))
        pairs = list(
            evaluation_pairs(
                scenes, camera, degradation=condition.degradation, seed=seed, cache=cache
            )
        )
        for label, model in models.items():
            start = time.perf_counter()
            report = evaluate_model(model, pairs, device=device)
            report["seconds"] = round(time.perf_counter() - start, 2)
            results[label][condition.key] = report
            if on_result is not None:
                on_result(label, condition, report)
    return {
        "scenes": [s.name for s in scenes],
        "seed": seed,
        "eps": DEFAULT_EPS,
        "conditions": [c.to_metadata() for c in conditions],
        "results": results,
    }


def mrae_reductions(
    report: Mapping[str, Any],
    model_names: Mapping[str, str],
    references: Sequence[str] = REFERENCE_MODELS,
    baselines: Sequence[str] = BASELINE_MODELS,
) -> list[dict[str, Any]]:
    """Relative MRAE reduction of every non-baseline model over the best reference per condition.

    ``model_names`` maps result labels to registry model names. One row per (model, condition):
    ``{"model", "condition", "mrae", "reference", "reference_mrae", "reduction"}`` with
    ``reduction = 1 - mrae / reference_mrae``. Empty when no reference model was scored.
    """
    results = report["results"]
    reference_labels = [label for label, name in model_names.items() if name in references]
    candidates = [label for label, name in model_names.items() if name not in baselines]
    rows = []
    for label in candidates:
        for condition in report["conditions"]:
            key = condition["key"]
            scored = [ref for ref in reference_labels if key in results[ref]]
            if key not in results[label] or not scored:
                continue
            best = min(scored, key=lambda ref: results[ref][key]["mean"]["mrae"])
            mrae = results[label][key]["mean"]["mrae"]
            reference_mrae = results[best][key]["mean"]["mrae"]
            rows.append(
                {
                    "model": label,
                    "condition": condition["label"],
                    "mrae": mrae,
                    "reference": best,
                    "reference_mrae": reference_mrae,
                    "reduction": 1.0 - mrae / reference_mrae,
                }
            )
    return rows


def format_metrics_table(report: Mapping[str, Any]) -> str:
    """Markdown table, one row per (condition, model): MRAE, RMSE, PSNR, SAM, plus a footer
    naming the scenes, the MRAE guard and the degradation."""
    lines = [
        "| Condition | Model | MRAE | RMSE | PSNR (dB) | SAM (deg) |",
        "|---|---|---:|---:|---:|---:|",
    ]
    guarded = []
    for condition in report["conditions"]:
        for label, per_condition in report["results"].items():
            if condition["key"] not in per_condition:
                continue
            mean = per_condition[condition["key"]]["mean"]
            guarded.append(mean["mrae_guarded"])
            lines.append(
                f"| {condition['label']} | {label} | {mean['mrae']:.4f} | {mean['rmse']:.4f} "
                f"| {mean['psnr']:.2f} | {mean['sam']:.2f} |"
            )
    scenes = report["scenes"]
    lines += [
        "",
        f"Mean over {len(scenes)} whole validation images ({', '.join(scenes)}). "
        f"MRAE = mean(|p - t| / max(t, eps)) with guard eps = {report['eps']:g}: "
        + (
            f"{100 * max(guarded):.2f} % of the target values are below eps and are divided "
            "by eps instead. "
            if guarded
            else ""
        )
        + "PSNR with peak 1 (reflectance); SAM is the mean spectral angle.",
    ]
    for condition in report["conditions"]:
        if condition["degradation"]:
            d = condition["degradation"]
            lines.append(
                f"{condition['label']}: RGGB mosaic, shot and read noise drawn uniformly up to "
                f"{d['shot_max']:g} and {d['read_max']:g}, bilinear demosaic, JPEG quality "
                f"{d['jpeg_quality'][0]}-{d['jpeg_quality'][1]}; seed {report['seed']}."
            )
    return "\n".join(lines)


def format_improvement_table(
    rows: Sequence[Mapping[str, Any]], target: float = TARGET_REDUCTION
) -> str:
    """Markdown table of :func:`mrae_reductions` rows, with whether each meets ``target``."""
    lines = [
        f"| Model | Condition | MRAE | Best RPR | RPR MRAE | MRAE reduction | >= {target:.0%} |",
        "|---|---|---:|---|---:|---:|---|",
    ]
    for row in rows:
        verdict = "yes" if row["reduction"] >= target else "no"
        lines.append(
            f"| {row['model']} | {row['condition']} | {row['mrae']:.4f} | {row['reference']} "
            f"| {row['reference_mrae']:.4f} | {row['reduction']:.1%} | {verdict} |"
        )
    return "\n".join(lines)
