"""Turn batch inputs (paths, globs, folders, manifests, STAC items) into scene jobs.

Pure bookkeeping: nothing here opens a raster. Each input on the command line may be

- a raster path or a URL GDAL can open (``s3://``, ``https://`` ...);
- a glob (``scenes/**/*.tif``) or a folder (its raster files, not recursive);
- a text manifest (``.txt``/``.lst``): one entry per line, ``#`` comments, blank lines ignored;
- a CSV manifest (``.csv``): a ``path`` column (else the first column) and an optional ``name``
  column giving the output name;
- a STAC item (``.json``/``.geojson``; also an ItemCollection): its RGB asset is reconstructed
  and the item id names the output.

Manifest entries may themselves be any of the above; relative entries are resolved against
the manifest's folder. Entries that do not exist inside a manifest are kept (they fail as
scenes with their own error, so one typo in a list of hundreds does not stop a run); a
missing path typed directly on the command line is an :class:`InputError` at once.
"""

from __future__ import annotations

import csv
import glob
import json
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit
from urllib.request import url2pathname

from geohsr.exceptions import InputError

RASTER_SUFFIXES = frozenset({".tif", ".tiff", ".jp2", ".png", ".jpg", ".jpeg", ".vrt", ".img"})
TEXT_MANIFEST_SUFFIXES = frozenset({".txt", ".lst"})
CSV_MANIFEST_SUFFIXES = frozenset({".csv"})
STAC_SUFFIXES = frozenset({".json", ".geojson"})
CSV_PATH_COLUMNS = ("path", "source", "href", "url", "file")
CSV_NAME_COLUMN = "name"
#: output format -> file suffix of the output written for each scene
OUTPUT_SUFFIXES = {"zarr": ".zarr", "tif": ".tif"}
RGB_COMMON_NAMES = ("red", "green", "blue")


@dataclass(frozen=True)
class Scene:
    """One RGB scene to reconstruct.

    ``location`` is a local path or a URL; ``name`` is the output file stem;
    ``rgb_bands`` are the 1-based band indices of red, green, blue when an input
    (a STAC asset) says so, else ``None`` (the reader's default).
    """

    name: str
    location: str
    rgb_bands: tuple[int, int, int] | None = None


@dataclass(frozen=True)
class SceneJob:
    """A scene paired with the output path it is written to."""

    scene: Scene
    output: Path

    @property
    def name(self) -> str:
        return self.scene.name


def expand_inputs(inputs: Iterable[str | Path]) -> list[Scene]:
    """Expand command-line inputs into scenes, in order, without duplicates.

    Raises :class:`InputError` when an input matches nothing, a manifest or STAC item cannot
    be read, or two different scenes would be written to the same output name.
    """
    scenes: list[Scene] = []
    for raw in inputs:
        scenes.extend(_expand_entry(str(raw), base_dir=None, from_manifest=False))
    if not scenes:
        raise InputError("no input scenes given; pass raster paths, globs or a manifest file")
    return _deduplicate(scenes)


def output_path(out_dir: str | Path, name: str, fmt: str) -> Path:
    """``<out_dir>/<name>.zarr`` or ``.tif`` for output format ``fmt`` (``"zarr"``/``"tif"``)."""
    try:
        suffix = OUTPUT_SUFFIXES[fmt]
    except KeyError:
        raise InputError(
            f"unknown output format {fmt!r}; choose one of {', '.join(OUTPUT_SUFFIXES)}"
        ) from None
    return Path(out_dir) / f"{name}{suffix}"


def plan_jobs(scenes: Iterable[Scene], out_dir: str | Path, fmt: str) -> list[SceneJob]:
    """Pair each scene with its output path under ``out_dir``.

    Raises :class:`InputError` when an output would replace its own input (``--format tif``
    with the output folder holding the inputs).
    """
    jobs = [SceneJob(scene, output_path(out_dir, scene.name, fmt)) for scene in scenes]
    for job in jobs:
        if Path(job.scene.location).resolve() == job.output.resolve():
            raise InputError(
                f"the output of {job.scene.location} would overwrite the input itself; "
                "choose another --out-dir"
            )
    return jobs


