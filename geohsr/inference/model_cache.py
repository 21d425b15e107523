"""How chunk tasks get their model: a picklable description, loaded once per process.

Dask tasks carry a :class:`PredictorSpec` (weights name or path and settings), never a live
model: on any scheduler (threads, processes, ``dask.distributed``) the first task of a
process loads the predictor and later tasks reuse it (:func:`cached_predictor`; the batch
worker plugin fills the same cache when the worker starts). A model handed over as an
object is wrapped in a :class:`LocalPredictor`, usable only in the process that made it.
"""

from __future__ import annotations

import threading
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from geohsr.exceptions import ModelError
from geohsr.spectral.cameras import CameraResponse

if TYPE_CHECKING:
    from geohsr.inference.options import ReconstructOptions
    from geohsr.inference.predictor import Predictor

#: predictors kept per process (the least recently used one is dropped beyond that)
MAX_CACHED = 2


@dataclass(frozen=True)
class PredictorSpec:
    """How a process builds its predictor: weights name or path, device, batch size, torch
    threads (``None``: the predictor's defaults), the input's camera response (or None),
    inference backend and precision."""

    weights: str
    device: str = "auto"
    batch_size: int | None = None
    threads: int | None = None
    camera: CameraResponse | None = None
    backend: str = "auto"
    precision: str = "auto"
    #: the ``inference`` (e.g. ``openvino fp32``) the output's metadata already states: a
    #: process whose predictor resolves to another refuses to compute (not in the cache key)
    expected_inference: str | None = None

    @classmethod
    def from_options(
        cls, weights: str | Path, options: ReconstructOptions, threads: int | None = None
    ) -> PredictorSpec:
        """Settings from reconstruct options; ``threads`` fills in when they give none. The
        camera is resolved here, on the client: a bad spec fails before any worker starts,
        and workers need neither the CSV file nor the camera database."""
        camera = None
        if options.camera is not None:
            from geohsr.inference.predictor import resolve_camera
            from geohsr.models.weights import read_metadata

            camera = resolve_camera(options.camera, read_metadata(weights))
        return cls(
            str(weights),
            options.device,
            options.batch_size,
            options.threads or threads,
            camera,
            options.backend,
            options.precision,
        )

    def cache_key(self) -> tuple[Any, ...]:
        """Identifies the predictor: the weights file (path, size, modification time) and
        the settings."""
        from geohsr.models.weights import resolve_weights

        path = resolve_weights(self.weights).resolve()
        stat = path.stat()
        camera = None if self.camera is None else (self.camera.name, self.camera.css.tobytes())
        settings = (
            self.device,
            self.batch_size,
            self.threads,
            camera,
            self.backend,
            self.precision,
        )
        return (str(path), stat.st_size, stat.st_mtime_ns, *settings)

    def load(self, device: str | None = None) -> Predictor:
        """A new predictor (on ``device`` instead of :attr:`device` when given)."""
        from geohsr.inference.predictor import Predictor

        return Predictor.from_weights(
            self.weights,
            device=device or self.device,
            batch_size=self.batch_size,
            threads=self.threads,
            camera=self.camera,
            backend=self.backend,
            precision=self.precision,
        )


_CACHE: OrderedDict[tuple[Any, ...], Predictor] = OrderedDict()
_CACHE_LOCK = threading.Lock()


def cached_predictor(spec: PredictorSpec) -> Predictor:
    """This process's predictor for ``spec``, loaded on first use (threads wait for it)."""
    key = spec.cache_key()
    with _CACHE_LOCK:
        if key not in _CACHE:
            _CACHE[key] = spec.load()
            while len(_CACHE) > MAX_CACHED:
                _CACHE.popitem(last=False)
        _CACHE.move_to_end(key)
        return _CACHE[key]


def install_predictor(spec: PredictorSpec, predictor: Predictor) -> None:
    """Make ``predictor`` the one :func:`cached_predictor` returns for ``spec`` here."""
    with _CACHE_LOCK:
        _CACHE[spec.cache_key()] = predictor
        _CACHE.move_to_end(spec.cache_key())
        while len(_CACHE) > MAX_CACHED:
            _CACHE.popitem(last=False)


class LocalPredictor:
    """A ready predictor (e.g. built from an ``nn.Module``) that tasks in this process use.

    It never travels: pickled (sent to another process) it becomes a reference that fails
    with the fix, since a live model cannot be shipped to dask workers.
    """

    def __init__(self, predictor: Any) -> None:
        self.predictor = predictor
        self.token = uuid.uuid4().hex

    def __reduce__(self):
        return (_MissingPredictor, (self.token,))


class _MissingPredictor:
    """What a :class:`LocalPredictor` becomes in another process."""

    def __init__(self, token: str) -> None:
        self.token = token


PredictorSource = PredictorSpec | LocalPredictor


def resolve_predictor(source: PredictorSource | _MissingPredictor) -> Any:
    """The predictor a task uses: cached per process for a spec, the object itself for a
    local one; :class:`ModelError` for a local one that reached another process."""
    if isinstance(source, PredictorSpec):
        predictor = cached_predictor(source)
        expected = source.expected_inference
        if expected is not None and predictor.inference != expected:
            raise ModelError(
                f"this worker runs the model with {predictor.inference}, but the cube's "
                f"metadata (set where the graph was built) says {expected}: pass backend= "
                "and precision= that every worker runs (see `geohsr backends` on a worker), "
                "or use `geohsr reconstruct --scheduler`, which records what the workers ran"
            )
        return predictor
    if isinstance(source, LocalPredictor):
        return source.predictor
    raise ModelError(
        "the model was given to .hsr.reconstruct as an object, which cannot be sent to other "
        "processes; pass model='<weights name or .safetensors path>' to compute on a "
        "dask.distributed cluster or a process pool"
    )
