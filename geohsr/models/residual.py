"""Exposure-equivariant, camera-aware reconstruction: a classical base plus a learnt residual.

``f(rgb) = B(rgb) + gamma * I * U(rgb / I)`` per pixel, with

- ``B``: root-polynomial regression (Finlayson, Mackiewicz & Hurlbert, IEEE TIP 24(5), 2015),
  homogeneous of degree 1, fitted in closed form (ridge least squares) to a sample of
  training spectra (``reference_spectra``, stored with the weights) rendered through the
  camera: for a known camera (:meth:`ResidualSpectralModel.set_camera`) or through all
  training cameras at once (the generic base, ``generic_base_weight``);
- ``I = mean(r, g, b)``, the pixel intensity, and ``U`` an MXR U-Net that sees only the
  scale-free chromaticity ``rgb / I`` (so it cannot guess absolute level) and whose output is
  rescaled by ``I``; ``gamma`` starts at 0, so an untrained model *is* the classical base.

Hence ``f(k rgb) = k f(rgb)`` for any exposure ``k`` (up to float rounding) wherever nothing
clips and every pixel stays above the model's ``chroma_floor`` and ``level_input`` (below).
A pixel darker than the floor (mean intensity, in the input's units where white reads 1)
shows the network a neutral grey chromaticity ``(1, 1, 1)`` instead of ``rgb / I``: an 8-bit
pixel such as ``(0, 1, 0) / 255`` would otherwise read as a pure, saturated green, and such
quantisation noise next to dark areas (water, shadow, a no-data fill) disturbed the residual
of its bright neighbours (``../shared/data/airborne``, MUUFL crop, beside its no-data wedge:
MRAE 0.0585 -> 0.0484 with a floor of 0.5 / 255 added to weights trained without one). The
dark pixel's own residual is scaled by its small ``I``. Weights trained without a floor
record 0.

Optionally (``level_input`` > 0) the U-Net also sees how bright each pixel is, as a noise
level map gives a denoiser its noise level (FFDNet: Zhang, Zuo & Zhang, IEEE TIP 27(9), 2018):
``L = min(1, log(1 + 255 I) / log(1 + 255 level_input))``, counted in the levels of an 8-bit
encoding at the fixed gain (white = 255). Quantisation and sensor noise are fixed in those
units, so a dark pixel's chromaticity is far less reliable than a bright one's; without ``L``
the network cannot tell them apart (with the shipped weights of 2026-11 it made pixels above
32 / 255 worse than the base: MRAE 0.130 against 0.112 on clean held-out CAVE). ``L`` is
constant at and above ``level_input``, so exposure equivariance holds for pixels that bright.

Optionally (``bright_residual_gain`` = a < 1, with a level input) the residual of bright
pixels is shrunk: multiplied by ``1 - (1 - a) r`` with ``r`` rising linearly in ``L`` from 0
at a quarter of ``level_input`` (two stops darker) to 1 at ``level_input`` and above, so
the factor is ``a`` for bright pixels (still exposure-equivariant there), 1 for dark ones and
continuous between (no banding). A shrinkage chosen on training scenes, not learnt: weights
trained on far more dark pixels than bright ones (exposure drawn log-uniformly) gave bright
pixels a residual that harmed them even on their own training scenes.

Optionally (``contrast_input`` = k > 0, odd) the U-Net also sees each pixel's brightness
relative to its k x k neighbourhood, ``C = clamp(log(I / mean_k(I)), -2, 2)`` (0 under the
chroma floor): luminance structure without absolute level, so exposure equivariance holds.
Chromaticity alone hides the luminance edges that JPEG's half-resolution chroma and
demosaicking blur colour across. ``C`` is not per pixel, so it is computed on the
reflect-padded RGB the network runs on, in torch as in the exported core.

With a known camera, each unclipped pixel's spectrum is then projected onto the
non-negative spectra that render exactly to its RGB (:mod:`geohsr.spectral.metamer`); in eval
mode the output is always >= 0 (no negative reflectance). For integer input the model can be
told its quantisation step (:meth:`ResidualSpectralModel.set_input_step`): an 8-bit value
only says the true RGB lies within half a level of it. Weights that record how far their
network's own rendering strays from the true RGB (``render_sigma``, measured on training
scenes by ``benchmarks/render_error.py``) target the mean of that rendering's error
distribution truncated to the cell; weights trained with the cell (``quantization_cell``)
and no such record, the cell's point nearest to the rendering; other weights the input
itself. The re-rendering error stays within half a step. Measured on the shipped weights of
2026-11 (``benchmarks/accuracy.py`` conditions, 8-bit, step 1/255), MRAE with the camera
known: the nearest point gave exposure x0.25 0.322 -> 0.310 but airborne 0.0535 -> 0.0551
(their rendering of spectra unlike the training scenes is a worse guess than the cell's
centre); the truncated mean (``render_sigma`` 0.134 + 0.206 sqrt(level) levels) gave x0.25
0.312, real-world JPEG 0.4055 -> 0.4008, clean 0.1894 -> 0.1886, airborne 0.0530.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from geohsr.models import mxresnet
from geohsr.models.baselines import root_polynomial_exponents, root_polynomial_features
from geohsr.models.registry import register_model
from geohsr.models.unet import STRIDE, SpectralUnet, pad_to_multiple
from geohsr.spectral import N_BANDS
from geohsr.spectral.metamer import (
    SATURATION_LEVEL,
    project_nonnegative,
    quantization_cell_target,
)

#: normalisation of the chromaticity input rgb / I of the U-Net (values in [0, 3], mean 1)
CHROMA_MEAN = (1.0, 1.0, 1.0)
CHROMA_STD = (0.3, 0.3, 0.3)
#: normalisation of the level input L in [0, 1] (see the module docstring)
LEVEL_MEAN = 0.5
LEVEL_STD = 0.3
#: 8-bit levels per unit intensity: the scale of the level input
LEVEL_UNITS = 255.0
#: the contrast input C = log(I / local mean) is clipped to +-CONTRAST_CLIP (e ** 2 = 7.4x)
CONTRAST_CLIP = 2.0
#: normalisation of the contrast input (see the module docstring)
CONTRAST_MEAN = 0.0
CONTRAST_STD = 0.5
#: the bright-residual gate ramps up from this fraction of ``level_input`` (two stops darker)
GATE_START_FRACTION = 0.25
#: intensities below this count as black (output 0)
MIN_INTENSITY = 1e-12
#: chroma floor of new models: under it are black and the 8-bit pixels whose channels add up
#: to one level, e.g. (0, 1, 0) / 255, whose chromaticity is a pure primary. Measured on the
#: shipped weights without retraining (benchmarks/accuracy.py conditions): this floor lowered
#: MRAE on 7 of 8 conditions (airborne, real-world JPEG, unseen cameras) and raised it at
#: exposure x0.25 (0.316 -> 0.328); a floor of 1.5 / 255 raised it there to 0.339 and raised
#: the training loss of a fine-tune by a third.
RECOMMENDED_CHROMA_FLOOR = 0.5 / 255
#: ridge of the closed-form base fits, relative to the feature scale
BASE_RIDGE = 1e-6


def ridge_fit(feats: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Ridge least squares ``(..., T, K)`` from terms ``(..., N, T)`` to targets ``(N, K)``,
    with the ridge relative to the feature scale as in
    :func:`~geohsr.models.baselines.fit_least_squares` (its torch, batched form)."""
    gram = feats.transpose(-1, -2) @ feats  # (..., T, T)
    lam = BASE_RIDGE * torch.diagonal(gram, dim1=-2, dim2=-1).mean(-1)
    eye = torch.eye(gram.shape[-1], dtype=gram.dtype, device=gram.device)
    return torch.linalg.solve(gram + lam[..., None, None] * eye, feats.transpose(-1, -2) @ targets)


