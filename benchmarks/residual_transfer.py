"""Does the learnt residual transfer from synthetic aerial scenes to real airborne spectra?

Scores each network, its classical base alone (``+base``: the U-Net residual switched off)
and the RPR references fitted on the network's own training data (as benchmarks/accuracy.py
does) on three aerial test sets, under the two airborne conditions of benchmarks/accuracy.py
(CIE 1964 known, unseen Nikon D5100 unknown):

- ``airborne``: the real cubes of ../shared/data/airborne (pixels with data only);
- ``synthetic``: ``synthetic-aerial`` scenes the network never saw (indices after the ones
  in its training data);
- ``varied``: unseen ``synthetic-aerial-varied`` scenes (spectral variability).

A residual that helps on unseen synthetic scenes but not on the real cubes has learnt the
generator's spectra, not aerial reflectance::

    OMP_NUM_THREADS=2 python benchmarks/residual_transfer.py [--weights W ...] [--scenes 8]
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import replace
from pathlib import Path

from accuracy import VAL_SCENES, shipped_networks
from accuracy_by_intensity import networks

from geohsr.models.weights import read_metadata
from geohsr.shared_data import shared_data_dir
from geohsr.training.accuracy import (
    airborne_test_images,
    cave_test_images,
    reference_cameras,
    reference_data_specs,
    reference_fit_sets,
    reference_training_scenes,
    run_accuracy,
    standard_conditions,
)
from geohsr.training.datasets import load_data_specs
from geohsr.training.datasets.synthetic_aerial import PLAIN_KIND, VARIED_KIND

KINDS = {"synthetic": PLAIN_KIND, "varied": VARIED_KIND}


def trained_count(training_data: list[str], kind: str) -> int:
    """How many ``kind`` scenes a network's ``training_data`` holds (0: none)."""
    counts = [int(m.group(1)) for s in training_data if (m := re.fullmatch(rf"{kind}:(\d+)", s))]
    return max(counts, default=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=f"cave:{shared_data_dir() / 'cave'}")
    parser.add_argument("--airborne", default=str(shared_data_dir() / "airborne"))
    parser.add_argument("--weights", action="append", default=[], help="extra weights file")
    parser.add_argument("--no-shipped", action="store_true", help="skip pretrained/ networks")
    parser.add_argument("--scenes", type=int, default=8, help="unseen synthetic scenes per kind")
    args = parser.parse_args()
    if args.scenes < 1:
        sys.exit("--scenes: at least 1 unseen synthetic scene per kind")
    specs = ([] if args.no_shipped else shipped_networks()) + args.weights
    if not specs:
        sys.exit("no network to score: pass --weights or keep the shipped ones")
    meta = read_metadata(specs[0])
    training_data = meta.get("training_data", [])
    test_sets = {"airborne": airborne_test_images(args.airborne)}
    for name, kind in KINDS.items():
        first = trained_count(training_data, kind)
        scenes = load_data_specs([f"{kind}:{first + args.scenes}"])[first:]
        test_sets[name] = cave_test_images(scenes)
    reference_scenes = load_data_specs(reference_data_specs(args.data, training_data))
    train = reference_training_scenes(reference_scenes, meta.get("train_scenes", []), VAL_SCENES)
    cave_names = [s.name for s in load_data_specs([args.data])]
    airborne = [c for c in standard_conditions() if c.domain == "airborne"]
    conditions = [
        replace(c, key=f"{c.key}@{domain}", domain=domain) for domain in test_sets for c in airborne
    ]
    report = run_accuracy(
        networks(specs),
        test_sets,
        conditions,
        train_spectra=reference_fit_sets(train, cave_names),
        train_cameras=reference_cameras(meta),
    )
    labels = list(report["results"])
    print(f"MRAE; unseen synthetic scenes: {args.scenes} per kind; weights: {Path(specs[0]).name}")
    print("| test set | condition | " + " | ".join(labels) + " |")
    print("|---|---|" + "---:|" * len(labels))
    for condition in conditions:
        row = [f"{report['results'][k][condition.key]['mean']['mrae']:.4f}" for k in labels]
        print(
            f"| {condition.domain} | {condition.label.removeprefix('airborne ')} | "
            + " | ".join(row)
            + " |"
        )


if __name__ == "__main__":
    main()
