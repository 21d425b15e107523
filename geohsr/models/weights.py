"""Weights files: safetensors tensors + a JSON metadata block in the safetensors header.

No pickle is ever loaded. A weights file records everything needed to rebuild and
trust the model: registry name and config, output wavelengths, input normalisation,
training data and recipe, camera response used for training, measured metrics.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import nn

from geohsr._version import __version__
from geohsr.exceptions import WeightsError
from geohsr.models.header import METADATA_KEY, SHIPPED_SUFFIX, pretrained_dir
from geohsr.models.registry import create_model
from geohsr.spectral import WAVELENGTHS_NM

FORMAT_VERSION = 1


def list_shipped_weights() -> list[str]:
    """Names (file stems) of the weights files shipped with geohsr."""
    return sorted(p.stem for p in pretrained_dir().glob(f"*{SHIPPED_SUFFIX}"))


def resolve_weights(spec: str | Path) -> Path:
    """Turn a shipped weights name (``mxr_unet18_rpr_cave``) or a file path into a path."""
    path = Path(spec).expanduser()
    if path.suffix == SHIPPED_SUFFIX or path.exists():
        if not path.is_file():
            raise WeightsError(f"weights file {str(path)!r} not found; check the path")
        return path
    shipped = pretrained_dir() / f"{spec}{SHIPPED_SUFFIX}"
    if shipped.is_file():
        return shipped
    raise WeightsError(
        f"no weights named {str(spec)!r}; pass a .safetensors path or one of the shipped "
        f"weights: {', '.join(list_shipped_weights()) or '(none shipped)'}"
    )


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file (recorded as provenance in outputs)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def full_precision_keys(model: nn.Module) -> set[str]:
    """State-dict keys that stay float32 in half-precision files: the buffers a module lists
    in ``geohsr_full_precision`` (closed-form fits whose rounding would show in outputs)."""
    keys = set()
    for prefix, module in model.named_modules():
        for name in getattr(module, "geohsr_full_precision", ()):
            keys.add(f"{prefix}.{name}" if prefix else name)
    return keys


def save_weights(
    model: nn.Module,
    path: str | Path,
    metadata: Mapping[str, Any] | None = None,
    *,
    half: bool = False,
) -> Path:
    """Write ``model``'s state dict to ``path`` (safetensors) with JSON metadata.

    ``metadata`` adds free-form entries (``training_data``, ``recipe``, ``camera``,
    ``metrics`` ...). ``half=True`` stores floating tensors as float16, except those listed by
    :func:`full_precision_keys`.
    """
    name = getattr(model, "geohsr_name", None)
    if name is None:
        raise WeightsError("model was not built by geohsr.create_model; cannot record its name")
    meta: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "model": name,
        "config": getattr(model, "geohsr_config", {}),
        "parameters": sum(p.numel() for p in model.parameters()),
        "wavelengths_nm": [int(w) for w in WAVELENGTHS_NM],
        "software_version": __version__,
        "dtype": "float16" if half else "float32",
    }
    meta.update(metadata or {})
    keep = full_precision_keys(model)
    tensors = {}
    for key, value in model.state_dict().items():
        value = value.detach().cpu().contiguous()
        if half and value.is_floating_point() and key not in keep:
            value = value.half()
        tensors[key] = value
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".partial")
    save_file(tensors, str(tmp), metadata={METADATA_KEY: json.dumps(meta)})
    os.chmod(tmp, _new_file_mode())  # safetensors creates owner-only files
    tmp.replace(path)
    return path


def _new_file_mode() -> int:
    """Permissions of a new regular file under the process umask (``0o644`` for ``022``)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The JSON metadata of a weights file (without loading its tensors)."""
    path = resolve_weights(path)
    try:
        with safe_open(str(path), framework="pt") as fh:
            header = fh.metadata() or {}
    except (SafetensorError, OSError, ValueError) as err:
        raise WeightsError(
            f"{path} is not a readable safetensors weights file ({err}); "
            "re-download or re-export it with `geohsr finetune`"
        ) from err
    if METADATA_KEY not in header:
        raise WeightsError(
            f"{path} has no geohsr metadata; it was not written by geohsr.save_weights"
        )
    try:
        return json.loads(header[METADATA_KEY])
    except json.JSONDecodeError as err:
        raise WeightsError(f"{path} has corrupt geohsr metadata: {err}") from err


def load_weights(
    spec: str | Path,
    *,
    expect_model: str | None = None,
    device: str | torch.device = "cpu",
) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the model recorded in a weights file and load its tensors.

    Returns ``(model, metadata)``; the model is in eval mode, float32, on ``device``.
    Raises :class:`WeightsError` for corrupt files, files made for another model
    (``expect_model``), a recorded configuration the model cannot be built with, or tensors
    that do not fit the recorded architecture.
    """
    path = resolve_weights(spec)
    meta = read_metadata(path)
    name = meta.get("model")
    if expect_model is not None and name != expect_model:
        raise WeightsError(
            f"{path} holds weights for {name!r}, not {expect_model!r}; "
            f"pass --model {name} or weights made for {expect_model}"
        )
    config = meta.get("config", {})
    try:
        model = create_model(name, **config)
    except (TypeError, ValueError) as err:  # an unknown key or a value the model refuses
        raise WeightsError(
            f"{path} records a configuration that {name!r} cannot be built with ({err}); the file "
            "was made by a newer geohsr or its metadata was changed: re-export it"
        ) from err
    try:
        with safe_open(str(path), framework="pt") as fh:
            state = {key: fh.get_tensor(key) for key in fh.keys()}
    except (SafetensorError, OSError, ValueError, RuntimeError) as err:
        raise WeightsError(f"{path} is corrupt ({err}); re-download or re-export it") from err
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    bad_shapes = sorted(k for k in set(own) & set(state) if own[k].shape != state[k].shape)
    if missing or unexpected or bad_shapes:
        raise WeightsError(
            f"{path} does not fit model {name!r} (missing {missing[:3]}, unexpected "
            f"{unexpected[:3]}, wrong shape {bad_shapes[:3]}); it was made for another model"
        )
    model.load_state_dict({k: v.to(own[k].dtype) for k, v in state.items()})
    model.geohsr_weights = str(path)
    return model.to(device).eval(), meta


