"""Files written beside a published cube for catalogues and GIS: a STAC Item
(``<name>.json``, :mod:`geohsr.io.stac`) and a QGIS true-colour style (``<name>.qml``,
:mod:`geohsr.io.qgis_style`)."""

from __future__ import annotations

from pathlib import Path

from geohsr.exceptions import OutputError
from geohsr.io.qgis_style import write_style
from geohsr.io.stac import write_item


def write_sidecars(output: str | Path, source: str | Path | None = None) -> list[Path]:
    """Write the STAC Item and QGIS style of published cube ``output``; returns their paths.

    Raises :class:`OutputError` (the cube itself stays complete and usable) when they
    cannot be written.
    """
    try:
        return [write_item(output, source=source), write_style(output)]
    except OutputError as err:
        raise OutputError(f"{output} is complete, but {err}") from err
