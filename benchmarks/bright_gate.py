"""Choose the bright-residual gain of camera-aware weights on their own training scenes.

The learnt residual of weights trained mostly on dark pixels (exposure drawn log-uniformly)
can harm bright ones (``benchmarks/accuracy_by_intensity.py``). This scores the weights with
their residual at and above the level input's saturation scaled by each ``--gains`` value
(:meth:`~geohsr.models.residual.ResidualSpectralModel.set_bright_residual_gain`) under
every condition of ``benchmarks/accuracy.py``, but on scenes the weights were *trained* on
(never the held-out test scenes or the airborne cubes): the CAVE conditions on every
``--every``-th training CAVE scene, the airborne conditions on every
``--synthetic-every``-th training synthetic aerial scene. It picks the gain with the lowest
mean MRAE relative to gain 1 over the conditions::

    OMP_NUM_THREADS=2 python benchmarks/bright_gate.py mxr_unet18_rpr_cave
    python benchmarks/bright_gate.py WEIGHTS --write WEIGHTS_WITH_GAIN.safetensors

The gain changes the network's own rendering of bright pixels, so measure ``render_sigma``
(``benchmarks/render_error.py --write``) after writing it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from geohsr.exceptions import GeoHSRError
from geohsr.models.inference_prep import prepare_for_inference
from geohsr.models.weights import load_weights, read_metadata, resolve_weights, save_metadata_edit
from geohsr.shared_data import shared_data_dir
from geohsr.training.accuracy import (
    cave_test_images,
    reference_cameras,
    reference_data_specs,
    reference_fit_sets,
    run_accuracy,
    standard_conditions,
)
from geohsr.training.datasets import load_data_specs
from geohsr.training.datasets.synthetic_aerial import SYNTHETIC_KINDS


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("weights", help="shipped name or .safetensors path")
    parser.add_argument("--cave", type=Path, default=shared_data_dir() / "cave")
    parser.add_argument("--every", type=int, default=3, help="every N-th training CAVE scene")
    parser.add_argument(
        "--synthetic-every", type=int, default=9, help="every N-th training synthetic scene"
    )
    parser.add_argument("--gains", default="1,0.75,0.5,0.25,0", help="comma-separated, in [0, 1]")
    parser.add_argument("--write", type=Path, help="save a copy of the weights with the choice")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    try:
        choose(args)
    except (GeoHSRError, ValueError) as error:  # bad weights, gains or data: no traceback
        raise SystemExit(f"error: {error}") from None


def choose(args: argparse.Namespace) -> None:
    """Score the gains, print the table and the choice, write it when asked."""
    path = resolve_weights(args.weights)
    meta = read_metadata(path)
    trained = set(meta.get("train_scenes") or [])
    if not trained:
        raise GeoHSRError(f"{path.name} records no training scenes to choose the gain on")
    try:
        gains = [float(g) for g in args.gains.split(",")]
    except ValueError:
        message = f"--gains: comma-separated numbers in [0, 1], got {args.gains!r}"
        raise GeoHSRError(message) from None
    if not all(0.0 <= g <= 1.0 for g in gains):
        raise GeoHSRError(f"--gains: every gain must lie in [0, 1], got {args.gains!r}")
    if 1.0 not in gains:
        gains.insert(0, 1.0)  # the reference every gain is compared with
    specs = reference_data_specs(f"cave:{args.cave}", meta.get("training_data", []))
    scenes = [s for s in load_data_specs(specs) if s.name in trained]
    cave = [s for s in scenes if s.kind == "cave"]
    synthetic = [s for s in scenes if s.kind in SYNTHETIC_KINDS]
    if not cave or not synthetic:
        raise GeoHSRError(
            f"{path.name}: needs training scenes of CAVE and of {'/'.join(SYNTHETIC_KINDS)}"
        )
    test_sets = {
        "cave": cave_test_images(cave[:: args.every]),
        "airborne": cave_test_images(synthetic[:: args.synthetic_every]),
    }
    models = {}
    for gain in gains:
        model, _ = load_weights(path)
        if not hasattr(model, "set_bright_residual_gain"):
            raise GeoHSRError(
                f"{path.name} holds model {model.geohsr_name!r}: only the *_rpr models have a "
                "learnt residual to scale"
            )
        model.set_bright_residual_gain(gain)
        models[f"gain {gain:g}"] = prepare_for_inference(model)
    conditions = standard_conditions()
    report = run_accuracy(
        models,
        test_sets,
        conditions,
        train_spectra=reference_fit_sets(scenes, [s.name for s in cave]),
        train_cameras=reference_cameras(meta),
    )
    results = report["results"]
    labels = list(results)
    print(
        f"{path.name}: MRAE on its training scenes ({len(test_sets['cave'])} CAVE, "
        f"{len(test_sets['airborne'])} synthetic aerial for the airborne conditions)"
    )
    print("| condition | " + " | ".join(labels) + " |")
    print("|---|" + "---:|" * len(labels))
    for c in conditions:
        row = [f"{results[k][c.key]['mean']['mrae']:.4f}" for k in labels]
        print(f"| {c.label} | " + " | ".join(row) + " |")
    relative = {
        gain: float(
            np.mean(
                [
                    results[f"gain {gain:g}"][c.key]["mean"]["mrae"]
                    / results["gain 1"][c.key]["mean"]["mrae"]
                    for c in conditions
                ]
            )
        )
        for gain in gains
    }
    cells = [f"{relative[g]:.4f}" for g in gains] + [""] * (len(labels) - len(gains))
    print("| mean relative to gain 1 | " + " | ".join(cells) + " |")
    best = min(gains, key=lambda g: relative[g])
    print(f"chosen: bright_residual_gain = {best:g}")
    if args.write:
        model, _ = load_weights(path)  # unfolded, as stored
        model.set_bright_residual_gain(best)
        save_metadata_edit(model, path, args.write)  # same tensors: INT8 copies still match
        print(f"wrote {args.write} (config {model.geohsr_config})")


if __name__ == "__main__":
    main()
