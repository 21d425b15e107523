"""Shared by the scene benchmarks: synthetic georeferenced RGB GeoTIFFs of any size, written
strip by strip (never the whole scene in memory), and the tiny benchmark predictor."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio
from rasterio.transform import from_origin

STRIP = 512


def write_synthetic_scene(path: Path, height: int, width: int, seed: int = 0) -> Path:
    """A uint8 RGB GeoTIFF (EPSG:32633, 10 m, tiled 512, deflate) with smooth patterns and
    noise; reused when it already exists with that size."""
    if path.exists():
        with rasterio.open(path) as dataset:
            if (dataset.height, dataset.width) == (height, width):
                return path
    rng = np.random.default_rng(seed)
    profile = dict(
        driver="GTiff",
        height=height,
        width=width,
        count=3,
        dtype="uint8",
        crs="EPSG:32633",
        transform=from_origin(400000.0, 5200000.0, 10.0, 10.0),
        tiled=True,
        blockxsize=512,
        blockysize=512,
        compress="deflate",
        BIGTIFF="IF_SAFER",
    )
    x = np.arange(width, dtype=np.float32)
    with rasterio.open(path, "w", **profile) as dst:
        for top in range(0, height, STRIP):
            rows = min(STRIP, height - top)
            y = np.arange(top, top + rows, dtype=np.float32)[:, None]
            bands = np.stack(
                [
                    0.5 + 0.35 * np.sin(y / 61.0) * np.cos(x / 47.0),
                    0.5 + 0.35 * np.cos(y / 37.0 + x / 91.0),
                    0.4 + 0.3 * np.sin((x + y) / 73.0),
                ]
            )
            noisy = bands + rng.normal(0, 0.03, bands.shape).astype(np.float32)
            dst.write(
                np.clip(noisy * 255, 1, 255).astype(np.uint8),
                window=rasterio.windows.Window(0, top, width, rows),
            )
    return path


def benchmark_predictor(model: str, width: float, batch_size: int, threads: int | None):
    """Registry model ``model`` with channel multiplier ``width`` (random weights, seed 0)."""
    import torch

    from geohsr.inference.predictor import Predictor
    from geohsr.models import create_model

    torch.manual_seed(0)
    return Predictor(
        create_model(model, width=width), device="cpu", batch_size=batch_size, threads=threads
    )
