"""What the registry offers: parameter counts and shipped weights per model.

Listing needs no torch: the built-in models' parameter counts are recorded in
:data:`BUILTIN_PARAMETERS` (a test checks them against the registry) and the shipped
weights are read from the safetensors headers. Only models registered at run time by other
code (which has imported torch already) are counted by building them.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

from geohsr.exceptions import WeightsError
from geohsr.models.header import SHIPPED_SUFFIX, pretrained_dir, read_header_metadata

#: parameter count of every built-in registry model at its default configuration
BUILTIN_PARAMETERS: dict[str, int] = {
    "linear": 124,
    "mxr_unet18": 31_355_146,
    "mxr_unet18_rpr": 31_355_147,
    "mxr_unet34": 41_463_306,
    "mxr_unet34_rpr": 41_463_307,
    "mxr_unet50": 342_105_546,
    "resnet_unet34": 41_416_362,
    "rpr2": 186,
    "rpr3": 403,
}


@dataclass(frozen=True)
class CatalogEntry:
    """One registered model: its name, parameter count at its default configuration, and
    its shipped weights: name -> what differs from that default (``""``, or e.g.
    ``"width 0.5, 7,851,548 parameters"``)."""

    name: str
    parameters: int
    shipped_weights: dict[str, str]


#: configuration keys that change a model's size, shown beside its shipped weights
SIZE_KEYS = ("width",)


def count_parameters(name: str, **overrides: object) -> int:
    """Number of parameters of registry model ``name``, counted without allocating them.

    The model is built on torch's ``meta`` device, so even mxr_unet50 (342M) costs no memory.
    """
    import torch

    from geohsr.models.registry import create_model

    with torch.device("meta"):
        model = create_model(name, **overrides)
    return sum(p.numel() for p in model.parameters())


def shipped_weights_by_model() -> dict[str, dict[str, dict]]:
    """Model name -> {shipped weights name: their metadata} (unreadable files skipped)."""
    by_model: dict[str, dict[str, dict]] = {}
    for path in sorted(pretrained_dir().glob(f"*{SHIPPED_SUFFIX}")):
        try:
            meta = read_header_metadata(path)
        except WeightsError:
            continue
        by_model.setdefault(str(meta.get("model")), {})[path.stem] = meta
    return by_model


def shipped_difference(meta: dict, default_parameters: int) -> str:
    """How shipped weights differ in size from their model's default: the size-changing
    configuration (``width 0.5``) and the parameter count when the weights record it
    (weights saved since 2026-12-01 do); ``""`` when they are the default size."""
    config = meta.get("config") if isinstance(meta.get("config"), dict) else {}
    parts = [f"{key} {config[key]:g}" for key in SIZE_KEYS if config.get(key, 1) != 1]
    counted = meta.get("parameters")
    if isinstance(counted, int) and counted != default_parameters:
        parts.append(f"{counted:,} parameters")
    return ", ".join(parts)


def registered_parameters() -> dict[str, int]:
    """Model name -> parameter count: the built-in models, plus any model registered at run
    time in this process (counted by building it on the meta device)."""
    counts = dict(BUILTIN_PARAMETERS)
    registry = sys.modules.get("geohsr.models.registry")
    if registry is not None:  # someone imported the registry (and torch): maybe added models
        for name in registry.list_models():
            if name not in counts:
                counts[name] = count_parameters(name)
    return counts


def model_catalog() -> list[CatalogEntry]:
    """One :class:`CatalogEntry` per registered model, sorted by name."""
    shipped = shipped_weights_by_model()
    entries = []
    for name, parameters in sorted(registered_parameters().items()):
        weights = {
            stem: shipped_difference(meta, parameters)
            for stem, meta in shipped.get(name, {}).items()
        }
        entries.append(CatalogEntry(name, parameters, weights))
    return entries
