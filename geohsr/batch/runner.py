"""Run many scenes on a dask cluster: one task per scene, failures isolated, resumable.

:func:`batch_reconstruct` is the whole command (inputs -> cluster -> run -> JSON report);
:func:`run_batch` runs planned jobs on a cluster you already hold (e.g. a dask-jobqueue
or dask-cuda cluster, see ``examples/``).
"""

from __future__ import annotations

import time
import traceback
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

import rasterio
import zarr
from distributed import as_completed
from rasterio.errors import RasterioError

from geohsr.batch.cluster import DEFAULT_RETRIES, BatchCluster, ClusterOptions, open_cluster
from geohsr.batch.inputs import SceneJob, expand_inputs, plan_jobs
from geohsr.batch.progress import BatchProgress
from geohsr.batch.report import REPORT_FILENAME, BatchReport, SceneRecord
from geohsr.batch.scene_chunks import ClusterChunks
from geohsr.batch.worker import (
    PROGRESS_TOPIC,
    PredictorPlugin,
    PredictorSettings,
    batch_wording,
    reconstruct_scene_task,
    scene_options,
)
from geohsr.exceptions import GeoHSRError, OutputError
from geohsr.inference.model_cache import cached_predictor
from geohsr.inference.options import DEFAULT_WEIGHTS, ReconstructOptions
from geohsr.io.cube import camera_response_attrs
from geohsr.io.encoding import CubeEncoding
from geohsr.io.lock import output_lock
from geohsr.io.output import is_complete_output, make_output_folder
from geohsr.io.stac import write_collection
from geohsr.models.weights import file_sha256, resolve_weights


def run_batch(
    jobs: Sequence[SceneJob],
    cluster: BatchCluster,
    predictor: PredictorSettings,
    *,
    options: ReconstructOptions | None = None,
    overwrite: bool = False,
    retries: int = DEFAULT_RETRIES,
    show_progress: bool = True,
    split_scenes: float | None = None,
) -> BatchReport:
    """Reconstruct ``jobs`` on ``cluster``, one task per scene; a report in job order.

    Scenes whose outputs are complete are skipped unless ``overwrite``; interrupted Zarr
    outputs are resumed, anything else is redone. ``options`` apply to every scene.
    The model is loaded once per worker by :class:`PredictorPlugin`. Never raises for a
    failing scene: its record says ``failed`` with the error. ``show_progress``: a line per
    scene on stderr, plus progress bars when stderr is a terminal. ``split_scenes``: Zarr
    scenes larger than this many megapixels are split into independent chunk tasks
    (:class:`~geohsr.batch.scene_chunks.ClusterChunks`, ``options.chunk_size``), so a few
    giant scenes among small ones keep every worker busy.
    """
    options = options or ReconstructOptions()
    started_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    start = time.perf_counter()
    records: dict[str, SceneRecord] = {}
    pending: list[SceneJob] = []
    expected = value_settings(predictor, options)
    replaced: dict[str, list[str]] = {}  # scene -> settings its complete output differs in
    for job in jobs:
        if not overwrite and is_complete_output(job.output):
            attrs = read_cube_attrs(job.output)
            changed = changed_settings(attrs, expected)
            if not changed:
                records[job.name] = SceneRecord(
                    job.name,
                    job.scene.location,
                    str(job.output),
                    "skipped",
                    inference=_recorded_inference(attrs),
                )
                continue
            replaced[job.name] = changed
        pending.append(job)

    giants = [job for job in pending if split_scenes is not None and _larger(job, split_scenes)]
    pending = [job for job in pending if job not in giants]
    client = cluster.client
    with BatchProgress(len(jobs), complete=len(records), enabled=show_progress) as progress:
        if pending or giants:
            client.register_plugin(PredictorPlugin(predictor, cluster.local_gpus))
            client.subscribe_topic(PROGRESS_TOPIC, progress.on_event)
            split = ThreadPoolExecutor(max_workers=max(1, min(len(giants), MAX_SPLIT_SCENES)))
            try:
                futures = {
                    client.submit(
                        reconstruct_scene_task,
                        job,
                        options,
                        overwrite or job.name in replaced,
                        key=f"geohsr-scene-{job.name}-{uuid.uuid4().hex[:8]}",
                        retries=retries,
                        pure=False,
                    ): job
                    for job in pending
                }
                split_runs = [
                    split.submit(
                        _split_scene,
                        job,
                        cluster,
                        predictor,
                        options,
                        overwrite or job.name in replaced,
                        retries,
                        progress,
                    )
                    for job in giants
                ]
                for future in as_completed(futures):
                    record = _collect(future, futures[future], retries)
                    records[record.scene] = record
                    progress.finished(record)
                for run in split_runs:
                    record = run.result()
                    records[record.scene] = record
            finally:
                split.shutdown(wait=False, cancel_futures=True)  # all done, or interrupted
                client.unsubscribe_topic(PROGRESS_TOPIC)

    for name, changed in replaced.items():
        records[name].replaced = ", ".join(changed)
    return BatchReport(
        records=[records[job.name] for job in jobs],
        wall_seconds=time.perf_counter() - start,
        n_workers=cluster.n_workers,
        scheduler=cluster.address,
        weights=predictor.weights,
        started_at=started_at,
    )


