"""Read what a weights file says about itself without torch: the safetensors header.

A safetensors file starts with the length of its JSON header (8 bytes, little-endian)
and the header; geohsr's metadata is a JSON string under ``__metadata__["geohsr"]``.
"""

from __future__ import annotations

import json
import os
import struct
import sys
from pathlib import Path
from typing import Any

from geohsr.exceptions import WeightsError

METADATA_KEY = "geohsr"
SHIPPED_SUFFIX = ".safetensors"
#: a header larger than this is not a weights file of ours
MAX_HEADER_BYTES = 100 * 1024 * 1024


def pretrained_dir() -> Path:
    """Folder holding the shipped weights.

    ``$GEOHSR_PRETRAINED_DIR`` if set, else ``pretrained/`` beside the package (a source
    checkout or editable install), else ``<prefix>/share/geohsr/pretrained`` (a wheel).
    """
    if env := os.environ.get("GEOHSR_PRETRAINED_DIR"):
        return Path(env)
    beside_package = Path(__file__).resolve().parents[2] / "pretrained"
    if beside_package.is_dir():
        return beside_package
    return Path(sys.prefix) / "share" / "geohsr" / "pretrained"


def read_header_metadata(path: str | Path) -> dict[str, Any]:
    """The geohsr metadata in the header of safetensors file ``path`` (no tensors read)."""
    try:
        with open(path, "rb") as fh:
            (length,) = struct.unpack("<Q", fh.read(8))
            if length > MAX_HEADER_BYTES:
                raise ValueError(f"header of {length} bytes")
            header = json.loads(fh.read(length))
        return json.loads(header["__metadata__"][METADATA_KEY])
    except (OSError, struct.error, ValueError, KeyError, TypeError) as err:
        raise WeightsError(
            f"{path} is not a readable geohsr weights file ({type(err).__name__}: {err})"
        ) from err
