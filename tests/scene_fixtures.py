"""Helpers for the scene-reconstruction tests: small georeferenced rasters and test-only
models (registered here, never in the library)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio
import torch
from rasterio.transform import from_origin
from torch import nn

from geohsr.inference.predictor import Predictor
from geohsr.models import register_model
from geohsr.models.weights import save_weights
from geohsr.spectral import N_BANDS

SHARED_EXAMPLES = (
    Path(
        __import__("os").environ.get(
            "GEOHSR_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"
        )
    )
    / "examples"
)
CRS = "EPSG:32633"
TRANSFORM = from_origin(500000.0, 4600000.0, 10.0, 10.0)


class ConstantCube(nn.Module):
    """Predicts ``value`` at every pixel and band, whatever the input."""

    def __init__(self, value: float = 0.25) -> None:
        super().__init__()
        self.value = nn.Parameter(torch.tensor(float(value)))

    def forward(self, rgb: torch.Tensor) -> torch.Tensor:
        batch, _, height, width = rgb.shape
        return self.value.expand(batch, N_BANDS, height, width) + 0 * rgb[:, :1]


class LinearWithEdgeArtefact(nn.Module):
    """A fixed 1x1 linear map of the RGB plus ``artefact`` x (squared distance from the
    window centre): a position-dependent bias like a CNN's edge effects."""

    def __init__(self, artefact: float = 0.1) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(0)
        self.mix = nn.Parameter(torch.rand(N_BANDS, 3, generator=generator))
        self.artefact = artefact

    def forward(self, rgb: torch.Tensor) -> torch.Tensor:
        height, width = rgb.shape[-2:]
        y = torch.linspace(-1, 1, height).view(height, 1)
        x = torch.linspace(-1, 1, width).view(1, width)
        local = self.artefact * (y**2 + x**2)  # (H, W)
        return torch.einsum("bc,nchw->nbhw", self.mix, rgb.float()) + local


@register_model
def scene_test_constant(width: float = 1.0, value: float = 0.25) -> nn.Module:
    """Test-only model: constant output."""
    return ConstantCube(value)


@register_model
def scene_test_linear(width: float = 1.0, artefact: float = 0.1) -> nn.Module:
    """Test-only model: linear in RGB plus a window-position artefact."""
    return LinearWithEdgeArtefact(artefact)


def save_model(model: nn.Module, path: Path) -> Path:
    """Save ``model`` (built by create_model) as a weights file."""
    return save_weights(model, path, {"training_data": "none (test model)"})


def write_raster(
    path: Path,
    data: np.ndarray,
    *,
    nodata: float | None = None,
    crs: str | None = CRS,
    driver: str = "GTiff",
    **profile,
) -> Path:
    """Write ``data`` ``(bands, H, W)`` with a real CRS (or none) to ``path``."""
    count, height, width = data.shape
    options = dict(
        driver=driver,
        width=width,
        height=height,
        count=count,
        dtype=data.dtype.name,
        nodata=nodata,
        **profile,
    )
    if crs is not None:
        options.update(crs=crs, transform=TRANSFORM)
    with rasterio.open(path, "w", **options) as dst:
        dst.write(data)
    return path


def gradient_rgb(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A smooth uint8 RGB scene ``(3, H, W)`` with a little texture."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    bands = [
        0.5 + 0.4 * np.sin(y / 17.0 + 1.0) * np.cos(x / 29.0),
        0.5 + 0.4 * np.cos(y / 23.0) * np.sin(x / 13.0 + 0.5),
        0.3 + 0.2 * (x / max(width - 1, 1)) + 0.2 * (y / max(height - 1, 1)),
    ]
    rgb = np.stack(bands) + rng.normal(0, 0.01, (3, height, width))
    return np.clip(rgb * 255, 1, 255).astype(np.uint8)


class Interrupted(Exception):
    """Raised by :class:`CrashAfter`: a stand-in for a run killed mid-write."""


class CrashAfter(Predictor):
    """The CPU predictor of ``weights`` (batch 2) that raises ``error`` on batch ``calls + 1``."""

    def __init__(
        self, weights: str | Path, calls: int, error: type[BaseException] = Interrupted
    ) -> None:
        model = Predictor.from_weights(weights, device="cpu", batch_size=2).model
        super().__init__(model, device="cpu", batch_size=2, weights=weights)
        self.calls = calls
        self.error = error

    def predict(self, batch, **kwargs):
        if self.calls == 0:
            raise self.error
        self.calls -= 1
        return super().predict(batch, **kwargs)
