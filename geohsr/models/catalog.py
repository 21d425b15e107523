"""What the registry offers: parameter counts and shipped weights per model."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from geohsr.exceptions import WeightsError
from geohsr.models.registry import create_model, list_models
from geohsr.models.weights import pretrained_dir, read_metadata


@dataclass(frozen=True)
class CatalogEntry:
    """One registered model: its name, parameter count and shipped weights names."""

    name: str
    parameters: int
    shipped_weights: tuple[str, ...]


def count_parameters(name: str, **overrides: object) -> int:
    """Number of parameters of registry model ``name``, counted without allocating them.

    The model is built on torch's ``meta`` device, so even mxr_unet50 (342M) costs no memory.
    """
    with torch.device("meta"):
        model = create_model(name, **overrides)
    return sum(p.numel() for p in model.parameters())


def shipped_weights_by_model() -> dict[str, list[str]]:
    """Model name -> names of the shipped weights files made for it (unreadable files skipped)."""
    by_model: dict[str, list[str]] = {}
    for path in sorted(pretrained_dir().glob("*.safetensors")):
        try:
            model_name = read_metadata(path).get("model")
        except WeightsError:
            continue
        by_model.setdefault(str(model_name), []).append(path.stem)
    return by_model


def model_catalog() -> list[CatalogEntry]:
    """One :class:`CatalogEntry` per registered model, sorted by name."""
    shipped = shipped_weights_by_model()
    return [
        CatalogEntry(name, count_parameters(name), tuple(shipped.get(name, ())))
        for name in list_models()
    ]
