"""Predict 31-band cubes for batches of RGB windows with a prepared model on a device."""

from __future__ import annotations

import functools
import threading
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from geohsr.exceptions import ModelError
from geohsr.inference.options import DEFAULT_WEIGHTS
from geohsr.models.weights import file_sha256, load_weights
from geohsr.spectral import N_BANDS
from geohsr.spectral.cameras import CameraResponse, resolve_cameras

#: windows per model call when none is given
DEFAULT_BATCH_SIZE = {"cpu": 2, "cuda": 8}


def resolve_device(device: str | torch.device) -> torch.device:
    """``auto`` -> ``cuda`` when available, else ``cpu``; checks that CUDA exists."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    resolved = torch.device(device)
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ModelError(
            f"device {str(device)!r} asked for but CUDA is not available; "
            "use --device cpu (or auto)"
        )
    if resolved.type not in ("cpu", "cuda"):
        raise ModelError(f"unsupported device {str(device)!r}; use auto, cpu or cuda")
    return resolved


class Predictor:
    """A model ready for inference on one device.

    The model is prepared in place: eval mode, no gradients, weight/spectral norm folded
    into plain weights, channels-last memory format. ``backend`` runs it (``auto``,
    ``torch``, ``openvino``) at ``precision`` (``auto``, ``fp32``, ``bf16``, ``fp16``); see
    :mod:`geohsr.inference.backends`. :meth:`predict` is thread-safe (calls are
    serialised). The process keeps freed memory for reuse
    (:func:`~geohsr.inference.allocator.keep_freed_memory`).

    ``camera``: the input's camera response, for camera-aware models (``set_camera``): a
    classical base fitted for it and every unclipped pixel projected onto its metamer set.
    Raises :class:`ModelError` when the model cannot use a camera.
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        device: str | torch.device = "auto",
        batch_size: int | None = None,
        threads: int | None = None,
        weights: str | Path | None = None,
        camera: CameraResponse | None = None,
        backend: str = "auto",
        precision: str = "auto",
    ) -> None:
        from geohsr.inference.allocator import keep_freed_memory
        from geohsr.inference.backends import make_backend
        from geohsr.models.inference_prep import prepare_for_inference

        keep_freed_memory()
        self.device = resolve_device(device)
        self.camera = camera
        set_camera = getattr(model, "set_camera", None)
        if camera is not None and set_camera is None:
            name = getattr(model, "geohsr_name", type(model).__name__)
            raise ModelError(
                f"model {name!r} is not camera-aware, so --camera cannot be used with it; "
                f"drop --camera or use camera-aware weights such as {DEFAULT_WEIGHTS}"
            )
        if set_camera is not None:
            set_camera(camera.normalised if camera is not None else None)
        if threads is not None:
            torch.set_num_threads(threads)
        self.batch_size = batch_size or DEFAULT_BATCH_SIZE[self.device.type]
        self.model = prepare_for_inference(model, channels_last=True).to(self.device)
        self.backend = make_backend(
            self.model,
            device_type=self.device.type,
            backend=backend,
            precision=precision,
            threads=threads,
        )
        self.weights = Path(weights) if weights is not None else None
        self._sha256: str | None = None
        self._lock = threading.Lock()

    @classmethod
    def from_weights(
        cls,
        spec: str | Path = DEFAULT_WEIGHTS,
        *,
        device: str | torch.device = "auto",
        batch_size: int | None = None,
        threads: int | None = None,
        camera: str | CameraResponse | None = None,
        backend: str = "auto",
        precision: str = "auto",
    ) -> Predictor:
        """Load a shipped weights name or a ``.safetensors`` path.

        ``camera``: a response, or a spec for :func:`~geohsr.spectral.cameras.resolve_cameras`
        (``cie1964``, a camera name — the weights' training cameras included — or a CSV).
        """
        model, meta = load_weights(spec)
        if isinstance(camera, str):
            camera = resolve_camera(camera, meta)
        return cls(
            model,
            device=device,
            batch_size=batch_size,
            threads=threads,
            weights=model.geohsr_weights,
            camera=camera,
            backend=backend,
            precision=precision,
        )

    @property
    def model_name(self) -> str:
        """Registry name of the model (``type(model).__name__`` if it was not built by name)."""
        return getattr(self.model, "geohsr_name", type(self.model).__name__)

    @property
    def inference(self) -> str:
        """What runs the model: backend and precision, e.g. ``openvino fp32`` (the cube's
        ``inference`` attribute)."""
        return f"{self.backend.name} {self.backend.precision}"

    def provenance(self) -> dict[str, Any]:
        """Model name, config, weights file and its SHA-256, camera, backend and precision
        (for output metadata); with INT8-adapted weights (``--precision int8``) also their
        file (``int8/<name>``) and SHA-256 as ``network_weights`` and
        ``network_weights_sha256``."""
        if self.weights is not None and self._sha256 is None:
            self._sha256 = file_sha256(self.weights)
        return {
            "model": self.model_name,
            "model_config": dict(getattr(self.model, "geohsr_config", {})),
            "weights": self.weights.name if self.weights is not None else "(in-memory model)",
            "weights_sha256": self._sha256 or "",
            "camera": self.camera.name if self.camera is not None else None,
            "camera_aware": hasattr(self.model, "set_camera"),
            "backend": self.backend.name,
            "precision": self.backend.precision,
            **self._network_weights,
        }

    @functools.cached_property
    def _network_weights(self) -> dict[str, str]:
        """The INT8-adapted weights file whose network the backend runs, if any (hashed
        once, like the weights file: provenance is asked for every scene of a batch)."""
        path = getattr(self.backend, "network_weights", None)
        if path is None:
            return {}
        return {
            "network_weights": f"{Path(path).parent.name}/{Path(path).name}",
            "network_weights_sha256": file_sha256(path),
        }

    def predict(self, batch: np.ndarray, *, input_step: float = 0.0) -> np.ndarray:
        """RGB windows ``(N, 3, h, w)`` float32 in [0, 1] -> cubes ``(N, 31, h, w)`` float32.

        ``input_step``: the input's quantisation step in these units (1/255 for 8-bit
        input; 0 for float input): with a known camera the metamer projection keeps each
        pixel's rendering within half a step of its RGB rather than exactly on it
        (:meth:`~geohsr.models.residual.ResidualSpectralModel.set_input_step`).
        Model calls take the windows :func:`call_sizes` says, so a window's prediction does
        not depend on which windows share its call (see there).
        """
        if batch.ndim != 4 or batch.shape[1] != 3:
            raise ValueError(f"expected a batch (N, 3, h, w), got shape {batch.shape}")
        sizes = call_sizes(batch.shape[0], self.batch_size, self.device.type)
        with self._lock:
            set_input_step = getattr(self.model, "set_input_step", None)
            if set_input_step is not None:  # under the lock: scenes may share a predictor
                set_input_step(input_step)
            if sizes == [batch.shape[0]]:  # one call: its output as it is
                return self.backend.forward(batch)
            cubes = np.empty((batch.shape[0], N_BANDS, *batch.shape[2:]), np.float32)
            start = 0
            for size in sizes:
                windows = batch[start : start + size]
                count = len(windows)
                if count < size:  # padded with copies of the last window
                    padding = np.repeat(windows[-1:], size - count, axis=0)
                    windows = np.concatenate([windows, padding])
                if count == size:  # computed in place
                    self.backend.forward(windows, out=cubes[start : start + count])
                else:
                    cubes[start : start + count] = self.backend.forward(windows)[:count]
                start += count
        return cubes


