"""Measure how far a camera-aware network's rendering strays from the true RGB.

Measured on the training scenes its weights record (never the held-out test scenes), with the
fit the quantisation-cell projection uses
(:meth:`~geohsr.models.residual.ResidualSpectralModel.set_render_sigma`)::

    python benchmarks/render_error.py mxr_unet18_rpr_cave
    python benchmarks/render_error.py WEIGHTS --write WEIGHTS_WITH_SIGMA.safetensors

Each training CAVE scene (every ``--every``-th) is rendered through CIE 1964 at a fixed gain
at exposures 1, 0.25 and 0.06, quantised to 8 bits and reconstructed with the camera known,
before the metamer projection. Per brightness bin (the pixel's mean in 8-bit levels) it prints
the typical error ``1.4826 x median |Cn p - rgb_true|`` (a robust standard deviation, in
levels) of the network's rendering and, by the same measure, of the 8-bit values themselves
(0.37 levels for rounding errors uniform over +-0.5, whose standard deviation is 0.29), then
fits
``a + b sqrt(level)`` (non-negative least squares of the relative misfit over the
bins, at each bin's median level).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from scipy.optimize import nnls

from geohsr.exceptions import GeoHSRError
from geohsr.models.inference_prep import prepare_for_inference
from geohsr.models.unet import pad_to_multiple
from geohsr.models.weights import (
    load_weights,
    read_metadata,
    resolve_weights,
    save_metadata_edit,
)
from geohsr.shared_data import shared_data_dir
from geohsr.spectral.cameras import CIE1964, resolve_cameras
from geohsr.spectral.render import quantize, render_fixed_gain
from geohsr.training.datasets import load_data_specs
from geohsr.training.datasets.scene import SceneCache

EXPOSURES = (1.0, 0.25, 0.06)
LEVEL_EDGES = (0.0, 2.0, 8.0, 32.0, 256.0)
ROBUST_SIGMA = 1.4826  # standard deviation per median absolute deviation of a normal


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("weights", help="shipped name or .safetensors path")
    parser.add_argument("--cave", type=Path, default=shared_data_dir() / "cave")
    parser.add_argument("--every", type=int, default=3, help="use every N-th training scene")
    parser.add_argument("--write", type=Path, help="save a copy of the weights with the fit")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    try:
        path = resolve_weights(args.weights)
        trained_on = set(read_metadata(path).get("train_scenes", []))
        model, _ = load_weights(path)
    except GeoHSRError as error:
        raise SystemExit(f"error: {error}") from None
    if not hasattr(model, "set_render_sigma"):
        raise SystemExit(
            f"error: {path.name} holds model {model.geohsr_name!r}, which has no camera-aware "
            "metamer projection (only the *_rpr models have one); nothing to measure"
        )
    scenes = [s for s in load_data_specs([f"cave:{args.cave}"]) if s.name in trained_on]
    if not scenes:
        raise SystemExit(f"none of the training scenes of {path.name} is in {args.cave}")
    network = prepare_for_inference(model)
    css = resolve_cameras([CIE1964])[0].normalised
    network.set_camera(css)
    cache = SceneCache()
    errors: list[list[np.ndarray]] = [[] for _ in LEVEL_EDGES[:-1]]
    quantised: list[list[np.ndarray]] = [[] for _ in LEVEL_EDGES[:-1]]
    levels: list[list[np.ndarray]] = [[] for _ in LEVEL_EDGES[:-1]]
    for scene in scenes[:: args.every]:
        cube = cache.get(scene).cube_window(slice(None), slice(None))
        for exposure in EXPOSURES:
            true = render_fixed_gain(cube, css, exposure)
            rgb = quantize(true)
            padded, (top, left) = pad_to_multiple(torch.from_numpy(rgb)[None], 32)
            with torch.no_grad():
                spectra = network.forward_unprojected(padded)[0].numpy()
            height, width = rgb.shape[1:]
            spectra = spectra[:, top : top + height, left : left + width]
            rendered = np.einsum("cl,lhw->chw", css, spectra)
            usable = (true < 1.0).all(axis=0)
            level = rgb.mean(axis=0)[usable] * 255
            which = np.digitize(level, LEVEL_EDGES[1:-1])
            for k in range(len(errors)):
                chosen = which == k
                errors[k].append(((rendered - true)[:, usable][:, chosen] * 255).ravel())
                quantised[k].append(((rgb - true)[:, usable][:, chosen] * 255).ravel())
                levels[k].append(level[chosen])
    print(f"{path.name}: {len(scenes[:: args.every])} training scenes, CIE 1964, exposures "
          f"{', '.join(f'{e:g}' for e in EXPOSURES)}; typical error (1.4826 x median |error|) "
          "in 8-bit levels")  # fmt: skip
    print("| levels | pixels | median level | network rendering | 8-bit values |")
    print("|---|---:|---:|---:|---:|")
    points = []
    for k in range(len(errors)):
        err, q, lv = (np.concatenate(x[k]) for x in (errors, quantised, levels))
        sigma = ROBUST_SIGMA * float(np.median(np.abs(err)))
        median_level = float(np.median(lv))
        points.append((median_level, sigma))
        print(
            f"| {LEVEL_EDGES[k]:g}-{LEVEL_EDGES[k + 1]:g} | {lv.size:,} | {median_level:.1f} "
            f"| {sigma:.3f} | {ROBUST_SIGMA * float(np.median(np.abs(q))):.3f} |"
        )
    # non-negative least squares on relative errors: every bin counts alike
    design = np.array([[1.0 / sigma, np.sqrt(level) / sigma] for level, sigma in points])
    (a, b), _ = nnls(design, np.ones(len(points)))
    print(f"fit: rendering sigma = {a:.3f} + {b:.3f} sqrt(level) levels")
    if args.write:
        model, _ = load_weights(path)  # unfolded, as stored
        model.set_render_sigma(round(a, 3), round(b, 3))
        save_metadata_edit(model, path, args.write)  # same tensors: INT8 copies still match
        print(f"wrote {args.write} (config {model.geohsr_config})")
        if args.write.resolve() != path.resolve():
            print(
                "note: --precision int8 looks for an INT8-adapted copy beside the weights "
                f"(int8/{args.write.name}); writing over {path.name} in place keeps its own"
            )


if __name__ == "__main__":
    main()