def select_rgb_asset(item: Mapping[str, Any]) -> tuple[str, Mapping[str, Any]]:
    """The ``(key, asset)`` of a STAC item's RGB asset.

    Preference: an asset with the ``visual`` role (or keyed ``visual``), then an asset whose
    ``eo:bands``/``bands`` common names include red, green and blue (fewest bands first).
    """
    assets = item.get("assets") or {}
    visual = [(k, a) for k, a in assets.items() if "visual" in (a.get("roles") or [])]
    visual += [(k, a) for k, a in assets.items() if k == "visual" and (k, a) not in visual]
    if visual:
        return visual[0]
    with_rgb = [(k, a) for k, a in assets.items() if _rgb_band_indices(a) is not None]
    if with_rgb:
        return min(with_rgb, key=lambda ka: len(_asset_bands(ka[1])))
    raise InputError(
        f"STAC item {item.get('id')!r} has no RGB asset (assets: {', '.join(assets) or 'none'}); "
        "it needs an asset with role 'visual' or eo:bands red, green and blue"
    )


def _expand_entry(entry: str, base_dir: Path | None, from_manifest: bool) -> Iterator[Scene]:
    entry = entry.strip()
    if urlsplit(entry).scheme == "file":
        entry = url2pathname(urlsplit(entry).path)
    elif _is_url(entry) or entry.startswith("/vsi"):
        yield Scene(_safe_name(Path(urlsplit(entry).path).stem), entry)
        return
    path = Path(entry).expanduser()
    if base_dir is not None and not path.is_absolute():
        path = base_dir / path
    if _is_glob(entry):
        matches = sorted(glob.glob(str(path), recursive=True))
        if not matches:
            raise InputError(f"glob {entry!r} matches no files; check the pattern and folder")
        for match in matches:
            yield from _expand_entry(match, base_dir=None, from_manifest=from_manifest)
        return
    if path.is_dir():
        yield from _expand_folder(path)
        return
    if not path.exists():
        if from_manifest:
            yield Scene(_safe_name(path.stem), str(path))
            return
        raise InputError(f"input {entry!r} does not exist; check the path")
    suffix = path.suffix.lower()
    if suffix in TEXT_MANIFEST_SUFFIXES:
        yield from _expand_text_manifest(path)
    elif suffix in CSV_MANIFEST_SUFFIXES:
        yield from _expand_csv_manifest(path)
    elif suffix in STAC_SUFFIXES:
        yield from _expand_stac(path)
    else:
        yield Scene(_safe_name(path.stem), str(path))


def _expand_folder(folder: Path) -> Iterator[Scene]:
    rasters = sorted(p for p in folder.iterdir() if p.suffix.lower() in RASTER_SUFFIXES)
    if not rasters:
        raise InputError(
            f"folder {str(folder)!r} holds no raster files ({', '.join(sorted(RASTER_SUFFIXES))})"
        )
    for raster in rasters:
        yield Scene(_safe_name(raster.stem), str(raster))


def _expand_text_manifest(manifest: Path) -> Iterator[Scene]:
    for line in _read_text(manifest).splitlines():
        entry = line.split("#", 1)[0].strip()
        if entry:
            yield from _expand_entry(entry, base_dir=manifest.parent, from_manifest=True)


