"""Files written beside a published cube for catalogues and GIS: a STAC Item
(``<name>.json``, :mod:`geohsr.io.stac`) and a QGIS true-colour style (``<name>.qml``,
:mod:`geohsr.io.qgis_style`)."""

from __future__ import annotations

import json
from pathlib import Path

from geohsr.exceptions import OutputError
from geohsr.io.qgis_style import style_path, write_style
from geohsr.io.stac import item_path, write_item


def write_sidecars(output: str | Path, source: str | Path | None = None) -> list[Path]:
    """Write the STAC Item and QGIS style of published cube ``output``; returns their paths.

    Raises :class:`OutputError` (the cube itself stays complete and usable) when they
    cannot be written.
    """
    try:
        return [write_item(output, source=source), write_style(output)]
    except OutputError as err:
        raise OutputError(f"{output} is complete, but {err}") from err


def check_sidecars_free(output: str | Path) -> None:
    """Refuse, before any work, an ``output`` whose sidecar names are taken by files of
    another output (``cube.zarr`` and ``cube.tif`` share ``cube.json`` / ``cube.qml``) or
    of the user: the STAC Item there must describe ``output``, and a style may only be
    there beside such an Item. Raises :class:`OutputError` with the fix."""
    output = Path(output)
    item, style = item_path(output), style_path(output)
    described = _described_asset(item) if item.exists() else None
    if item.exists() and described != f"./{output.name}":
        what = f"the STAC item of {described}" if described else "not a STAC item of geohsr"
        taken = item
    elif style.exists() and not item.exists():
        what, taken = "a style geohsr cannot tell is this cube's", style
    else:
        return
    raise OutputError(
        f"{taken} exists ({what}); writing {output.name} would replace it with its own "
        "sidecar: choose another output name, move that file, or pass --no-sidecars"
    )


def _described_asset(item: Path) -> str | None:
    """The href of the ``data`` asset of STAC Item file ``item``, or ``None``."""
    try:
        data = json.loads(item.read_text(encoding="utf-8"))
        return str(data["assets"]["data"]["href"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
