"""Evaluate a model on whole images: per-image NTIRE metrics and their means.

Used by validation during training, by ``geohsr evaluate`` and by the accuracy benchmark::

    from geohsr.training.evaluate import evaluate_model
    report = evaluate_model(model, pairs)          # pairs: iterable of EvalPair
    report["mean"]["mrae"], report["images"][0]["name"]
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from geohsr.exceptions import InputError, OutputError
from geohsr.spectral import N_BANDS
from geohsr.spectral.cameras import CameraResponse, resolve_cameras
from geohsr.training.camera import CameraSampler
from geohsr.training.datasets.registry import load_data_specs
from geohsr.training.datasets.samples import EvalPair, evaluation_pairs
from geohsr.training.degradations import RealWorldDegradation
from geohsr.training.metrics import DEFAULT_EPS, METRIC_NAMES, spectral_metrics


def _starts(size: int, tile: int, step: int) -> list[int]:
    if size <= tile:
        return [0]
    starts = list(range(0, size - tile, step))
    return starts + [size - tile]


@torch.no_grad()
def predict_image(
    model: nn.Module,
    rgb: np.ndarray,
    *,
    device: str | torch.device = "cpu",
    tile: int = 512,
    overlap: int = 32,
) -> np.ndarray:
    """Reconstruct ``rgb`` ``(3, H, W)`` in [0, 1] -> ``(31, H, W)`` float32.

    Images larger than ``tile`` are cut into ``tile`` x ``tile`` windows overlapping by
    ``overlap`` pixels; overlapping predictions are averaged. The model's train/eval mode is
    left to the caller (use eval mode).
    """
    device = torch.device(device)
    height, width = rgb.shape[1:]
    out = np.zeros((N_BANDS, height, width), dtype=np.float32)
    hits = np.zeros((height, width), dtype=np.float32)
    step = max(tile - overlap, 1)
    for y0 in _starts(height, tile, step):
        for x0 in _starts(width, tile, step):
            window = np.ascontiguousarray(rgb[:, y0 : y0 + tile, x0 : x0 + tile])
            batch = torch.from_numpy(window).float()[None].to(device)  # (1, 3, h, w)
            pred = model(batch)[0].float().cpu().numpy()  # (31, h, w)
            out[:, y0 : y0 + tile, x0 : x0 + tile] += pred
            hits[y0 : y0 + tile, x0 : x0 + tile] += 1.0
    return out / hits


def summarize(images: list[dict[str, Any]]) -> dict[str, float]:
    """Mean of each metric over images (PSNR: mean of finite values)."""
    means = {}
    for name in (*METRIC_NAMES, "mrae_guarded"):
        values = np.array([img[name] for img in images], dtype=np.float64)
        finite = values[np.isfinite(values)]
        means[name] = float(finite.mean()) if len(finite) else float("nan")
    return means


def evaluate_model(
    model: nn.Module,
    pairs: Iterable[EvalPair],
    *,
    device: str | torch.device = "cpu",
    tile: int = 512,
    eps: float = DEFAULT_EPS,
) -> dict[str, Any]:
    """Metrics of ``model`` on whole images.

    Returns ``{"mean": {mrae, rmse, psnr, sam, mrae_guarded}, "images": [{"name", ...}],
    "count": n}`` (see :mod:`geohsr.training.metrics` for definitions). The model is run in
    eval mode and restored to its previous mode afterwards. Camera-aware models
    (``set_camera``) are told the camera and the input step of pairs that carry one (see
    :class:`~geohsr.training.datasets.samples.EvalPair`); both are restored after.
    """
    was_training = model.training
    model.eval()
    images = []
    set_camera = getattr(model, "set_camera", None)
    set_input_step = getattr(model, "set_input_step", None)
    step_before = getattr(model, "input_step", 0.0)
    try:
        for pair in pairs:
            if set_camera is not None:
                set_camera(pair.css)
            if set_input_step is not None:
                set_input_step(pair.input_step)
            pred = predict_image(model, pair.rgb, device=device, tile=tile)
            images.append({"name": pair.name, **spectral_metrics(pred, pair.cube, eps)})
    finally:
        if set_camera is not None:
            set_camera(None)
        if set_input_step is not None:
            set_input_step(step_before)
        model.train(was_training)
    return {"mean": summarize(images), "images": images, "count": len(images)}


def evaluate_data(
    model: nn.Module,
    data: Sequence[str],
    *,
    cameras: Sequence[str | CameraResponse] = ("cie1964",),
    degradation: RealWorldDegradation | None = None,
    scene_names: Sequence[str] = (),
    device: str | torch.device = "cpu",
    tile: int = 512,
    seed: int = 0,
    every_camera: bool = False,
    camera_known: bool = False,
) -> dict[str, Any]:
    """:func:`evaluate_model` on every scene of ``data`` specs (``KIND:PATH``), optionally only
    ``scene_names``. Scenes without RGB are rendered with ``cameras`` (specs as in
    :func:`~geohsr.training.camera.resolve_cameras`, or responses) in turn (see
    :func:`~geohsr.training.datasets.evaluation_pairs`; all of them per scene with
    ``every_camera``), degraded when ``degradation`` is given; ``camera_known`` tells
    camera-aware models the rendering camera.
    """
    scenes = load_data_specs(data)
    if scene_names:
        unknown = sorted(set(scene_names) - {s.name for s in scenes})
        if unknown:
            raise InputError(
                f"scenes {', '.join(unknown)} not in the data; available: "
                f"{', '.join(s.name for s in scenes)}"
            )
        scenes = [s for s in scenes if s.name in scene_names]
    responses: list[CameraResponse] = []
    for spec in cameras:
        responses += [spec] if isinstance(spec, CameraResponse) else resolve_cameras([spec])
    camera = CameraSampler(responses)
    pairs = evaluation_pairs(
        scenes,
        camera,
        degradation=degradation,
        seed=seed,
        every_camera=every_camera,
        camera_known=camera_known,
    )
    return evaluate_model(model, pairs, device=device, tile=tile)


def write_report(report: dict[str, Any], path: str | Path) -> Path:
    """Save an evaluation report as ``.json`` (everything) or ``.csv`` (one row per image
    plus a ``mean`` row)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".json":
        path.write_text(json.dumps(report, indent=2))
        return path
    if path.suffix.lower() != ".csv":
        raise OutputError(f"unsupported report format {path.suffix!r}; use .csv or .json")
    columns = ["name", *METRIC_NAMES, "mrae_guarded"]
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns)
        writer.writeheader()
        for row in report["images"]:
            writer.writerow({k: row[k] for k in columns})
        writer.writerow({"name": "mean", **report["mean"]})
    return path
