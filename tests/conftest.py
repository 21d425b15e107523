"""Suite-wide settings: ``auto`` means the torch backend (the I/O and tiling tests use tiny
random models, which OpenVINO would convert one by one; tests/test_backends.py covers
OpenVINO and ``auto``), ``auto`` precision means fp32 (so values do not depend on whether
the CPU has bfloat16), and converted models go to a temporary cache, never the user's."""

from __future__ import annotations

import os
import tempfile


def pytest_configure(config) -> None:
    os.environ.setdefault("GEOHSR_BACKEND", "torch")
    os.environ.setdefault("GEOHSR_PRECISION", "fp32")  # same values on CPUs with and without bf16
    os.environ.setdefault("GEOHSR_CACHE_DIR", tempfile.mkdtemp(prefix="geohsr-test-cache-"))
