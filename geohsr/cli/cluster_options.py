"""``geohsr reconstruct ... --scheduler ADDRESS | --scheduler-file F | --n-workers N``: one
scene on a dask cluster, in independent chunks (:mod:`geohsr.batch.scene_chunks`); without
them the scene streams through this process (the default, flat memory)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

#: parameter names the options below add to a command
CLUSTER_PARAMS = ("scheduler", "scheduler_file", "n_workers")

_OPTIONS: tuple[Callable[[Callable], Callable], ...] = (
    click.option(
        "--scheduler",
        metavar="tcp://HOST:PORT",
        help="Compute the scene in chunks on this running dask scheduler (Zarr output).",
    ),
    click.option(
        "--scheduler-file",
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        help="Same, with the scheduler described by this file (dask scheduler --scheduler-file).",
    ),
    click.option(
        "--n-workers",
        type=click.IntRange(min=1),
        help="Same, on a local dask cluster of N worker processes (--threads torch threads each).",
    ),
)


def scene_cluster_options(command: Callable) -> Callable:
    """Decorator: add ``--scheduler``, ``--scheduler-file`` and ``--n-workers``."""
    for option in reversed(_OPTIONS):
        command = option(command)
    return command


def reconstruct_on(params: dict[str, Any], *args: Any, log=None, **kwargs: Any):
    """Run :func:`~geohsr.inference.scene.reconstruct_scene` here, or on the cluster the
    (popped) cluster parameters in ``params`` name; ``log`` gets the cluster's lines."""
    values = {name: params.pop(name) for name in CLUSTER_PARAMS}
    if not any(values.values()):
        from geohsr.inference.scene import reconstruct_scene

        return reconstruct_scene(*args, **kwargs)
    from geohsr.batch.cluster import ClusterOptions
    from geohsr.batch.scene_chunks import reconstruct_scene_on_cluster

    options = kwargs.get("options")
    threads = options.threads if options is not None else None
    cluster = ClusterOptions(**values, threads_per_worker=threads)
    return reconstruct_scene_on_cluster(*args, cluster=cluster, log=log, **kwargs)
