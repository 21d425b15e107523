"""Model registry, architectures, baselines and weights I/O.

The registry names are imported on first use, so ``geohsr.models.catalog`` (what
``geohsr models`` prints) works without importing torch.
"""

from __future__ import annotations

from typing import Any

__all__ = ["create_model", "list_models", "register_model"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from geohsr.models import registry

        return getattr(registry, name)
    raise AttributeError(f"module 'geohsr.models' has no attribute {name!r}")
