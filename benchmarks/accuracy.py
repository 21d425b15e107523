"""Accuracy of the shipped models (and any --weights) on the CAVE validation scenes.

Conditions: clean CIE 1964 RGB, each camera held out of training, and CIE 1964 RGB through a
fixed-seed real-world pipeline (mosaic + noise + demosaic + JPEG q80). Whole 512x512 images,
NTIRE metrics (see geohsr.training.metrics). Prints one markdown table (model x condition) and
the MRAE reduction of every network over the best root-polynomial baseline, writes JSON::

    OMP_NUM_THREADS=2 python benchmarks/accuracy.py --out accuracy.json
    python benchmarks/accuracy.py --weights runs/cave18/mxr_unet18_cave.safetensors --no-shipped
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from geohsr.models.inference_prep import prepare_for_inference
from geohsr.models.weights import file_sha256, list_shipped_weights, load_weights
from geohsr.shared_data import shared_data_dir
from geohsr.training.accuracy import (
    HELD_OUT_CAMERAS,
    TARGET_REDUCTION,
    format_improvement_table,
    format_metrics_table,
    mrae_reductions,
    run_accuracy,
    standard_conditions,
)
from geohsr.training.datasets import load_data_specs

VAL_SCENES = (
    "flowers_ms",
    "jelly_beans_ms",
    "real_and_fake_peppers_ms",
    "stuffed_toys_ms",
    "fake_and_real_sushi_ms",
)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=f"cave:{shared_data_dir() / 'cave'}")
    parser.add_argument("--scenes", default=",".join(VAL_SCENES), help="comma-separated")
    parser.add_argument("--weights", action="append", default=[], help="extra weights file")
    parser.add_argument("--no-shipped", action="store_true", help="skip pretrained/ weights")
    parser.add_argument(
        "--cameras", default=",".join(HELD_OUT_CAMERAS), help="held-out cameras ('' for none)"
    )
    parser.add_argument("--jpeg-quality", type=int, default=80)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", type=Path, help="write the full report (JSON) here")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    specs = ([] if args.no_shipped else list_shipped_weights()) + args.weights
    models, infos = {}, {}
    for spec in specs:
        model, meta = load_weights(spec, device=args.device)
        label = Path(model.geohsr_weights).stem
        if label in models:
            label = str(model.geohsr_weights)
        models[label] = prepare_for_inference(model)
        infos[label] = {
            "model": meta["model"],
            "weights": str(model.geohsr_weights),
            "sha256": file_sha256(model.geohsr_weights),
            "train_scenes": meta.get("train_scenes", []),
        }
    wanted = args.scenes.split(",")
    scenes = [s for s in load_data_specs([args.data]) if s.name in wanted]
    scene_names = {s.name for s in scenes}
    for label, info in infos.items():
        if leaked := sorted(scene_names & set(info["train_scenes"])):
            print(f"WARNING: {label} was trained on test scenes {leaked}", file=sys.stderr)
    conditions = standard_conditions([c for c in args.cameras.split(",") if c], args.jpeg_quality)
    report = run_accuracy(
        models,
        scenes,
        conditions,
        seed=args.seed,
        device=args.device,
        on_result=lambda label, cond, r: print(
            f"  {cond.label:<40} {label:<24} MRAE {r['mean']['mrae']:.4f} ({r['seconds']:.1f} s)",
            file=sys.stderr,
        ),
    )
    report["models"] = infos
    report["reductions"] = mrae_reductions(
        report, {label: info["model"] for label, info in infos.items()}
    )
    print(format_metrics_table(report))
    if report["reductions"]:
        print()
        print(format_improvement_table(report["reductions"], TARGET_REDUCTION))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2))
        print(f"\nreport: {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
