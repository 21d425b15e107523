"""Output paths: format from the extension, temporary paths, overwrite rules, completeness."""

from __future__ import annotations

import errno
import json
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from geohsr._stops import hold_stops
from geohsr.exceptions import OutputError
from geohsr.io.cube import COMPLETE_ATTR, COMPLETE_TAG

#: output formats by file extension
FORMATS = {".zarr": "zarr", ".tif": "cog", ".tiff": "cog"}
#: suffix of the temporary path an output is written to before the final rename
PARTIAL_SUFFIX = ".partial"
#: suffix of the COG being converted from the scratch ``.partial`` GTiff
COG_SUFFIX = ".cog"
#: what to do about a write error, by errno
WRITE_FIXES = {
    errno.ENOSPC: "free some space or write to another disk",
    errno.EDQUOT: "free some of your quota or write to another disk",
    errno.EFBIG: "write to a file system that allows larger files",
    errno.EROFS: "choose an output on a writable disk",
    errno.EACCES: "choose a folder you can write to, or fix its permissions",
    errno.EPERM: "choose a folder you can write to, or fix its permissions",
}
#: GDAL messages carry no errno: recognise the common ones by their text
GDAL_ERRNOS = {
    "no space left": errno.ENOSPC,
    "disk quota": errno.EDQUOT,
    "read-only file system": errno.EROFS,
    "permission denied": errno.EACCES,
}


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


def partial_paths(path: str | Path) -> tuple[Path, ...]:
    """Every temporary path a run on ``path`` may leave: ``.partial`` (and ``.partial.cog``)."""
    partial = partial_path(path)
    if output_format(path) == "zarr":
        return (partial,)
    return partial, partial.with_name(partial.name + COG_SUFFIX)


def check_options(path: Path, *, overwrite: bool, resume: bool) -> str:
    """The output format of ``path``; refuses ``resume`` with ``overwrite`` or with a .tif."""
    fmt = output_format(path)
    if resume and overwrite:
        raise OutputError(
            "--resume continues an interrupted run; do not combine it with --overwrite"
        )
    if resume and fmt != "zarr":
        raise OutputError(
            "--resume works for .zarr output only; a .tif starts again with --overwrite"
        )
    return fmt


