"""Activation functions by name: Mish for MXResNet, ReLU for the decoder and plain ResNet."""

from __future__ import annotations

from torch import nn

#: activation name -> module class (all accept ``inplace``)
ACTIVATIONS: dict[str, type[nn.Module]] = {"mish": nn.Mish, "relu": nn.ReLU}


def make_act(name: str, *, inplace: bool = True) -> nn.Module:
    """A new activation module: ``"mish"`` (torch's :class:`~torch.nn.Mish`) or ``"relu"``."""
    try:
        return ACTIVATIONS[name](inplace=inplace)
    except KeyError:
        choices = sorted(ACTIVATIONS)
        raise ValueError(f"unknown activation {name!r}; choose one of {choices}") from None
