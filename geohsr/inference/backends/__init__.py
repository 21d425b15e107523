"""Inference backends: who runs the model's forward pass, at which arithmetic precision.

- ``torch`` (:class:`~geohsr.inference.backends.torch_backend.TorchBackend`): the model as
  it is, on CPU or CUDA, fp32 or under autocast (bf16, fp16).
- ``openvino`` (:class:`~geohsr.inference.backends.openvino_backend.OpenVINOBackend`): the
  model converted once per weights file and camera into an OpenVINO model (cached in the
  user cache folder) and compiled for this CPU; ``pip install "geohsr[openvino]"``. With
  ``pip install "geohsr[int8]"`` it also runs ``int8``: the network's convolutions
  quantised by NNCF (:mod:`~geohsr.inference.backends.int8`).

``auto`` picks OpenVINO on CPU when it is installed, torch otherwise and always on CUDA
(``GEOHSR_BACKEND=torch`` makes ``auto`` mean torch, e.g. site-wide).
Precision ``auto`` picks the fastest precision whose accuracy cost, measured with
``benchmarks/accuracy.py`` (:data:`MEASURED_MRAE_COST`), is below :data:`MAX_AUTO_COST`:
fp16 on CUDA; on CPUs with INT8 instructions (VNNI, AMX) int8 through OpenVINO when NNCF is
installed; else bf16 on CPUs with bfloat16 arithmetic in hardware, fp32 elsewhere (emulated
reduced precision is slower than fp32).
"""

from __future__ import annotations

import os
from typing import Protocol

import numpy as np
from torch import nn

from geohsr.exceptions import ModelError
from geohsr.inference.backends.capabilities import (
    cpu_has_bf16,
    cpu_has_fp16,
    cpu_has_int8,
    cpu_has_vnni,
    openvino_installed,
)
from geohsr.inference.backends.int8 import nncf_installed
from geohsr.inference.options import BACKENDS, PRECISIONS

#: accuracy cost of each precision: the largest relative MRAE change against fp32 of the
#: shipped model over the 8 conditions of ``benchmarks/accuracy.py`` (CAVE held-out and
#: airborne). bf16: OpenVINO bf16 run for real on an AVX512-BF16 CPU (``--backends
#: openvino:bf16``, 2026-12-01, fused attention): largest -0.287 %, mean -0.011 %
#: (emulated, ``--precisions fp32,bf16,fp16``, 2026-11-30: +0.025 %); fp16 emulated: -0.006 %
#: int8 (OpenVINO + NNCF, ``--backends openvino:int8``, 2026-12-01, INT8 version 4 with the
#: shipped INT8-adapted weights ``pretrained/int8/``): mean +0.287 %, largest +0.637 % (unseen
#: Nikon D5100; real-world +0.46 %, airborne +0.30 / +0.06 %; 2026-12-02 with the corrected
#: airborne protocol: airborne +0.39 / +0.07 %, largest unchanged; with the bright-residual
#: gain 0.75, same day: mean +0.239 %, largest +0.622 %; the value below keeps the earlier,
#: larger figure). Weights without an adapted copy
#: are quantised as they are, which cost the shipped weights up to +1.34 % (INT8 version 3)
MEASURED_MRAE_COST = {"fp32": 0.0, "bf16": 0.00287, "fp16": 0.00006, "int8": 0.00637}
#: environment variable choosing what ``auto`` means on CPU (``torch`` or ``openvino``)
BACKEND_ENV = "GEOHSR_BACKEND"
#: environment variable choosing what precision ``auto`` means where the device runs it
#: (e.g. ``fp32`` site-wide for byte-identical cubes on mixed hardware)
PRECISION_ENV = "GEOHSR_PRECISION"
#: largest accuracy cost ``--precision auto`` accepts (relative MRAE)
MAX_AUTO_COST = 0.01


class Backend(Protocol):
    """Runs a prepared model: RGB windows ``(N, 3, h, w)`` float32 -> ``(N, 31, h, w)``,
    written into ``out`` (C-contiguous float32 of that shape) when given, and returned."""

    name: str
    precision: str

    def forward(self, batch: np.ndarray, out: np.ndarray | None = None) -> np.ndarray: ...


