"""Accuracy benchmark at a fixed camera gain: networks against root-polynomial regression.

How a user meets the model: RGB rendered from held-out spectra at a **fixed gain** (a white
reflector reads 1 on every channel at exposure 1; no per-image normalisation), 8-bit
quantised, optionally darker (exposure < 1) or through a real-world pipeline (RGGB mosaic,
noise, demosaic, JPEG). Two kinds of condition:

- camera known (CIE 1964): the network runs with that camera (``--camera``: camera-aware
  base and metamer projection) and is compared with RPR fitted for that camera;
- camera unknown (cameras never trained on): the network runs without a camera and is
  compared with RPR fitted on all training cameras together.

The RPR references (degrees 2 and 3) are fitted in closed form here, on pixels of the same
training scenes the network was trained on (its seeded synthetic aerial scenes included), and
optionally on named subsets of them, rendered the same way; the best per condition is the
reference. Test sets: the held-out CAVE scenes, and real airborne cubes (scored only on the
bands the sensor measures and the pixels that hold data).

Metrics per image (then averaged over images): MRAE over target values >= 0.01 (darker values
are left out), RMSE, PSNR (peak 1), SAM over pixels whose mean target is >= 0.01, and the
re-rendering error ``max |Cn @ p - rgb|`` over unclipped pixels (input units, 1/255 = 0.0039).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from torch import nn

from geohsr.models import create_model
from geohsr.models.baselines import PixelRegression, fit_pixel_regression
from geohsr.spectral.cameras import CIE1964, CameraResponse, resolve_cameras
from geohsr.spectral.metamer import SATURATION_LEVEL, rerender_error
from geohsr.spectral.render import quantization_step, quantize, render_fixed_gain
from geohsr.training.datasets.scene import Scene, SceneCache
from geohsr.training.datasets.spectral_io import (
    covered_bands,
    raster_wavelengths,
    resampling_matrix,
)
from geohsr.training.datasets.synthetic_aerial import SYNTHETIC_KINDS
from geohsr.training.degradations import RealWorldDegradation
from geohsr.training.evaluate import predict_image
from geohsr.training.metrics import BRIGHT_FLOOR, mrae_bright, psnr, rmse

#: Cameras of the Jiang et al. database left out of training the shipped weights.
HELD_OUT_CAMERAS = ("Nikon D5100", "SONY NEX-5N", "Olympus E-PL2")
#: Degrees of the root-polynomial references; the best one per condition is the reference.
REFERENCE_DEGREES = (2, 3)
REFERENCE_LABELS = tuple(f"rpr{d}" for d in REFERENCE_DEGREES)
#: The model should reach this relative MRAE reduction over the best reference.
TARGET_REDUCTION = 0.25
#: Training pixels per scene and camera used to fit the references (a regular subsample).
REFERENCE_PIXEL_STEP = 4
#: every condition's RGB is 8-bit: the quantisation step reconstruct tells the model
INPUT_STEP = quantization_step(8)


def reference_label(degree: int, fit_set: str = "") -> str:
    """``rpr{degree}``, suffixed ``:{fit_set}`` for references fitted on a named pixel set."""
    return f"rpr{degree}" + (f":{fit_set}" if fit_set else "")


@dataclass(frozen=True)
class TestImage:
    """A held-out cube ``(31, H, W)`` reflectance, the bands to score ``(31,)`` bool and the
    pixels to score ``valid`` ``(H, W)`` bool (None: all; pixels without data are left out)."""

    name: str
    cube: np.ndarray
    bands: np.ndarray
    valid: np.ndarray | None = None


@dataclass(frozen=True)
class Condition:
    """One test condition: RGB = quantize(clip(exposure * Cn @ cube)) through ``camera`` (a
    spec for :func:`resolve_cameras`), then ``degradation``; ``camera_known`` says whether
    models are told the camera; ``domain`` names the test set (``cave`` or ``airborne``)."""

    key: str
    label: str
    camera: str
    camera_known: bool
    domain: str = "cave"
    exposure: float = 1.0
    degradation: RealWorldDegradation | None = None

    def to_metadata(self) -> dict[str, Any]:
        """JSON-ready record of the condition."""
        return {
            "key": self.key,
            "label": self.label,
            "camera": self.camera,
            "camera_known": self.camera_known,
            "domain": self.domain,
            "exposure": self.exposure,
            "degradation": self.degradation.to_metadata() if self.degradation else None,
        }


def _camera_key(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name.lower())


def standard_conditions(
    held_out_cameras: Sequence[str] = HELD_OUT_CAMERAS,
    jpeg_quality: int = 80,
    *,
    airborne: bool = True,
) -> list[Condition]:
    """CAVE: clean CIE 1964, exposure x0.25, real-world CIE 1964 (camera known) and each
    held-out camera (unknown); airborne: clean CIE 1964 (known) and the first held-out camera
    (unknown)."""
    degradation = RealWorldDegradation(jpeg_quality=(jpeg_quality, jpeg_quality))
    conditions = [
        Condition("clean", "CAVE clean CIE 1964 (camera known)", CIE1964, True),
        Condition("dark", "CAVE exposure x0.25 CIE 1964 (known)", CIE1964, True, exposure=0.25),
        Condition(
            "realworld",
            f"CAVE real-world CIE 1964, JPEG q{jpeg_quality} (known)",
            CIE1964,
            True,
            degradation=degradation,
        ),
    ]
    for name in held_out_cameras:
        key = "camera_" + _camera_key(name)
        conditions.append(Condition(key, f"CAVE unseen camera {name} (unknown)", name, False))
    if airborne:
        conditions.append(
            Condition("airborne", "airborne CIE 1964 (known)", CIE1964, True, "airborne")
        )
        if held_out_cameras:
            name = held_out_cameras[0]
            conditions.append(
                Condition(
                    "airborne_camera_" + _camera_key(name),
                    f"airborne unseen camera {name} (unknown)",
                    name,
                    False,
                    "airborne",
                )
            )
    return conditions


def cave_test_images(scenes: Sequence[Scene], cache: SceneCache | None = None) -> list[TestImage]:
    """Whole held-out scenes as test images (every band scored)."""
    cache = cache or SceneCache()
    images = []
    for scene in scenes:
        cube = cache.get(scene).cube_window(slice(None), slice(None))
        images.append(TestImage(scene.name, cube, np.ones(cube.shape[0], bool)))
    return images


def airborne_test_images(folder: str | Path) -> list[TestImage]:
    """The airborne cubes of ``folder`` (``*.tif`` with band wavelengths), resampled to
    400-700 nm / 10 nm, negative values clipped to 0; bands outside a sensor's range are
    held at its edge value for rendering and not scored. Pixels without data are rendered
    (a user's image holds them too) but not scored: see :func:`surface_pixels`."""
    images = []
    for path in sorted(Path(folder).glob("*.tif")):
        with rasterio.open(path) as src:
            wavelengths = raster_wavelengths(src)
            values = src.read().astype(np.float32)
            valid = (src.dataset_mask() > 0) & surface_pixels(values)
        matrix = resampling_matrix(wavelengths, hold_edges=True)
        cube = np.einsum("ob,bhw->ohw", matrix, np.clip(values, 0, None)).astype(np.float32)
        images.append(TestImage(path.stem, cube, covered_bands(wavelengths), valid))
    return images


def surface_pixels(values: np.ndarray) -> np.ndarray:
    """``(H, W)`` bool: pixels of a reflectance cube ``(bands, H, W)`` that hold a surface
    spectrum, i.e. whose mean over all sensor channels is above 0. No surface has a negative
    mean reflectance; fill outside a sensor's swath can (the MUUFL Gulfport crop of
    ``../shared/data/airborne`` has a 604-pixel corner wedge holding one repeated spectrum,
    negative from 368 to 590 nm, and no nodata value set)."""
    return values.mean(axis=0) > 0


def render_condition(
    image: TestImage, css: np.ndarray, condition: Condition, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """``(rgb (3, H, W), target (31, H, W))`` of ``image`` under ``condition``."""
    rgb = quantize(render_fixed_gain(image.cube, css, condition.exposure))
    if condition.degradation is not None:
        rgb = condition.degradation(rgb, rng)
    return rgb, image.cube * np.float32(condition.exposure)


def image_metrics(
    pred: np.ndarray,
    target: np.ndarray,
    bands: np.ndarray,
    exposure: float = 1.0,
    valid: np.ndarray | None = None,
) -> dict[str, float]:
    """MRAE (targets >= 0.01 x exposure), RMSE, PSNR and SAM (pixels with mean target >=
    0.01 x exposure) over the scored ``bands`` and the ``valid`` pixels ``(H, W)`` (None:
    all); errors in reflectance units (divided by the exposure)."""
    p = _scored(pred, bands, valid) / exposure
    t = _scored(target, bands, valid) / exposure
    pixels = t.mean(axis=0) >= BRIGHT_FLOOR  # SAM only where the spectrum is not dark
    pp, tt = p[:, pixels], t[:, pixels]
    cosine = (pp * tt).sum(0) / np.maximum(
        np.linalg.norm(pp, axis=0) * np.linalg.norm(tt, axis=0), 1e-300
    )
    return {
        "mrae": mrae_bright(p, t),
        "rmse": rmse(p, t),
        "psnr": psnr(p, t),
        "sam": float(np.degrees(np.arccos(np.clip(cosine, -1, 1))).mean()),
    }


def _scored(cube: np.ndarray, bands: Any, valid: np.ndarray | None) -> np.ndarray:
    """``(bands, N)`` float64: the ``bands`` of ``cube`` ``(C, H, W)`` at the ``valid``
    pixels (None: every pixel, row-major)."""
    picked = cube[np.asarray(bands)].astype(np.float64)
    return picked.reshape(picked.shape[0], -1) if valid is None else picked[:, valid]


#: input-brightness bins of :func:`relative_errors_by_level`: the pixel's mean intensity in
#: 8-bit levels (white = 255); the first bin is black and one-level noise (the chroma floor)
LEVEL_EDGES = (0.0, 0.5, 2.0, 8.0, 32.0, 256.0)


def relative_errors_by_level(
    pred: np.ndarray,
    target: np.ndarray,
    rgb: np.ndarray,
    bands: np.ndarray,
    exposure: float = 1.0,
    edges: Sequence[float] = LEVEL_EDGES,
    valid: np.ndarray | None = None,
) -> np.ndarray:
    """``(len(edges) - 1, 2)``: per bin of the input's mean intensity (8-bit levels, bins
    ``[edges[i], edges[i + 1])``), the sum of ``|pred - target| / target`` over the scored
    values (bands ``bands``, ``valid`` pixels, target >= 0.01 x exposure, as
    :func:`image_metrics`) and their count; summed over images and divided, the MRAE of that
    brightness."""
    levels = rgb.mean(axis=0) * 255.0  # (H, W)
    levels = levels.ravel() if valid is None else levels[valid]  # (N,)
    which = np.digitize(levels, np.asarray(edges[1:-1]))  # (N,) bin index
    p = _scored(pred, bands, valid) / exposure
    t = _scored(target, bands, valid) / exposure
    scored = t >= BRIGHT_FLOOR
    relative = np.where(scored, np.abs(p - t) / np.where(scored, t, 1.0), 0.0).sum(axis=0)
    count = scored.sum(axis=0)
    sums = np.zeros((len(edges) - 1, 2))
    np.add.at(sums[:, 0], which.ravel(), relative.ravel())
    np.add.at(sums[:, 1], which.ravel(), count.ravel())
    return sums


def fit_reference(
    degree: int, spectra: np.ndarray, cameras: Sequence[np.ndarray]
) -> PixelRegression:
    """RPR of ``degree`` fitted on ``spectra`` ``(N, 31)`` rendered through each normalised
    response of ``cameras`` (fixed gain 1, unclipped), in eval mode."""
    rgb = np.concatenate([spectra @ css.T for css in cameras])
    targets = np.concatenate([spectra] * len(cameras))
    return fit_pixel_regression(create_model(f"rpr{degree}"), rgb, targets).eval()


def reference_data_specs(cave_spec: str, training_data: Sequence[str]) -> list[str]:
    """Data specs to fit the RPR references on: ``cave_spec`` (the CAVE scenes here) plus
    every synthetic aerial spec (``synthetic-aerial:COUNT`` or ``synthetic-aerial-varied:COUNT``)
    of a network's ``training_data`` metadata. Those scenes are a pure function of their index,
    so the references see exactly the aerial spectra the network was trained on; other specs
    name data of the training machine."""
    return [cave_spec, *(s for s in training_data if s.partition(":")[0] in SYNTHETIC_KINDS)]


def reference_cameras(
    meta: Mapping[str, Any], held_out: Sequence[str] = HELD_OUT_CAMERAS
) -> list[CameraResponse]:
    """The responses the unknown-camera references are fitted over: the cameras a network's
    weights ``meta`` record under ``camera`` (none recorded: CIE 1964 and the 28 of Jiang et
    al.), minus the ``held_out`` ones (names compared case-insensitively)."""
    names = [c["name"] for c in (meta.get("camera") or {}).get("cameras", [])]
    excluded = {name.lower() for name in held_out}
    return [
        c for c in resolve_cameras(names or [CIE1964, "jiang28"]) if c.name.lower() not in excluded
    ]


def reference_training_scenes(
    scenes: Sequence[Scene], train_scenes: Sequence[str], held_out: Sequence[str]
) -> list[Scene]:
    """The ``scenes`` a network trained on (names in its ``train_scenes`` metadata, a
    ``[train]`` suffix ignored); when it names none of them, every scene not ``held_out``."""
    names = {n.removesuffix("[train]") for n in train_scenes}
    return [s for s in scenes if s.name in names] or [s for s in scenes if s.name not in held_out]


def reference_fit_sets(
    train_scenes: Sequence[Scene], cave_names: Sequence[str], cache: SceneCache | None = None
) -> dict[str, np.ndarray]:
    """Pixel sets ``{name: (N, 31)}`` for :func:`run_accuracy`'s references: ``""`` every
    training scene, ``"cave"`` the CAVE ones (named in ``cave_names``) alone when they are
    only some of them."""
    cave_names = set(cave_names)
    cave = [s for s in train_scenes if s.name in cave_names]
    sets = {"": training_pixels(train_scenes, cache)}
    if cave and len(cave) < len(train_scenes):
        sets["cave"] = training_pixels(cave, cache)
    return sets


def training_pixels(scenes: Sequence[Scene], cache: SceneCache | None = None) -> np.ndarray:
    """``(N, 31)`` spectra: every ``REFERENCE_PIXEL_STEP``-th pixel of each training scene."""
    cache = cache or SceneCache()
    step = REFERENCE_PIXEL_STEP
    parts = []
    for scene in scenes:
        cube = cache.get(scene).cube_window(slice(None, None, step), slice(None, None, step))
        parts.append(cube.reshape(cube.shape[0], -1).T)
    return np.concatenate(parts)


def predict_with_camera(
    model: nn.Module,
    rgb: np.ndarray,
    css: np.ndarray | None,
    device: str = "cpu",
    input_step: float = 0.0,
) -> np.ndarray:
    """``model`` on ``rgb`` ``(3, H, W)`` -> ``(31, H, W)``, told camera ``css`` (normalised
    ``(3, 31)``, None: unknown) and the input's quantisation step ``input_step`` (as
    ``geohsr reconstruct`` tells it: 1/255 for 8-bit input) when it is camera-aware; both
    are reset afterwards."""
    set_camera = getattr(model, "set_camera", None)
    set_input_step = getattr(model, "set_input_step", None)
    if set_camera is not None:
        set_camera(css)
    if set_input_step is not None:
        set_input_step(input_step)
    try:
        return predict_image(model, rgb, device=device)
    finally:
        if set_camera is not None:
            set_camera(None)
        if set_input_step is not None:
            set_input_step(0.0)


def run_accuracy(
    models: Mapping[str, nn.Module],
    test_sets: Mapping[str, Sequence[TestImage]],
    conditions: Sequence[Condition],
    *,
    train_spectra: np.ndarray | Mapping[str, np.ndarray],
    train_cameras: Sequence[CameraResponse],
    seed: int = 0,
    device: str = "cpu",
    input_step: float = INPUT_STEP,
    on_result: Callable[[str, Condition, dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Score every model (label -> model in eval mode) and the fitted RPR references under
    every condition whose ``domain`` is in ``test_sets``. Camera-aware models are told the
    8-bit input's quantisation step ``input_step``, as ``geohsr reconstruct`` tells them
    for 8-bit files (0: exact metamer projection, as for float input).

    ``train_spectra`` ``(N, 31)`` are the pixels the references are fitted on; a mapping
    ``{name: (N, 31)}`` fits a set of references on each (``""``: labels ``rpr2`` / ``rpr3``;
    ``"cave"``: ``rpr2:cave`` / ``rpr3:cave``), and the best of all is the reference.

    Returns ``{"test_sets", "seed", "conditions", "references", "results": {label: {condition
    key: {"mean", "images", "seconds"}}}}``. Image ``i``'s degradation uses a generator seeded
    by ``(seed, i)``, identical for every model.
    """
    fit_sets = train_spectra if isinstance(train_spectra, Mapping) else {"": train_spectra}

    def fit_all(cameras: list[np.ndarray]) -> dict[str, nn.Module]:
        return {
            reference_label(degree, name): fit_reference(degree, spectra, cameras)
            for name, spectra in fit_sets.items()
            for degree in REFERENCE_DEGREES
        }

    references = fit_all([c.normalised for c in train_cameras])
    all_models = {**models, **references}
    results: dict[str, dict[str, Any]] = {label: {} for label in all_models}
    for_camera: dict[str, dict[str, nn.Module]] = {}  # fitted once per known camera
    for condition in [c for c in conditions if c.domain in test_sets]:
        css = resolve_cameras([condition.camera])[0].normalised
        scoring = dict(all_models)
        if condition.camera_known:
            if condition.camera not in for_camera:
                for_camera[condition.camera] = fit_all([css])
            scoring.update(for_camera[condition.camera])
        renders = [
            render_condition(image, css, condition, np.random.default_rng([seed, i]))
            for i, image in enumerate(test_sets[condition.domain])
        ]
        for label, model in scoring.items():
            start = time.perf_counter()
            images = []
            for image, (rgb, target) in zip(test_sets[condition.domain], renders, strict=True):
                told = css if condition.camera_known else None
                pred = predict_with_camera(model, rgb, told, device, input_step)
                row = {
                    "name": image.name,
                    "pixels": int(rgb[0].size if image.valid is None else image.valid.sum()),
                    **image_metrics(pred, target, image.bands, condition.exposure, image.valid),
                }
                usable = (rgb < SATURATION_LEVEL).all(axis=0)
                if image.valid is not None:
                    usable &= image.valid
                row["rerender"] = (
                    float(rerender_error(pred, rgb, css)[usable].max()) if usable.any() else 0.0
                )
                images.append(row)
            report = {
                "mean": {
                    k: float(np.mean([img[k] for img in images]))
                    for k in images[0]
                    if k not in ("name", "pixels")
                },
                "images": images,
                "seconds": round(time.perf_counter() - start, 2),
            }
            report["mean"]["rerender"] = float(max(img["rerender"] for img in images))
            results[label][condition.key] = report
            if on_result is not None:
                on_result(label, condition, report)
    return {
        "test_sets": {name: [img.name for img in images] for name, images in test_sets.items()},
        "seed": seed,
        "input_step": input_step,
        "train_cameras": [c.name for c in train_cameras],
        "conditions": [c.to_metadata() for c in conditions if c.domain in test_sets],
        "references": list(references),
        "results": results,
    }


def mrae_reductions(report: Mapping[str, Any], networks: Sequence[str]) -> list[dict[str, Any]]:
    """Relative MRAE reduction of every network over the best RPR reference per condition:
    rows ``{"model", "condition", "mrae", "sam", "reference", "reference_mrae",
    "reference_sam", "reduction"}`` with ``reduction = 1 - mrae / reference_mrae``."""
    results = report["results"]
    rows = []
    for label in networks:
        for condition in report["conditions"]:
            key = condition["key"]
            if key not in results[label]:
                continue
            best = min(
                report.get("references", REFERENCE_LABELS),
                key=lambda ref: results[ref][key]["mean"]["mrae"],
            )
            own, ref = results[label][key]["mean"], results[best][key]["mean"]
            rows.append(
                {
                    "model": label,
                    "condition": condition["label"],
                    "mrae": own["mrae"],
                    "sam": own["sam"],
                    "reference": best,
                    "reference_mrae": ref["mrae"],
                    "reference_sam": ref["sam"],
                    "reduction": 1.0 - own["mrae"] / ref["mrae"],
                }
            )
    return rows


def format_metrics_table(report: Mapping[str, Any]) -> str:
    """Markdown table, one row per (condition, model), and a footer on the protocol."""
    lines = [
        "| Condition | Model | MRAE | RMSE | PSNR (dB) | SAM (deg) | re-render max |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for condition in report["conditions"]:
        for label, per_condition in report["results"].items():
            if condition["key"] not in per_condition:
                continue
            m = per_condition[condition["key"]]["mean"]
            lines.append(
                f"| {condition['label']} | {label} | {m['mrae']:.4f} | {m['rmse']:.4f} "
                f"| {m['psnr']:.2f} | {m['sam']:.2f} | {m['rerender']:.4f} |"
            )
    sets = "; ".join(f"{k}: {', '.join(v)}" for k, v in report["test_sets"].items())
    lines += [
        "",
        f"Held-out test images ({sets}). Fixed gain: a white reflector reads 1 at exposure 1; "
        "8-bit RGB. MRAE over target values >= 0.01, SAM over pixels whose mean is >= 0.01 "
        "(both relative to the exposure); re-render max = largest |Cn p - rgb| over unclipped "
        "pixels (1/255 = 0.0039). "
        f"{' / '.join(report.get('references', REFERENCE_LABELS))}: root-polynomial regression "
        "of degree 2 / 3 fitted on the network's training pixels (a ':name' suffix: on that "
        "subset alone), for the condition's camera when it is known, else over all "
        f"{len(report['train_cameras'])} training cameras; the best one per condition is the "
        "reference.",
    ]
    return "\n".join(lines)


def format_improvement_table(
    rows: Sequence[Mapping[str, Any]], target: float = TARGET_REDUCTION
) -> str:
    """Markdown table of :func:`mrae_reductions` rows, with whether each meets ``target``."""
    lines = [
        f"| Model | Condition | MRAE | SAM | Best RPR | RPR MRAE | RPR SAM | MRAE reduction "
        f"| >= {target:.0%} and lower SAM |",
        "|---|---|---:|---:|---|---:|---:|---:|---|",
    ]
    for row in rows:
        met = row["reduction"] >= target and row["sam"] < row["reference_sam"]
        lines.append(
            f"| {row['model']} | {row['condition']} | {row['mrae']:.4f} | {row['sam']:.2f} "
            f"| {row['reference']} | {row['reference_mrae']:.4f} | {row['reference_sam']:.2f} "
            f"| {row['reduction']:.1%} | {'yes' if met else 'no'} |"
        )
    return "\n".join(lines)
