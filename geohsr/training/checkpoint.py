"""Training checkpoints: model, optimiser, scheduler, step and RNG states in one file.

Checkpoints are written with ``torch.save`` and read with ``torch.load(weights_only=False)``
because they hold optimiser/scheduler/RNG state objects. Only load checkpoints this program
wrote itself (``<out>/checkpoints/*.pt``); shipped and shared weights use safetensors
(:mod:`geohsr.models.weights`), which never unpickles.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from geohsr.exceptions import TrainingError

CHECKPOINT_FORMAT = 1


def rng_states() -> dict[str, Any]:
    """Current states of the torch (CPU and CUDA), numpy and python generators."""
    states: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": np.random.get_state(),
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def restore_rng_states(states: dict[str, Any]) -> None:
    """Inverse of :func:`rng_states`."""
    torch.set_rng_state(states["torch"])
    np.random.set_state(states["numpy"])
    random.setstate(states["python"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def save_checkpoint(path: Path, state: dict[str, Any]) -> Path:
    """Write ``state`` atomically (temporary file, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".partial")
    torch.save({"format": CHECKPOINT_FORMAT, **state}, tmp)
    tmp.replace(path)
    return path


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` (trusted, own files only)."""
    if not path.is_file():
        raise TrainingError(
            f"no checkpoint to resume at {path}; run without --resume or pass the --out "
            "folder of the run to continue"
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except (OSError, RuntimeError, EOFError) as err:
        raise TrainingError(
            f"checkpoint {path} is unreadable ({err}); resume from another"
        ) from err
    if state.get("format") != CHECKPOINT_FORMAT:
        raise TrainingError(f"{path} is not a geohsr training checkpoint (format 1)")
    return state
