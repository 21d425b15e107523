"""Warnings during a command: one-line notes for those that matter to the user, nothing for
upstream warnings the user can do nothing about. ``GEOHSR_WARNINGS=show`` shows every
warning as Python would (for debugging)."""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import TextIO

import click
from rasterio.errors import NotGeoreferencedWarning

#: warning category -> the note shown instead (once per command)
NOTES: dict[type[Warning], str] = {
    NotGeoreferencedWarning: (
        "a raster read has no georeference (no CRS or geotransform): outputs made from it "
        "have no CRS either, only pixel coordinates"
    ),
}
#: about code, not data: never shown, even when raised at a line of geohsr's
DEVELOPER_WARNINGS = (DeprecationWarning, PendingDeprecationWarning, FutureWarning)
#: geohsr's own code: its other warnings are meant for the user
PACKAGE_DIR = Path(__file__).resolve().parents[1]


def note_for(message: Warning | str, category: type[Warning], filename: str) -> str | None:
    """The one-line note for a warning, or ``None`` to drop it: :data:`NOTES` by category,
    the first line of other warnings raised by geohsr itself (deprecations excepted),
    nothing for the rest."""
    for kind, note in NOTES.items():
        if issubclass(category, kind):
            return note
    if issubclass(category, DEVELOPER_WARNINGS):  # a library's deprecation: not the user's
        return None
    text = str(message).strip()
    return text.splitlines()[0] if text and is_geohsr_file(filename) else None


@lru_cache(maxsize=256)
def is_geohsr_file(filename: str) -> bool:
    """Whether ``filename`` is a module of the geohsr package."""
    return Path(filename).resolve().is_relative_to(PACKAGE_DIR)


@contextmanager
def warnings_as_notes() -> Iterator[None]:
    """Within the block, warnings (from any thread) become ``note: ...`` lines on stderr, each
    at most once, or nothing (:func:`note_for`)."""
    if os.environ.get("GEOHSR_WARNINGS", "").lower() == "show":
        yield
        return
    shown: set[str] = set()

    def show(
        message: Warning | str,
        category: type[Warning],
        filename: str,
        lineno: int,
        file: TextIO | None = None,
        line: str | None = None,
    ) -> None:
        note = note_for(message, category, filename)
        if note is not None and note not in shown:
            shown.add(note)
            click.echo(f"note: {note}", err=True)

    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = show
        yield
