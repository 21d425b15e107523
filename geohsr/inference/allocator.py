"""Keep freed memory in the process for reuse instead of returning it to the OS.

Each window's forward pass allocates and frees hundreds of MB of activations. glibc's
malloc serves blocks over 32 MB with fresh ``mmap`` pages and trims its heap as soon as
memory is freed (dask workers even start with ``MALLOC_TRIM_THRESHOLD_=65536``), so every
window pays the kernel for mapping and zeroing the same memory again: about a third of the
CPU time of a small mxr_unet18 on these machines (0.80 -> 0.58 s per 512 x 512 window,
one thread). :func:`keep_freed_memory` raises those thresholds once per process; the
resident memory then stays at its peak (which the streaming pass bounds) instead of
shrinking between windows. Threads other than the main one allocate from arenas of their
own, whose big blocks still come from ``mmap``: a process whose model runs in other
threads (a dask worker) should start with ``MALLOC_ARENA_MAX=1`` (geohsr's local clusters
do; :data:`geohsr.batch.cluster.WORKER_MALLOC_CONFIG`).
"""

from __future__ import annotations

import ctypes
import functools
import sys

#: glibc ``mallopt`` parameters
M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD = -1, -2, -3
#: blocks up to this size come from the heap, and this much free heap is kept (bytes)
KEEP_BYTES = 1 << 30
#: extra heap requested each time it grows (bytes)
TOP_PAD_BYTES = 1 << 28


@functools.cache
def keep_freed_memory() -> bool:
    """Apply the settings above to this process (glibc on Linux only; elsewhere nothing);
    whether they were applied."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):  # not glibc (musl, ...)
        return False
    settings = (
        (M_MMAP_THRESHOLD, KEEP_BYTES),
        (M_TRIM_THRESHOLD, KEEP_BYTES),
        (M_TOP_PAD, TOP_PAD_BYTES),
    )
    return all(mallopt(parameter, value) == 1 for parameter, value in settings)
