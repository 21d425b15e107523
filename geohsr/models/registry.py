"""Model registry: build any model by name (timm style).

A model is a ``torch.nn.Module`` mapping RGB in [0, 1], shape ``(B, 3, H, W)`` float32,
to a 31-band cube ``(B, 31, H, W)`` (reflectance, 400-700 nm). Input normalisation
lives inside the model as buffers, so callers never normalise.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

from geohsr.exceptions import ModelError

ModelFactory = Callable[..., nn.Module]

_REGISTRY: dict[str, ModelFactory] = {}


def register_model(factory: ModelFactory) -> ModelFactory:
    """Decorator: register ``factory`` under its function name."""
    name = factory.__name__
    if name in _REGISTRY:
        raise ModelError(f"model {name!r} is registered twice; rename one of the factories")
    _REGISTRY[name] = factory
    return factory


def _ensure_builtin_models() -> None:
    # Importing the modules runs their @register_model decorators.
    from geohsr.models import baselines, residual, unet  # noqa: F401


def list_models() -> list[str]:
    """Names of all registered models, sorted."""
    _ensure_builtin_models()
    return sorted(_REGISTRY)


def create_model(name: str, **overrides: Any) -> nn.Module:
    """Build model ``name`` with random initialisation; ``overrides`` change its config.

    The returned module carries ``model.geohsr_name`` and ``model.geohsr_config`` (the
    keyword arguments it was built with) so weights files can rebuild it.
    """
    _ensure_builtin_models()
    try:
        factory = _REGISTRY[name]
    except KeyError:
        raise ModelError(
            f"unknown model {name!r}; choose one of {', '.join(sorted(_REGISTRY))} "
            "(see `geohsr models`)"
        ) from None
    try:
        model = factory(**overrides)
    except TypeError as err:
        raise ModelError(f"bad configuration for model {name!r}: {err}") from err
    model.geohsr_name = name
    model.geohsr_config = dict(overrides)
    return model
