"""One scene across a dask cluster: independent chunk tasks writing one Zarr cube.

:func:`reconstruct_scene_on_cluster` is ``geohsr reconstruct SRC DST.zarr --scheduler ...``
(or ``--scheduler-file``, ``--n-workers``): :func:`~geohsr.inference.scene.reconstruct_scene`
with a :class:`ClusterChunks` runner. The client keeps what must happen once — the output
lock, the checks, creating ``DST.partial`` and publishing it — and the workers compute and
write chunks in parallel (:func:`~geohsr.inference.chunk_tasks.write_chunk`), each loading
the model once (:class:`~geohsr.batch.worker.PredictorPlugin`). Chunks already recorded as
done are skipped on ``--resume``; the cube is published only when every chunk is there.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from distributed import as_completed, get_worker

from geohsr.batch.cluster import DEFAULT_RETRIES, BatchCluster, ClusterOptions, open_cluster
from geohsr.batch.worker import PredictorPlugin
from geohsr.exceptions import GeoHSRError, OutputError
from geohsr.inference.chunk_tasks import ChunkJob, ChunkRecord, write_chunk
from geohsr.inference.model_cache import PredictorSpec
from geohsr.inference.options import DEFAULT_WEIGHTS, ReconstructOptions
from geohsr.inference.progress import Progress, ProgressArg
from geohsr.inference.scene import (
    PreparedScene,
    ReconstructResult,
    reconstruct_scene,
    run_attrs,
)
from geohsr.inference.value_range import ValueReport
from geohsr.io.output import output_errors, output_format
from geohsr.io.zarr_writer import ZarrCubeWriter
from geohsr.spectral import N_BANDS
from geohsr.tiling import make_grid, make_plan
from geohsr.tiling.chunks import (
    Chunk,
    default_chunk_size,
    make_chunks,
    redundancy,
    round_up,
    windows_touching,
)


def scene_chunks(scene: PreparedScene) -> tuple[Chunk, ...]:
    """The chunks of ``scene``: ``options.chunk_size`` (or the default) rounded up to whole
    Zarr chunks, so no two tasks write into the same Zarr chunk."""
    align = scene.writer.chunk
    stride = scene.options.tile - scene.options.overlap
    height, width = scene.grid.height, scene.grid.width
    if scene.options.chunk_size:
        size = round_up(scene.options.chunk_size, align)
    else:
        size = default_chunk_size(height, width, stride, align)
    return make_chunks(height, width, size)


class ClusterChunks:
    """A :data:`~geohsr.inference.scene.SceneRunner` computing a scene's chunks on a dask
    cluster: ``cluster`` (a connected :class:`BatchCluster` whose workers have the
    :class:`PredictorPlugin` of ``model``) or else ``options`` to open one for the run.

    ``retries``: reruns of a chunk after a transient error (a lost worker is rerun by dask
    itself). ``log`` receives a few lines (cluster, chunks, redundancy).
    """

    def __init__(
        self,
        model: PredictorSpec,
        *,
        cluster: BatchCluster | None = None,
        options: ClusterOptions | None = None,
        retries: int = DEFAULT_RETRIES,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.model = model
        self.cluster = cluster
        self.cluster_options = options or ClusterOptions()
        self.retries = retries
        self.log = log or (lambda line: None)

    def __call__(self, scene: PreparedScene, progress_arg: ProgressArg) -> ReconstructResult:
        writer = scene.writer
        if not isinstance(writer, ZarrCubeWriter):
            raise _tif_refused(writer.path)
        chunks = scene_chunks(scene)
        grid = make_grid(
            scene.grid.height, scene.grid.width, scene.options.tile, scene.options.overlap
        )
        bands = make_plan(grid, 1).bands
        rows_done = bands[writer.bands_done - 1].final_end if writer.bands_done else 0
        done = writer.done_chunks()
        todo = [chunk for chunk in chunks if chunk not in done and chunk.row1 > rows_done]
        self.log(
            f"{len(chunks)} chunks of up to {chunks[0].shape[0]} px, {len(todo)} to compute; "
            f"chunk borders add {redundancy(grid, chunks):.1%} windows"
        )
        total = sum(windows_touching(grid, chunk) for chunk in chunks)
        progress = Progress(
            progress_arg, total, total - sum(windows_touching(grid, c) for c in todo)
        )
        started, records = time.perf_counter(), []
        try:
            if todo:  # else only the publishing is left: no cluster needed
                with self._cluster() as cluster:
                    started = time.perf_counter()  # the cluster is up, models loaded
                    records = self._compute(cluster, self._job(scene), todo, progress)
        finally:
            progress.close()
        rerender = [r.rerender_error for r in records if r.rerender_error is not None]
        with output_errors(writer.path, resumable=True):
            path = writer.finish_chunks(
                run_attrs(max(rerender) if rerender else None),
                chunks,
                rows_done=rows_done,
                bands_total=len(bands),
            )
        seconds = time.perf_counter() - started
        pixels = sum(record.pixels for record in records)
        return ReconstructResult(
            output=path,
            shape=(N_BANDS, scene.grid.height, scene.grid.width),
            n_windows=sum(record.n_windows for record in records),
            seconds=seconds,
            megapixels=scene.grid.height * scene.grid.width / 1e6,
            megapixels_per_s=pixels / 1e6 / max(seconds, 1e-9),
            crs=scene.rgb.rio.crs.to_string() if scene.rgb.rio.crs is not None else None,
            georeference=scene.grid.georeference,
            chunks=len(chunks),
            redundancy=redundancy(grid, chunks),
            values=ValueReport(rerender_error_max=max(rerender) if rerender else None),
        )

    def _job(self, scene: PreparedScene) -> ChunkJob:
        return ChunkJob.for_scene(scene, self.model)

    @contextmanager
    def _cluster(self) -> Iterator[BatchCluster]:
        if self.cluster is not None:
            yield self.cluster
            return
        with open_cluster(self.cluster_options) as cluster:
            self.model = replace(
                self.model, threads=self.model.threads or cluster.threads_per_worker
            )
            cluster.client.register_plugin(PredictorPlugin(self.model, cluster.local_gpus))
            self.log(f"dask scheduler {cluster.address}, {cluster.n_workers} worker(s)")
            if cluster.dashboard:
                self.log(f"dask dashboard: {cluster.dashboard}")
            yield cluster

    def _compute(
        self, cluster: BatchCluster, job: ChunkJob, todo: list[Chunk], progress: Progress
    ) -> list[ChunkRecord]:
        """Run the chunk tasks; their records as they finish. Interrupted or failed, the
        remaining tasks are cancelled and the chunks written so far stay recorded."""
        client = cluster.client
        run = uuid.uuid4().hex[:8]
        futures = [
            client.submit(
                _chunk_task,
                job,
                chunk,
                key=f"geohsr-chunk-{run}-{chunk.key}",
                retries=self.retries,
                pure=False,
            )
            for chunk in todo
        ]
        records = []
        try:
            for future in as_completed(futures):
                record = _result(future, Path(job.partial).name)
                records.append(record)
                progress.update(record.n_windows, record.pixels)
        finally:
            client.cancel([future for future in futures if not future.done()])
        return records


def _chunk_task(job: ChunkJob, chunk: Chunk) -> ChunkRecord:
    """:func:`write_chunk` on a dask worker (named in the record)."""
    try:
        worker = str(get_worker().name)
    except ValueError:
        worker = ""
    return write_chunk(job, chunk, worker)


def _result(future, store: str) -> ChunkRecord:
    """A finished task's record; a lost worker or an unexpected error as a one-line error."""
    try:
        return future.result()
    except GeoHSRError:
        raise
    except Exception as err:  # noqa: BLE001 - KilledWorker, a bug in a task: one line, resumable
        raise GeoHSRError(
            f"a chunk of {store} failed ({type(err).__name__}: {err}); the chunks already "
            "written are kept: rerun with --resume to continue"
        ) from err


