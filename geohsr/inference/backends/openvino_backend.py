"""The model converted to OpenVINO and compiled for this CPU.

The traceable core of the model (:class:`~geohsr.inference.export.ExportableCore`) is
converted once, with dynamic batch, height and width, and saved as OpenVINO IR in
:func:`cache_dir` under a name keyed by :func:`~geohsr.inference.export.core_fingerprint`
(weights, camera, export version) and the OpenVINO version; later runs and other processes
read it back. Each window shape is compiled on first use (OpenVINO caches compiled blobs in
the same folder). Inputs are padded to multiples of 32 here, outputs cropped, and the
model's eager finish (the metamer projection) runs in torch.
"""

from __future__ import annotations

import contextlib
import os
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from geohsr.exceptions import ModelError
from geohsr.inference.export import ExportableCore, core_fingerprint, finish, pad_input

#: OpenVINO's name of each precision (``INFERENCE_PRECISION_HINT``); int8 runs its
#: quantised convolutions in int8 and the rest of the network at this CPU's fastest float
PRECISION_HINTS = {"fp32": "f32", "bf16": "bf16", "fp16": "f16"}
#: compiled window shapes kept per backend (the least recently used is dropped)
MAX_COMPILED = 4
#: environment variable naming the cache folder (default: the user cache folder)
CACHE_ENV = "GEOHSR_CACHE_DIR"


def cache_dir() -> Path:
    """Folder of converted models: ``$GEOHSR_CACHE_DIR``, else the user cache folder
    (``~/.cache/geohsr`` on Linux, via platformdirs). Never inside the package."""
    override = os.environ.get(CACHE_ENV)
    if override:
        return Path(override).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("geohsr", appauthor=False))


class OpenVINOBackend:
    """``model`` (prepared for inference, on the CPU) through OpenVINO at ``precision``
    (``fp32``, ``bf16``, ``fp16`` or ``int8``, as the CPU supports) with ``threads``
    inference threads (``None``: torch's thread count). The first use of a weights file and
    camera converts it (tens of seconds, printed on stderr); later ones read the cache.
    At ``int8`` the network of the weights' INT8-adapted copy runs when there is one
    (:func:`~geohsr.inference.backends.int8.load_adapted_network`; :attr:`network_weights`)."""

    name = "openvino"

    def __init__(self, model: nn.Module, *, precision: str = "fp32", threads: int | None) -> None:
        import openvino as ov

        self.model = model
        self.precision = precision
        self.threads = threads or torch.get_num_threads()
        self.core = ov.Core()
        #: INT8-adapted weights file whose network runs instead of ``model``'s (int8 only)
        self.network_weights: Path | None = None
        network = model
        if precision == "int8":
            from geohsr.inference.backends.int8 import load_adapted_network

            adapted = load_adapted_network(model)
            if adapted is not None:
                network, self.network_weights = adapted
        folder = cache_dir() / "openvino"
        key = f"{core_fingerprint(network)[:20]}-ov{_ov_version()}"
        self.ir_path = folder / f"{_model_name(network)}-{key}.xml"
        ensure_converted(network, self.ir_path)
        if precision == "int8":
            from geohsr.inference.backends.int8 import INT8_VERSION, ensure_quantized

            int8_path = self.ir_path.with_name(f"{self.ir_path.stem}-int8v{INT8_VERSION}.xml")
            self.ir = self.core.read_model(ensure_quantized(model, self.ir_path, int8_path))
        else:
            self.ir = self.core.read_model(self.ir_path)
        self.core.set_property({"CACHE_DIR": str(folder / "compiled")})  # compiled shapes
        self._compiled: dict[tuple[int, ...], Any] = {}

    def forward(self, batch: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """``(N, 3, h, w)`` float32 -> ``(N, 31, h, w)`` float32, C-contiguous; computed in
        ``out`` when given (no copy: a block of several calls fills its array in place)."""
        rgb = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32))
        padded, (top, left) = pad_input(rgb)
        request = self._request(tuple(padded.shape))
        request.infer({0: padded.numpy()})
        buffer = request.get_output_tensor(0).data  # (N, 31, H', W'), the request's own
        height, width = rgb.shape[-2:]
        # a view of that buffer, read by finish before the next infer reuses it (copying the
        # crop first cost 0.1 s of a 2048² scene)
        spectra = torch.from_numpy(buffer[..., top : top + height, left : left + width])
        direct = out is not None and out.dtype == np.float32 and out.flags.c_contiguous
        with torch.inference_mode():
            result = finish(self.model, spectra, rgb, out=torch.from_numpy(out) if direct else None)
        if out is None:
            return np.ascontiguousarray(result.numpy())
        if not direct:  # another layout or type: computed aside, copied in
            np.copyto(out, result.numpy())
        return out

    def _request(self, shape: tuple[int, ...]):
        """An infer request of the model compiled for input ``shape``."""
        if shape in self._compiled:
            self._compiled[shape] = self._compiled.pop(shape)  # most recently used last
            return self._compiled[shape]
        if len(self._compiled) >= MAX_COMPILED:
            self._compiled.pop(next(iter(self._compiled)))
        model = self.ir.clone()
        model.reshape({model.input(0): list(shape)})
        config = {
            "INFERENCE_PRECISION_HINT": _float_hint(self.precision),
            "INFERENCE_NUM_THREADS": self.threads,
            "PERFORMANCE_HINT": "LATENCY",
        }
        compiled = self.core.compile_model(model, "CPU", config)
        self._compiled[shape] = compiled.create_infer_request()
        return self._compiled[shape]


