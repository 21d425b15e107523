"""Plain PyTorch training loop for fine-tuning / training reconstruction models.

Recipe (paper §4 + original code): AdamW (betas 0.9/0.99, weight decay 1e-3), one-cycle
schedule (max lr 1e-3, 30 % warm-up, div 100, beta1 cycled 0.95 <-> 0.85), encoder learning
rate x0.1, gradient clipping, mixed precision (CUDA: bfloat16, or float16 with loss scaling;
CPU: bfloat16 where the CPU supports it). The loss compares prediction and target divided by
the sample's exposure, so every exposure weighs the same.

Residual models (:class:`~geohsr.models.residual.ResidualSpectralModel`) get a sample of the
training spectra and a generic classical base fitted over the training cameras before the
first step (a new model, or ``refit_base``; ``--init`` weights keep theirs by default), and
each sample's camera when the sampler marks it known.

Outputs in ``out_dir``: ``metrics.jsonl`` (see :mod:`~geohsr.training.run_log`),
``checkpoints/last.pt`` (every ``checkpoint_every`` steps and at the end) and
``checkpoints/best.pt`` (best validation MRAE), ``<export_name>.safetensors`` (the best model
in the shipped-weights format, with metadata), ``loss_curve.png`` and ``config.json``.
``resume=True`` restores model, optimiser, scheduler, step and RNG states from ``last.pt``;
samples are a pure function of (seed, sample index), so the resumed curve is identical.
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from geohsr.exceptions import TrainingError
from geohsr.models import create_model
from geohsr.models.residual import RECOMMENDED_CHROMA_FLOOR, ResidualSpectralModel
from geohsr.models.weights import (
    file_sha256,
    load_weights,
    portable_data_spec,
    read_metadata,
    resolve_weights,
    save_weights,
)
from geohsr.spectral.cameras import resolve_cameras
from geohsr.spectral.render import quantization_step
from geohsr.training.camera import CameraSampler, CameraSampling
from geohsr.training.checkpoint import (
    load_checkpoint,
    restore_rng_states,
    rng_states,
    save_checkpoint,
)
from geohsr.training.config import LAST_CHECKPOINT, TrainConfig
from geohsr.training.datasets import (
    SceneCache,
    TrainingCrops,
    evaluation_pairs,
    load_data_specs,
    split_scenes,
)
from geohsr.training.datasets.augment import Augmentation
from geohsr.training.datasets.registry import SPATIAL_SPLIT_KINDS
from geohsr.training.datasets.scene import Scene
from geohsr.training.degradations import RealWorldDegradation
from geohsr.training.evaluate import evaluate_model
from geohsr.training.grow import load_grown_state
from geohsr.training.losses import build_loss
from geohsr.training.run_log import MetricsLog, plot_loss_curve

#: config fields holding file paths: only their file names go into weights metadata
PATH_FIELDS = ("init", "vgg_weights")
#: validation metric that picks the best checkpoint (MRAE over target values >= 0.01)
SELECT_METRIC = "mrae_bright"


@dataclass
class TrainResult:
    """What a training session produced."""

    out_dir: Path
    step: int
    total_steps: int
    weights: Path | None
    best: dict[str, Any] | None
    losses: list[float] = field(default_factory=list)
    stopped_early: bool = False


def select_device(name: str) -> torch.device:
    """``auto`` -> CUDA when available, else CPU; otherwise the named device."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def build_camera(config: TrainConfig) -> CameraSampler:
    """Camera sampler from the config: the listed cameras minus ``exclude_cameras``; random
    mixtures draw from the same list (held-out cameras never leak into training)."""
    excluded = {name.lower() for name in config.exclude_cameras}
    cameras = [c for c in resolve_cameras(config.cameras) if c.name.lower() not in excluded]
    if not cameras:
        raise TrainingError("every camera is excluded; keep at least one --camera")
    sampling = CameraSampling(
        mix_prob=config.camera_mix,
        shift_nm=config.spectral_shift_nm,
        wb_jitter=config.wb_jitter,
        spectral_tilt=config.spectral_tilt,
        exposure=tuple(config.exposure),
        quantize_prob=config.quantize_prob,
        known_prob=config.known_camera_prob,
    )
    return CameraSampler(cameras, sampling)


def build_degradation(config: TrainConfig) -> RealWorldDegradation | None:
    """Real-world degradation for ``degrade_prob > 0``, else None."""
    if config.degrade_prob <= 0:
        return None
    return RealWorldDegradation(jpeg_quality=tuple(config.jpeg_quality))


