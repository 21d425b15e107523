"""Zarr cubes written by many processes at once, one chunk (a rectangle of whole Zarr chunks)
per task, with per-chunk completion.

The client creates ``<out>.partial`` (:class:`~geohsr.io.zarr_writer.ZarrCubeWriter`); each
task opens it with :class:`ZarrChunkWriter`, writes its region and then creates the empty
marker file ``<out>.partial/.geohsr_chunks_done/<row0>-<row1>-<col0>-<col1>``. Creating a
file is atomic and no two tasks share a Zarr chunk, so no lock is needed; a marker exists
only once its data is on disk, so ``--resume`` skips exactly the chunks that are done. A
task checks the store's settings fingerprint before it starts and before it marks its
chunk, so a task left over from an earlier run never marks a store made with other
settings. The markers are removed before the store is published.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import zarr

from geohsr.exceptions import OutputError
from geohsr.io.encoding import CubeEncoding
from geohsr.io.output import remove
from geohsr.io.zarr_region import open_cube_for_writing, write_region
from geohsr.tiling.chunks import Chunk

#: folder of completion markers inside the ``.partial`` store
MARKER_DIR = ".geohsr_chunks_done"
#: root attribute holding the settings fingerprint (also read by the single writer)
FINGERPRINT_ATTR = "geohsr_fingerprint"


def marker_dir(partial: Path) -> Path:
    return Path(partial) / MARKER_DIR


def _markers(partial: Path) -> Iterator[tuple[Chunk, Path]]:
    """The chunk markers of store ``partial`` and the chunk each names (other files in the
    folder, e.g. an editor's backup or a half-written temp file, are left out)."""
    folder = marker_dir(partial)
    if not folder.is_dir():
        return
    for marker in folder.iterdir():
        try:
            yield Chunk.from_key(marker.name), marker
        except ValueError:
            continue


def done_chunks(partial: Path) -> set[Chunk]:
    """The chunks whose completion is recorded in store ``partial``."""
    return {chunk for chunk, _ in _markers(partial)}


def chunk_inference(partial: Path) -> set[str]:
    """The distinct backends and precisions (``openvino fp32``...) that computed the chunks
    recorded in store ``partial``, across runs (resumes) and workers."""
    found = set()
    for _, marker in _markers(partial):
        try:
            text = marker.read_text().strip()
        except OSError:
            continue
        if text:
            found.add(text)
    return found


def remove_markers(partial: Path) -> None:
    """Delete the completion records (before publishing)."""
    remove(marker_dir(partial))


class ZarrChunkWriter:
    """Writes chunks into the existing store ``partial`` from any process.

    Raises :class:`OutputError` when the store is gone or was made with other settings
    than ``fingerprint`` (another run replaced it).
    """

    def __init__(self, partial: Path, fingerprint: str, encoding: CubeEncoding) -> None:
        self.partial = Path(partial)
        self.fingerprint = fingerprint
        self.encoding = encoding
        try:
            self.group, self.array = open_cube_for_writing(self.partial)
        except (FileNotFoundError, zarr.errors.GroupNotFoundError) as err:
            raise self._replaced() from err
        self.check_owner()

    def check_owner(self) -> None:
        """The store still has this run's settings, else :class:`OutputError`."""
        try:
            current = zarr.open_group(str(self.partial), mode="r", use_consolidated=False)
            fingerprint = current.attrs.get(FINGERPRINT_ATTR)
        except (FileNotFoundError, zarr.errors.GroupNotFoundError):
            fingerprint = None
        if fingerprint != self.fingerprint:
            raise self._replaced()

    def write(self, row: int, col: int, values: np.ndarray) -> None:
        """Store reflectance ``values`` ``(31, h, w)`` float32 at pixel ``(row, col)``."""
        write_region(self.array, self.encoding, row, col, values)

    def mark_done(self, chunk: Chunk, inference: str = "") -> None:
        """Record that every pixel of ``chunk`` is written, and by what ``inference``
        (backend and precision, see :func:`chunk_inference`)."""
        self.check_owner()
        folder = marker_dir(self.partial)
        folder.mkdir(exist_ok=True)
        descriptor = os.open(folder / chunk.key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.write(descriptor, inference.encode())
        finally:
            os.close(descriptor)

    def _replaced(self) -> OutputError:
        return OutputError(
            f"{self.partial} is no longer the store this task belongs to (another run "
            "replaced or published it); this chunk was not written"
        )
