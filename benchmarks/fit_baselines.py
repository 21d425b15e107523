"""Fit the regression baselines (linear, rpr2, rpr3) on the shipped model's training data.

Same training scenes, cameras, camera variation, fixed-gain exposures and degradations as the
``mxr_unet18_rpr_cave`` run (built with the trainer's own ``build_camera`` /
``build_degradation`` / ``split_scenes``), pixels sampled per render (see
:mod:`geohsr.training.baseline_fit`), closed-form fit in seconds. Each model is validated the
way the trainer validates and saved with metadata as ``<out-dir>/<model><suffix>.safetensors``,
ready for ``geohsr reconstruct --weights baselines/rpr3_cave.safetensors``::

    python benchmarks/fit_baselines.py                       # -> baselines/{linear,rpr2,rpr3}_cave
    python benchmarks/fit_baselines.py --config /work/runs/cave18/config.json --out-dir /tmp/b

``--config`` takes the data, split and camera settings from a ``geohsr finetune`` config.json
instead of the built-in shipped recipe.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from geohsr.models.weights import portable_data_spec, save_weights
from geohsr.shared_data import shared_data_dir
from geohsr.training.baseline_fit import (
    DEFAULT_RIDGE,
    PixelSampling,
    fit_baseline,
    sample_training_pixels,
)
from geohsr.training.config import TrainConfig
from geohsr.training.datasets import SceneCache, evaluation_pairs, load_data_specs, split_scenes
from geohsr.training.evaluate import evaluate_model
from geohsr.training.trainer import build_camera, build_degradation

#: Data, split and camera settings of the shipped mxr_unet18_rpr_cave run.
SHIPPED_RECIPE = {
    "data": [f"cave:{shared_data_dir() / 'cave'}"],
    "val_scenes": [
        "flowers_ms",
        "jelly_beans_ms",
        "real_and_fake_peppers_ms",
        "stuffed_toys_ms",
        "fake_and_real_sushi_ms",
    ],
    "cameras": ["cie1964", "jiang28"],
    "exclude_cameras": ["Nikon D5100", "SONY NEX-5N", "Olympus E-PL2"],
    "camera_mix": 0.5,
    "spectral_shift_nm": 5.0,
    "wb_jitter": 0.05,
    "exposure": [0.05, 1.5],
    "quantize_prob": 0.8,
    "degrade_prob": 0.2,
    "jpeg_quality": [70, 95],
    "seed": 0,
}
#: The TrainConfig fields that shape the baselines' training pixels.
DATA_FIELDS = tuple(SHIPPED_RECIPE)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, help="geohsr finetune config.json to copy")
    parser.add_argument("--models", default="linear,rpr2,rpr3", help="comma-separated")
    parser.add_argument("--out-dir", type=Path, default=Path("baselines"))
    parser.add_argument("--suffix", default="_cave", help="weights name = model + suffix")
    parser.add_argument("--renders-per-scene", type=int, default=PixelSampling.renders_per_scene)
    parser.add_argument("--pixels", type=int, default=PixelSampling.pixels_per_render)
    parser.add_argument("--ridge", type=float, default=DEFAULT_RIDGE)
    return parser.parse_args()


def training_config(path: Path | None) -> TrainConfig:
    """TrainConfig holding the data/camera settings (from ``path`` or :data:`SHIPPED_RECIPE`)."""
    values = json.loads(path.read_text()) if path else SHIPPED_RECIPE
    settings = {k: values[k] for k in DATA_FIELDS if k in values}
    return TrainConfig.from_dict({**settings, "out_dir": ""})


def main() -> None:
    args = parse_args()
    config = training_config(args.config)
    train_scenes, val_scenes = split_scenes(
        load_data_specs(config.data),
        val_fraction=config.val_fraction,
        val_names=config.val_scenes,
        seed=config.seed,
    )
    camera = build_camera(config)
    degradation = build_degradation(config)
    sampling = PixelSampling(args.renders_per_scene, args.pixels, config.seed)
    cache = SceneCache()
    start = time.perf_counter()
    rgb, spectra = sample_training_pixels(
        train_scenes,
        camera,
        sampling,
        degradation=degradation,
        degrade_prob=config.degrade_prob,
        cache=cache,
    )
    print(
        f"sampled {len(rgb):,} pixels from {len(train_scenes)} scenes in "
        f"{time.perf_counter() - start:.1f} s"
    )
    val_pairs = list(evaluation_pairs(val_scenes, camera, cache=cache))
    for name in args.models.split(","):
        start = time.perf_counter()
        model = fit_baseline(name, rgb, spectra, ridge=args.ridge)
        fit_seconds = time.perf_counter() - start
        report = evaluate_model(model, val_pairs)
        metadata = {
            "training_data": [portable_data_spec(spec) for spec in config.data],
            "train_scenes": [s.name for s in train_scenes],
            "val_scenes": [s.name for s in val_scenes],
            "recipe": {
                "method": "closed-form ridge least squares on sampled training pixels",
                "ridge": args.ridge,
                "pixel_sampling": sampling.to_metadata(),
                "pixels": len(rgb),
                **{k: v for k, v in config.to_dict().items() if k in DATA_FIELDS},
                "fit_seconds": round(fit_seconds, 3),
            },
            "camera": {
                **camera.to_metadata(),
                "applies_to": "every training render (baselines see only rendered RGB)",
            },
            "degradation": degradation.to_metadata() if degradation else None,
            "metrics": {
                "validation": report["mean"],
                "validation_images": report["images"],
            },
            "input": "RGB in [0, 1] (3, H, W); uint8 images / 255",
        }
        path = save_weights(model, args.out_dir / f"{name}{args.suffix}.safetensors", metadata)
        mean = report["mean"]
        print(
            f"{name}: fit {fit_seconds:.2f} s, validation MRAE {mean['mrae']:.4f} "
            f"RMSE {mean['rmse']:.4f} PSNR {mean['psnr']:.2f} SAM {mean['sam']:.2f} -> {path}"
        )


if __name__ == "__main__":
    main()
