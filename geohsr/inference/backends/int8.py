"""INT8 post-training quantisation of the OpenVINO network (``--precision int8``).

NNCF (``pip install "geohsr[int8]"``) quantises the converted network's convolutions to 8-bit
integers from activation ranges it collects on calibration images; everything else stays in
floating point: the input's intensity and chromaticity (``ReduceMean``, ``Divide``, the
chroma floor's ``Greater``/``Maximum``), the self-attention ``MatMul`` and every
``Multiply`` (``gamma * I * U``). Quantising the raw RGB input to 8 bits with one range made
dark pixels' chromaticity meaningless: measured on the shipped model (2 x 512^2 held-out
CAVE windows), the mean relative difference from fp32 was 4.3 % with every operation
quantised and 1.3 % with these kept in floating point; the float32 classical base and the
metamer projection run in torch as for every backend (:func:`~geohsr.inference.export.finish`).

Up to INT8 version 3 activation ranges were the calibration images' minimum and maximum
(NNCF's ``MINMAX`` estimator), not NNCF's default averaged or quantile ranges: inputs from
cameras the calibration never saw reach further, and clipping them cost most. With the default
ranges the shipped model's MRAE rose 5.2 % on an unseen camera (Nikon D5100), with ``MINMAX``
1.0 % (clean CIE 1964: +1.9 % -> -0.01 %); but the wider ranges cost the darker airborne
cubes more (+1.1-1.2 % -> +2.3-3.2 %). Mean over the 8 accuracy conditions: +1.8 % -> +0.94 %.

The output stage stays in floating point too (:data:`FLOAT_CONVOLUTIONS`: the pixel-shuffle
convolution before the full-resolution head and the final 1x1 convolution to 31 bands), as
does the fused attention: the airborne conditions' cost fell from +2.3/+3.2 % to +1.1/+1.3 %
and the mean to +0.45 % (``python benchmarks/accuracy.py --backends openvino:int8``). Keeping
more in floating point (the head's two full-resolution convolutions, the first four encoder
convolutions, or any one decoder stage) moved the airborne cost by at most 0.1 % more, and
full bias correction made it worse (+3.1/+3.8 %): the remaining error is spread over every
quantised layer. Other activation ranges with this output stage, on four conditions (CAVE
clean / unseen Nikon D5100 / airborne CIE / airborne Nikon): NNCF's default +1.7/+5.0/+0.8/
+1.2 %; per-image 1e-4 quantiles, extremes over images, -0.1/+1.4/-0.3/+0.8 %; 1e-5
quantiles -0.2/+0.8/+0.0/+1.2 %; min-max (kept) -0.2/+0.7/+1.1/+1.3 %. Each trades the
unseen camera against the airborne cubes; none stays below 1 % on all four.

INT8 version 4 takes each activation's range from per-image quantiles (outlier
probability :data:`RANGE_OUTLIER_PROB`, the extremes over the calibration images) instead of
the minimum and maximum. Either way the shipped weights alone stay above 1 % on some
condition; what brings every condition below it is **INT8-adapted weights**
(:func:`adapted_weights_path`): a copy of the weights fine-tuned, with the network's INT8
arithmetic simulated, to reproduce the float model (``geohsr finetune --int8-adapt``,
:mod:`geohsr.training.int8_adapt`). When such a file sits in the ``int8`` folder beside the
weights file and records that it was adapted from exactly that file (its SHA-256), the INT8
backend quantises it instead; the classical base, the camera and the metamer projection
still come from the weights themselves.
The shipped adapted copy (``pretrained/int8/``, 400 steps) cost, with INT8 version 4,
+0.29 % MRAE on average and +0.64 % at worst over the 8 conditions (``python
benchmarks/accuracy.py --backends openvino:int8``, 2026-12-01; airborne +0.30 / +0.06 %).

Calibration needs no data files: :func:`calibration_images` paints seeded synthetic scenes
from the weights' own reference spectra (a sample of their training spectra), rendered at a
fixed gain through the model's current camera (CIE 1964 when none), 8-bit, at exposures from
0.05 to 1, so the ranges cover dark and bright input.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np
from torch import nn

#: operations kept in floating point (see the module docstring)
FLOAT_OPERATIONS = (
    "ReduceMean",
    "Divide",
    "Greater",
    "Maximum",
    "MatMul",
    "ScaledDotProductAttention",
    "Multiply",
)
#: convolutions kept in floating point, by name (regular expressions): the network's output
#: stage, the pixel-shuffle convolution before the full-resolution head and the head's
#: final 1x1 convolution to 31 bands (about 7 % of the INT8 network's time)
FLOAT_CONVOLUTIONS = (r".*\.final_shuf\.conv/.*", r".*\.head\.1/.*")
#: calibration: images, their side (pixels), exposures and seed
CALIBRATION_IMAGES = 36
CALIBRATION_SIZE = 256
CALIBRATION_EXPOSURES = (1.0, 0.3, 0.08)
CALIBRATION_SEED = 20261201
#: outlier probability of the per-image activation quantiles that set INT8 ranges
RANGE_OUTLIER_PROB = 1e-5
#: folder beside a weights file holding its INT8-adapted copy (same file name)
ADAPTED_FOLDER = "int8"
#: metadata entry of INT8-adapted weights naming the weights they were adapted from
ADAPTED_FROM_KEY = "int8_adapted_from"
#: bump when quantisation or calibration change (invalidates cached INT8 models)
INT8_VERSION = 4  # 2: min-max ranges; 3: output stage in float; 4: quantile ranges


def nncf_installed() -> bool:
    """Whether NNCF can be imported (``pip install "geohsr[int8]"``)."""
    return importlib.util.find_spec("nncf") is not None


def calibration_images(
    model: nn.Module,
    count: int = CALIBRATION_IMAGES,
    size: int = CALIBRATION_SIZE,
    seed: int = CALIBRATION_SEED,
) -> list[np.ndarray]:
    """``count`` RGB images ``(1, 3, size, size)`` float32 in [0, 1]: Voronoi patches of the
    model's reference spectra (``(N, 31)`` reflectance) with smooth shading, rendered through
    its current camera (CIE 1964 if none) at a fixed gain, quantised to 8 bits, at the
    exposures of :data:`CALIBRATION_EXPOSURES` in turn. Deterministic for a seed."""
    from geohsr.spectral.cameras import cie1964
    from geohsr.spectral.render import quantize, render_fixed_gain

    spectra = _reference_spectra(model)
    css = _camera(model)
    if css is None:
        css = cie1964().normalised
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[:size, :size].astype(np.float32)
    images = []
    for i in range(count):
        n_cells = int(rng.integers(8, 64))
        centres = rng.uniform(0, size, (n_cells, 2)).astype(np.float32)
        nearest = np.argmin(
            (rows[..., None] - centres[:, 0]) ** 2 + (cols[..., None] - centres[:, 1]) ** 2,
            axis=-1,
        )  # (size, size) cell index
        chosen = spectra[rng.integers(0, len(spectra), n_cells)]  # (cells, 31)
        cube = chosen[nearest].transpose(2, 0, 1)  # (31, size, size)
        angle, frequency = rng.uniform(0, 2 * np.pi), rng.uniform(0.005, 0.05)
        wave = np.cos(frequency * (rows * np.cos(angle) + cols * np.sin(angle)))
        shading = 0.75 + 0.25 * wave
        exposure = CALIBRATION_EXPOSURES[i % len(CALIBRATION_EXPOSURES)]
        rgb = quantize(render_fixed_gain(cube * shading, css, exposure))
        images.append(rgb[None].astype(np.float32))
    return images


def _reference_spectra(model: nn.Module) -> np.ndarray:
    spectra = getattr(model, "reference_spectra", None)
    if spectra is not None and float(spectra.abs().sum()) > 0:
        return spectra.detach().cpu().numpy().astype(np.float32)
    # a model without its training spectra: smooth random reflectance
    rng = np.random.default_rng(CALIBRATION_SEED)
    knots = rng.uniform(0.02, 0.9, (512, 5))
    grid = np.linspace(0, 4, 31)
    return np.stack([np.interp(grid, np.arange(5), k) for k in knots]).astype(np.float32)


def _camera(model: nn.Module) -> np.ndarray | None:
    known = getattr(model, "camera_known", None)
    if known is not None and bool(known):
        return model.camera_css.detach().cpu().numpy().astype(np.float64)
    return None


def activation_ranges():
    """NNCF's activation range estimator of geohsr's INT8 (used by the backend and by
    :mod:`geohsr.training.int8_adapt`, which must simulate the same ranges): per-image
    quantiles at :data:`RANGE_OUTLIER_PROB`, the smallest low and largest high over images."""
    from nncf.quantization.range_estimator import (
        AggregatorType,
        RangeEstimatorParameters,
        StatisticsCollectorParameters,
        StatisticsType,
    )

    def quantile(aggregator):
        return StatisticsCollectorParameters(
            statistics_type=StatisticsType.QUANTILE,
            aggregator_type=aggregator,
            quantile_outlier_prob=RANGE_OUTLIER_PROB,
        )

    return RangeEstimatorParameters(
        min=quantile(AggregatorType.MIN), max=quantile(AggregatorType.MAX)
    )


def adapted_weights_path(weights: str | Path) -> Path:
    """Where the INT8-adapted copy of weights file ``weights`` lives:
    ``<folder>/int8/<same name>`` (``pretrained/int8/`` for the shipped weights)."""
    weights = Path(weights)
    return weights.parent / ADAPTED_FOLDER / weights.name


def load_adapted_network(model: nn.Module) -> tuple[nn.Module, Path] | None:
    """The INT8-adapted copy of ``model``'s weights file and its path, when there is one
    made from exactly that file (its SHA-256 recorded under :data:`ADAPTED_FROM_KEY`);
    None otherwise, with a line on stderr saying why (no copy, a copy of other weights,
    an unreadable copy) and what to do. The copy is prepared for inference, with
    ``model``'s current camera and bright-residual gain (set on the weights after training,
    e.g. by ``benchmarks/bright_gate.py --write``, so the copy applies it as they do)."""
    import sys

    from geohsr.exceptions import WeightsError
    from geohsr.models.inference_prep import prepare_for_inference
    from geohsr.models.weights import load_weights, read_metadata, tensor_sources

    weights = getattr(model, "geohsr_weights", None)
    path = adapted_weights_path(weights) if weights is not None else None
    if path is None or not path.is_file():
        make = (
            "make one with `geohsr finetune --int8-adapt --init WEIGHTS --data ... --steps 400 "
            "--lr 5e-5` (README, Speed) or use --precision bf16"
            if hasattr(model, "set_camera")
            else "use --precision bf16 for the float accuracy"
        )
        print(
            "geohsr: note: these weights have no INT8-adapted copy (int8/ beside the weights "
            "file), so INT8 quantises them as they are, which cost the shipped weights over "
            f"1 % MRAE on airborne scenes; {make}",
            file=sys.stderr,
        )
        return None
    fallback = "quantising the weights themselves instead"
    try:
        source = read_metadata(path).get(ADAPTED_FROM_KEY) or {}
        if source.get("sha256") not in tensor_sources(weights):
            print(
                f"geohsr: warning: {path} was not adapted from {Path(weights).name} (SHA-256 "
                f"differs); {fallback}. Remove it or re-make it with `geohsr finetune "
                "--int8-adapt`",
                file=sys.stderr,
            )
            return None
        network, _ = load_weights(path)
    except WeightsError as error:
        print(
            f"geohsr: warning: the INT8-adapted copy {path} cannot be used ({error}); "
            f"{fallback}. Remove it or replace it with an intact copy",
            file=sys.stderr,
        )
        return None
    network = prepare_for_inference(network)
    if hasattr(network, "set_camera"):
        network.set_camera(_camera(model))
    if hasattr(network, "set_bright_residual_gain"):  # a setting on top of the network
        network.set_bright_residual_gain(model.bright_residual_gain)
    return network, path


def ensure_quantized(model: nn.Module, ir_path: Path, int8_path: Path) -> Path:
    """``int8_path``: the INT8 model quantised from the float IR ``ir_path`` with
    calibration images of ``model``, written once (a file lock; files appear complete or
    not at all, like :func:`~geohsr.inference.backends.openvino_backend.ensure_converted`)."""
    from filelock import FileLock

    if int8_path.exists():
        return int8_path
    with FileLock(str(int8_path.with_suffix(".lock"))):
        if not int8_path.exists():
            _quantize(model, ir_path, int8_path)
    return int8_path


def _quantize(model: nn.Module, ir_path: Path, int8_path: Path) -> None:
    from geohsr.inference.backends.openvino_backend import telemetry_off

    with telemetry_off():  # NNCF decides at import whether it sends usage events
        _quantize_without_telemetry(model, ir_path, int8_path)


def _quantize_without_telemetry(model: nn.Module, ir_path: Path, int8_path: Path) -> None:
    import contextlib
    import logging
    import sys

    import nncf
    import openvino as ov
    from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters

    print(
        "geohsr: quantising the model to INT8 (once per weights file and camera; about a "
        f"minute; cached in {int8_path.parent})",
        file=sys.stderr,
    )
    images = calibration_images(model)
    nncf.set_log_level(logging.ERROR)
    with contextlib.redirect_stdout(sys.stderr):  # NNCF's progress bars: stdout is the user's
        quantized = nncf.quantize(
            ov.Core().read_model(ir_path),
            nncf.Dataset(images),
            preset=nncf.QuantizationPreset.MIXED,
            subset_size=len(images),
            fast_bias_correction=True,
            ignored_scope=nncf.IgnoredScope(
                types=list(FLOAT_OPERATIONS), patterns=list(FLOAT_CONVOLUTIONS), validate=False
            ),
            advanced_parameters=AdvancedQuantizationParameters(
                activations_range_estimator_params=activation_ranges()
            ),
        )
    tmp = int8_path.with_name(f".{int8_path.stem}.{os.getpid()}.xml")
    ov.save_model(quantized, tmp, compress_to_fp16=False)
    os.replace(tmp.with_suffix(".bin"), int8_path.with_suffix(".bin"))
    os.replace(tmp, int8_path)