def _expand_csv_manifest(manifest: Path) -> Iterator[Scene]:
    rows = [row for row in csv.reader(_read_text(manifest).splitlines()) if any(row)]
    header = [cell.strip().lower() for cell in rows[0]] if rows else []
    has_header = any(column in header for column in CSV_PATH_COLUMNS)
    path_column = next((header.index(c) for c in CSV_PATH_COLUMNS if c in header), 0)
    has_names = has_header and CSV_NAME_COLUMN in header
    name_column = header.index(CSV_NAME_COLUMN) if has_names else None
    for row_no, row in enumerate(rows[1:] if has_header else rows, start=1 + has_header):
        location = row[path_column].strip() if path_column < len(row) else ""
        if not location:
            raise InputError(f"{manifest}: row {row_no} has no path; fill in the path column")
        name = row[name_column].strip() if name_column is not None else ""
        for scene in _expand_entry(location, base_dir=manifest.parent, from_manifest=True):
            yield Scene(_safe_name(name), scene.location, scene.rgb_bands) if name else scene


def _expand_stac(path: Path) -> Iterator[Scene]:
    try:
        document = json.loads(_read_text(path))
    except json.JSONDecodeError as err:
        raise InputError(f"{path} is not valid JSON ({err}); pass a STAC item file") from err
    if document.get("type") == "FeatureCollection":
        items = document.get("features") or []
    elif document.get("type") == "Feature" and "assets" in document:
        items = [document]
    else:
        raise InputError(f"{path} is not a STAC item or item collection (no 'assets')")
    for item in items:
        key, asset = select_rgb_asset(item)
        if "href" not in asset:
            raise InputError(f"{path}: asset {key!r} of item {item.get('id')!r} has no href")
        name = _safe_name(str(item.get("id") or path.stem))
        yield Scene(name, _resolve_href(asset["href"], item, path), _rgb_band_indices(asset))


def _asset_bands(asset: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return list(asset.get("eo:bands") or asset.get("bands") or [])


def _rgb_band_indices(asset: Mapping[str, Any]) -> tuple[int, int, int] | None:
    """1-based indices of the red, green and blue bands of a STAC asset, if it names them."""
    names = [
        str(band.get("common_name") or band.get("eo:common_name") or "").lower()
        for band in _asset_bands(asset)
    ]
    if not all(colour in names for colour in RGB_COMMON_NAMES):
        return None
    red, green, blue = (names.index(colour) + 1 for colour in RGB_COMMON_NAMES)
    return red, green, blue


def _resolve_href(href: str, item: Mapping[str, Any], item_path: Path) -> str:
    """Location of an asset href: relative hrefs follow the item's self link, else the item
    file's folder (kept relative when the item path was, so outputs record no machine
    path)."""
    parts = urlsplit(href)
    if parts.scheme == "file":
        return url2pathname(parts.path)
    if _is_url(href) or Path(href).is_absolute():
        return href
    self_href = next(
        (link.get("href") for link in item.get("links") or [] if link.get("rel") == "self"), None
    )
    if self_href and _is_url(self_href) and urlsplit(self_href).scheme != "file":
        return urljoin(self_href, href)
    return os.path.normpath(item_path.parent / href)


def _deduplicate(scenes: list[Scene]) -> list[Scene]:
    by_name: dict[str, Scene] = {}
    unique: list[Scene] = []
    for scene in scenes:
        known = by_name.get(scene.name)
        if known is None:
            by_name[scene.name] = scene
            unique.append(scene)
        elif known.location != scene.location:
            raise InputError(
                f"two inputs would write the same output {scene.name!r}: {known.location} and "
                f"{scene.location}; give them distinct names with a CSV manifest 'name' column"
            )
    return unique


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(f"cannot read {path} ({err}); check the file") from err


def _is_url(entry: str) -> bool:
    scheme = urlsplit(entry).scheme
    return len(scheme) > 1 and "://" in entry


def _is_glob(entry: str) -> bool:
    return any(char in entry for char in "*?[")


def _safe_name(name: str) -> str:
    """An output stem safe on every file system (path separators and odd characters -> _)."""
    cleaned = re.sub(r"[^\w.\-]+", "_", name).strip("._")
    if not cleaned:
        raise InputError(f"cannot derive an output name from {name!r}; name the scene explicitly")
    return cleaned
