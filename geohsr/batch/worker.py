"""What runs on the dask workers: the model, loaded once per worker, and the per-scene task.

:class:`PredictorPlugin` is a ``distributed.WorkerPlugin``: its ``setup`` loads the
predictor when the worker starts (or joins later), so every scene task on that worker
reuses it. :func:`reconstruct_scene_task` turns the outcome of one scene into a
:class:`SceneRecord`; only transient errors (``OSError``, ``TimeoutError``) propagate, so
dask retries them, while a corrupt or invalid scene becomes a ``failed`` record.
"""

from __future__ import annotations

import time
import traceback
from dataclasses import replace
from typing import Any

from distributed import WorkerPlugin, get_worker

from geohsr.batch.inputs import SceneJob
from geohsr.batch.report import SceneRecord
from geohsr.exceptions import GeoHSRError, ModelError
from geohsr.inference.model_cache import PredictorSpec, install_predictor
from geohsr.inference.options import ReconstructOptions

#: name under which the plugin is registered (``worker.plugins[PLUGIN_NAME]``)
PLUGIN_NAME = "geohsr-predictor"
#: dask event topic carrying per-scene progress ``{"scene", "done", "total"}``
PROGRESS_TOPIC = "geohsr-scene-progress"
#: errors worth retrying (file systems, networks); everything else fails the scene at once
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (OSError, TimeoutError)
#: minimum seconds between two progress events of one scene
PROGRESS_INTERVAL_S = 0.5


#: how each worker builds its predictor (weights name or path and settings)
PredictorSettings = PredictorSpec


class PredictorPlugin(WorkerPlugin):
    """Loads one predictor per worker in ``setup`` and makes it the one chunk tasks with
    the same settings find (:func:`~geohsr.inference.model_cache.cached_predictor`).

    ``local_gpus`` > 0 (a local multi-GPU cluster) puts worker ``i`` on
    ``cuda:{i % local_gpus}`` when the device is ``"auto"``; elsewhere each worker sees
    its own GPU(s) (dask-cuda, one GPU per batch job) and ``"auto"`` is left to the predictor.
    """

    name = PLUGIN_NAME

    def __init__(self, settings: PredictorSettings, local_gpus: int = 0) -> None:
        self.settings = settings
        self.local_gpus = local_gpus
        self.predictor: Any = None

    def setup(self, worker) -> None:
        self.predictor = self.settings.load(device=self.device_for(worker.name))
        install_predictor(self.settings, self.predictor)

    def teardown(self, worker) -> None:
        self.predictor = None

    def device_for(self, worker_name: object) -> str:
        """The torch device string the worker called ``worker_name`` should use."""
        if self.local_gpus and self.settings.device == "auto" and isinstance(worker_name, int):
            return f"cuda:{worker_name % self.local_gpus}"
        return self.settings.device


def worker_predictor():
    """The predictor loaded by :class:`PredictorPlugin` on the current worker."""
    plugin = get_worker().plugins.get(PLUGIN_NAME)
    if plugin is None or plugin.predictor is None:
        raise ModelError(
            "this dask worker has no geohsr model loaded; register PredictorPlugin with "
            "client.register_plugin before submitting scenes (geohsr.batch.run_batch does)"
        )
    return plugin.predictor


def reconstruct_scene_task(
    job: SceneJob, options: ReconstructOptions, overwrite: bool
) -> SceneRecord:
    """Reconstruct one scene on the current worker and say what happened.

    ``overwrite`` replaces an existing output; otherwise an interrupted Zarr output is
    resumed and an interrupted GeoTIFF redone. Raises only :data:`TRANSIENT_ERRORS` (for
    dask to retry); an :class:`OutputError` (output locked by another run, full or
    read-only disk) fails the scene at once.
    """
    from geohsr.inference.scene import reconstruct_scene

    worker = get_worker()
    started = time.perf_counter()
    record = SceneRecord(job.name, job.scene.location, str(job.output), "failed")
    record.worker = str(worker.name)
    is_zarr = job.output.suffix == ".zarr"
    try:
        result = reconstruct_scene(
            job.scene.location,
            job.output,
            predictor=worker_predictor(),
            options=scene_options(job, options),
            # a GeoTIFF cannot resume: one missing at the destination is written afresh
            overwrite=overwrite or (not is_zarr and not job.output.exists()),
            resume=not overwrite and is_zarr,
            progress=_ProgressEvents(worker, job.name),
        )
    except TRANSIENT_ERRORS:
        raise
    except GeoHSRError as err:
        record.error = f"{type(err).__name__}: {batch_wording(str(err))}"
    except Exception as err:  # one broken scene must not stop the batch: record it
        record.error = f"{type(err).__name__}: {err}"
        record.traceback = traceback.format_exc()
    else:
        record.status = "done"
        record.megapixels = result.megapixels
        record.inference = worker_predictor().inference
    record.seconds = time.perf_counter() - started
    return record


def batch_wording(message: str) -> str:
    """A scene error as a batch user acts on it: rerunning the batch resumes Zarr outputs by
    itself (``batch`` has no ``--resume``)."""
    return message.replace("rerun with --resume", "rerun the batch")


def scene_options(job: SceneJob, options: ReconstructOptions) -> ReconstructOptions:
    """``options`` for this scene: the RGB bands a STAC asset names, unless given."""
    if job.scene.rgb_bands is not None and options.bands is None:
        return replace(options, bands=job.scene.rgb_bands)
    return options


class _ProgressEvents:
    """Progress callback that forwards a scene's progress to the client as dask events."""

    def __init__(self, worker, scene: str) -> None:
        self.worker = worker
        self.scene = scene
        self.last_sent = 0.0

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if done < total and now - self.last_sent < PROGRESS_INTERVAL_S:
            return
        self.last_sent = now
        message = {"scene": self.scene, "done": int(done), "total": int(total)}
        self.worker.log_event(PROGRESS_TOPIC, message)
