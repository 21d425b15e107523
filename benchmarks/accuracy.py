"""Accuracy of the shipped network (and any --weights) against root-polynomial regression at a
fixed camera gain, on held-out CAVE scenes and real airborne cubes (see
geohsr.training.accuracy for the protocol). Prints the metrics table and the MRAE reduction of
every network over the best RPR per condition, writes JSON::

    OMP_NUM_THREADS=2 python benchmarks/accuracy.py --out accuracy.json
    python benchmarks/accuracy.py --weights runs/x/mxr_unet18_rpr_cave.safetensors --no-shipped
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from geohsr.models.inference_prep import prepare_for_inference
from geohsr.models.weights import file_sha256, list_shipped_weights, load_weights, read_metadata
from geohsr.shared_data import shared_data_dir
from geohsr.spectral.cameras import resolve_cameras
from geohsr.training.accuracy import (
    HELD_OUT_CAMERAS,
    TARGET_REDUCTION,
    airborne_test_images,
    cave_test_images,
    format_improvement_table,
    format_metrics_table,
    mrae_reductions,
    run_accuracy,
    standard_conditions,
    training_pixels,
)
from geohsr.training.datasets import load_data_specs

VAL_SCENES = (
    "flowers_ms",
    "jelly_beans_ms",
    "real_and_fake_peppers_ms",
    "stuffed_toys_ms",
    "fake_and_real_sushi_ms",
)
BASELINES = ("linear", "rpr2", "rpr3")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=f"cave:{shared_data_dir() / 'cave'}")
    parser.add_argument("--airborne", default=str(shared_data_dir() / "airborne"))
    parser.add_argument("--scenes", default=",".join(VAL_SCENES), help="held-out CAVE scenes")
    parser.add_argument("--weights", action="append", default=[], help="extra weights file")
    parser.add_argument("--no-shipped", action="store_true", help="skip pretrained/ networks")
    parser.add_argument(
        "--cameras", default=",".join(HELD_OUT_CAMERAS), help="held-out cameras ('' for none)"
    )
    parser.add_argument("--jpeg-quality", type=int, default=80)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", type=Path, help="write the full report (JSON) here")
    return parser.parse_args()


def shipped_networks() -> list[str]:
    return [n for n in list_shipped_weights() if read_metadata(n)["model"] not in BASELINES]


def main() -> None:
    args = parse_args()
    specs = ([] if args.no_shipped else shipped_networks()) + args.weights
    if not specs:
        sys.exit("no network to score: pass --weights or keep the shipped ones")
    models, infos = {}, {}
    for spec in specs:
        model, meta = load_weights(spec, device=args.device)
        label = Path(model.geohsr_weights).stem
        models[label] = prepare_for_inference(model)
        infos[label] = {
            "model": meta["model"],
            "weights": Path(model.geohsr_weights).name,
            "sha256": file_sha256(model.geohsr_weights),
            "train_scenes": meta.get("train_scenes", []),
            "cameras": [c["name"] for c in (meta.get("camera") or {}).get("cameras", [])],
        }
    wanted = args.scenes.split(",")
    held_out = [c for c in args.cameras.split(",") if c]
    scenes = load_data_specs([args.data])
    test_scenes = [s for s in scenes if s.name in wanted]
    first = next(iter(infos.values()))
    train_names = {n.removesuffix("[train]") for n in first["train_scenes"]}
    train_scenes = [s for s in scenes if s.name in train_names] or [
        s for s in scenes if s.name not in wanted
    ]
    for label, info in infos.items():
        if leaked := sorted({s.name for s in test_scenes} & set(info["train_scenes"])):
            print(f"WARNING: {label} was trained on test scenes {leaked}", file=sys.stderr)
    camera_names = first["cameras"] or ["cie1964", "jiang28"]
    train_cameras = [
        c
        for c in resolve_cameras(camera_names)
        if c.name.lower() not in {h.lower() for h in held_out}
    ]
    test_sets = {"cave": cave_test_images(test_scenes)}
    if Path(args.airborne).is_dir():
        test_sets["airborne"] = airborne_test_images(args.airborne)
    report = run_accuracy(
        models,
        test_sets,
        standard_conditions(held_out, args.jpeg_quality),
        train_spectra=training_pixels(train_scenes),
        train_cameras=train_cameras,
        seed=args.seed,
        device=args.device,
        on_result=lambda label, cond, r: print(
            f"  {cond.label:<48} {label:<28} MRAE {r['mean']['mrae']:.4f} "
            f"SAM {r['mean']['sam']:.2f} ({r['seconds']:.1f} s)",
            file=sys.stderr,
        ),
    )
    report["models"] = infos
    report["train_scenes"] = [s.name for s in train_scenes]
    report["reductions"] = mrae_reductions(report, list(models))
    print(format_metrics_table(report))
    print()
    print(format_improvement_table(report["reductions"], TARGET_REDUCTION))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2))
        print(f"\nreport: {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