def build_model(config: TrainConfig) -> tuple[nn.Module, dict[str, Any] | None]:
    """New model from the registry, or the ``init`` weights (with their metadata), with the
    configured chroma floor (residual models; see :mod:`geohsr.models.residual`) and no
    bright-residual gain (1)."""
    levels, contrast = config.level_input, config.contrast_input
    if config.init:
        model, meta = load_weights(config.init)
        floor = config.chroma_floor
        if levels is not None and isinstance(model, ResidualSpectralModel):
            model = with_level_input(model, levels)
        if contrast is not None and isinstance(model, ResidualSpectralModel):
            model = with_contrast_input(model, contrast)
    else:
        model, meta = create_model(config.model, width=config.width), None
        if isinstance(model, ResidualSpectralModel) and (levels or contrast):
            extra = {"level_input": levels, "contrast_input": contrast}
            extra = {key: value for key, value in extra.items() if value}  # recorded config
            model = _create(config.model, width=config.width, **extra)
        floor = RECOMMENDED_CHROMA_FLOOR if config.chroma_floor is None else config.chroma_floor
    residual = isinstance(model, ResidualSpectralModel)
    if residual and model.bright_residual_gain != 1.0:
        # a shrinkage chosen for exactly the --init tensors on their training scenes: training
        # (and INT8 adaptation, whose copy gets the gain back at inference) runs without it
        print(
            f"geohsr: note: training without the --init weights' bright-residual gain "
            f"({model.bright_residual_gain:g}); choose one for the result with "
            "benchmarks/bright_gate.py",
            file=sys.stderr,
        )
        model.set_bright_residual_gain(1.0)
    if residual and floor is not None:
        model.set_chroma_floor(floor)
    elif config.chroma_floor is not None:
        raise TrainingError(f"--chroma-floor applies to the *_rpr models, not {config.model}")
    if levels is not None and not residual:
        raise TrainingError(f"--level-input applies to the *_rpr models, not {config.model}")
    if contrast is not None and not residual:
        raise TrainingError(f"--contrast-input applies to the *_rpr models, not {config.model}")
    if config.quantize_cell and not residual:
        raise TrainingError(f"--quantize-cell applies to the *_rpr models, not {config.model}")
    if residual and (config.quantize_cell or model.quantization_cell):
        model.set_quantization_cell(config.quantize_cell)  # what this training fits
        model.set_input_step(quantization_step(8) if config.quantize_cell else 0.0)
    return model, meta


def with_level_input(model: ResidualSpectralModel, level_input: float) -> ResidualSpectralModel:
    """``model`` with the level input saturating at ``level_input`` (0: none). Weights trained
    without one grow a fourth input channel with zero weights (:mod:`geohsr.training.grow`),
    so training starts from exactly what they compute."""
    if model.level_input == level_input:
        return model
    if model.level_input > 0 and level_input > 0:
        model.set_level_input(level_input)
        return model
    if level_input == 0:
        raise TrainingError("--level-input 0: these weights need their level input")
    if model.contrast_input > 0:  # the new channel would take the contrast input's place
        raise TrainingError("a level input cannot be added to weights with a contrast input")
    return _grown(model, level_input=level_input)


def with_contrast_input(model: ResidualSpectralModel, side: int) -> ResidualSpectralModel:
    """``model`` with the contrast input over ``side``-pixel neighbourhoods (odd; 0: none).
    Weights trained without one grow a last input channel with zero weights, so training
    starts from exactly what they compute."""
    if model.contrast_input == side:
        return model
    if model.contrast_input > 0:
        raise TrainingError(
            f"these weights have a contrast input over {model.contrast_input} pixels; "
            f"--contrast-input {side} would change what it means"
        )
    return _grown(model, contrast_input=side)


def _create(name: str, **config) -> nn.Module:
    """Registry model ``name`` with ``config``; a value the model refuses (e.g. an even
    contrast input) is a :class:`TrainingError` naming it."""
    try:
        return create_model(name, **config)
    except ValueError as err:
        raise TrainingError(f"{name}: {err}") from err


def _grown(model: ResidualSpectralModel, **inputs) -> ResidualSpectralModel:
    """``model`` rebuilt with more input channels (``inputs``: registry config values), the
    trained tensors in the leading slices and zero weights on the new channels."""
    config = {**model.geohsr_config, **inputs}
    grown = _create(model.geohsr_name, **config)
    load_grown_state(grown, model.state_dict())
    grown.geohsr_weights = getattr(model, "geohsr_weights", None)
    return grown.train(model.training)


