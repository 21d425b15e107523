"""Peak memory of `reconstruct_scene` on a 2k x 2k and an 8k x 8k scene: it must not grow
with the scene (target: peak RSS ratio 8k / 2k <= 1.3).

Each scene runs in a fresh subprocess that reports its own peak RSS
(``resource.getrusage(RUSAGE_SELF).ru_maxrss``) and its RSS before reconstructing (model
loaded). Synthetic uint8 GeoTIFF input, a tiny model (default mxr_unet18 at width 0.125;
``--model linear`` for the per-pixel baseline), Zarr float32 output.

    python benchmarks/scene_memory.py [--sizes 2048 8192] [--model linear]
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

from scene_common import benchmark_predictor, write_synthetic_scene


def current_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def child(args: argparse.Namespace) -> None:
    from geohsr.inference.scene import ReconstructOptions, reconstruct_scene

    predictor = benchmark_predictor(args.model, args.width, args.batch_size, args.threads)
    before = current_rss_mb()
    started = time.perf_counter()
    result = reconstruct_scene(
        args.scene,
        args.out,
        predictor=predictor,
        overwrite=True,
        progress=False,
        options=ReconstructOptions(tile=args.tile, overlap=args.overlap),
    )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps(
            {
                "rss_before_mb": before,
                "peak_rss_mb": peak,
                "windows": result.n_windows,
                "seconds": time.perf_counter() - started,
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[2048, 8192])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/geohsr-bench"))
    parser.add_argument("--model", default="mxr_unet18", help="registry model name")
    parser.add_argument("--width", type=float, default=0.125, help="model channel multiplier")
    parser.add_argument("--tile", type=int, default=512)
    parser.add_argument("--overlap", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--child", nargs=2, metavar=("SCENE", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        args.scene, args.out = args.child
        child(args)
        return

    args.workdir.mkdir(parents=True, exist_ok=True)
    forwarded = [
        "--model",
        args.model,
        "--width",
        str(args.width),
        "--tile",
        str(args.tile),
        "--overlap",
        str(args.overlap),
        "--batch-size",
        str(args.batch_size),
    ]
    if args.threads:
        forwarded += ["--threads", str(args.threads)]
    rows = []
    for size in args.sizes:
        scene = write_synthetic_scene(args.workdir / f"scene_{size}.tif", size, size)
        out = args.workdir / f"cube_{size}.zarr"
        run = subprocess.run(
            [sys.executable, __file__, *forwarded, "--child", str(scene), str(out)],
            capture_output=True,
            text=True,
            check=True,
        )
        shutil.rmtree(out, ignore_errors=True)
        rows.append((size, json.loads(run.stdout.strip().splitlines()[-1])))
    print(
        f"{args.model} width {args.width}, tile {args.tile}, overlap {args.overlap}, "
        f"batch {args.batch_size}, Zarr float32 output"
    )
    print(f"{'scene':>12} {'windows':>8} {'seconds':>8} {'RSS before':>11} {'peak RSS':>9}")
    for size, r in rows:
        print(
            f"{size:>5} x {size:<5} {r['windows']:>8} {r['seconds']:>8.1f} "
            f"{r['rss_before_mb']:>8.0f} MB {r['peak_rss_mb']:>6.0f} MB"
        )
    if len(rows) >= 2:
        small, large = rows[0][1], rows[-1][1]
        print(
            f"peak RSS ratio {rows[-1][0]} / {rows[0][0]}: "
            f"{large['peak_rss_mb'] / small['peak_rss_mb']:.2f} (target <= 1.3)"
        )


if __name__ == "__main__":
    main()