def call_sizes(n_windows: int, batch_size: int, device_type: str = "cpu") -> list[int]:
    """Windows per model call for ``n_windows`` windows (a last size beyond what is left
    means the call is padded with copies of the last window).

    torch picks kernels by batch shape, and a window's prediction can differ in the last
    bits between shapes (on CPU: one image against several; measured 2e-5 on a small
    mxr_unet18). So calls keep to one shape class: on CPU ``batch_size`` windows, a single
    window left over joining the call before it (a lone window is left to the caller, see
    :meth:`~geohsr.inference.blocks.BlockReconstructor.predict`); with two or more windows
    per call a window's prediction does not depend on its call mates (checked bit for bit
    on these CPUs). On CUDA always ``batch_size`` windows. Chunked and streaming
    reconstructions then agree bit for bit.
    """
    if n_windows <= 0:
        return []
    if device_type != "cpu":
        return [batch_size] * -(-n_windows // batch_size)
    full, left = divmod(n_windows, batch_size)
    sizes = [batch_size] * full
    if left == 1 and sizes:
        sizes[-1] += 1
    elif left:
        sizes.append(left)
    return sizes


def training_cameras(meta: dict[str, Any]) -> list[CameraResponse]:
    """The camera responses recorded in a weights file's metadata (its training cameras)."""
    records = (meta.get("camera") or {}).get("cameras", [])
    return [CameraResponse.from_metadata(record) for record in records]


def resolve_camera(spec: str, meta: dict[str, Any] | None = None) -> CameraResponse:
    """One camera response from ``spec`` (see :func:`resolve_cameras`); names of the
    training cameras recorded in ``meta`` work without the camera database."""
    cameras = resolve_cameras([spec], known=training_cameras(meta or {}))
    if len(cameras) != 1:
        raise ModelError(f"--camera {spec!r} names {len(cameras)} cameras; give exactly one")
    return cameras[0]
