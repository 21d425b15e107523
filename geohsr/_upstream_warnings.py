"""Warnings that dependencies raise about their own code, which geohsr users cannot act on.

rioxarray 0.19 (and parts of rasterio) multiply affine transforms with ``*``, which affine 3
deprecates with a ``PendingDeprecationWarning`` on every ``open_rasterio`` and
``rio.transform()``. Importing geohsr hides exactly that warning when raised from rioxarray's
or rasterio's modules, nothing else (one narrow filter, installed once; it works from any
thread, unlike ``catch_warnings``).
"""

from __future__ import annotations

import warnings

#: (message regex, category, module regex) of each hidden upstream warning
UPSTREAM_NOISE: tuple[tuple[str, type[Warning], str], ...] = (
    (
        r"Use `@` matmul instead of `\*` mul operator",
        PendingDeprecationWarning,
        r"(rioxarray|rasterio)\b",
    ),
)


def hide_upstream_noise() -> None:
    """Install the :data:`UPSTREAM_NOISE` filters (idempotent)."""
    for message, category, module in UPSTREAM_NOISE:
        warnings.filterwarnings("ignore", message=message, category=category, module=module)
