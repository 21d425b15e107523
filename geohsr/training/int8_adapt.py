"""Adapt weights to INT8 inference (``geohsr finetune --int8-adapt``).

Post-training INT8 quantisation of the shipped model cost up to 1.3 % MRAE on some
conditions (:mod:`geohsr.inference.backends.int8`). This fine-tunes a copy of the ``--init``
weights with the network's INT8 arithmetic simulated (NNCF's fake quantisation of the torch
model, with the ranges the INT8 backend uses: the same calibration images, ignored operations
and range estimator) so that the quantised network reproduces the float ``--init`` model
(quantisation-aware training by distillation): the training targets are the ``--init``
model's own outputs on the rendered training crops, not the spectral cubes, so the adapted
copy does not drift towards the training data. The loss is the mean relative difference

    |U_int8(x) - U_float(x)| * gamma * I / max(|y_float(x)|, 0.01 * exposure)

over the crop's pixels and bands (``y_float``: the float model's full output, base included;
the floor mirrors ``--mrae-floor 0.01`` at the crop's exposure). Only the network's weights
learn (quantiser ranges stay fixed, as the INT8 backend recomputes them); Adam, cosine decay
from ``--lr`` to 0, float32 arithmetic.

The result, ``OUT/int8/<init file name>``, records the SHA-256 of the ``--init`` file under
``int8_adapted_from``; placed in an ``int8`` folder beside that weights file (the shipped
ones: ``pretrained/int8/``), ``--precision int8`` runs it (see
:func:`~geohsr.inference.backends.int8.load_adapted_network`). Checkpoints every
``--checkpoint-every`` steps; ``--resume`` continues.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import logging
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from geohsr.exceptions import TrainingError
from geohsr.inference.backends.int8 import (
    ADAPTED_FOLDER,
    ADAPTED_FROM_KEY,
    INT8_VERSION,
    activation_ranges,
    calibration_images,
    nncf_installed,
)
from geohsr.inference.backends.openvino_backend import telemetry_off
from geohsr.inference.export import ExportableCore
from geohsr.models.residual import ResidualSpectralModel
from geohsr.models.weights import (
    carried_metadata,
    file_sha256,
    portable_data_spec,
    read_metadata,
    resolve_weights,
    save_weights,
)
from geohsr.training.checkpoint import load_checkpoint, save_checkpoint
from geohsr.training.config import LAST_CHECKPOINT, TrainConfig
from geohsr.training.run_log import MetricsLog

#: torch operations the INT8 backend keeps in floating point (the torch names of
#: :data:`~geohsr.inference.backends.int8.FLOAT_OPERATIONS`)
FLOAT_TORCH_OPERATIONS = (
    "mean",
    "div",
    "gt",
    "maximum",
    "matmul",
    "bmm",
    "scaled_dot_product_attention",
    "mul",
)
#: torch node names of :data:`~geohsr.inference.backends.int8.FLOAT_CONVOLUTIONS`
FLOAT_TORCH_CONVOLUTIONS = (r".*final_shuf[./]conv[./].*", r".*head[./]1[./].*")
#: learning rate of ``--int8-adapt`` when ``--lr`` is not given (the shipped copy's)
ADAPT_LR = 5e-5
#: floor of the relative difference, times the crop's exposure (as ``--mrae-floor 0.01``)
RELATIVE_FLOOR = 0.01
#: seconds NNCF may take to compile and load its torch extension on first use (its own
#: default, 60, ran out on 2 busy cores in a fresh environment); the user's
#: NNCF_EXTENSION_LOAD_TIMEOUT wins
EXTENSION_LOAD_TIMEOUT_S = 900


def simulate_int8(core: ExportableCore, calibration: list[torch.Tensor]) -> ExportableCore:
    """A copy of ``core`` with NNCF fake quantisation where the INT8 backend quantises, ranges
    from ``calibration`` (``(1, 3, h, w)`` RGB) with the backend's estimator. Quantiser
    parameters are frozen; the copy's network weights train."""
    os.environ.setdefault("NNCF_EXTENSION_LOAD_TIMEOUT", str(EXTENSION_LOAD_TIMEOUT_S))
    import nncf
    from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters

    nncf.set_log_level(logging.ERROR)
    with telemetry_off():
        student = nncf.quantize(
            core,
            nncf.Dataset(calibration),
            preset=nncf.QuantizationPreset.MIXED,
            subset_size=len(calibration),
            ignored_scope=nncf.IgnoredScope(
                types=list(FLOAT_TORCH_OPERATIONS),
                patterns=list(FLOAT_TORCH_CONVOLUTIONS),
                validate=False,
            ),
            advanced_parameters=AdvancedQuantizationParameters(
                disable_bias_correction=True,
                activations_range_estimator_params=activation_ranges(),
            ),
        )
    for name, parameter in student.named_parameters():
        parameter.requires_grad_(name.startswith("model.net.") and "__nncf" not in name)
    return student


