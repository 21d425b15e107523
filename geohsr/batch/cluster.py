"""Where a batch runs: a local dask cluster sized to the machine, or an existing scheduler.

Local default: one worker process per GPU; without GPUs, workers of
``threads_per_worker`` torch threads each, as many as the CPU cores allow. Each worker
runs one scene at a time (one dask thread); torch uses ``threads_per_worker`` threads.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import dask

from geohsr.exceptions import GeoHSRError

#: torch threads per CPU worker when neither the worker count nor the threads are given
DEFAULT_CPU_THREADS_PER_WORKER = 4
#: times dask retries a scene task after a transient error (OSError, TimeoutError)
DEFAULT_RETRIES = 2


@dataclass(frozen=True)
class ClusterOptions:
    """How to get a cluster. ``scheduler`` (``tcp://host:port``) or ``scheduler_file``
    attach to a running one; otherwise a local cluster is started with ``n_workers``
    workers of ``threads_per_worker`` torch threads (``None``: sized to the machine)."""

    scheduler: str | None = None
    scheduler_file: Path | None = None
    n_workers: int | None = None
    threads_per_worker: int | None = None
    processes: bool = True


@dataclass(frozen=True)
class WorkerLayout:
    """Local cluster shape: worker count, torch threads per worker, GPUs shared out."""

    n_workers: int
    threads_per_worker: int
    n_gpus: int


@dataclass(frozen=True)
class BatchCluster:
    """A connected client plus what the run needs to know about the cluster.

    ``local_gpus`` > 0 means a local multi-GPU cluster whose worker ``i`` should use
    ``cuda:{i % local_gpus}``; ``threads_per_worker`` is ``None`` on external clusters
    (their workers decide).
    """

    client: object  # distributed.Client, kept untyped so importing this module stays light
    address: str
    dashboard: str | None
    local_gpus: int
    threads_per_worker: int | None

    @classmethod
    def from_client(
        cls, client, *, local_gpus: int = 0, threads_per_worker: int | None = None
    ) -> BatchCluster:
        """Wrap a connected ``distributed.Client`` (e.g. of a dask-jobqueue or dask-cuda
        cluster) for :func:`geohsr.batch.run_batch`."""
        return cls(
            client, client.scheduler.address, _dashboard(client), local_gpus, threads_per_worker
        )

    @property
    def n_workers(self) -> int:
        """Workers connected right now (an adaptive cluster may still be starting some)."""
        return len(self.client.scheduler_info(n_workers=-1)["workers"])


def local_layout(
    n_cores: int,
    n_gpus: int,
    *,
    n_workers: int | None = None,
    threads_per_worker: int | None = None,
) -> WorkerLayout:
    """Shape of a local cluster on a machine with ``n_cores`` CPU cores and ``n_gpus`` GPUs.

    GPUs: one worker per GPU, the cores split between them. CPU only: ``n_workers`` and
    ``threads_per_worker`` fill the cores (``n_workers = max(1, cores // threads)``), with
    :data:`DEFAULT_CPU_THREADS_PER_WORKER` threads when neither is given.
    """
    n_cores = max(1, n_cores)
    for label, value in (("n_workers", n_workers), ("threads_per_worker", threads_per_worker)):
        if value is not None and value < 1:
            raise GeoHSRError(f"{label} must be at least 1 (got {value})")
    if n_gpus > 0:
        workers = n_workers or n_gpus
        return WorkerLayout(workers, threads_per_worker or max(1, n_cores // workers), n_gpus)
    if n_workers is None:
        threads = threads_per_worker or min(n_cores, DEFAULT_CPU_THREADS_PER_WORKER)
        return WorkerLayout(max(1, n_cores // threads), threads, 0)
    return WorkerLayout(n_workers, threads_per_worker or max(1, n_cores // n_workers), 0)


@contextmanager
def open_cluster(options: ClusterOptions) -> Iterator[BatchCluster]:
    """Connect to the cluster ``options`` describe; a local one is shut down on exit."""
    from distributed import Client

    if options.scheduler and options.scheduler_file:
        raise GeoHSRError("give either --scheduler or --scheduler-file, not both")
    if options.scheduler or options.scheduler_file:
        target = options.scheduler or str(options.scheduler_file)
        try:
            if options.scheduler:
                client = Client(options.scheduler)
            else:
                client = Client(scheduler_file=str(options.scheduler_file))
        except (OSError, TimeoutError, ValueError) as err:
            raise GeoHSRError(
                f"cannot connect to the dask scheduler {target} ({err}); check that it is "
                "running and reachable, or leave out --scheduler to use a local cluster"
            ) from err
        with client:
            yield BatchCluster.from_client(client)
        return
    yield from _local_cluster(options)


def _local_cluster(options: ClusterOptions) -> Iterator[BatchCluster]:
    from dask.system import CPU_COUNT
    from distributed import Client, LocalCluster

    layout = local_layout(
        CPU_COUNT,
        _cuda_device_count(),
        n_workers=options.n_workers,
        threads_per_worker=options.threads_per_worker,
    )
    processes = options.processes or layout.n_gpus > 0
    # Worker processes get BLAS/OpenMP pools of the same size as torch's (dask sets 1).
    thread_env = {name: str(layout.threads_per_worker) for name in _THREAD_ENV_VARS}
    with dask.config.set(WORKER_MALLOC_CONFIG):
        cluster = LocalCluster(
            n_workers=layout.n_workers,
            threads_per_worker=1,
            processes=processes,
            dashboard_address=":0",
            **({"env": thread_env} if processes else {}),
        )
    with cluster, Client(cluster) as client:
        yield BatchCluster.from_client(
            client, local_gpus=layout.n_gpus, threads_per_worker=layout.threads_per_worker
        )


_THREAD_ENV_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
#: worker processes start with one malloc arena, so the tasks' threads reuse freed memory
#: like a main thread does (see :mod:`geohsr.inference.allocator`; 7.4 -> 5.3 s for a chunk
#: of 9 windows here). glibc reads it at process start, hence dask's pre-spawn environment.
WORKER_MALLOC_CONFIG = {"distributed.nanny.pre-spawn-environ.MALLOC_ARENA_MAX": 1}


def _cuda_device_count() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def _dashboard(client) -> str | None:
    """The dashboard URL, or ``None`` when the scheduler serves none (bokeh not installed)."""
    services = client.scheduler_info(n_workers=0).get("services", {})
    return client.dashboard_link if "dashboard" in services else None