def ensure_converted(model: nn.Module, ir_path: Path) -> Path:
    """``ir_path`` (OpenVINO IR ``.xml`` + ``.bin``) of ``model``'s exportable core,
    converting it first when it is not there. One process converts at a time (a file
    lock); files appear complete or not at all (written under temporary names, then
    renamed: the ``.xml`` last)."""
    from filelock import FileLock

    if ir_path.exists():
        return ir_path
    try:
        ir_path.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(ir_path.with_suffix(".lock"))):
            if not ir_path.exists():
                _convert(model, ir_path)
    except OSError as error:
        raise ModelError(
            f"cannot write the OpenVINO model cache in {ir_path.parent}: {error}; set "
            f"{CACHE_ENV} to a writable folder or use --backend torch"
        ) from error
    return ir_path


@contextlib.contextmanager
def telemetry_off():
    """OpenVINO's and NNCF's usage telemetry off inside the block (they honour ``CI=true``).

    ``openvino.convert_model`` and ``nncf.quantize`` otherwise send usage events by default,
    from a process forked in a background thread; geohsr sends nothing, and that fork
    deadlocked a run whose main thread was inside an OpenBLAS call at the time (OpenBLAS's
    fork handler waits for its threads, which wait for the GIL the forking thread holds).
    """
    previous = os.environ.get("CI")
    os.environ["CI"] = "true"
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("CI", None)
        else:
            os.environ["CI"] = previous


def _convert(model: nn.Module, ir_path: Path) -> None:
    import openvino as ov

    print(
        f"geohsr: converting the model for OpenVINO (once per weights file and camera; "
        f"cached in {ir_path.parent})",
        file=sys.stderr,
    )
    example = torch.rand(2, 3, 64, 64)
    with torch.no_grad(), warnings.catch_warnings(), telemetry_off():
        # tracing notes constant Python branches (padding skipped: inputs are multiples
        # of 32) and torch.jit's deprecation: expected, nothing for the user to act on
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        converted = ov.convert_model(
            ExportableCore(model).eval(), example_input=example, input=[[-1, 3, -1, -1]]
        )
    tmp = ir_path.with_name(f".{ir_path.stem}.{os.getpid()}.xml")
    ov.save_model(converted, tmp, compress_to_fp16=False)  # keep fp32 weights: exact
    os.replace(tmp.with_suffix(".bin"), ir_path.with_suffix(".bin"))
    os.replace(tmp, ir_path)


def _float_hint(precision: str) -> str:
    """``INFERENCE_PRECISION_HINT`` of ``precision``; for int8 that of the operations left in
    floating point: bf16 where the CPU has it, else f32."""
    if precision != "int8":
        return PRECISION_HINTS[precision]
    from geohsr.inference.backends.capabilities import cpu_has_bf16

    return "bf16" if cpu_has_bf16() else "f32"


def _model_name(model: nn.Module) -> str:
    return str(getattr(model, "geohsr_name", type(model).__name__))


def _ov_version() -> str:
    import openvino as ov

    return ov.__version__.split("-")[0]
