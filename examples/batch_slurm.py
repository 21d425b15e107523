"""Reconstruct many scenes on a SLURM or PBS GPU cluster through dask-jobqueue.

The dask scheduler runs in this process (a login node or a small job); every batch job
is one dask worker holding one GPU, which loads the model once and takes scenes one or
two at a time. Inputs and --out-dir must be on a file system the compute nodes see.
Needs the optional extra: ``pip install dask-jobqueue`` (``geohsr[jobqueue]``).

    python examples/batch_slurm.py 'scenes/*.tif' --out-dir cubes --jobs 8 \\
        --queue gpu --account myproject --walltime 02:00:00
    python examples/batch_slurm.py scenes.txt --out-dir cubes --pbs --queue gpu
    python examples/batch_slurm.py x --out-dir y --dry-run   # print the job script only
    python examples/batch_slurm.py tiles/*.tif mosaic.tif --out-dir cubes --split-scenes 100

Re-running the same command skips finished scenes. Exit code 1 if any scene failed.
``--split-scenes AREA`` computes scenes larger than AREA megapixels in independent chunks
spread over all jobs (one giant scene alone: ``examples/scene_slurm.py``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from geohsr.batch import ClusterOptions, batch_reconstruct
from geohsr.inference.options import DEFAULT_WEIGHTS, ReconstructOptions


def make_cluster(args: argparse.Namespace):
    """A dask-jobqueue cluster whose jobs each run one dask worker with one GPU."""
    import dask_jobqueue  # optional extra, imported only when this example runs

    common = {
        "cores": args.scenes_per_gpu,  # dask threads = scenes in flight per worker
        "processes": 1,
        "memory": args.memory,
        "queue": args.queue,
        "account": args.account,
        "walltime": args.walltime,
        "log_directory": str(args.out_dir / "dask-logs"),
        # one malloc arena: task threads reuse freed memory (geohsr.inference.allocator)
        "job_script_prologue": ["export MALLOC_ARENA_MAX=1"],
    }
    if args.pbs:
        resources = f"select=1:ncpus={args.cpus}:ngpus=1:mem={args.memory}"
        return dask_jobqueue.PBSCluster(**common, resource_spec=resources)
    return dask_jobqueue.SLURMCluster(
        **common, job_cpu=args.cpus, job_extra_directives=[f"--gres=gpu:{args.gpus_per_job}"]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("inputs", nargs="+", help="rasters, globs, manifests, STAC items")
    parser.add_argument("--out-dir", type=Path, required=True)
    parser.add_argument("--format", choices=["zarr", "tif"], default="zarr")
    parser.add_argument("--weights", default=DEFAULT_WEIGHTS)
    parser.add_argument("--jobs", type=int, default=4, help="batch jobs (= GPUs) at most")
    parser.add_argument("--pbs", action="store_true", help="PBS instead of SLURM")
    parser.add_argument("--queue", help="partition / queue with GPUs")
    parser.add_argument("--account", help="project to charge")
    parser.add_argument("--walltime", default="02:00:00")
    parser.add_argument("--cpus", type=int, default=8, help="CPU cores per job")
    parser.add_argument("--memory", default="32GB", help="memory per job")
    parser.add_argument("--gpus-per-job", type=int, default=1, help="SLURM --gres=gpu:N")
    parser.add_argument("--scenes-per-gpu", type=int, default=2, help="scenes in flight")
    parser.add_argument("--batch-size", type=int, default=8, help="windows per model call")
    parser.add_argument("--split-scenes", type=float, help="chunk scenes above AREA MP")
    parser.add_argument("--dry-run", action="store_true", help="print the job script, exit")
    args = parser.parse_args()

    args.out_dir.mkdir(parents=True, exist_ok=True)
    with make_cluster(args) as cluster:
        if args.dry_run:
            print(cluster.job_script())
            return
        cluster.adapt(minimum_jobs=1, maximum_jobs=args.jobs)  # jobs end when work runs out
        report = batch_reconstruct(
            args.inputs,
            args.out_dir,
            weights=args.weights,
            fmt=args.format,
            options=ReconstructOptions(device="cuda", batch_size=args.batch_size),
            cluster=ClusterOptions(scheduler=cluster.scheduler_address),
            log=print,
            split_scenes=args.split_scenes,
        )
    print(report.summary_text())
    sys.exit(0 if report.ok else 1)


if __name__ == "__main__":
    main()
