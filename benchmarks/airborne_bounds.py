"""How low can a per-pixel method go on the real airborne cubes? Bounds for the airborne rows of
``benchmarks/accuracy.py`` (CIE 1964 known, 8-bit at a fixed gain, pixels with data only):

- ``rpr2`` / ``rpr3`` fitted on **the test pixels themselves** (an oracle no method has): the
  best any root-polynomial regression can score there;
- leave-one-out k-nearest-neighbour regression on the 8-bit RGB **within each cube** (every
  other pixel of the same scene is the library): what a per-pixel prior that knows exactly
  this scene's materials reaches;
- a chromaticity k-NN on the ``earthlib`` library (spectrum / intensity of the k nearest
  library chromaticities, inverse-distance weighted, times the pixel's intensity: exposure-
  equivariant like the shipped model) and RPR-3 fitted on the same library: a generic
  nonlinear per-pixel prior against the polynomial one; and the k-NN with the CAVE
  training pixels added (every 8th of those ``benchmarks/accuracy.py`` fits on, mean above
  0.01), as the shipped model's training data mixes them.

::

    OMP_NUM_THREADS=2 python benchmarks/airborne_bounds.py
"""

from __future__ import annotations

import argparse

import numpy as np
from accuracy import VAL_SCENES
from scipy.spatial import cKDTree

from geohsr.shared_data import shared_data_dir
from geohsr.spectral.cameras import resolve_cameras
from geohsr.training.accuracy import (
    INPUT_STEP,
    airborne_test_images,
    fit_reference,
    image_metrics,
    predict_with_camera,
    render_condition,
    standard_conditions,
    training_pixels,
)
from geohsr.training.datasets import load_data_specs
from geohsr.training.datasets.synthetic_aerial import earthlib_library

NEIGHBOURS = (1, 8, 32)


def chromaticity_knn(library: np.ndarray, css: np.ndarray, rgb: np.ndarray, k: int) -> np.ndarray:
    """``(31, H, W)``: for each pixel of ``rgb`` ``(3, H, W)``, the inverse-distance-weighted
    mean of ``spectrum / I`` over the ``k`` library spectra ``(N, 31)`` whose chromaticity
    ``rgb / I`` through ``css`` ``(3, 31)`` is nearest its own, times its intensity ``I``."""
    lib_rgb = library @ css.T
    lib_i = lib_rgb.mean(1, keepdims=True)
    tree = cKDTree(lib_rgb / lib_i)
    x = rgb.reshape(3, -1).T.astype(np.float64)
    x_i = x.mean(1, keepdims=True)
    dist, idx = tree.query(x / np.maximum(x_i, 1e-9), k=k)
    dist, idx = dist.reshape(len(x), -1), idx.reshape(len(x), -1)
    weight = 1.0 / (dist + 1e-3)
    shapes = (library[idx] / lib_i[idx]) * weight[..., None]
    pred = shapes.sum(1) / weight.sum(1, keepdims=True) * x_i
    return pred.T.reshape(31, *rgb.shape[1:]).astype(np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--airborne", default=str(shared_data_dir() / "airborne"))
    parser.add_argument("--cave", default=str(shared_data_dir() / "cave"))
    args = parser.parse_args()
    images = airborne_test_images(args.airborne)
    condition = next(c for c in standard_conditions() if c.key == "airborne")
    css = resolve_cameras([condition.camera])[0].normalised
    renders = [
        render_condition(img, css, condition, np.random.default_rng([0, i]))
        for i, img in enumerate(images)
    ]

    def score(predict) -> list[float]:
        return [
            image_metrics(predict(img, rgb), target, img.bands, 1.0, img.valid)["mrae"]
            for img, (rgb, target) in zip(images, renders, strict=True)
        ]

    rows: dict[str, list[float]] = {}
    test_pixels = np.concatenate([img.cube[:, img.valid].T for img in images])
    for degree in (2, 3):
        oracle = fit_reference(degree, test_pixels, [css])
        rows[f"rpr{degree} fitted on the test pixels (oracle)"] = score(
            lambda img, rgb, m=oracle: predict_with_camera(m, rgb, css, input_step=INPUT_STEP)
        )
    for k in NEIGHBOURS:

        def loo(img, rgb, k=k):
            x = rgb[:, img.valid].T.astype(np.float64)
            jitter = 1e-6 * np.random.default_rng(0).standard_normal(x.shape)  # break ties
            _, idx = cKDTree(x + jitter).query(x, k=k + 1)
            pred = np.zeros_like(img.cube)
            pred[:, img.valid] = img.cube[:, img.valid].T[idx[:, 1:]].mean(1).T
            return pred

        rows[f"{k}-NN on 8-bit RGB within the cube, leave-one-out (oracle)"] = score(loo)
    library = earthlib_library()
    earth = library.spectra[np.unique(np.concatenate(list(library.groups.values())))]
    rpr_earth = fit_reference(3, earth, [css])
    rows["rpr3 fitted on earthlib"] = score(
        lambda img, rgb: predict_with_camera(rpr_earth, rgb, css, input_step=INPUT_STEP)
    )
    for k in NEIGHBOURS:
        rows[f"chromaticity {k}-NN on earthlib"] = score(
            lambda img, rgb, k=k: chromaticity_knn(earth, css, rgb, k)
        )
    scenes = load_data_specs([f"cave:{args.cave}"])
    cave = training_pixels([s for s in scenes if s.name not in VAL_SCENES])
    mixed = np.concatenate([earth, cave[cave.mean(1) > 0.01][::8]])
    k = NEIGHBOURS[-1]
    rows[f"chromaticity {k}-NN on earthlib + CAVE training pixels"] = score(
        lambda img, rgb: chromaticity_knn(mixed, css, rgb, k)
    )
    names = [img.name for img in images]
    print(f"MRAE on the airborne cubes, {condition.label}; earthlib: {len(earth)} spectra")
    print("| method | " + " | ".join(names) + " | mean |")
    print("|---|" + "---:|" * (len(names) + 1))
    for label, values in rows.items():
        cells = [f"{v:.4f}" for v in values] + [f"{np.mean(values):.4f}"]
        print(f"| {label} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
