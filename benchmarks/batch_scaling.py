"""Batch throughput with 1 and 2 dask workers on the same scenes.

Makes ``--scenes`` random RGB GeoTIFFs of ``--size`` x ``--size`` pixels (EPSG:32633) and a
randomly initialised model (``--model``, ``--width``), then runs ``batch_reconstruct`` on a
local cluster with 1 worker and with 2 workers (``--threads-per-worker`` torch threads each)
and prints megapixels per second for each and their ratio. Wall time counts everything
after the cluster is up: model loading on the workers, reading, inference, writing.

    python benchmarks/batch_scaling.py --scenes 6 --size 512 --model mxr_unet18
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import rasterio
from rasterio.transform import from_origin

from geohsr.batch import ClusterOptions, batch_reconstruct
from geohsr.models import create_model
from geohsr.models.weights import save_weights


def write_scenes(folder: Path, count: int, size: int, seed: int = 0) -> list[Path]:
    """``count`` smooth random uint8 RGB GeoTIFFs of ``size`` x ``size`` pixels."""
    rng = np.random.default_rng(seed)
    paths = []
    for index in range(count):
        coarse = rng.integers(0, 256, size=(3, size // 16 + 1, size // 16 + 1))
        rgb = np.kron(coarse, np.ones((16, 16)))[:, :size, :size].astype(np.uint8)
        path = folder / f"scene_{index:02d}.tif"
        profile = {
            "driver": "GTiff",
            "width": size,
            "height": size,
            "count": 3,
            "dtype": "uint8",
            "crs": "EPSG:32633",
            "transform": from_origin(500_000, 5_000_000, 10, 10),
        }
        with rasterio.open(path, "w", **profile) as dst:
            dst.write(rgb)
        paths.append(path)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", type=int, default=6)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--model", default="mxr_unet18")
    parser.add_argument("--width", type=float, default=1.0, help="model channel multiplier")
    parser.add_argument("--threads-per-worker", type=int, default=1)
    parser.add_argument("--format", choices=["zarr", "tif"], default="zarr")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="geohsr_batch_bench_") as tmp:
        tmp_path = Path(tmp)
        (tmp_path / "in").mkdir()
        scenes = write_scenes(tmp_path / "in", args.scenes, args.size)
        weights = tmp_path / "model.safetensors"
        save_weights(create_model(args.model, width=args.width), weights)
        throughput = {}
        for n_workers in (1, 2):
            report = batch_reconstruct(
                [str(path) for path in scenes],
                tmp_path / f"out_{n_workers}",
                weights=weights,
                fmt=args.format,
                cluster=ClusterOptions(
                    n_workers=n_workers, threads_per_worker=args.threads_per_worker
                ),
                show_progress=False,
            )
            if not report.ok:
                raise SystemExit(report.summary_text())
            throughput[n_workers] = report.megapixels_per_second
            scene_seconds = [record.seconds for record in report.records]
            print(
                f"{n_workers} worker(s) x {args.threads_per_worker} thread(s): "
                f"{report.megapixels_done:.2f} MP in {report.wall_seconds:.1f} s -> "
                f"{report.megapixels_per_second:.3f} MP/s "
                f"(mean {sum(scene_seconds) / len(scene_seconds):.1f} s per scene on a worker)"
            )
    print(f"model {args.model} width {args.width}, {args.scenes} scenes of {args.size}x{args.size}")
    print(f"ratio 2 workers / 1 worker: {throughput[2] / throughput[1]:.2f}")


if __name__ == "__main__":
    main()
