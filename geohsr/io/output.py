"""Output paths: format from the extension, temporary paths, overwrite rules, completeness."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from geohsr.exceptions import OutputError
from geohsr.io.cube import COMPLETE_ATTR, COMPLETE_TAG

#: output formats by file extension
FORMATS = {".zarr": "zarr", ".tif": "cog", ".tiff": "cog"}
#: suffix of the temporary path an output is written to before the final rename
PARTIAL_SUFFIX = ".partial"


def output_format(path: str | Path) -> str:
    """``zarr`` or ``cog`` from the extension of ``path``."""
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise OutputError(
            f"cannot tell the output format of {str(path)!r}; end the name in .zarr (Zarr) "
            "or .tif (Cloud-Optimised GeoTIFF)"
        )
    return FORMATS[suffix]


def partial_path(path: str | Path) -> Path:
    """Where ``path`` is written until it is complete (``out.zarr`` -> ``out.zarr.partial``)."""
    path = Path(path)
    return path.with_name(path.name + PARTIAL_SUFFIX)


def is_complete_output(path: str | Path) -> bool:
    """True when ``path`` is a finished geohsr cube (never for an interrupted write)."""
    path = Path(path)
    if not path.exists():
        return False
    if output_format(path) == "zarr":
        for attrs_file in (path / ".zattrs", path / "zarr.json"):
            if attrs_file.is_file():
                try:
                    meta = json.loads(attrs_file.read_text())
                except (OSError, json.JSONDecodeError):
                    return False
                attrs = meta.get("attributes", meta) if attrs_file.name == "zarr.json" else meta
                return attrs.get(COMPLETE_ATTR) is True
        return False
    import rasterio
    from rasterio.errors import RasterioError

    try:
        with rasterio.open(path) as dataset:
            return dataset.tags().get(COMPLETE_TAG) == "yes"
    except RasterioError:
        return False


def check_output(path: Path, *, overwrite: bool, resume: bool) -> None:
    """Refuse an existing output unless ``overwrite`` (or ``resume`` of a finished one)."""
    output_format(path)
    if resume and overwrite:
        raise OutputError(
            "--resume continues an interrupted run; do not combine it with --overwrite"
        )
    if path.exists() and not overwrite and not (resume and is_complete_output(path)):
        raise OutputError(
            f"{str(path)!r} already exists; pass --overwrite to replace it or choose "
            "another output name"
        )
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OutputError(
            f"cannot create the output folder {str(path.parent)!r} ({err.strerror}); "
            "choose a writable location"
        ) from err


def remove(path: Path) -> None:
    """Delete a file or folder if it exists."""
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()


def publish(partial: Path, path: Path) -> None:
    """Move a finished ``partial`` output to ``path`` (replacing an old output)."""
    if path.exists():
        old = path.with_name(path.name + ".old")
        remove(old)
        path.rename(old)
        partial.rename(path)
        remove(old)
    else:
        partial.rename(path)