def _tif_refused(dst: str | Path) -> OutputError:
    """Why a cluster run does not write ``dst`` (a GeoTIFF), and what to do instead."""
    zarr_dst = Path(dst).with_suffix(".zarr")
    return OutputError(
        f"a cluster run (--scheduler/--n-workers) writes Zarr only: write {zarr_dst}, then "
        f"gdal_translate -of COG 'ZARR:\"{zarr_dst}\":/reflectance' {dst} if you need a "
        "COG, or leave out --scheduler/--n-workers to write the .tif in one process"
    )


def reconstruct_scene_on_cluster(
    src: str | Path,
    dst: str | Path,
    *,
    cluster: ClusterOptions,
    weights: str | Path = DEFAULT_WEIGHTS,
    options: ReconstructOptions | None = None,
    overwrite: bool = False,
    resume: bool = False,
    progress: ProgressArg = None,
    log: Callable[[str], None] | None = None,
) -> ReconstructResult:
    """Reconstruct raster ``src`` into Zarr ``dst`` on a dask cluster, chunk by chunk.

    ``cluster``: a running scheduler (``scheduler``/``scheduler_file``) or a local cluster
    of ``n_workers``. Same output as :func:`reconstruct_scene` (same values; see
    :mod:`geohsr.inference.chunked`); ``resume`` skips chunks already written. The cluster
    is started only once the output checks pass, and not at all when ``resume`` finds the
    output complete. Raises :class:`OutputError` for a ``.tif`` ``dst`` (with the fix).
    """
    options = options or ReconstructOptions()
    if output_format(dst) != "zarr":
        raise _tif_refused(dst)
    model = PredictorSpec.from_options(weights, options)
    return reconstruct_scene(
        src,
        dst,
        weights=weights,
        options=options,
        overwrite=overwrite,
        resume=resume,
        progress=progress,
        runner=ClusterChunks(model, options=cluster, log=log),
    )
