"""One scene across 1 and 2 dask workers: wall time and scaling, file and accessor paths.

Makes a ``--size`` x ``--size`` RGB GeoTIFF and a randomly initialised model (``--model``,
``--width``: compute-bound on CPU), then reconstructs the scene

- with ``geohsr reconstruct --n-workers N`` (independent chunks written into one Zarr by
  the workers, :func:`geohsr.batch.scene_chunks.reconstruct_scene_on_cluster`), and
- with the accessor: ``rioxarray.open_rasterio(..., chunks=...)`` ->
  ``.hsr.reconstruct(model=<weights path>)`` -> ``.compute()`` on a ``LocalCluster``,

each on a local cluster of 1 and of 2 worker processes with one torch thread each, and
prints the wall times and their ratio (1 worker / 2 workers). File path: seconds from the
first chunk task to the published cube (cluster start and model loading excluded, they are
printed apart); accessor: seconds of ``.compute()`` (model loading on the workers included).
Both paths use the same chunks for 1 and 2 workers, so the ratio is the parallel speed-up.
``--streaming`` also times the default single-process pass (both cores) for reference.

    python benchmarks/scene_scaling.py                        # 4096 x 4096, mxr_unet18 x0.5
    python benchmarks/scene_scaling.py --size 2048 --width 0.25   # quicker
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

from scene_common import write_synthetic_scene

WORKERS = (1, 2)


def file_path(scene: Path, weights: Path, workdir: Path, n_workers: int, options) -> dict:
    """Wall times of ``geohsr reconstruct SCENE OUT.zarr --n-workers N``."""
    from geohsr.batch.cluster import ClusterOptions
    from geohsr.batch.scene_chunks import reconstruct_scene_on_cluster

    out = workdir / f"scaling_{n_workers}.zarr"
    started = time.perf_counter()
    result = reconstruct_scene_on_cluster(
        scene,
        out,
        cluster=ClusterOptions(n_workers=n_workers, threads_per_worker=1),
        weights=weights,
        options=options,
        overwrite=True,
        progress=False,
    )
    total = time.perf_counter() - started
    shutil.rmtree(out)
    return {"seconds": result.seconds, "total": total, "result": result}


def accessor_path(scene: Path, weights: Path, n_workers: int, settings: dict) -> dict:
    """Wall time of ``open_rasterio(...).hsr.reconstruct(...).compute()`` on a LocalCluster."""
    import rioxarray
    from distributed import Client, LocalCluster

    import geohsr  # noqa: F401 - registers .hsr

    with (
        LocalCluster(
            n_workers=n_workers, threads_per_worker=1, processes=True, dashboard_address=":0"
        ) as cluster,
        Client(cluster),
    ):
        rgb = rioxarray.open_rasterio(scene, chunks={"y": 2048, "x": 2048}, masked=True)
        cube = rgb.hsr.reconstruct(model=str(weights), **settings)
        started = time.perf_counter()
        values = cube.compute()
        seconds = time.perf_counter() - started
    return {"seconds": seconds, "chunks": cube.data.numblocks, "shape": values.shape}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=4096, help="scene side (pixels)")
    parser.add_argument("--model", default="mxr_unet18", help="registry model name")
    parser.add_argument("--width", type=float, default=0.5, help="model channel multiplier")
    parser.add_argument("--chunk-size", type=int, default=None, help="[default chunks]")
    parser.add_argument("--streaming", action="store_true", help="also time one process")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/geohsr-bench"))
    args = parser.parse_args()

    import torch

    from geohsr.inference.options import ReconstructOptions
    from geohsr.inference.scene import reconstruct_scene
    from geohsr.models import create_model
    from geohsr.models.weights import save_weights

    args.workdir.mkdir(parents=True, exist_ok=True)
    scene = write_synthetic_scene(args.workdir / f"scene_{args.size}.tif", args.size, args.size)
    torch.manual_seed(0)
    weights = args.workdir / f"scaling_{args.model}_{args.width:g}.safetensors"
    save_weights(create_model(args.model, width=args.width), weights)
    settings = {"device": "cpu", "threads": 1, "chunk_size": args.chunk_size, "sidecars": False}
    options = ReconstructOptions(**settings)
    print(
        f"scene {args.size} x {args.size}, {args.model} width {args.width:g} (random weights), "
        f"tile {options.tile} overlap {options.overlap}, workers with 1 torch thread each"
    )

    files = {n: file_path(scene, weights, args.workdir, n, options) for n in WORKERS}
    result = files[1]["result"]
    print(
        f"file path (reconstruct --n-workers N -> Zarr): {result.chunks} chunks, "
        f"{result.n_windows} windows ({result.redundancy:.1%} extra from chunk borders)"
    )
    for n in WORKERS:
        print(
            f"  {n} worker(s): {files[n]['seconds']:.1f} s "
            f"({files[n]['total']:.1f} s with cluster start and model loading)"
        )
    print(f"  ratio 1 worker / 2 workers: {files[1]['seconds'] / files[2]['seconds']:.2f}")

    accessor = {n: accessor_path(scene, weights, n, settings) for n in WORKERS}
    print(
        f"accessor (open_rasterio(chunks=2048) -> .hsr.reconstruct() -> .compute()): "
        f"{accessor[1]['chunks'][1] * accessor[1]['chunks'][2]} chunks"
    )
    for n in WORKERS:
        print(f"  {n} worker(s): {accessor[n]['seconds']:.1f} s")
    print(f"  ratio 1 worker / 2 workers: {accessor[1]['seconds'] / accessor[2]['seconds']:.2f}")

    if args.streaming:
        out = args.workdir / "scaling_streaming.zarr"
        stream = reconstruct_scene(
            scene,
            out,
            weights=weights,
            options=ReconstructOptions(device="cpu"),
            overwrite=True,
            progress=False,
        )
        shutil.rmtree(out)
        print(
            f"single process, streaming (default threads): {stream.seconds:.1f} s, "
            f"{stream.n_windows} windows"
        )


if __name__ == "__main__":
    main()
