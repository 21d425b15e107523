"""Reconstruct many scenes on every GPU of one machine with dask-cuda.

``LocalCUDACluster`` starts one worker per GPU, each seeing only its own GPU (and pinned
to the CPU cores next to it); each worker loads the model once. ``geohsr batch`` alone
also starts one worker per GPU on a multi-GPU machine; dask-cuda adds the CPU/NIC
affinity and GPU selection (``--gpus 0,2``). Needs ``pip install dask-cuda``.

    python examples/batch_multi_gpu.py 'scenes/*.tif' --out-dir cubes
    python examples/batch_multi_gpu.py scenes.csv --out-dir cubes --gpus 0,1 --format tif

This shows the library API under ``geohsr batch``: plan the jobs, wrap a client of any
dask cluster, run, write the report. Exit code 1 if any scene failed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from geohsr.batch import BatchCluster, PredictorSettings, expand_inputs, plan_jobs, run_batch
from geohsr.inference.options import DEFAULT_WEIGHTS, ReconstructOptions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("inputs", nargs="+", help="rasters, globs, manifests, STAC items")
    parser.add_argument("--out-dir", type=Path, required=True)
    parser.add_argument("--format", choices=["zarr", "tif"], default="zarr")
    parser.add_argument("--weights", default=DEFAULT_WEIGHTS)
    parser.add_argument("--gpus", help="GPUs to use, e.g. 0,1 [all]")
    parser.add_argument("--scenes-per-gpu", type=int, default=2, help="scenes in flight")
    parser.add_argument("--batch-size", type=int, default=8, help="windows per model call")
    args = parser.parse_args()

    from dask_cuda import LocalCUDACluster  # optional extra, imported only when used
    from distributed import Client

    jobs = plan_jobs(expand_inputs(args.inputs), args.out_dir, args.format)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    options = ReconstructOptions(device="cuda", batch_size=args.batch_size)
    with (
        LocalCUDACluster(
            CUDA_VISIBLE_DEVICES=args.gpus, threads_per_worker=args.scenes_per_gpu
        ) as cluster,
        Client(cluster) as client,
    ):
        batch_cluster = BatchCluster.from_client(client)
        print(f"{batch_cluster.n_workers} GPU worker(s), dashboard: {batch_cluster.dashboard}")
        report = run_batch(
            jobs,
            batch_cluster,
            PredictorSettings.from_options(args.weights, options),
            options=options,
        )
    print(report.summary_text())
    print(f"report: {report.write_json(args.out_dir)}")
    sys.exit(0 if report.ok else 1)


if __name__ == "__main__":
    main()
