"""What this machine can run: OpenVINO installed, reduced-precision arithmetic in hardware."""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path


@functools.cache
def openvino_installed() -> bool:
    """Whether the ``openvino`` package can be imported (``pip install "geohsr[openvino]"``)."""
    return importlib.util.find_spec("openvino") is not None


@functools.cache
def cpu_flags() -> frozenset[str]:
    """The CPU feature flags of ``/proc/cpuinfo`` (empty where there is none)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith("flags"):
            return frozenset(line.split(":", 1)[1].split())
    return frozenset()


def cpu_has_bf16() -> bool:
    """bfloat16 arithmetic in hardware (AVX512-BF16 or AMX-BF16). Without it bf16 is
    emulated: slower than fp32, so no precision setting picks it."""
    if openvino_installed():
        return "BF16" in openvino_cpu_capabilities()
    return bool({"avx512_bf16", "amx_bf16"} & cpu_flags())


def cpu_has_fp16() -> bool:
    """float16 arithmetic in hardware on the CPU (AVX512-FP16 or AMX-FP16), as OpenVINO
    reports it (torch has no fast CPU float16 convolutions)."""
    return openvino_installed() and "FP16" in openvino_cpu_capabilities()


def cpu_has_int8() -> bool:
    """Whether OpenVINO runs int8 convolutions on this CPU (its ``INT8`` capability; fast
    with VNNI or AMX, supported on any AVX2 CPU)."""
    return openvino_installed() and "INT8" in openvino_cpu_capabilities()


def cpu_has_vnni() -> bool:
    """8-bit integer dot products in hardware (AVX512-VNNI, AVX-VNNI or AMX-INT8), where
    INT8 convolutions run fast and as measured; without them OpenVINO's INT8 on AVX2 is
    slower and saturates differently, so ``--precision auto`` never picks int8 there
    (explicit ``--precision int8`` still runs). False where ``/proc/cpuinfo`` is missing."""
    return bool({"avx512_vnni", "avx_vnni", "amx_int8"} & cpu_flags())


@functools.cache
def openvino_cpu_capabilities() -> tuple[str, ...]:
    """OpenVINO's ``OPTIMIZATION_CAPABILITIES`` of the CPU device (``FP32``, ``BF16``, ...)."""
    import openvino as ov

    return tuple(ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"))