#: giant scenes whose chunks are submitted at the same time (the others wait for a turn)
MAX_SPLIT_SCENES = 4


def _larger(job: SceneJob, megapixels: float) -> bool:
    """Whether ``job`` writes Zarr and its scene exceeds ``megapixels`` (an unreadable
    scene is not: its own task reports the error)."""
    import rasterio
    from rasterio.errors import RasterioError

    if job.output.suffix != ".zarr":
        return False
    try:
        with rasterio.open(job.scene.location) as dataset:
            return dataset.width * dataset.height / 1e6 > megapixels
    except (RasterioError, OSError):
        return False


def _split_scene(
    job: SceneJob,
    cluster: BatchCluster,
    settings: PredictorSettings,
    options: ReconstructOptions,
    overwrite: bool,
    retries: int,
    progress: BatchProgress,
) -> SceneRecord:
    """Reconstruct one giant scene as chunk tasks on ``cluster`` (from a client thread)."""
    from geohsr.inference.scene import reconstruct_scene

    started = time.perf_counter()
    record = SceneRecord(job.name, job.scene.location, str(job.output), "failed", worker="chunks")

    def report(done: int, total: int) -> None:
        progress.on_event((time.time(), {"scene": job.name, "done": done, "total": total}))

    try:
        result = reconstruct_scene(
            job.scene.location,
            job.output,
            predictor=cached_predictor(settings),
            options=scene_options(job, options),
            overwrite=overwrite,
            resume=not overwrite,
            progress=report,
            runner=ClusterChunks(settings, cluster=cluster, retries=retries),
        )
    except GeoHSRError as err:
        record.error = f"{type(err).__name__}: {batch_wording(str(err))}"
    except Exception as err:  # noqa: BLE001 - one broken scene must not stop the batch
        record.error = f"{type(err).__name__}: {err}"
        record.traceback = traceback.format_exc()
    else:
        record.status = "done"
        record.megapixels = result.megapixels
        record.inference = _recorded_inference(read_cube_attrs(result.output))
    record.seconds = time.perf_counter() - started
    progress.finished(record)
    return record


def value_settings(predictor: PredictorSettings, options: ReconstructOptions) -> dict[str, str]:
    """The settings that change an output's values, as its attributes record them: weights
    (SHA-256), known camera (its response, empty when unknown), tile, overlap and encoding."""
    return {
        "weights_sha256": file_sha256(resolve_weights(predictor.weights)),
        "camera_response": camera_response_attrs(predictor.camera).get("camera_response", ""),
        "tile": str(options.tile),
        "overlap": str(options.overlap),
        "encoding": CubeEncoding(options.dtype, options.precision_bits).description(),
    }


def changed_settings(attrs: Mapping[str, object] | None, expected: dict[str, str]) -> list[str]:
    """Names of the :func:`value_settings` that a complete output's attributes ``attrs``
    (:func:`read_cube_attrs`) record otherwise; all of them when they could not be read."""
    if attrs is None:
        return list(expected)
    return [name for name, value in expected.items() if str(attrs.get(name, "")) != value]


def read_cube_attrs(cube: Path) -> dict[str, object] | None:
    """A published cube's attributes, lower-case names (None where they cannot be read)."""
    try:
        if cube.suffix == ".zarr":
            group = zarr.open_group(str(cube), mode="r", use_consolidated=False)
            return dict(group.attrs)
        with rasterio.open(cube) as dataset:
            return {name.lower(): value for name, value in dataset.tags().items()}
    except (OSError, ValueError, RasterioError):
        return None


def _recorded_inference(attrs: Mapping[str, object] | None) -> str | None:
    """The backend and precision a published cube records (None where it cannot say)."""
    inference = (attrs or {}).get("inference")
    return str(inference) if inference is not None else None


