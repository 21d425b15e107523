"""Start a larger network from trained weights: new input channels with zero weights.

Used to add the level input of :mod:`geohsr.models.residual` to weights trained without it:
every tensor whose shape grew keeps the trained values in its leading slice; the new entries
of parameters are zero, so the grown network computes exactly what the trained one did until
training moves them. Weight-normalised convolutions (``parametrizations.weight.original0`` =
``g``, ``original1`` = ``v``) need care: a wholly new output row keeps its random ``v`` (a zero
row would have no norm) under a zero ``g``, which makes its weight zero all the same.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from geohsr.exceptions import TrainingError

#: the direction tensor of a weight-normalised layer (torch.nn.utils.parametrizations)
WEIGHT_NORM_DIRECTION = "parametrizations.weight.original1"


def grown_tensor(
    name: str, trained: torch.Tensor, fresh: torch.Tensor, parameter: bool
) -> torch.Tensor:
    """``fresh``'s shape holding ``trained`` in its leading slice; the rest is zero for
    parameters, ``fresh``'s own values for buffers (e.g. the new channel's normalisation) and
    for the new output rows of a weight-norm direction."""
    shrinks = trained.ndim != fresh.ndim or any(
        a > b for a, b in zip(trained.shape, fresh.shape, strict=True)
    )
    if shrinks:
        raise TrainingError(
            f"cannot grow {name} from shape {tuple(trained.shape)} to {tuple(fresh.shape)}"
        )
    out = fresh.clone() if not parameter else torch.zeros_like(fresh)
    if parameter and name.endswith(WEIGHT_NORM_DIRECTION):
        out[trained.shape[0] :] = fresh[trained.shape[0] :]
    out[tuple(slice(0, n) for n in trained.shape)] = trained.to(fresh.dtype)
    return out


def load_grown_state(model: nn.Module, state: Mapping[str, torch.Tensor]) -> list[str]:
    """Load ``state`` (trained, smaller) into ``model`` (same architecture, more input
    channels); returns the names of the tensors that grew.

    Raises :class:`TrainingError` when a name is missing or a shape shrinks.
    """
    parameters = {name for name, _ in model.named_parameters()}
    fresh = model.state_dict()
    if missing := sorted(set(fresh) - set(state)):
        raise TrainingError(f"the trained weights lack {len(missing)} tensors, e.g. {missing[0]}")
    grown, merged = [], {}
    for name, tensor in fresh.items():
        trained = state[name]
        if trained.shape == tensor.shape:
            merged[name] = trained
            continue
        merged[name] = grown_tensor(name, trained, tensor, name in parameters)
        grown.append(name)
    model.load_state_dict(merged)
    return grown