def resolve_backend(backend: str, device_type: str) -> str:
    """``auto`` -> the CPU backend named by ``$GEOHSR_BACKEND`` if set, else ``openvino``
    on CPU when installed, else ``torch`` (always on CUDA); checks the choice. Names are
    case-insensitive, as in ``$GEOHSR_BACKEND``."""
    backend = backend.strip().lower()
    if backend not in BACKENDS:
        raise ModelError(f"--backend {backend!r}: choose one of {', '.join(BACKENDS)}")
    if backend == "auto":
        preferred = os.environ.get(BACKEND_ENV, "").strip().lower()
        if preferred and preferred != "auto":
            if preferred not in BACKENDS:
                raise ModelError(
                    f"{BACKEND_ENV}={preferred!r}: choose one of {', '.join(BACKENDS)}"
                )
            if preferred == "torch" or device_type == "cpu":
                return resolve_backend(preferred, device_type)
        return "openvino" if device_type == "cpu" and openvino_installed() else "torch"
    if backend == "openvino":
        if device_type != "cpu":
            raise ModelError(
                "--backend openvino runs on the CPU only; use --device cpu, or "
                "--backend torch (or auto) on CUDA"
            )
        if not openvino_installed():
            raise ModelError(
                '--backend openvino needs OpenVINO: pip install "geohsr[openvino]" '
                "(or use --backend torch)"
            )
    return backend


def resolve_precision(precision: str, backend: str, device_type: str) -> str:
    """``auto`` -> the fastest precision this device runs in hardware whose measured
    accuracy cost is below :data:`MAX_AUTO_COST`; checks an explicit choice
    (case-insensitive)."""
    precision = precision.strip().lower()
    if precision not in PRECISIONS:
        raise ModelError(f"--precision {precision!r}: choose one of {', '.join(PRECISIONS)}")
    hardware = hardware_precisions(backend, device_type)
    if precision == "auto":
        preferred = os.environ.get(PRECISION_ENV, "").strip().lower()
        if preferred and preferred != "auto":
            if preferred not in PRECISIONS:
                raise ModelError(
                    f"{PRECISION_ENV}={preferred!r}: choose one of {', '.join(PRECISIONS)}"
                )
            if preferred in hardware:  # e.g. fp32 site-wide; fp16 where only CUDA runs it
                return preferred
        for candidate in ("int8", "fp16", "bf16"):  # fastest first
            cost = MEASURED_MRAE_COST.get(candidate)
            if candidate == "int8" and not cpu_has_vnni():
                continue  # runs, but slower and unmeasured without VNNI / AMX
            if candidate in hardware and cost is not None and cost < MAX_AUTO_COST:
                return candidate
        return "fp32"
    if precision == "int8" and (device_type != "cpu" or backend != "openvino"):
        raise ModelError(
            "--precision int8 runs only with --backend openvino on the CPU (and NNCF: pip "
            'install "geohsr[int8]"); use --backend openvino, or --precision auto or fp32'
        )
    if precision not in hardware:
        where = "CUDA" if device_type == "cuda" else f"this CPU with the {backend} backend"
        raise ModelError(
            f"--precision {precision} is not available on {where} "
            f"(available: {', '.join(sorted(hardware))}); use --precision auto or fp32"
            + ('; int8 needs NNCF: pip install "geohsr[int8]"' if precision == "int8" else "")
        )
    return precision


def hardware_precisions(backend: str, device_type: str) -> set[str]:
    """Precisions ``backend`` runs on this device: int8 with OpenVINO on a CPU with INT8
    support when NNCF (its quantiser) is installed."""
    if device_type == "cuda":
        return {"fp32", "fp16", "bf16"}
    precisions = {"fp32"}
    if cpu_has_bf16():
        precisions.add("bf16")
    if backend == "openvino" and cpu_has_fp16():
        precisions.add("fp16")
    if backend == "openvino" and cpu_has_int8() and nncf_installed():
        precisions.add("int8")
    return precisions


def make_backend(
    model: nn.Module,
    *,
    device_type: str,
    backend: str = "auto",
    precision: str = "auto",
    threads: int | None = None,
) -> Backend:
    """The backend running ``model`` (prepared for inference, on its device). Raises
    :class:`ModelError` for a backend or precision this machine cannot run."""
    name = resolve_backend(backend, device_type)
    chosen = resolve_precision(precision, name, device_type)
    if name == "openvino":
        from geohsr.inference.backends.openvino_backend import OpenVINOBackend

        return OpenVINOBackend(model, precision=chosen, threads=threads)
    from geohsr.inference.backends.torch_backend import TorchBackend

    return TorchBackend(model, precision=chosen)


def check_settings(device: str, backend: str, precision: str) -> str:
    """Resolve ``device``, ``backend`` and ``precision`` for this machine without loading a
    model (e.g. before starting local workers, which run on this machine); the
    ``backend precision`` they resolve to. Raises :class:`ModelError` as a predictor
    would."""
    from geohsr.inference.predictor import resolve_device

    device_type = resolve_device(device).type
    name = resolve_backend(backend, device_type)
    return f"{name} {resolve_precision(precision, name, device_type)}"
