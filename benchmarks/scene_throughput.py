"""End-to-end throughput of `reconstruct_scene` (GeoTIFF in -> Zarr out) for every inference
backend x precision this machine runs, next to the bare model forward on the same windows,
all in one run with the same weights.

For each configuration: pipeline MP/s of scene pixels, its speed-up over torch fp32 (what
every CPU user got before the backends), and the ratio bare-forward seconds / pipeline
seconds for the same windows (pipeline MP/s x overlap factor / bare MP/s; target >= 0.85:
reading, blending and writing must not eat the faster model's gain). Runs alternate
(bare, pipeline) ``--repeats`` times; the best of each is reported (the machine may be
shared). The default settings (``--backend auto --precision auto``) are marked.

    python benchmarks/scene_throughput.py [--size 2048] [--weights mxr_unet18_rpr_cave]
    python benchmarks/scene_throughput.py --model mxr_unet18 --width 0.125   # random model
    python benchmarks/scene_throughput.py --dtype uint16 --only openvino:int8  # quicker
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

import numpy as np
from backend_configs import auto_config, backend_configs, config_predictor
from scene_common import write_synthetic_scene


def block_inputs(scene: Path, predictor, tile: int, overlap: int) -> list[np.ndarray]:
    """The model inputs of every block of the scene, exactly as the pipeline builds them."""
    from geohsr.inference.blocks import BlockReconstructor
    from geohsr.io.read import compute, open_raster, prepare_rgb

    rgb, _ = prepare_rgb(open_raster(scene))
    reconstructor = BlockReconstructor(predictor, rgb.sizes["y"], rgb.sizes["x"], tile, overlap)
    batches = []
    for i in range(len(reconstructor.plan.bands)):
        for j in range(len(reconstructor.plan.blocks)):
            rows, cols = reconstructor.region(i, j)
            _, inputs = reconstructor.window_inputs(i, j, compute(rgb.isel(y=rows, x=cols)))
            batches.append(inputs)
    return batches


def measure(args, scene: Path, out: Path, predictor) -> dict:
    """Best bare-forward and pipeline seconds of ``args.repeats`` alternating runs."""
    from geohsr.inference.scene import ReconstructOptions, reconstruct_scene

    batches = block_inputs(scene, predictor, args.tile, args.overlap)
    predictor.predict(batches[0])  # warm-up: kernel selection, OpenVINO compilation
    bare, pipeline = [], []
    for _ in range(args.repeats):
        started = time.perf_counter()
        for inputs in batches:
            predictor.predict(inputs)
        bare.append(time.perf_counter() - started)
        started = time.perf_counter()
        reconstruct_scene(
            scene,
            out,
            predictor=predictor,
            overwrite=True,
            progress=False,
            options=ReconstructOptions(
                tile=args.tile, overlap=args.overlap, dtype=args.dtype, sidecars=False
            ),
        )
        pipeline.append(time.perf_counter() - started)
        shutil.rmtree(out, ignore_errors=True)
    return {
        "bare": min(bare),
        "pipeline": min(pipeline),
        "windows": sum(len(b) for b in batches),
        "runs": (bare, pipeline),
    }


def main() -> None:
    from geohsr.inference.options import DEFAULT_WEIGHTS

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=2048, help="scene side (pixels)")
    parser.add_argument("--weights", default=DEFAULT_WEIGHTS, help="weights name or path")
    parser.add_argument("--model", default=None, help="random registry model instead")
    parser.add_argument("--width", type=float, default=1.0, help="--model channel multiplier")
    parser.add_argument("--tile", type=int, default=512)
    parser.add_argument("--overlap", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--dtype", default="float32", choices=["float32", "float16", "uint16"])
    parser.add_argument(
        "--only",
        default=None,
        help="comma-separated backend:precision to run (torch:fp32 is always run: the baseline)",
    )
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/geohsr-bench"))
    args = parser.parse_args()

    args.workdir.mkdir(parents=True, exist_ok=True)
    scene = write_synthetic_scene(args.workdir / f"scene_{args.size}.tif", args.size, args.size)
    out = args.workdir / f"throughput_{args.size}.zarr"
    scene_mp = args.size * args.size / 1e6
    configs, skipped = backend_configs("cpu")
    if args.only:
        wanted = {tuple(item.split(":")) for item in args.only.split(",")} | {("torch", "fp32")}
        configs = [config for config in configs if config in wanted]
    default = auto_config("cpu")
    what = f"{args.model} width {args.width:g} (random)" if args.model else args.weights
    print(
        f"{what}, {args.size} x {args.size} scene, tile {args.tile}, overlap {args.overlap}, "
        f"batch {args.batch_size}, {args.dtype} Zarr, CPU; default settings resolve to "
        f"{default[0]} {default[1]}"
    )
    results = {}
    for backend, precision in configs:
        predictor = config_predictor(args, "cpu", backend, precision)
        results[backend, precision] = measure(args, scene, out, predictor)
        del predictor
    baseline = results["torch", "fp32"]
    window_mp = baseline["windows"] * args.tile**2 / 1e6
    print(f"{baseline['windows']} windows, overlap factor {window_mp / scene_mp:.3f}")
    header = f"{'backend':<9} {'precision':<9} {'bare MP/s':>10} {'pipeline MP/s':>14}"
    print(f"{header} {'x torch fp32':>13} {'pipeline/bare':>14}")
    for (backend, precision), result in results.items():
        mark = "  <- default" if (backend, precision) == default else ""
        print(
            f"{backend:<9} {precision:<9} {window_mp / result['bare']:>10.3f} "
            f"{scene_mp / result['pipeline']:>14.3f} "
            f"{baseline['pipeline'] / result['pipeline']:>13.2f} "
            f"{result['bare'] / result['pipeline']:>14.3f}{mark}"
        )
    fastest = min(results, key=lambda key: results[key]["pipeline"])
    print(
        f"fastest: {' '.join(fastest)}, pipeline / bare forward "
        f"{results[fastest]['bare'] / results[fastest]['pipeline']:.3f} (target >= 0.85)"
    )
    for reason in skipped:
        print(f"skipped {reason}")
    for (backend, precision), result in results.items():
        bare, pipeline = result["runs"]
        print(
            f"runs (s) {backend} {precision}: bare {[round(t, 1) for t in bare]}, "
            f"pipeline {[round(t, 1) for t in pipeline]}"
        )


if __name__ == "__main__":
    main()
