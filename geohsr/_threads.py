"""The process's pool of helper threads for array work that releases the GIL (blending
channel groups, compressing Zarr chunks): one per core this process may run on."""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity: a pinned dask worker gets 1)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def array_pool() -> ThreadPoolExecutor:
    """The shared pool, created on first use with :func:`usable_cores` threads. Its tasks
    never wait on other tasks of the pool, so callers in any thread may block on them."""
    global _pool
    with _lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(usable_cores(), thread_name_prefix="geohsr-array")
        return _pool
