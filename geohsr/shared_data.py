"""Locate the project's shared data folder (CAVE cubes, camera sensitivities, VGG16 weights)."""

from __future__ import annotations

import os
from pathlib import Path


def shared_data_dir() -> Path:
    """``$GEOHSR_SHARED_DATA`` if set, else ``shared/data`` beside the source checkout.

    For a checkout at ``/work/main`` that is ``/work/shared/data``. The folder may not
    exist (an installed wheel): callers check the files they need and explain the fix.
    """
    if env := os.environ.get("GEOHSR_SHARED_DATA"):
        return Path(env)
    checkout = Path(__file__).resolve().parents[1]
    return checkout.parent / "shared" / "data"