def make_output_folder(path: Path) -> None:
    """Create the folder of output ``path`` (and its parents) if missing."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OutputError(
            f"cannot create the output folder {str(path.parent)!r} ({err.strerror}); "
            "choose a writable location"
        ) from err


def check_output(path: Path, *, overwrite: bool, resume: bool) -> None:
    """Refuse an interrupted run's ``.partial`` unless ``resume`` or ``overwrite``, and an
    existing output unless ``overwrite`` or ``resume`` (of a finished output, or of an
    interrupted run that was replacing it: its ``.partial`` replaces it when done).

    Call it while holding the output's lock (:func:`geohsr.io.lock.output_lock`): a
    ``.partial`` found then was left by a run that is over.
    """
    fmt = check_options(path, overwrite=overwrite, resume=resume)
    left = [p for p in partial_paths(path) if p.exists()]
    if left and not (overwrite or resume):
        fix = (
            "pass --resume to continue or --overwrite to start again"
            if fmt == "zarr"
            else "pass --overwrite to start again (.tif output cannot resume)"
        )
        replacing = f" (it was replacing {path.name})" if path.exists() else ""
        raise OutputError(f"an interrupted run left {left[0]}{replacing}: {fix}")
    if path.exists() and not overwrite and not (resume and is_complete_output(path)):
        raise OutputError(
            f"{str(path)!r} already exists; pass --overwrite to replace it or choose "
            "another output name"
        )
    if path.exists() and (overwrite or resume):
        check_replaceable(path, fmt)


#: files whose presence makes a folder a Zarr store (v2 group/array metadata, v3)
ZARR_MARKERS = (".zgroup", ".zarray", ".zattrs", "zarr.json")


def check_replaceable(path: Path, fmt: str) -> None:
    """Refuse to let ``--overwrite`` delete something at ``path`` that is not an output
    of this format: a folder that is not a Zarr store, or a folder named like a .tif.
    A file named ``.tif``, a Zarr store or an empty folder is replaced (the user asked)."""
    if not path.is_dir():
        if fmt == "zarr":
            raise OutputError(
                f"{str(path)!r} is a file, not a Zarr store; --overwrite replaces earlier "
                "outputs only: move it away or choose another output name"
            )
        return
    if fmt == "zarr" and any((path / marker).is_file() for marker in ZARR_MARKERS):
        return
    if not any(path.iterdir()):
        return  # an empty folder: nothing is lost
    what = "not a Zarr store" if fmt == "zarr" else "not a GeoTIFF"
    raise OutputError(
        f"{str(path)!r} is a folder, {what}; --overwrite replaces earlier outputs only and "
        "will not delete it: move it away or choose another output name"
    )


def check_not_input(src: Path, dst: Path) -> None:
    """Refuse an output path that is the input itself (or a link to it): writing there
    would destroy the input, whatever --overwrite says."""
    try:
        same = dst.exists() and src.exists() and os.path.samefile(src, dst)
    except OSError:
        same = False
    if same or src.resolve() == dst.resolve():
        raise OutputError(
            f"the output {str(dst)!r} is the input itself; choose another output name "
            "(e.g. ending in .zarr)"
        )


def remove_partials(path: Path) -> None:
    """Delete what an earlier, interrupted run on ``path`` left behind."""
    for partial in partial_paths(path):
        remove(partial)


def write_error(path: str | Path, err: Exception, *, resumable: bool = False) -> OutputError:
    """A one-line :class:`OutputError` for ``err`` (an ``OSError`` or a rasterio/GDAL error)
    raised while writing ``path``: what failed and what to do about it.

    ``resumable``: a Zarr ``.partial`` stays behind that ``--resume`` can continue.
    """
    code = getattr(err, "errno", None)
    if "previous exception" in str(err) and err.__cause__ is not None:
        err = err.__cause__  # rasterio's "Write failed. See previous exception for details."
    text = " ".join(str(getattr(err, "strerror", None) or err).split())
    if code not in WRITE_FIXES:
        code = next((c for key, c in GDAL_ERRNOS.items() if key in text.lower()), code)
    if code not in WRITE_FIXES:
        code = diagnose_folder(Path(path).parent) or code
    if code in WRITE_FIXES:
        reason, fix = os.strerror(code), WRITE_FIXES[code]
    else:
        reason, fix = text or type(err).__name__, "check that the output location is writable"
        fix += " and has free space"
    if resumable and code in (errno.ENOSPC, errno.EDQUOT):
        fix += ", then rerun with --resume to continue"
    return OutputError(f"cannot write {path}: {reason}; {fix}")


#: free space (bytes) below which a failed write is put down to a full disk (a GeoTIFF
#: block of 512 x 512 pixels x 31 float32 bands is 32 MiB)
NEARLY_FULL_BYTES = 64 << 20


def diagnose_folder(folder: Path) -> int | None:
    """Why writing into ``folder`` may have failed when the error does not say (GDAL's
    "Write failed"): ``EROFS``, ``EACCES`` or ``ENOSPC`` (under 64 MiB free), else ``None``."""
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        stats = os.statvfs(folder)
    except OSError:
        return None
    if stats.f_flag & os.ST_RDONLY:
        return errno.EROFS
    if not os.access(folder, os.W_OK):
        return errno.EACCES
    if stats.f_bavail * stats.f_frsize < NEARLY_FULL_BYTES:
        return errno.ENOSPC
    return None


@contextmanager
def output_errors(path: str | Path, *, resumable: bool = False) -> Iterator[None]:
    """Turn file-system and GDAL errors raised in the block, while writing output ``path``,
    into :func:`write_error`. Unless ``resumable``, what the run left (its ``.partial``)
    is deleted first: it cannot be continued and may fill the disk."""
    from rasterio._err import CPLE_BaseError
    from rasterio.errors import RasterioError

    try:
        yield
    except OutputError:
        raise
    except (OSError, RasterioError, CPLE_BaseError) as err:
        error = write_error(path, err, resumable=resumable)  # before freeing any space
        if not resumable:
            with suppress(OSError):
                remove_partials(Path(path))
        raise error from err


def write_text_atomically(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename, so readers see the
    old or the new content, never a mix. The file gets mode 0666 minus the umask (like any
    new file). File-system errors become :func:`write_error`."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except OSError as err:
        with suppress(OSError):
            tmp.unlink()
        raise write_error(path, err) from err


def remove(path: Path) -> None:
    """Delete a file or folder if it exists."""
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()


def publish(partial: Path, path: Path) -> None:
    """Move a finished ``partial`` output to ``path`` (replacing an old output). Stops
    wait from here to the end of the run (:func:`geohsr._stops.hold_stops`)."""
    hold_stops()
    if path.exists():
        old = path.with_name(path.name + ".old")
        remove(old)
        path.rename(old)
        partial.rename(path)
        remove(old)
    else:
        partial.rename(path)
