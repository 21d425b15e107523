"""Training configuration: one small dataclass (defaults = the paper's recipe, CPU-sized crops)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

#: the checkpoint, relative to the run folder, whose presence means a run can go on
LAST_CHECKPOINT = "checkpoints/last.pt"

#: Fields that may change between a run and its ``--resume`` (they do not alter the curve).
SESSION_FIELDS = frozenset(
    {
        "resume",
        "time_limit_min",
        "stop_after",
        "workers",
        "device",
        "progress",
        "out_dir",
        "checkpoint_every",
        "cache_gb",
        "val_every",
        "log_every",
        "export_name",
    }
)


@dataclass
class TrainConfig:
    """Everything a training run depends on. Paths are strings (JSON-friendly)."""

    data: list[str]
    out_dir: str
    # model
    model: str = "mxr_unet18"
    width: float = 1.0
    init: str | None = None
    freeze_encoder: bool = False
    #: adapt the --init weights to INT8 inference instead of training on the targets
    #: (geohsr.training.int8_adapt)
    int8_adapt: bool = False
    #: chroma floor of residual models (None: the --init weights' own, or
    #: RECOMMENDED_CHROMA_FLOOR for a new model)
    chroma_floor: float | None = None
    #: level input of residual models (intensity where it saturates; None: the --init
    #: weights' own, or none for a new model; see geohsr.models.residual)
    level_input: float | None = None
    #: contrast input of residual models (odd neighbourhood side in pixels; None: the --init
    #: weights' own, or none for a new model; see geohsr.models.residual)
    contrast_input: int | None = None
    # loss
    loss: str = "perceptual"
    pixel_weight: float = 100.0
    pixel_loss: str = "mse"
    mrae_floor: float = 1e-3
    gram_factor: float = 5e3
    feature_weights: tuple[float, ...] = (3.0, 9.0, 2.0)
    vgg_pools: tuple[int, ...] = (3, 4, 5)
    vgg_weights: str | None = None
    # RGB synthesis for scenes without RGB
    cameras: list[str] = field(default_factory=lambda: ["cie1964"])
    exclude_cameras: list[str] = field(default_factory=list)
    camera_mix: float = 0.0
    spectral_shift_nm: float = 0.0
    wb_jitter: float = 0.0
    spectral_tilt: float = 0.0
    exposure: tuple[float, float] = (0.05, 1.5)
    quantize_prob: float = 0.0
    #: residual models: project onto the 8-bit quantisation cell of the RGB (set_input_step)
    quantize_cell: bool = False
    known_camera_prob: float = 0.5
    refit_base: bool | None = None
    degrade_prob: float = 0.0
    jpeg_quality: tuple[int, int] = (70, 95)
    # samples
    crop: int = 128
    batch_size: int = 8
    augment: bool = True
    val_fraction: float = 0.2
    val_scenes: list[str] = field(default_factory=list)
    # schedule (paper: AdamW 0.9/0.99, wd 1e-3, one-cycle lr 1e-3, 30 % warm-up, div 100)
    steps: int | None = None
    epochs: int | None = None
    lr: float = 1e-3
    encoder_lr_factor: float = 0.1
    weight_decay: float = 1e-3
    pct_start: float = 0.3
    div_factor: float = 100.0
    clip_grad: float = 1.0
    seed: int = 0
    # session
    val_every: int | None = None
    checkpoint_every: int = 50
    log_every: int = 10
    time_limit_min: float | None = None
    stop_after: int | None = None
    resume: bool = False
    workers: int = 0
    device: str = "auto"
    amp: bool = True
    progress: bool = True
    cache_gb: float = 4.0
    export_name: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (tuples become lists)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        """Inverse of :meth:`to_dict` (unknown keys ignored)."""
        names = {f.name for f in fields(cls)}
        kwargs = {k: v for k, v in values.items() if k in names}
        for key in ("feature_weights", "vgg_pools", "jpeg_quality", "exposure"):
            if key in kwargs:
                kwargs[key] = tuple(kwargs[key])
        return cls(**kwargs)

    def curve_signature(self) -> dict[str, Any]:
        """The fields that determine the training curve (must match on ``--resume``)."""
        return {k: v for k, v in self.to_dict().items() if k not in SESSION_FIELDS}