#: metadata entries :func:`save_weights` writes itself (not carried over by
#: :func:`carried_metadata`)
_AUTOMATIC_KEYS = (
    "format_version",
    "model",
    "config",
    "parameters",
    "wavelengths_nm",
    "software_version",
    "dtype",
)


def carried_metadata(meta: dict[str, Any]) -> dict[str, Any]:
    """The entries of weights metadata ``meta`` that a re-saved copy keeps (training data,
    recipe, camera, metrics ...): all but those :func:`save_weights` writes itself."""
    return {key: value for key, value in meta.items() if key not in _AUTOMATIC_KEYS}


def portable_data_spec(spec: str) -> str:
    """``KIND:PATH`` with the path reduced to its last component, so weights metadata holds
    no machine paths (``cave:/home/me/data/cave`` -> ``cave:cave``)."""
    kind, sep, path = spec.partition(":")
    if not sep:
        return Path(spec).name
    return f"{kind}:{','.join(Path(p).name for p in path.split(','))}"


def convert_weights(src: str | Path, dst: str | Path, *, half: bool = True) -> Path:
    """Re-save weights ``src`` as ``dst`` (float16 with ``half``), keeping their metadata (data
    paths reduced to names, see :func:`portable_data_spec`) and recording ``converted_from``
    (file name and SHA-256). Returns ``dst``."""
    path = resolve_weights(src)
    model, meta = load_weights(path)
    kept = carried_metadata(meta)
    if isinstance(kept.get("training_data"), list):
        kept["training_data"] = [portable_data_spec(str(s)) for s in kept["training_data"]]
    kept["converted_from"] = {"weights": path.name, "sha256": file_sha256(path)}
    return save_weights(model, dst, kept, half=half)


#: metadata entry of weights whose tensors are exactly those of an earlier file and only
#: whose metadata (e.g. the config) changed: that file's name and SHA-256
SAME_TENSORS_KEY = "same_tensors_as"


def save_metadata_edit(model: nn.Module, src: str | Path, dst: str | Path) -> Path:
    """Save ``model``, loaded from weights ``src`` and changed only in its registry config,
    as ``dst`` (``src`` itself is fine), keeping ``src``'s metadata and dtype and recording
    under :data:`SAME_TENSORS_KEY` the file whose tensors these are (``src``, or the file
    ``src`` itself records), so what was derived from those tensors (an INT8-adapted copy)
    still matches (:func:`tensor_sources`). Raises :class:`WeightsError`, leaving ``dst``
    as it was, when a tensor differs from ``src``'s."""
    from safetensors.torch import load_file

    src, dst = resolve_weights(src), Path(dst)
    meta = read_metadata(src)
    kept = carried_metadata(meta)
    kept[SAME_TENSORS_KEY] = meta.get(SAME_TENSORS_KEY) or {
        "weights": src.name,
        "sha256": file_sha256(src),
    }
    partial = dst.with_name(dst.name + ".partial")
    save_weights(model, partial, kept, half=meta.get("dtype") == "float16")
    before, after = load_file(str(src)), load_file(str(partial))
    if before.keys() != after.keys() or any(not torch.equal(before[k], after[k]) for k in before):
        partial.unlink()
        raise WeightsError(f"the tensors of {src.name} changed; save them as new weights instead")
    os.replace(partial, dst)
    return dst


def tensor_sources(path: str | Path) -> set[str]:
    """SHA-256 of every file whose tensors weights ``path`` hold: its own, and the one it
    records under :data:`SAME_TENSORS_KEY` (a metadata-only edit of that file)."""
    path = resolve_weights(path)
    own = {file_sha256(path)}
    earlier = (read_metadata(path).get(SAME_TENSORS_KEY) or {}).get("sha256")
    return own | {earlier} if earlier else own
