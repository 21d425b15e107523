"""One scene across 1 and 2 dask workers: wall time and scaling, file and accessor paths.

Makes a ``--size`` x ``--size`` RGB GeoTIFF and a randomly initialised model (``--model``,
``--width``: compute-bound on CPU), starts a local cluster of 1, then of 2 worker processes
with one torch thread each (as geohsr starts its own: one malloc arena per process), each
worker pinned to a core of its own, and reconstructs the scene on it

- as ``geohsr reconstruct SCENE OUT.zarr --scheduler ADDRESS`` does (independent chunks
  written into one Zarr by the workers, :func:`geohsr.batch.scene_chunks.
  reconstruct_scene_on_cluster`): seconds from the first chunk task to the published cube,
  model loading excluded (printed apart);
- with the accessor: ``rioxarray.open_rasterio(..., chunks=...)`` ->
  ``.hsr.reconstruct(model=<weights path>)`` -> ``.compute()``: seconds of ``.compute()``,

then prints the ratios (1 worker / 2 workers). Both runs use the same chunks, so a ratio is
the parallel speed-up. Pinning makes 1 worker use one core: unpinned (``--no-pin``), the
single worker's Zarr compression and reading threads borrow the idle second core, which
flatters the 1-worker baseline (and lowers the ratio) when the model is cheap.
``--streaming`` also times the default single-process pass (both cores) for reference.

    python benchmarks/scene_scaling.py                      # 4096 x 4096, mxr_unet18 x0.125
    python benchmarks/scene_scaling.py --size 2048           # quicker
"""

from __future__ import annotations

import argparse
import os
import shutil
import time
from contextlib import contextmanager
from pathlib import Path

from scene_common import write_synthetic_scene

WORKERS = (1, 2)


@contextmanager
def local_cluster(n_workers: int, pin: bool):
    """A client of ``n_workers`` single-threaded worker processes started as geohsr starts
    its own (one malloc arena); ``pin``: worker ``i`` (all its threads) runs on core ``i``
    only, so N workers use exactly N cores."""
    import dask
    from distributed import Client, LocalCluster

    from geohsr.batch.cluster import WORKER_MALLOC_CONFIG

    with (
        dask.config.set(WORKER_MALLOC_CONFIG),
        LocalCluster(
            n_workers=n_workers, threads_per_worker=1, processes=True, dashboard_address=":0"
        ) as cluster,
        Client(cluster) as client,
    ):
        if pin:
            workers = sorted(client.scheduler_info()["workers"])
            for core, address in enumerate(workers):
                client.run(pin_process, core % os.cpu_count(), workers=[address])
        yield client


def pin_process(core: int) -> None:
    """Run every thread of this process (and the threads it starts later) on ``core``."""
    for thread in os.listdir("/proc/self/task"):
        os.sched_setaffinity(int(thread), {core})


def file_path(scene: Path, weights: Path, workdir: Path, client, options) -> dict:
    """Wall times of ``geohsr reconstruct SCENE OUT.zarr --scheduler ADDRESS``."""
    from geohsr.batch.cluster import ClusterOptions
    from geohsr.batch.scene_chunks import reconstruct_scene_on_cluster

    out = workdir / "scaling.zarr"
    started = time.perf_counter()
    result = reconstruct_scene_on_cluster(
        scene,
        out,
        cluster=ClusterOptions(scheduler=client.scheduler.address),
        weights=weights,
        options=options,
        overwrite=True,
        progress=False,
    )
    total = time.perf_counter() - started
    shutil.rmtree(out)
    return {"seconds": result.seconds, "total": total, "result": result}


def accessor_path(scene: Path, weights: Path, settings: dict) -> dict:
    """Wall time of ``open_rasterio(...).hsr.reconstruct(...).compute()`` on the active
    distributed client."""
    import rioxarray

    import geohsr  # noqa: F401 - registers .hsr

    rgb = rioxarray.open_rasterio(scene, chunks={"y": 2048, "x": 2048}, masked=True)
    cube = rgb.hsr.reconstruct(model=str(weights), **settings)
    started = time.perf_counter()
    cube.compute()
    return {"seconds": time.perf_counter() - started, "chunks": cube.data.numblocks}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=4096, help="scene side (pixels)")
    parser.add_argument("--model", default="mxr_unet18", help="registry model name")
    parser.add_argument("--width", type=float, default=0.125, help="model channel multiplier")
    parser.add_argument("--chunk-size", type=int, default=None, help="[default chunks]")
    parser.add_argument("--streaming", action="store_true", help="also time one process")
    parser.add_argument(
        "--no-pin", dest="pin", action="store_false", help="let workers use any core"
    )
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
    pinning = "each pinned to its own core" if args.pin else "not pinned"
    print(
        f"scene {args.size} x {args.size}, {args.model} width {args.width:g} (random weights), "
        f"tile {options.tile} overlap {options.overlap}; workers of 1 torch thread, {pinning}"
    )

    files, accessor = {}, {}
    for n in WORKERS:
        with local_cluster(n, args.pin) as client:
            files[n] = file_path(scene, weights, args.workdir, client, options)
            accessor[n] = accessor_path(scene, weights, settings)
    result = files[1]["result"]
    print(
        f"file path (reconstruct --scheduler -> Zarr): {result.chunks} chunks, "
        f"{result.n_windows} windows ({result.redundancy:.1%} extra from chunk borders)"
    )
    for n in WORKERS:
        print(
            f"  {n} worker(s): {files[n]['seconds']:.1f} s "
            f"({files[n]['total']:.1f} s with model loading)"
        )
    print(f"  ratio 1 worker / 2 workers: {files[1]['seconds'] / files[2]['seconds']:.2f}")
    blocks = accessor[1]["chunks"]
    print(
        f"accessor (open_rasterio(chunks=2048) -> .hsr.reconstruct() -> .compute()): "
        f"{blocks[1] * blocks[2]} chunks"
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
