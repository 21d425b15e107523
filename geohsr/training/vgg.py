"""VGG16 ImageNet feature extractor in plain torch, with a 31-band first convolution.

The weights come from an ``.npz`` with torchvision's key names (``features.0.weight`` ...),
e.g. ``vgg16_imagenet_features.npz`` of the shared data, or from torchvision's own cached
``vgg16-*.pth`` state dict. Search order: ``$GEOHSR_VGG16_WEIGHTS``, the shared data folder,
torchvision's hub cache. Nothing is ever downloaded.

Feeding a 31-band cube to VGG: each band is assigned the ImageNet RGB filter of the colour
it falls in (B: 400-490 nm, 10 bands; G: 500-570 nm, 8 bands; R: 580-700 nm, 13 bands; the
dominant CIE 1964 colour matching function at each wavelength), divided by that colour's
band count, and the ImageNet mean/std normalisation is folded into the first convolution.
So a cube is fed as stored (reflectance in [0, 1], no extra scaling) and a flat spectrum of
value ``v`` gives exactly the activations of the grey RGB image ``(v, v, v)``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from geohsr.exceptions import TrainingError
from geohsr.shared_data import shared_data_dir
from geohsr.spectral import WAVELENGTHS_NM

VGG16_CONFIG = (
    64,
    64,
    "M",
    128,
    128,
    "M",
    256,
    256,
    256,
    "M",
    512,
    512,
    512,
    "M",
    512,
    512,
    512,
    "M",
)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
NPZ_NAME = "vgg16_imagenet_features.npz"
#: Upper wavelength (nm, inclusive) of the blue and green VGG input channels.
BLUE_MAX_NM, GREEN_MAX_NM = 490, 570


def vgg16_features() -> nn.Sequential:
    """The 13-conv VGG16 stack with torchvision's ``features`` indices (random weights)."""
    layers: list[nn.Module] = []
    channels = 3
    for spec in VGG16_CONFIG:
        if spec == "M":
            layers.append(nn.MaxPool2d(2))
        else:
            layers += [nn.Conv2d(channels, spec, 3, padding=1), nn.ReLU()]
            channels = spec
    return nn.Sequential(*layers)


def find_vgg16_weights() -> Path:
    """Path of the VGG16 weights to use, or :class:`TrainingError` saying how to get them."""
    candidates = []
    if env := os.environ.get("GEOHSR_VGG16_WEIGHTS"):
        candidates.append(Path(env))
    candidates.append(shared_data_dir() / NPZ_NAME)
    hub_checkpoints = Path(torch.hub.get_dir()) / "checkpoints"
    candidates += sorted(hub_checkpoints.glob("vgg16-*.pth"))
    for path in candidates:
        if path.is_file():
            return path
    raise TrainingError(
        "VGG16 ImageNet weights for the perceptual loss not found (looked at "
        f"{', '.join(str(p) for p in candidates) or '$GEOHSR_VGG16_WEIGHTS'}); set "
        f"GEOHSR_VGG16_WEIGHTS to {NPZ_NAME} (torchvision key names) or to torchvision's "
        "vgg16-397923af.pth, or train with --loss mrae / mse / l1"
    )


def load_vgg16_state(path: str | Path) -> dict[str, torch.Tensor]:
    """The ``features.*`` tensors (float32) of an ``.npz`` or torchvision ``.pth`` file,
    keys without the ``features.`` prefix."""
    path = Path(path)
    try:
        if path.suffix == ".npz":
            with np.load(path) as data:
                raw = {k: torch.from_numpy(data[k].astype(np.float32)) for k in data.files}
        else:
            raw = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, ValueError, RuntimeError) as err:
        raise TrainingError(
            f"cannot read VGG16 weights {path} ({err}); re-create the file"
        ) from err
    state = {
        k.removeprefix("features."): v.float() for k, v in raw.items() if k.startswith("features.")
    }
    if not state:
        raise TrainingError(f"{path} holds no 'features.*' VGG16 tensors")
    return state


def band_channels() -> np.ndarray:
    """VGG input channel (0 R, 1 G, 2 B) of each of the 31 bands."""
    return np.where(
        WAVELENGTHS_NM <= BLUE_MAX_NM, 2, np.where(WAVELENGTHS_NM <= GREEN_MAX_NM, 1, 0)
    )


def spectral_first_conv(rgb_conv: nn.Conv2d) -> nn.Conv2d:
    """31-band version of VGG's first conv with ImageNet normalisation folded in."""
    weight = rgb_conv.weight.detach()  # (64, 3, 3, 3)
    mean = torch.tensor(IMAGENET_MEAN)
    std = torch.tensor(IMAGENET_STD)
    channels = torch.from_numpy(band_channels())  # (31,)
    counts = torch.bincount(channels, minlength=3).float()  # (3,)
    scaled = weight / std[None, :, None, None]  # (64, 3, 3, 3): acts on un-normalised input
    conv = nn.Conv2d(len(WAVELENGTHS_NM), weight.shape[0], 3, padding=1)
    with torch.no_grad():
        conv.weight.copy_(scaled[:, channels] / counts[channels][None, :, None, None])
        conv.bias.copy_(
            rgb_conv.bias.detach() - (scaled * mean[None, :, None, None]).sum((1, 2, 3))
        )
    return conv


class SpectralVGGFeatures(nn.Module):
    """Frozen VGG16 features of a 31-band cube at the ReLUs before the given max-pools.

    ``pools``: 1-based max-pool numbers (1-5); the default (3, 4, 5) takes relu3_3, relu4_3
    and relu5_3 like the original MXR-U-Net code (the paper's text says pools 2-4).
    """

    def __init__(self, weights: str | Path | None = None, pools: Sequence[int] = (3, 4, 5)):
        super().__init__()
        stack = vgg16_features()
        stack.load_state_dict(load_vgg16_state(weights or find_vgg16_weights()), strict=True)
        pool_indices = [i for i, layer in enumerate(stack) if isinstance(layer, nn.MaxPool2d)]
        if not pools or any(not 1 <= p <= len(pool_indices) for p in pools):
            raise TrainingError(f"VGG feature pools must be in 1..{len(pool_indices)}, got {pools}")
        self.layer_ids = sorted(pool_indices[p - 1] - 1 for p in pools)
        stack[0] = spectral_first_conv(stack[0])
        self.stack = stack[: self.layer_ids[-1] + 1]
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> SpectralVGGFeatures:
        """Always stays in eval mode (frozen feature extractor)."""
        return super().train(False)

    def forward(self, cube: torch.Tensor) -> list[torch.Tensor]:
        """``(B, 31, H, W)`` -> features at :attr:`layer_ids`, each ``(B, C_i, H_i, W_i)``."""
        features = []
        x = cube
        for index, layer in enumerate(self.stack):
            x = layer(x)
            if index in self.layer_ids:
                features.append(x)
        return features