def sample_reference_spectra(
    scenes: list[Scene], cache: SceneCache, count: int, seed: int
) -> np.ndarray:
    """``(count, 31)`` reflectance spectra drawn uniformly from the pixels of ``scenes``
    (in proportion to their area; user tiles only where valid), seeded."""
    rng = np.random.default_rng([seed, 7919])
    areas = np.array([s.area for s in scenes], dtype=np.float64)
    per_scene = rng.multinomial(count, areas / areas.sum())
    spectra = []
    for scene, n in zip(scenes, per_scene, strict=True):
        if n == 0:
            continue
        data = cache.get(scene)
        cube = data.cube_window(slice(None), slice(None))  # (31, H, W)
        pixels = cube.reshape(cube.shape[0], -1).T  # (H*W, 31)
        if data.valid is not None:
            pixels = pixels[data.valid.reshape(-1)]
        spectra.append(pixels[rng.integers(0, len(pixels), size=n)])
    return np.concatenate(spectra).astype(np.float32)


def cpu_supports_bf16() -> bool:
    """Whether this CPU runs bfloat16 natively (AVX512-BF16 / AMX)."""
    checker = getattr(torch.backends.cpu, "get_cpu_capability", None)
    capability = checker() if checker is not None else ""
    return "AVX512" in capability.upper() or "AMX" in capability.upper()


def param_groups(model: nn.Module, config: TrainConfig) -> list[dict[str, Any]]:
    """Encoder (lr x ``encoder_lr_factor``) and the rest; a frozen encoder is left out."""
    encoder = getattr(model, "encoder", None)
    encoder_ids = {id(p) for p in encoder.parameters()} if encoder is not None else set()
    if config.freeze_encoder:
        if encoder is None:
            raise TrainingError(f"model {config.model} has no encoder to freeze")
        encoder.requires_grad_(False)
    rest = [p for p in model.parameters() if id(p) not in encoder_ids and p.requires_grad]
    groups = [{"params": rest, "max_lr": config.lr}]
    if encoder is not None and not config.freeze_encoder:
        groups.insert(
            0,
            {"params": list(encoder.parameters()), "max_lr": config.lr * config.encoder_lr_factor},
        )
    return groups


def steps_per_epoch(train_area: int, config: TrainConfig) -> int:
    """Steps whose crops add up to the training pixels once."""
    return max(1, math.ceil(train_area / config.crop**2 / config.batch_size))


def inherited_val_scenes(init: str | None, scenes: Sequence[Scene]) -> list[str]:
    """The scenes of ``scenes`` that the ``init`` weights held out (their ``val_scenes``):
    without ``--val-scenes`` they stay held out, so fine-tuning on the same data never
    trains on the scenes the starting weights were validated (and benchmarked) on. A random
    split would: one put four of five held-out CAVE scenes into training."""
    if not init:
        return []
    held_out = {str(name) for name in read_metadata(init).get("val_scenes") or []}
    if any(s.split == "val" for s in scenes):
        return []  # the data's own layout names its validation scenes
    names = [s.name for s in scenes if s.name in held_out and s.kind not in SPATIAL_SPLIT_KINDS]
    if names:
        print(
            f"geohsr: validating on the {len(names)} scenes the --init weights held out "
            f"({', '.join(names)}); --val-scenes chooses others",
            file=sys.stderr,
        )
    return names


def check_same_curve(config: TrainConfig, signature: dict, *, same_length: bool = True) -> None:
    """Raise :class:`TrainingError` naming the settings of ``config`` that differ from a
    checkpoint's curve ``signature`` (or ``steps`` when ``same_length`` is False); settings
    added to :class:`TrainConfig` after the checkpoint was written take their defaults."""
    current = json.loads(json.dumps(config.curve_signature()))
    defaults = TrainConfig(data=config.data, out_dir=config.out_dir)
    saved = json.loads(json.dumps({**defaults.curve_signature(), **signature}))
    changed = sorted(k for k in set(current) | set(saved) if current.get(k) != saved.get(k))
    if changed or not same_length:
        what = ", ".join(changed) or "steps"
        raise TrainingError(
            f"cannot resume: settings changed since the checkpoint ({what}); "
            "resume with the original options or start a new --out folder"
        )


