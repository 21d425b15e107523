"""Region writes in a background thread, so computing the next block overlaps storing this
one (used by the single-process pass and by chunk tasks)."""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import rasterio

from geohsr.io.output import output_errors


class WriteBehind:
    """Runs writer calls in one background thread, in order, at most one call behind the
    computation (so memory stays bounded); errors surface at the next call, file-system
    errors as :class:`OutputError` about ``path``."""

    def __init__(self, path: Path, *, resumable: bool) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1)
        self._pending: Future | None = None
        self._path = path
        self._resumable = resumable

    def submit(self, function, *args) -> None:
        self.drain()
        self._pending = self._pool.submit(in_gdal_env, function, *args)

    def drain(self) -> None:
        if self._pending is not None:
            pending, self._pending = self._pending, None
            with output_errors(self._path, resumable=self._resumable):
                pending.result()

    def close(self) -> None:
        self._pool.shutdown(wait=True)


def in_gdal_env(function, *args):
    """Call ``function`` inside a rasterio environment: GDAL errors in the writer thread then
    reach the exception raised, not stderr."""
    with rasterio.Env():
        return function(*args)
