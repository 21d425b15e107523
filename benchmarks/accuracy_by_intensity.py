"""Where the MRAE comes from: held-out CAVE MRAE per input brightness (the pixel's mean
intensity in 8-bit levels), for each network, its classical base alone (gamma = 0) and RPR-3
fitted for the camera, under the camera-known conditions of benchmarks/accuracy.py (clean,
exposure x0.25, real-world). Shows whether the learnt residual helps or harms at each
brightness::

    python benchmarks/accuracy_by_intensity.py [--weights W ...] [--no-shipped]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from accuracy import VAL_SCENES, shipped_networks

from geohsr.models.inference_prep import prepare_for_inference
from geohsr.models.weights import load_weights
from geohsr.shared_data import shared_data_dir
from geohsr.spectral.cameras import resolve_cameras
from geohsr.training.accuracy import (
    INPUT_STEP,
    LEVEL_EDGES,
    cave_test_images,
    fit_reference,
    predict_with_camera,
    relative_errors_by_level,
    render_condition,
    standard_conditions,
    training_pixels,
)
from geohsr.training.datasets import load_data_specs

CONDITIONS = ("clean", "dark", "realworld")


def networks(specs: list[str]) -> dict[str, torch.nn.Module]:
    """Each network and, for residual ones, its base alone (``label+base``)."""
    models = {}
    for spec in specs:
        model, _ = load_weights(spec)
        label = Path(model.geohsr_weights).stem
        models[label] = prepare_for_inference(model)
        if hasattr(model, "residual_scale"):
            base, _ = load_weights(spec)
            with torch.no_grad():
                base.residual_scale.zero_()
            models[f"{label}+base"] = prepare_for_inference(base)
    return models


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=f"cave:{shared_data_dir() / 'cave'}")
    parser.add_argument("--weights", action="append", default=[], help="extra weights file")
    parser.add_argument("--no-shipped", action="store_true", help="skip pretrained/ networks")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    specs = ([] if args.no_shipped else shipped_networks()) + args.weights
    if not specs:
        sys.exit("no network to score: pass --weights or keep the shipped ones")
    models = networks(specs)
    scenes = load_data_specs([args.data])
    test = cave_test_images([s for s in scenes if s.name in VAL_SCENES])
    train = training_pixels([s for s in scenes if s.name not in VAL_SCENES])
    conditions = {c.key: c for c in standard_conditions(airborne=False)}
    names = [f"{LEVEL_EDGES[i]:g}-{LEVEL_EDGES[i + 1]:g}" for i in range(len(LEVEL_EDGES) - 1)]
    for key in CONDITIONS:
        condition = conditions[key]
        css = resolve_cameras([condition.camera])[0].normalised
        scoring = {**models, "rpr3": fit_reference(3, train, [css])}
        sums = {label: 0.0 for label in scoring}
        for i, image in enumerate(test):
            rgb, target = render_condition(
                image, css, condition, np.random.default_rng([args.seed, i])
            )
            for label, model in scoring.items():
                pred = predict_with_camera(model, rgb, css, input_step=INPUT_STEP)  # 8-bit
                sums[label] = sums[label] + relative_errors_by_level(
                    pred, target, rgb, image.bands, condition.exposure, valid=image.valid
                )
        counts = next(iter(sums.values()))[:, 1]
        print(f"\n{condition.label}: MRAE per input brightness (8-bit levels of mean intensity)")
        print("| levels | share of scored values | " + " | ".join(scoring) + " |")
        print("|---|---:|" + "---:|" * len(scoring))
        for b, name in enumerate(names):
            row = [f"{sums[label][b, 0] / max(counts[b], 1):.3f}" for label in scoring]
            print(f"| {name} | {counts[b] / counts.sum():.3f} | " + " | ".join(row) + " |")
        total = [f"{sums[label][:, 0].sum() / counts.sum():.4f}" for label in scoring]
        print("| all (pooled) | 1.000 | " + " | ".join(total) + " |")


if __name__ == "__main__":
    main()