def check_no_earlier_run(out_dir: Path) -> None:
    """Raise :class:`TrainingError` when ``out_dir`` already holds a training run that
    ``--resume`` can continue (a new run would overwrite its checkpoints), naming how far
    it got and how to go on. A folder without a checkpoint (a run stopped before its first
    one) holds nothing to continue: a new run starts there afresh."""
    if not (out_dir / LAST_CHECKPOINT).exists():
        return
    try:
        events = MetricsLog(out_dir / "metrics.jsonl").read()
    except (OSError, ValueError):  # unreadable or cut short by a kill: only the step is lost
        events = []
    steps = [e["step"] for e in events if e.get("event") == "train"]
    reached = f" (it reached step {steps[-1]})" if steps else ""
    raise TrainingError(
        f"{out_dir} already holds a training run{reached}; pass --resume to continue it, or "
        "choose a new --out folder (delete this one to start it again)"
    )


class Trainer:
    """One training session; :meth:`run` trains and returns a :class:`TrainResult`."""

    def __init__(self, config: TrainConfig) -> None:
        self.config = config
        self.out_dir = Path(config.out_dir)
        self.device = select_device(config.device)
        torch.manual_seed(config.seed)
        scenes = load_data_specs(config.data)
        val_names = config.val_scenes or inherited_val_scenes(config.init, scenes)
        self.train_scenes, self.val_scenes = split_scenes(
            scenes, val_fraction=config.val_fraction, val_names=val_names, seed=config.seed
        )
        self.camera = build_camera(config)
        self.degradation = build_degradation(config)
        self.cache = SceneCache(int(config.cache_gb * (1 << 30)))
        self.dataset = TrainingCrops(
            self.train_scenes,
            crop=config.crop,
            camera=self.camera,
            seed=config.seed,
            augmentation=Augmentation(enabled=config.augment),
            degradation=self.degradation,
            degrade_prob=config.degrade_prob,
            cache=self.cache,
        )
        self.epoch_steps = steps_per_epoch(sum(s.area for s in self.train_scenes), config)
        if config.steps is None and config.epochs is None:
            raise TrainingError("give the length of training: --steps N or --epochs N")
        self.total_steps = config.steps or config.epochs * self.epoch_steps
        self.val_every = config.val_every or self.epoch_steps
        self.model, self.init_meta = build_model(config)
        refit = config.refit_base if config.refit_base is not None else not config.init
        if isinstance(self.model, ResidualSpectralModel) and refit:
            self._set_up_residual_model()
        self.model.to(self.device)
        self.loss_fn = self._build_loss().to(self.device)
        self.optimizer = torch.optim.AdamW(
            param_groups(self.model, config),
            lr=config.lr,
            betas=(0.9, 0.99),
            weight_decay=config.weight_decay,
        )
        self.scheduler = torch.optim.lr_scheduler.OneCycleLR(
            self.optimizer,
            max_lr=[g["max_lr"] for g in self.optimizer.param_groups],
            total_steps=self.total_steps,
            pct_start=config.pct_start,
            div_factor=config.div_factor,
            base_momentum=0.85,
            max_momentum=0.95,
            cycle_momentum=True,
        )
        cuda = self.device.type == "cuda"
        self.amp_dtype = None
        if cuda and config.amp:
            self.amp_dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        elif config.amp and cpu_supports_bf16():
            self.amp_dtype = torch.bfloat16
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp_dtype == torch.float16 and cuda)
        self.log = MetricsLog(self.out_dir / "metrics.jsonl")
        self.step = 0
        self.step_lr = 0.0  # the learning rate the latest step trained with
        self.best: dict[str, Any] | None = None
        self.val_pairs = list(evaluation_pairs(self.val_scenes, self.camera, cache=self.cache))
        if isinstance(self.model, ResidualSpectralModel):
            self.val_pairs += evaluation_pairs(
                self.val_scenes, self.camera, cache=self.cache, camera_known=True
            )
        if config.resume:
            self._restore()

    # ----------------------------------------------------------------- set-up helpers
    def _set_up_residual_model(self) -> None:
        """Reference spectra from the training scenes; generic base over the listed cameras."""
        spectra = sample_reference_spectra(
            self.train_scenes, self.cache, self.model.reference_spectra.shape[0], self.config.seed
        )
        self.model.set_reference_spectra(spectra)
        self.model.fit_generic(np.stack([c.normalised for c in self.camera.cameras]))

    def _build_loss(self) -> nn.Module:
        c = self.config
        if c.loss == "mrae":
            return build_loss("mrae", eps=c.mrae_floor)
        if c.loss == "perceptual":
            return build_loss(
                "perceptual",
                vgg_weights=c.vgg_weights,
                pixel_weight=c.pixel_weight,
                feature_weights=c.feature_weights,
                pools=c.vgg_pools,
                gram_factor=c.gram_factor,
                pixel_loss=c.pixel_loss,
            )
        return build_loss(c.loss)

    def _train_mode(self) -> None:
        self.model.train()
        if self.config.freeze_encoder:
            self.model.encoder.eval()  # frozen BatchNorm statistics too

    @property
    def checkpoint_dir(self) -> Path:
        return self.out_dir / "checkpoints"

    @property
    def weights_path(self) -> Path:
        name = self.config.export_name or f"{self.model.geohsr_name}_finetuned"
        return self.out_dir / f"{name}.safetensors"

    # ----------------------------------------------------------------- checkpoints
    def _state(self) -> dict[str, Any]:
        return {
            "config": self.config.to_dict(),
            "signature": self.config.curve_signature(),
            "total_steps": self.total_steps,
            "step": self.step,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "rng": rng_states(),
            "best": self.best,
        }

    def _restore(self) -> None:
        state = load_checkpoint(self.out_dir / LAST_CHECKPOINT)
        check_same_curve(
            self.config, state["signature"], same_length=state["total_steps"] == self.total_steps
        )
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        restore_rng_states(state["rng"])
        self.step = state["step"]
        self.best = state["best"]

    # ----------------------------------------------------------------- validation / export
    def validate(self) -> dict[str, Any] | None:
        """Evaluate on the validation images, log, keep best checkpoint + export."""
        if not self.val_pairs:
            return None
        report = evaluate_model(self.model, self.val_pairs, device=self.device)
        self._train_mode()
        mean = report["mean"]
        epoch = self.step / self.epoch_steps
        self.log.write("val", step=self.step, epoch=round(epoch, 3), **mean)
        if self.best is None or mean[SELECT_METRIC] < self.best[SELECT_METRIC]:
            self.best = {"step": self.step, **mean, "images": report["images"]}
            save_checkpoint(self.checkpoint_dir / "best.pt", self._state())
            self.export()
        return report

    def metadata(self) -> dict[str, Any]:
        """Metadata of the exported weights: data, split, recipe, camera, metrics."""
        c = self.config
        init = None
        if c.init:
            path = resolve_weights(c.init)
            init = {"weights": path.name, "sha256": file_sha256(path)}  # no directory
        recipe = {
            k: (Path(v).name if k in PATH_FIELDS and v else v)
            for k, v in c.to_dict().items()
            if k
            not in {
                "data",
                "out_dir",
                "resume",
                "progress",
                "workers",
                "device",
                "cache_gb",
                "val_scenes",
            }
        }
        return {
            "training_data": [portable_data_spec(spec) for spec in c.data],
            "train_scenes": [s.name for s in self.train_scenes],
            "val_scenes": [s.name for s in self.val_scenes],
            "recipe": {
                **recipe,
                "total_steps": self.total_steps,
                "steps_per_epoch": self.epoch_steps,
            },
            "camera": {
                **self.camera.to_metadata(),
                "applies_to": "scenes without RGB (cubes, cave); NTIRE/tiles use their own RGB",
            },
            "degradation": self.degradation.to_metadata() if self.degradation else None,
            "init": init,
            "steps": self.best["step"] if self.best else self.step,
            "metrics": {
                "validation": {
                    k: v for k, v in (self.best or {}).items() if k not in ("images", "step")
                },
                "validation_images": (self.best or {}).get("images", []),
            },
            "input": (
                "linear RGB in [0, 1] (3, H, W), fixed gain; output in the input's radiometric "
                "scale (reflectance for reflectance-calibrated RGB)"
            ),
        }

    def export(self) -> Path:
        """Write the current model in the shipped-weights format (safetensors + metadata)."""
        return save_weights(self.model, self.weights_path, self.metadata())

    # ----------------------------------------------------------------- the loop
    def _train_step(self, batch: list[torch.Tensor]) -> float:
        rgb, cube, css, known, exposure = (t.to(self.device, non_blocking=True) for t in batch)
        # rgb (B, 3, c, c), cube (B, 31, c, c), css (B, 3, 31), known (B,), exposure (B,)
        with torch.autocast(
            self.device.type,
            dtype=self.amp_dtype or torch.float32,
            enabled=self.amp_dtype is not None,
        ):
            if isinstance(self.model, ResidualSpectralModel):
                pred = self.model(rgb, css=css, known=known)  # (B, 31, c, c)
            else:
                pred = self.model(rgb)
            scale = exposure.view(-1, 1, 1, 1)
            loss = self.loss_fn(pred.float() / scale, cube / scale)
        if not torch.isfinite(loss):
            raise TrainingError(
                f"loss became {loss.item()} at step {self.step + 1}; lower --lr or check the data"
            )
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if self.config.clip_grad:
            self.scaler.unscale_(self.optimizer)
            nn.utils.clip_grad_norm_(self.model.parameters(), self.config.clip_grad)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.step_lr = self.optimizer.param_groups[-1]["lr"]  # this step's, before the next
        self.scheduler.step()
        return float(loss.detach())

    def run(self) -> TrainResult:
        """Train until the schedule ends, ``stop_after`` or the time limit; then save."""
        c = self.config
        end_step = min(self.total_steps, c.stop_after or self.total_steps)
        if self.step and self.step >= end_step:  # resumed where it ended: nothing to do
            return self._result([], stopped_early=self.step < self.total_steps)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        (self.out_dir / "config.json").write_text(json.dumps(c.to_dict(), indent=2))
        self.log.keep_until(self.step)  # what a stopped session logged after its checkpoint
        start = time.monotonic()
        deadline = start + c.time_limit_min * 60 if c.time_limit_min else math.inf
        batch = c.batch_size
        loader = torch.utils.data.DataLoader(
            self.dataset,
            batch_size=batch,
            sampler=range(self.step * batch, end_step * batch),
            num_workers=c.workers,
            drop_last=True,
        )
        losses: list[float] = []
        window: list[float] = []
        val_total = last_val_seconds = 0.0
        last_val_step = -1
        self._train_mode()
        bar = tqdm(
            total=self.total_steps,
            initial=self.step,
            desc="finetune",
            unit="step",
            disable=not c.progress,
            mininterval=1.0 if sys.stderr.isatty() else 30.0,
        )
        stopped_early = False
        for batch in loader:
            loss = self._train_step(batch)
            self.step += 1
            losses.append(loss)
            window.append(loss)
            bar.update(1)
            bar.set_postfix(loss=f"{loss:.4g}", lr=f"{self.step_lr:.2e}")
            if self.step % c.log_every == 0 or self.step == end_step:
                self._log_train(window, start)
                window = []
            if self.step % self.val_every == 0:
                tick = time.monotonic()
                self.validate()
                last_val_seconds = time.monotonic() - tick
                val_total += last_val_seconds
                last_val_step = self.step
            if self.step % c.checkpoint_every == 0:
                save_checkpoint(self.out_dir / LAST_CHECKPOINT, self._state())
            per_step = (time.monotonic() - start - val_total) / len(losses)
            finishing = 2 * per_step + last_val_seconds  # a last validation + margin
            if self.step < end_step and time.monotonic() + finishing > deadline:
                if window:  # the steps since the last record (a short session has no other)
                    self._log_train(window, start)
                stopped_early = True
                break
        bar.close()
        stopped_early = stopped_early or self.step < self.total_steps
        if last_val_step != self.step:
            self.validate()
        if not self.val_pairs:
            self.export()
        save_checkpoint(self.out_dir / LAST_CHECKPOINT, self._state())
        plot_loss_curve(self.log, self.out_dir / "loss_curve.png")
        return self._result(losses, stopped_early=stopped_early)

    def _log_train(self, window: list[float], start: float) -> None:
        """One ``train`` record: the mean loss of ``window``, this step's learning rate."""
        self.log.write(
            "train",
            step=self.step,
            loss=float(np.mean(window)),
            lr=self.step_lr,
            elapsed_s=round(time.monotonic() - start, 2),
        )

    def _result(self, losses: list[float], *, stopped_early: bool) -> TrainResult:
        weights = self.weights_path if self.weights_path.is_file() else None
        return TrainResult(
            out_dir=self.out_dir,
            step=self.step,
            total_steps=self.total_steps,
            weights=weights,
            best=self.best,
            losses=losses,
            stopped_early=stopped_early,
        )


def train(config: TrainConfig) -> TrainResult:
    """Build a :class:`Trainer` from ``config`` and run it. A new run (not ``resume``) into a
    folder that holds one raises :class:`TrainingError` (:func:`check_no_earlier_run`)."""
    if not config.resume:
        check_no_earlier_run(Path(config.out_dir))
    return Trainer(config).run()
