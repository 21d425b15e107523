"""Reconstruct ONE giant scene on a SLURM or PBS cluster through dask-jobqueue.

The scene is split into independent chunks (24 window strides by default: at most 8.5 %
extra windows), each computed by whichever GPU job is free and written straight into
``OUT.zarr`` (the result equals a single-process run; see README "One giant scene on a
cluster"). The dask scheduler runs in this process, which also holds the output's lock
and publishes the cube once every chunk is there. Jobs are started by
``examples/batch_slurm.py``'s :func:`make_cluster` (one dask worker and one GPU per job).
The input and OUT must be on a file system the compute nodes see.

    python examples/scene_slurm.py mosaic.tif mosaic.zarr --jobs 16 --queue gpu --account proj
    python examples/scene_slurm.py mosaic.tif mosaic.zarr --pbs --queue gpu --resume
    python examples/scene_slurm.py x y.zarr --dry-run    # print the job script only

Killed or out of walltime? Run the same command with ``--resume``: chunks already written
are skipped.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from batch_slurm import make_cluster  # same folder: one GPU worker per batch job

from geohsr.batch.cluster import ClusterOptions
from geohsr.batch.scene_chunks import reconstruct_scene_on_cluster
from geohsr.inference.options import DEFAULT_WEIGHTS, ReconstructOptions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("src", help="the RGB raster")
    parser.add_argument("dst", type=Path, help="the output cube (.zarr)")
    parser.add_argument("--weights", default=DEFAULT_WEIGHTS)
    parser.add_argument("--jobs", type=int, default=8, help="batch jobs (= GPUs) at most")
    parser.add_argument("--pbs", action="store_true", help="PBS instead of SLURM")
    parser.add_argument("--queue", help="partition / queue with GPUs")
    parser.add_argument("--account", help="project to charge")
    parser.add_argument("--walltime", default="04:00:00")
    parser.add_argument("--cpus", type=int, default=8, help="CPU cores per job")
    parser.add_argument("--memory", default="32GB", help="memory per job")
    parser.add_argument("--gpus-per-job", type=int, default=1, help="SLURM --gres=gpu:N")
    parser.add_argument("--batch-size", type=int, default=8, help="windows per model call")
    parser.add_argument("--chunk-size", type=int, help="chunk side in pixels [24 strides]")
    parser.add_argument("--resume", action="store_true", help="continue an interrupted run")
    parser.add_argument("--dry-run", action="store_true", help="print the job script, exit")
    args = parser.parse_args()

    args.out_dir = args.dst.parent  # where make_cluster puts the dask logs
    args.out_dir.mkdir(parents=True, exist_ok=True)
    args.scenes_per_gpu = 1  # one chunk at a time per GPU: a chunk fills its batches
    with make_cluster(args) as cluster:
        if args.dry_run:
            print(cluster.job_script())
            return
        cluster.adapt(minimum_jobs=1, maximum_jobs=args.jobs)  # jobs end when chunks run out
        result = reconstruct_scene_on_cluster(
            args.src,
            args.dst,
            cluster=ClusterOptions(scheduler=cluster.scheduler_address),
            weights=args.weights,
            options=ReconstructOptions(
                device="cuda", batch_size=args.batch_size, chunk_size=args.chunk_size
            ),
            resume=args.resume,
            log=print,
        )
    print(
        f"wrote {result.output}: {result.megapixels:.1f} MP in {result.seconds:.0f} s, "
        f"{result.chunks} chunks ({result.redundancy:.1%} extra windows)"
    )


if __name__ == "__main__":
    main()