def batch_reconstruct(
    inputs: Iterable[str | Path],
    out_dir: str | Path,
    *,
    weights: str | Path = DEFAULT_WEIGHTS,
    fmt: str = "zarr",
    options: ReconstructOptions | None = None,
    cluster: ClusterOptions | None = None,
    overwrite: bool = False,
    retries: int = DEFAULT_RETRIES,
    show_progress: bool = True,
    log: Callable[[str], None] | None = None,
    split_scenes: float | None = None,
) -> BatchReport:
    """Reconstruct every scene in ``inputs`` into ``out_dir`` on a dask cluster.

    Inputs are expanded by :func:`~geohsr.batch.inputs.expand_inputs`; scene ``name`` is
    written to ``<out_dir>/<name>.zarr`` (``.tif`` with ``fmt="tif"``). ``options`` (tile,
    device, batch size, torch threads, scaling, dtype ...) apply to every scene, as for
    ``reconstruct_scene``. The report is also written to
    ``<out_dir>/geohsr_batch_report.json`` (``report.path``). ``log`` receives a few
    informational lines (cluster address, dashboard link). ``split_scenes``: scenes above
    this many megapixels run as chunk tasks (see :func:`run_batch`).

    One batch at a time writes into ``out_dir`` (a lock beside the report); another one
    running there is an :class:`OutputError` at once. When every output is already
    complete (and not ``overwrite``) no cluster is started and the report of the earlier
    run is left as it was (``report.path`` is ``None``).
    """
    options = options or ReconstructOptions()
    cluster = cluster or ClusterOptions()
    log = log or (lambda line: None)
    jobs = plan_jobs(expand_inputs(inputs), out_dir, fmt)
    resolve_weights(weights)  # a wrong name or path fails here, before any worker starts
    settings = PredictorSettings.from_options(weights, options)  # so does a wrong camera
    report_path = Path(out_dir) / REPORT_FILENAME
    make_output_folder(report_path)
    with output_lock(report_path, what=f"the batch output folder {out_dir}"):
        expected = value_settings(settings, options)
        recorded = None if overwrite else _all_up_to_date(jobs, expected)
        if recorded is not None:
            return _nothing_to_do(jobs, recorded, settings.weights)
        with open_cluster(cluster) as batch_cluster:
            log(f"dask scheduler {batch_cluster.address}, {batch_cluster.n_workers} worker(s)")
            if batch_cluster.dashboard:
                log(f"dask dashboard: {batch_cluster.dashboard}")
            report = run_batch(
                jobs,
                batch_cluster,
                replace(settings, threads=settings.threads or batch_cluster.threads_per_worker),
                options=options,
                overwrite=overwrite,
                retries=retries,
                show_progress=show_progress,
                split_scenes=split_scenes,
            )
        report.path = _write_report(report, out_dir)
        if options.sidecars:
            _write_collection(jobs, out_dir)
    return report


def _write_collection(jobs: Sequence[SceneJob], out_dir: str | Path) -> Path | None:
    """A STAC Collection (``<out_dir>/collection.json``) over the complete outputs."""
    outputs = [job.output for job in jobs if is_complete_output(job.output)]
    if not outputs:
        return None
    return write_collection(
        outputs,
        Path(out_dir),
        collection_id=Path(out_dir).resolve().name or "geohsr-batch",
        description=f"geohsr spectral reconstructions ({len(outputs)} scenes)",
    )


def _all_up_to_date(
    jobs: Sequence[SceneJob], expected: dict[str, str]
) -> list[dict[str, object]] | None:
    """Every job's output attributes when all outputs are complete and made with the
    ``expected`` settings, else None (at the first one that is not)."""
    recorded = []
    for job in jobs:
        attrs = read_cube_attrs(job.output) if is_complete_output(job.output) else None
        if attrs is None or changed_settings(attrs, expected):
            return None
        recorded.append(attrs)
    return recorded


def _nothing_to_do(
    jobs: Sequence[SceneJob], recorded: Sequence[Mapping[str, object]], weights: str
) -> BatchReport:
    """The report of a run whose outputs are all complete already (their attributes
    ``recorded``, in job order): every scene skipped."""
    return BatchReport(
        records=[
            SceneRecord(
                job.name,
                job.scene.location,
                str(job.output),
                "skipped",
                inference=_recorded_inference(attrs),
            )
            for job, attrs in zip(jobs, recorded, strict=True)
        ],
        wall_seconds=0.0,
        n_workers=0,
        scheduler="none (nothing to do)",
        weights=weights,
        started_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
    )


def _write_report(report: BatchReport, out_dir: str | Path) -> Path:
    """Write ``report`` into ``out_dir``; an :class:`OutputError` that also says how the run
    went when it cannot be written."""
    try:
        return report.write_json(out_dir)
    except OutputError as err:
        outcome = report.summary_text().splitlines()[0]
        raise OutputError(f"{err} (the scenes themselves: {outcome})") from err


def _collect(future, job: SceneJob, retries: int) -> SceneRecord:
    """The record a scene task returned, or a ``failed`` record for an error it raised."""
    try:
        return future.result()
    except Exception as err:  # noqa: BLE001 - transient error after its retries, lost worker
        return SceneRecord(
            job.name,
            job.scene.location,
            str(job.output),
            "failed",
            error=f"{type(err).__name__}: {err} (gave up after {retries} retries)",
        )
