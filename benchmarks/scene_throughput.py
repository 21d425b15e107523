"""End-to-end throughput of `reconstruct_scene` (GeoTIFF in -> Zarr out) next to the bare
model forward on the same windows, measured in the same run with the same predictor.

ratio = bare-forward seconds / pipeline seconds for the same set of windows, i.e. pipeline
MP/s x overlap factor / bare MP/s (the overlap factor = window pixels / scene pixels,
since windows overlap). Target: >= 0.85. Runs alternate (bare, pipeline) ``--repeats``
times; the best of each is reported, as the machine may be shared.

    python benchmarks/scene_throughput.py [--size 2048] [--width 1.0] [--repeats 2]
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

import numpy as np
from scene_common import benchmark_predictor, write_synthetic_scene


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=2048, help="scene side (pixels)")
    parser.add_argument("--model", default="mxr_unet18", help="registry model name")
    parser.add_argument("--width", type=float, default=1.0, help="model channel multiplier")
    parser.add_argument("--tile", type=int, default=512)
    parser.add_argument("--overlap", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/geohsr-bench"))
    args = parser.parse_args()

    from geohsr.inference.scene import ReconstructOptions, reconstruct_scene

    args.workdir.mkdir(parents=True, exist_ok=True)
    scene = write_synthetic_scene(args.workdir / f"scene_{args.size}.tif", args.size, args.size)
    out = args.workdir / f"throughput_{args.size}.zarr"
    predictor = benchmark_predictor(args.model, args.width, args.batch_size, args.threads)
    batches = block_inputs(scene, predictor, args.tile, args.overlap)
    n_windows = sum(len(b) for b in batches)
    window_mp = n_windows * args.tile * args.tile / 1e6
    scene_mp = args.size * args.size / 1e6
    predictor.predict(batches[0][: args.batch_size])  # warm-up (kernel selection)

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
            options=ReconstructOptions(tile=args.tile, overlap=args.overlap),
        )
        pipeline.append(time.perf_counter() - started)
        shutil.rmtree(out, ignore_errors=True)
    t_bare, t_pipe = min(bare), min(pipeline)
    print(
        f"{args.model} width {args.width}, {args.size} x {args.size} scene, tile {args.tile}, "
        f"overlap {args.overlap}, batch {args.batch_size}, {n_windows} windows, CPU"
    )
    print(f"bare forward : {t_bare:7.1f} s  {window_mp / t_bare:7.3f} MP/s of window pixels")
    print(
        f"pipeline     : {t_pipe:7.1f} s  {scene_mp / t_pipe:7.3f} MP/s of scene pixels "
        "(GeoTIFF in -> Zarr out)"
    )
    print(f"overlap factor (window px / scene px): {window_mp / scene_mp:.3f}")
    print(f"pipeline / bare forward, same windows: {t_bare / t_pipe:.3f} (target >= 0.85)")
    print(
        f"all runs (s): bare {[round(t, 1) for t in bare]}, "
        f"pipeline {[round(t, 1) for t in pipeline]}"
    )


if __name__ == "__main__":
    main()
