"""The geohsr command line with the test-only models registered, for tests that run geohsr
as a separate process (the QGIS provider runs the user's executable):
``python tests/geohsr_test_cli.py reconstruct ...`` or :func:`write_executable`.

``scene_test_slow`` sleeps ``$GEOHSR_TEST_SLOW_S`` seconds (default 0.3) per model call,
so a run lasts long enough to be cancelled."""

from __future__ import annotations

import os
import stat
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402
from scene_fixtures import ConstantCube  # noqa: E402  (also registers scene_test_*)

from geohsr.models import register_model  # noqa: E402

SLOW_ENV = "GEOHSR_TEST_SLOW_S"


class SlowConstant(ConstantCube):
    """A constant cube, ``$GEOHSR_TEST_SLOW_S`` seconds per call."""

    def forward(self, rgb: torch.Tensor) -> torch.Tensor:
        time.sleep(float(os.environ.get(SLOW_ENV, "0.3")))
        return super().forward(rgb)


@register_model
def scene_test_slow(width: float = 1.0, value: float = 0.25) -> torch.nn.Module:
    """Test-only model: constant output, slowly."""
    return SlowConstant(value)


def write_executable(folder: Path, name: str = "geohsr") -> Path:
    """An executable ``folder/name`` running this geohsr with this Python."""
    path = folder / name
    path.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{Path(__file__).resolve()}" "$@"\n')
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


if __name__ == "__main__":
    from geohsr.cli.main import cli

    cli(prog_name="geohsr")