class ResidualSpectralModel(nn.Module):
    """RGB ``(B, 3, H, W)`` linear, >= 0 -> spectra ``(B, 31, H, W)`` in the input's scale.

    ``forward(rgb)`` uses the model's current camera (generic unless :meth:`set_camera`).
    Training passes per-sample cameras: ``forward(rgb, css=(B, 3, 31), known=(B,) bool)``;
    samples marked known get a base fitted for their response and the metamer projection,
    the others the generic base.
    """

    #: closed-form buffers kept in float32 in float16 weights files (see save_weights)
    geohsr_full_precision = (
        "reference_spectra",
        "generic_base_weight",
        "base_weight",
        "camera_css",
        "camera_projector",
    )

    def __init__(
        self,
        net: SpectralUnet,
        *,
        base_degree: int = 3,
        n_reference: int = 8192,
        projection_iterations: int = 20,
        chroma_floor: float = 0.0,
        level_input: float = 0.0,
        quantization_cell: bool = False,
        render_sigma: tuple[float, float] | None = None,
        contrast_input: int = 0,
        bright_residual_gain: float = 1.0,
    ) -> None:
        super().__init__()
        exponents = root_polynomial_exponents(base_degree)
        n_terms = len(exponents)
        self.net = net
        self.projection_iterations = projection_iterations
        #: mean intensity (input units) under which the network sees neutral chromaticity
        self.chroma_floor = float(chroma_floor)
        #: intensity at and above which the level input reads 1; 0: no level input
        self.level_input = float(level_input)
        #: side (pixels, odd) of the neighbourhood of the contrast input; 0: none
        self.contrast_input = _checked_contrast(contrast_input)
        #: factor of the residual at and above ``level_input`` (1: none; see the module
        #: docstring)
        self.bright_residual_gain = _checked_gain(bright_residual_gain, self.level_input)
        #: whether the weights were trained to place their rendering in the input's
        #: quantisation cell (see :meth:`set_input_step`); recorded in the registry config
        self.quantization_cell = bool(quantization_cell)
        #: (a, b): the network's rendering error, a + b sqrt(level) quantisation steps
        #: (see :meth:`set_render_sigma`); None: not measured
        self.render_sigma = None if render_sigma is None else _checked_sigma(render_sigma)
        #: quantisation step of the input (input units; 0: exact): a property of the data,
        #: not of the weights (see :meth:`set_input_step`)
        self.input_step = 0.0
        self.residual_scale = nn.Parameter(torch.zeros(()))
        self.register_buffer("exponents", torch.as_tensor(exponents, dtype=torch.float32))
        self.register_buffer("reference_spectra", torch.zeros(n_reference, N_BANDS))
        self.register_buffer("generic_base_weight", torch.zeros(n_terms, N_BANDS))
        self.register_buffer("base_weight", torch.zeros(n_terms, N_BANDS))
        self.register_buffer("camera_css", torch.zeros(3, N_BANDS))
        self.register_buffer("camera_projector", torch.zeros(N_BANDS, 3))
        self.register_buffer("camera_known", torch.zeros((), dtype=torch.bool))

    # ------------------------------------------------------------------ classical base
    def _reference_terms(self, css: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Root-polynomial terms ``(..., N, T)`` of the reference spectra rendered through each
        normalised response ``css`` ``(..., 3, 31)``, and the spectra ``(N, 31)``; float64."""
        spectra = self.reference_spectra.double()
        rgb = torch.einsum("...cl,nl->...nc", css.double(), spectra)  # (..., N, 3)
        return root_polynomial_features(rgb, self.exponents.double()), spectra

    def fit_base(self, css: torch.Tensor) -> torch.Tensor:
        """Base weights ``(..., T, 31)`` fitted on the reference spectra rendered through each
        normalised response of ``css`` ``(..., 3, 31)`` (one fit per response)."""
        with torch.no_grad(), torch.autocast(css.device.type, enabled=False):
            feats, spectra = self._reference_terms(css)
            return ridge_fit(feats, spectra).float()

    def fit_generic(self, css: np.ndarray) -> None:
        """Fit the generic base (camera unknown) on the reference spectra rendered through all
        normalised responses ``css`` ``(K, 3, 31)`` together, and make it the current base."""
        cameras = torch.as_tensor(np.asarray(css, np.float64), device=self.exponents.device)
        with torch.no_grad():
            feats, spectra = self._reference_terms(cameras)  # (K, N, T), (N, 31)
            joint = ridge_fit(feats.reshape(-1, feats.shape[-1]), spectra.repeat(len(css), 1))
        self.generic_base_weight.copy_(joint.float())
        self.set_camera(None)

    def set_reference_spectra(self, spectra: np.ndarray) -> None:
        """Store the ``(n_reference, 31)`` sample of training spectra (reflectance)."""
        self.reference_spectra.copy_(torch.as_tensor(np.asarray(spectra, np.float32)))

    def set_camera(self, css_normalised: np.ndarray | None) -> None:
        """Use a known camera (normalised response ``(3, 31)``): a base fitted for it and the
        metamer projection; ``None`` goes back to the generic base without projection."""
        if css_normalised is None:
            self.base_weight.copy_(self.generic_base_weight)
            self.camera_css.zero_()
            self.camera_projector.zero_()
            self.camera_known.fill_(False)
            return
        css = torch.as_tensor(np.asarray(css_normalised, np.float32), device=self.exponents.device)
        weight, camera, projector = self._batch_cameras(css[None], None)
        self.base_weight.copy_(weight[0])
        self.camera_css.copy_(camera[0])
        self.camera_projector.copy_(projector[0])
        self.camera_known.fill_(True)

    def set_chroma_floor(self, floor: float) -> None:
        """Use chroma floor ``floor`` (mean intensity, white = 1) and record it in the registry
        config, which saved weights rebuild the model from and cached exports are keyed by."""
        self.chroma_floor = float(floor)
        if hasattr(self, "geohsr_config"):
            self.geohsr_config["chroma_floor"] = self.chroma_floor

    def set_input_step(self, step: float) -> None:
        """Tell the projection the input's quantisation step (input units: 1/255 for 8-bit
        data scaled to [0, 1]; 0 for float or unknown input, the default). Weights that use
        the cell (:meth:`set_quantization_cell`, :meth:`set_render_sigma`; see
        :func:`uses_quantization_cell`) then project each unclipped pixel onto the spectra
        rendering to a point of the cell of RGB that round to the input
        (:func:`~geohsr.spectral.metamer.quantization_cell_target`) instead of onto the
        input's exact RGB; other weights ignore the step. Raises ``ValueError`` for a
        negative or non-finite step."""
        if not np.isfinite(step) or step < 0:
            raise ValueError(f"the input step must be finite and >= 0, got {step}")
        self.input_step = float(step)

    def set_quantization_cell(self, enabled: bool) -> None:
        """Use the input's quantisation cell in the projection or not (see
        :meth:`set_input_step`) and record it in the registry config, like
        :meth:`set_chroma_floor`: on for weights trained with it (``geohsr finetune
        --quantize-cell``). Weights trained for the exact projection keep that: with the
        cell, the network's own rendering, which such training never fits, moved airborne
        MRAE from 0.0535 to 0.0551."""
        self.quantization_cell = bool(enabled)
        if hasattr(self, "geohsr_config"):
            self.geohsr_config["quantization_cell"] = self.quantization_cell

    def set_render_sigma(self, a: float, b: float) -> None:
        """Record how far the network's own rendering strays from the true RGB: a typical
        error of ``a + b sqrt(level)`` quantisation steps at a pixel ``level`` steps bright,
        measured on training scenes (``benchmarks/render_error.py``). The projection of
        integer input then targets the mean of the rendering's error distribution
        truncated to the input's quantisation cell (see
        :func:`~geohsr.spectral.metamer.quantization_cell_target`), for these weights
        whether or not they were trained with the cell. Recorded in the registry config
        like :meth:`set_chroma_floor`. Raises ``ValueError`` for negative or non-finite
        values or both 0."""
        self.render_sigma = _checked_sigma((a, b))
        if hasattr(self, "geohsr_config"):
            self.geohsr_config["render_sigma"] = list(self.render_sigma)

    def level_map(self, intensity: torch.Tensor) -> torch.Tensor:
        """Level input ``L`` in [0, 1] of mean intensities ``(B, 1, H, W)`` (white = 1): 8-bit
        levels on a log scale, 1 at and above ``level_input``."""
        scale = float(np.log1p(LEVEL_UNITS * self.level_input))
        return (torch.log1p(LEVEL_UNITS * intensity) / scale).clamp(0.0, 1.0)

    def set_level_input(self, level_input: float) -> None:
        """Saturate the level input at ``level_input`` (> 0; the network must have been built
        with one) and record it in the registry config, like :meth:`set_chroma_floor`."""
        if self.level_input <= 0 or level_input <= 0:
            raise ValueError("set_level_input changes the saturation of an existing level input")
        self.level_input = float(level_input)
        if hasattr(self, "geohsr_config"):
            self.geohsr_config["level_input"] = self.level_input

    def set_bright_residual_gain(self, gain: float) -> None:
        """Multiply the residual of pixels at and above ``level_input`` by ``gain`` in [0, 1]
        (1: off), ramping from 1 two stops darker (see the module docstring), and record it
        in the registry config like :meth:`set_chroma_floor`. Raises ``ValueError`` for a
        gain outside [0, 1], or below 1 on a model without a level input."""
        self.bright_residual_gain = _checked_gain(gain, self.level_input)
        if hasattr(self, "geohsr_config"):
            self.geohsr_config["bright_residual_gain"] = self.bright_residual_gain

    def residual_gate(self, intensity: torch.Tensor) -> torch.Tensor:
        """Factor ``(B, 1, H, W)`` of the residual at mean intensities ``(B, 1, H, W)``:
        ``1 - (1 - bright_residual_gain) r``, ``r`` the ramp of the module docstring."""
        start = float(np.log1p(LEVEL_UNITS * self.level_input * GATE_START_FRACTION))
        start /= float(np.log1p(LEVEL_UNITS * self.level_input))
        ramp = ((self.level_map(intensity) - start) / (1.0 - start)).clamp(0.0, 1.0)
        return 1.0 - (1.0 - self.bright_residual_gain) * ramp

    # ------------------------------------------------------------------ forward
    def forward(
        self,
        rgb: torch.Tensor,
        css: torch.Tensor | None = None,
        known: torch.Tensor | None = None,
    ) -> torch.Tensor:
        rgb = rgb.float().clamp_min(0.0)
        batch = rgb.shape[0]
        if css is None:
            weight = self.base_weight.expand(batch, -1, -1)  # (B, T, 31)
            camera = self.camera_css.expand(batch, -1, -1)  # (B, 3, 31)
            projector = self.camera_projector.expand(batch, -1, -1)  # (B, 31, 3)
        else:
            weight, camera, projector = self._batch_cameras(css.float(), known)
        out = self._unprojected(rgb, weight)
        with torch.autocast(rgb.device.type, enabled=False):
            return self._project(out, rgb, camera, projector)

    def forward_unprojected(self, rgb: torch.Tensor) -> torch.Tensor:
        """Base + residual ``(B, 31, H, W)`` for the current camera, before the metamer
        projection (:meth:`project_current`), for ``rgb`` ``(B, 3, H, W)`` with H and W
        multiples of 32 (pad first, e.g. :func:`~geohsr.models.unet.pad_to_multiple`):
        the part that exports to ONNX / OpenVINO with dynamic shapes (no data-dependent
        control flow, as :meth:`SpectralUnet.forward_padded`)."""
        rgb = rgb.float().clamp_min(0.0)
        return self._unprojected(rgb, self.base_weight.expand(rgb.shape[0], -1, -1), padded=True)

    def forward_residual_term(self, rgb: torch.Tensor) -> torch.Tensor:
        """The network's part of :meth:`forward_unprojected`, ``gamma * I * U(rgb / I)``
        ``(B, 31, H, W)`` for ``rgb`` with H and W multiples of 32: what compiled backends
        run at reduced precision. The classical base (:meth:`current_base`) stays float32:
        rounding its degree-3 root-polynomial terms to bfloat16 moved outputs by 2 %."""
        return self._residual_term(rgb.float().clamp_min(0.0), padded=True)

    def current_base(self, rgb: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
        """The current camera's classical base ``(B, 31, H, W)`` of ``rgb`` ``(B, 3, H, W)``,
        float32 (per pixel: any size), computed in ``out`` (contiguous, that shape) when
        given."""
        rgb = rgb.float().clamp_min(0.0)
        return self._base(rgb, self.base_weight.expand(rgb.shape[0], -1, -1), out)

    def project_current(
        self, spectra: torch.Tensor, rgb: torch.Tensor, *, in_place: bool = False
    ) -> torch.Tensor:
        """Eval-mode finish of :meth:`forward_unprojected`: spectra ``(B, 31, H, W)`` and
        their input ``rgb`` ``(B, 3, H, W)`` -> projected onto the current camera's
        non-negative metamer sets (camera unknown: clipped at 0). ``in_place``: float32
        ``spectra`` the caller no longer needs may be overwritten with the result."""
        if in_place and spectra.dtype == torch.float32 and not bool(self.camera_known):
            return spectra.clamp_min_(0.0)  # what the projection does without a camera
        rgb = rgb.float().clamp_min(0.0)
        batch = rgb.shape[0]
        camera = self.camera_css.expand(batch, -1, -1)
        projector = self.camera_projector.expand(batch, -1, -1)
        return self._project(spectra.float(), rgb, camera, projector)

    def _unprojected(
        self, rgb: torch.Tensor, weight: torch.Tensor, padded: bool = False
    ) -> torch.Tensor:
        """``B(rgb) + gamma * I * U(rgb / I)`` with base weights ``weight`` ``(B, T, 31)``;
        ``padded``: H and W are already multiples of 32."""
        return self._base(rgb, weight) + self._residual_term(rgb, padded)

    def _base(
        self, rgb: torch.Tensor, weight: torch.Tensor, out: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``B(rgb)`` ``(B, 31, H, W)``: root-polynomial features times ``weight``
        ``(B, T, 31)``, float32, in ``out`` when given."""
        batch, _, height, width = rgb.shape
        with torch.autocast(rgb.device.type, enabled=False):
            feats = root_polynomial_features(rgb.movedim(1, -1), self.exponents)  # (B,H,W,T)
            feats = feats.reshape(batch, height * width, -1).transpose(1, 2)  # (B, T, HW)
            if out is None:  # (differentiable: training)
                return (weight.transpose(1, 2) @ feats).view(batch, -1, height, width)
            torch.matmul(weight.transpose(1, 2), feats, out=out.view(batch, -1, height * width))
            return out

    def contrast_map(self, intensity: torch.Tensor) -> torch.Tensor:
        """Contrast input ``C`` ``(B, 1, H, W)`` of mean intensities ``(B, 1, H, W)``: the log
        ratio of each pixel to the mean of its ``contrast_input``-sided neighbourhood (the
        part inside the image), clipped to +-:data:`CONTRAST_CLIP`, 0 under the chroma floor."""
        side = self.contrast_input
        local = F.avg_pool2d(intensity, side, stride=1, padding=side // 2, count_include_pad=False)
        ratio = intensity.clamp_min(MIN_INTENSITY) / local.clamp_min(MIN_INTENSITY)
        contrast = torch.log(ratio).clamp(-CONTRAST_CLIP, CONTRAST_CLIP)
        floor = max(self.chroma_floor, MIN_INTENSITY)
        return torch.where(intensity > floor, contrast, torch.zeros_like(contrast))

    def _residual_term(self, rgb: torch.Tensor, padded: bool) -> torch.Tensor:
        """``gamma * I * U(rgb / I)`` ``(B, 31, H, W)``."""
        if self.contrast_input > 0 and not padded:  # C is not per pixel: pad the RGB first
            height, width = rgb.shape[-2:]
            rgb, (top, left) = pad_to_multiple(rgb, STRIDE)
            term = self._residual_term(rgb, padded=True)
            return term[..., top : top + height, left : left + width]
        intensity = rgb.mean(dim=1, keepdim=True)  # (B, 1, H, W)
        chroma = rgb / intensity.clamp_min(MIN_INTENSITY)  # (B, 3, H, W), scale-free
        if self.chroma_floor > 0:  # a constant: traces to one graph
            chroma = torch.where(intensity > self.chroma_floor, chroma, torch.ones_like(chroma))
        if self.level_input > 0:  # a constant, too
            chroma = torch.cat([chroma, self.level_map(intensity)], dim=1)  # (B, 4, H, W)
        if self.contrast_input > 0:  # a constant, too
            chroma = torch.cat([chroma, self.contrast_map(intensity)], dim=1)
        net = self.net.forward_padded if padded else self.net
        residual = net(chroma).float()  # (B, 31, H, W)
        if self.bright_residual_gain != 1.0:  # a constant, too
            intensity = intensity * self.residual_gate(intensity)
        return self.residual_scale * intensity * residual

    def _batch_cameras(
        self, css: torch.Tensor, known: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Per-sample base weights, responses and projectors; unknown samples get the generic
        base and a zero projector (no projection)."""
        batch = css.shape[0]
        known = torch.ones(batch, dtype=torch.bool, device=css.device) if known is None else known
        mask = known.view(batch, 1, 1)
        weight = self.generic_base_weight.expand(batch, -1, -1).clone()  # (B, T, 31)
        if bool(known.any()):
            weight[known] = self.fit_base(css[known])
        projector = torch.zeros(batch, css.shape[2], 3, device=css.device)  # (B, 31, 3)
        if bool(known.any()):
            with torch.no_grad():
                cn = css[known].double()
                inverse = torch.linalg.inv(cn @ cn.transpose(1, 2))
                projector[known] = (cn.transpose(1, 2) @ inverse).float()
        camera = torch.where(mask, css, torch.zeros_like(css))
        return weight, camera, projector

    def _fall_back_to_exact(
        self,
        out: torch.Tensor,
        spectra: torch.Tensor,
        rgb: torch.Tensor,
        camera: torch.Tensor,
        projector: torch.Tensor,
    ) -> None:
        """Where the projection onto a point of the quantisation cell could not reach the cell
        (a non-negative spectrum renders to the input itself but not to the chosen point, at
        the edge of the camera's gamut), put the exact projection of that pixel into ``out``
        (in place) when it re-renders closer to the input."""
        half = 0.5 * self.input_step * (1.0 + 1e-3)
        error = (torch.einsum("bcl,blhw->bchw", camera, out) - rgb).abs().amax(dim=1)
        unclipped = (rgb < SATURATION_LEVEL).all(dim=1)
        for b, known in enumerate(projector.abs().sum((1, 2)) > 0):
            outside = (error[b] > half) & unclipped[b]
            if not bool(known) or not bool(outside.any()):
                continue
            yy, xx = torch.nonzero(outside, as_tuple=True)
            exact = project_nonnegative(  # the pixels as a (1, 31, 1, n) image
                spectra[b][:, yy, xx][None, :, None],
                rgb[b][:, yy, xx][None, :, None],
                camera[b : b + 1],
                projector[b : b + 1],
                alternations=self.projection_iterations,
            )[0, :, 0]  # (31, n)
            exact_error = (camera[b] @ exact - rgb[b][:, yy, xx]).abs().amax(dim=0)
            better = exact_error < error[b, yy, xx]
            out[b][:, yy[better], xx[better]] = exact[:, better]

    def _project(
        self,
        spectra: torch.Tensor,
        rgb: torch.Tensor,
        camera: torch.Tensor,
        projector: torch.Tensor,
    ) -> torch.Tensor:
        target = rgb
        cell = self.quantization_cell or self.render_sigma is not None
        # no known camera (zero projector): nothing to project onto, so no cell target (it
        # took 1 s of a 2048² scene's 7 s, profiled with the OpenVINO int8 backend)
        if self.input_step > 0 and cell and bool(projector.any()):
            rendered = torch.einsum("bcl,blhw->bchw", camera, spectra)
            target = quantization_cell_target(rgb, rendered, self.input_step, self.render_sigma)
        if not self.training:
            out = project_nonnegative(
                spectra, target, camera, projector, alternations=self.projection_iterations
            )
            if target is not rgb:
                self._fall_back_to_exact(out, spectra, rgb, camera, projector)
            return out
        rgb = target
        # training: one exact (differentiable) projection; the loss keeps the result >= 0
        unclipped = (rgb < SATURATION_LEVEL).all(dim=1, keepdim=True)  # (B, 1, H, W)
        gap = rgb - torch.einsum("bcl,blhw->bchw", camera, spectra)  # (B, 3, H, W)
        return spectra + torch.einsum("blc,bchw->blhw", projector, gap) * unclipped


def uses_quantization_cell(config: Mapping[str, Any]) -> bool:
    """Whether weights with registry ``config`` project integer input onto a point of its
    quantisation cell rather than onto the input itself: those trained with the cell
    (``quantization_cell``) or whose rendering error was measured (``render_sigma``); the
    rule :meth:`ResidualSpectralModel._project` applies to the model's own settings."""
    return bool(config.get("quantization_cell") or config.get("render_sigma"))


def _checked_contrast(side) -> int:
    side = int(side)
    if side < 0 or (side > 0 and side % 2 == 0):
        raise ValueError(f"contrast_input must be 0 or an odd number of pixels, got {side}")
    return side


def _checked_gain(gain, level_input: float) -> float:
    gain = float(gain)
    if not 0.0 <= gain <= 1.0:
        raise ValueError(f"bright_residual_gain must lie in [0, 1], got {gain}")
    if gain != 1.0 and level_input <= 0:
        raise ValueError("bright_residual_gain needs a model with a level input (level_input > 0)")
    return gain


def _checked_sigma(values) -> tuple[float, float]:
    a, b = (float(v) for v in values)
    if not (np.isfinite(a) and np.isfinite(b)) or a < 0 or b < 0 or a + b == 0:
        raise ValueError(f"render_sigma needs two finite values >= 0, not both 0; got {values}")
    return a, b


def _residual_factory(
    encoder_fn: Callable[..., mxresnet.ResNetEncoder],
    width: float,
    base_degree: int,
    n_reference: int,
    self_attention: bool,
    blur: bool,
    chroma_floor: float,
    level_input: float,
    quantization_cell: bool,
    render_sigma: tuple[float, float] | None,
    contrast_input: int,
    bright_residual_gain: float,
) -> ResidualSpectralModel:
    levels, contrast = level_input > 0, contrast_input > 0
    net = SpectralUnet(
        encoder_fn(width=width, in_channels=3 + levels + contrast),
        self_attention=self_attention,
        blur=blur,
        mean=CHROMA_MEAN
        + ((LEVEL_MEAN,) if levels else ())
        + ((CONTRAST_MEAN,) if contrast else ()),
        std=CHROMA_STD + ((LEVEL_STD,) if levels else ()) + ((CONTRAST_STD,) if contrast else ()),
    )
    return ResidualSpectralModel(
        net,
        base_degree=base_degree,
        n_reference=n_reference,
        chroma_floor=chroma_floor,
        level_input=level_input,
        quantization_cell=quantization_cell,
        render_sigma=render_sigma,
        contrast_input=contrast_input,
        bright_residual_gain=bright_residual_gain,
    )


@register_model
def mxr_unet18_rpr(
    *,
    width: float = 1.0,
    base_degree: int = 3,
    n_reference: int = 8192,
    self_attention: bool = True,
    blur: bool = True,
    chroma_floor: float = 0.0,
    level_input: float = 0.0,
    quantization_cell: bool = False,
    render_sigma: tuple[float, float] | None = None,
    contrast_input: int = 0,
    bright_residual_gain: float = 1.0,
) -> ResidualSpectralModel:
    """MXR-U-Net-18 residual on a root-polynomial base (exposure-equivariant, camera-aware)."""
    return _residual_factory(
        mxresnet.mxresnet18,
        width,
        base_degree,
        n_reference,
        self_attention,
        blur,
        chroma_floor,
        level_input,
        quantization_cell,
        render_sigma,
        contrast_input,
        bright_residual_gain,
    )


@register_model
def mxr_unet34_rpr(
    *,
    width: float = 1.0,
    base_degree: int = 3,
    n_reference: int = 8192,
    self_attention: bool = True,
    blur: bool = True,
    chroma_floor: float = 0.0,
    level_input: float = 0.0,
    quantization_cell: bool = False,
    render_sigma: tuple[float, float] | None = None,
    contrast_input: int = 0,
    bright_residual_gain: float = 1.0,
) -> ResidualSpectralModel:
    """MXR-U-Net-34 residual on a root-polynomial base (exposure-equivariant, camera-aware)."""
    return _residual_factory(
        mxresnet.mxresnet34,
        width,
        base_degree,
        n_reference,
        self_attention,
        blur,
        chroma_floor,
        level_input,
        quantization_cell,
        render_sigma,
        contrast_input,
        bright_residual_gain,
    )