class Int8Adaptation:
    """One ``--int8-adapt`` session: builds the data like :class:`Trainer`, the float teacher
    from ``config.init`` and its INT8-simulated student; :meth:`run` trains and exports."""

    def __init__(self, config: TrainConfig) -> None:
        from geohsr.training.trainer import Trainer, check_no_earlier_run

        if not nncf_installed():
            raise TrainingError('--int8-adapt needs NNCF: pip install "geohsr[int8]"')
        if not config.init:
            raise TrainingError("--int8-adapt adapts existing weights: pass --init WEIGHTS")
        if config.steps is None:
            raise TrainingError("give the length of the adaptation: --steps N")
        if not config.resume:
            check_no_earlier_run(Path(config.out_dir))
        self.config = config
        self.init_path = resolve_weights(config.init)
        #: what every export records of the --init file (read once)
        self.init_metadata = carried_metadata(read_metadata(self.init_path))
        self.init_sha256 = file_sha256(self.init_path)
        # data, cameras, the --init model and seeds as finetune builds them (its loss is
        # not used; its checkpoints are not ours: resumed below)
        self.trainer = Trainer(dataclasses.replace(config, resume=False, loss="mrae"))
        teacher = self.trainer.model.cpu().eval()
        if not isinstance(teacher, ResidualSpectralModel):
            raise TrainingError(
                f"--int8-adapt supports residual (camera-aware) models; {config.init} holds "
                f"{getattr(teacher, 'geohsr_name', type(teacher).__name__)!r}"
            )
        self.teacher = teacher.requires_grad_(False)
        self.teacher_core = ExportableCore(self.teacher)
        print(
            "geohsr: int8-adapt: simulating the INT8 network (calibration on synthetic images, "
            "about a minute)",
            file=sys.stderr,
        )
        calibration = [torch.from_numpy(x) for x in calibration_images(self.teacher)]
        self.student = simulate_int8(ExportableCore(copy.deepcopy(self.teacher)), calibration)
        self.trainable = [p for p in self.student.parameters() if p.requires_grad]
        self.optimizer = torch.optim.Adam(self.trainable, lr=config.lr)
        total = config.steps
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, total) / total))
        )
        self.out_dir = Path(config.out_dir)
        self.step = 0
        if config.resume:
            self._restore()

    @property
    def weights_path(self) -> Path:
        """``OUT/int8/<init file name>``: where the adapted weights are written."""
        return self.out_dir / ADAPTED_FOLDER / self.init_path.name

    def _state(self) -> dict[str, Any]:
        return {
            "config": self.config.to_dict(),
            "signature": self.config.curve_signature(),
            "step": self.step,
            "student": self.student.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
        }

    def _restore(self) -> None:
        from geohsr.training.trainer import check_same_curve

        state = load_checkpoint(self.out_dir / LAST_CHECKPOINT)
        check_same_curve(self.config, state["signature"])
        self.student.load_state_dict(state["student"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.step = state["step"]

    def loss(self, batch: list[torch.Tensor]) -> torch.Tensor:
        """The relative difference of the module docstring for one batch of crops."""
        rgb, _cube, css, known, exposure = batch
        with torch.no_grad():
            target_term = self.teacher_core(rgb)  # (B, 31, h, w)
            target = self.teacher(rgb, css=css, known=known)
        floor = RELATIVE_FLOOR * exposure.view(-1, 1, 1, 1)
        return ((self.student(rgb) - target_term).abs() / target.abs().clamp_min(floor)).mean()

    def export(self) -> Path:
        """Write the adapted copy in the weights format, recording its source."""
        adapted = copy.deepcopy(self.teacher)
        student_state = self.student.model.state_dict()
        adapted.load_state_dict({key: student_state[key] for key in adapted.state_dict()})
        meta = dict(self.init_metadata)
        meta[ADAPTED_FROM_KEY] = {"weights": self.init_path.name, "sha256": self.init_sha256}
        meta["int8_adaptation"] = {
            "steps": self.step,
            "lr": self.config.lr,
            "seed": self.config.seed,
            "int8_version": INT8_VERSION,
            "objective": "relative difference of the INT8-simulated network from the --init "
            f"model (floor {RELATIVE_FLOOR} x exposure); geohsr.training.int8_adapt",
            "data": [portable_data_spec(spec) for spec in self.config.data],
        }
        return save_weights(adapted, self.weights_path, meta)

    def run(self) -> Path:
        """Adapt until ``--steps`` (or ``--stop-after`` / the time limit); return the weights."""
        c = self.config
        self.out_dir.mkdir(parents=True, exist_ok=True)
        (self.out_dir / "config.json").write_text(json.dumps(c.to_dict(), indent=2))
        log = MetricsLog(self.out_dir / "metrics.jsonl")
        log.keep_until(self.step)  # what a stopped session logged after its checkpoint
        deadline = time.monotonic() + c.time_limit_min * 60 if c.time_limit_min else math.inf
        end_step = min(c.steps, c.stop_after or c.steps)
        loader = torch.utils.data.DataLoader(
            self.trainer.dataset,
            batch_size=c.batch_size,
            sampler=range(self.step * c.batch_size, end_step * c.batch_size),
            num_workers=c.workers,
            drop_last=True,
        )
        bar = tqdm(
            total=c.steps, initial=self.step, desc="int8-adapt", unit="step", disable=not c.progress
        )
        window: list[float] = []
        for batch in loader:
            loss = self.loss(batch)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.trainable, c.clip_grad or math.inf)
            self.optimizer.step()
            self.scheduler.step()
            self.step += 1
            window.append(float(loss.detach()))
            bar.update(1)
            if self.step % c.log_every == 0 or self.step == end_step:
                log.write(
                    "train",
                    step=self.step,
                    loss=sum(window) / len(window),
                    lr=self.scheduler.get_last_lr()[0],
                )
                window = []
            if self.step % c.checkpoint_every == 0 or self.step == end_step:
                save_checkpoint(self.out_dir / LAST_CHECKPOINT, self._state())
                self.export()
            if time.monotonic() > deadline:
                break
        bar.close()
        if self.step % c.checkpoint_every:
            save_checkpoint(self.out_dir / LAST_CHECKPOINT, self._state())
        return self.export()


def adapt_for_int8(config: TrainConfig) -> tuple[Path, int]:
    """Run :class:`Int8Adaptation`; the adapted weights' path and the step reached."""
    session = Int8Adaptation(config)
    path = session.run()
    return path, session.step
