"""Point tables for sampling spectra: CSV (x/y or lon/lat columns), GeoJSON and GeoPackage
point layers, read without GDAL's vector drivers (rasterio has none).

A :class:`PointTable` keeps each point's attributes (in file order) and its coordinates in
the file's CRS (``None`` when the file does not say: the caller decides). Rows without a
usable point (empty cells, null geometry) keep NaN coordinates, so the output has one row
per input row.
"""

from __future__ import annotations

import csv
import json
import math
import sqlite3
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pyproj import CRS

from geohsr.exceptions import InputError

#: accepted (x, y) column names of a CSV, in order of preference (case-insensitive)
XY_COLUMNS = (
    ("x", "y"),
    ("lon", "lat"),
    ("longitude", "latitude"),
    ("easting", "northing"),
)
#: columns holding longitude/latitude (EPSG:4326 when no CRS is given)
LONLAT_COLUMNS = {("lon", "lat"), ("longitude", "latitude")}
#: CRS of GeoJSON without a ``crs`` member (RFC 7946)
GEOJSON_CRS = "EPSG:4326"
#: WKB geometry type codes of a point (2-D, Z, M, ZM; ISO and EWKB flags stripped)
WKB_POINT = 1
#: GeoPackage envelope sizes (bytes) by envelope indicator
GPKG_ENVELOPE_BYTES = {0: 0, 1: 32, 2: 48, 3: 48, 4: 64}


@dataclass(frozen=True)
class PointTable:
    """Points read from a file: attribute ``columns`` and ``rows``, coordinates ``xs``/``ys``
    (NaN where a row has no point) in ``crs`` (``None``: not stated by the file)."""

    columns: list[str]
    rows: list[dict[str, Any]]
    xs: list[float]
    ys: list[float]
    crs: CRS | None


def read_points(path: str | Path, *, layer: str | None = None) -> PointTable:
    """The points of a ``.csv``, ``.geojson``/``.json`` or ``.gpkg`` file (``layer``: the
    GeoPackage table, default its first point layer)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"points file {str(path)!r} not found; check the path")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return read_csv_points(path)
    if suffix in (".geojson", ".json"):
        return read_geojson_points(path)
    if suffix == ".gpkg":
        return read_gpkg_points(path, layer)
    raise InputError(f"cannot read points from {str(path)!r}: use a .csv, .geojson or .gpkg file")


def parse_crs(text: str) -> CRS:
    """A CRS from ``EPSG:4326``, a URN, WKT or PROJ string, or :class:`InputError`."""
    try:
        return CRS.from_user_input(text)
    except Exception as err:  # pyproj raises CRSError and others
        raise InputError(f"cannot understand the CRS {text!r}: give e.g. EPSG:4326") from err


def _number(value: Any) -> float:
    """A coordinate from a cell (NaN when empty or not a number)."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def read_csv_points(path: Path) -> PointTable:
    """Points of a CSV with ``x,y`` (or ``lon,lat`` / ``longitude,latitude`` /
    ``easting,northing``) columns; lon/lat columns are in EPSG:4326, others unstated."""
    with path.open(newline="", encoding="utf-8-sig") as file:
        reader = csv.DictReader(file)
        columns = list(reader.fieldnames or [])
        rows = list(reader)
    lower = {name.strip().lower(): name for name in columns}
    for x_name, y_name in XY_COLUMNS:
        if x_name in lower and y_name in lower:
            x_col, y_col = lower[x_name], lower[y_name]
            crs = CRS.from_user_input(GEOJSON_CRS) if (x_name, y_name) in LONLAT_COLUMNS else None
            xs = [_number(row[x_col]) for row in rows]
            ys = [_number(row[y_col]) for row in rows]
            return PointTable(columns, rows, xs, ys, crs)
    accepted = ", ".join(f"{x},{y}" for x, y in XY_COLUMNS)
    raise InputError(f"{str(path)!r} has no coordinate columns; name them {accepted}")


def read_geojson_points(path: Path) -> PointTable:
    """Point features of a GeoJSON FeatureCollection (properties as columns); the CRS is its
    legacy ``crs`` member when present, else EPSG:4326 (RFC 7946)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise InputError(f"cannot read {str(path)!r} as GeoJSON: {err}") from err
    features = data.get("features") if isinstance(data, dict) else None
    if not isinstance(features, list):
        raise InputError(f"{str(path)!r} is not a GeoJSON FeatureCollection")
    rows, xs, ys = [], [], []
    for feature in features:
        rows.append(dict(feature.get("properties") or {}))
        x, y = _geojson_point(feature.get("geometry"), path)
        xs.append(x)
        ys.append(y)
    crs_name = ((data.get("crs") or {}).get("properties") or {}).get("name")
    crs = parse_crs(crs_name or GEOJSON_CRS)
    return PointTable(_union_keys(rows), rows, xs, ys, crs)


def _geojson_point(geometry: Any, path: Path) -> tuple[float, float]:
    """``(x, y)`` of a GeoJSON Point (NaN for a null geometry)."""
    if geometry is None:
        return math.nan, math.nan
    if geometry.get("type") != "Point":
        raise InputError(
            f"{str(path)!r} holds a {geometry.get('type')} geometry; sample needs points"
        )
    coordinates = geometry.get("coordinates") or [math.nan, math.nan]
    return _number(coordinates[0]), _number(coordinates[1])


def _union_keys(rows: list[dict[str, Any]]) -> list[str]:
    """Every key of ``rows``, in order of first appearance."""
    return list(dict.fromkeys(key for row in rows for key in row))


def read_gpkg_points(path: Path, layer: str | None = None) -> PointTable:
    """Points of a GeoPackage point layer (its attribute columns, its CRS)."""
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
            table, column, srs_id = _gpkg_layer(db, path, layer)
            cursor = db.execute(f'SELECT * FROM "{table}"')
            names = [d[0] for d in cursor.description]
            records = cursor.fetchall()
            crs = _gpkg_crs(db, srs_id)
    except sqlite3.Error as err:
        raise InputError(f"cannot read {str(path)!r} as a GeoPackage: {err}") from err
    geometry_index = names.index(column)
    columns = [name for name in names if name != column]
    rows, xs, ys = [], [], []
    for record in records:
        values = dict(zip(names, record, strict=True))
        values.pop(column)
        rows.append(values)
        x, y = gpkg_point(record[geometry_index], path)
        xs.append(x)
        ys.append(y)
    return PointTable(columns, rows, xs, ys, crs)


def _gpkg_layer(db: sqlite3.Connection, path: Path, layer: str | None) -> tuple[str, str, int]:
    """``(table, geometry column, srs_id)`` of ``layer`` (default: the first point layer)."""
    layers = db.execute(
        "SELECT table_name, column_name, srs_id, geometry_type_name FROM gpkg_geometry_columns"
    ).fetchall()
    for table, column, srs_id, kind in layers:
        if layer == table or (layer is None and str(kind).upper() == "POINT"):
            return table, column, srs_id
    names = ", ".join(f"{table} ({kind})" for table, _, _, kind in layers) or "none"
    wanted = f"no layer {layer!r}" if layer else "no point layer"
    raise InputError(f"{str(path)!r} has {wanted}; its layers: {names}")


def _gpkg_crs(db: sqlite3.Connection, srs_id: int) -> CRS | None:
    """The CRS of a GeoPackage ``srs_id`` (``None`` for the undefined systems 0 and -1)."""
    row = db.execute(
        "SELECT organization, organization_coordsys_id, definition FROM gpkg_spatial_ref_sys "
        "WHERE srs_id = ?",
        (srs_id,),
    ).fetchone()
    if row is None or srs_id in (0, -1):
        return None
    organization, code, definition = row
    if definition and definition.strip().lower() != "undefined":
        return parse_crs(definition)
    return parse_crs(f"{organization}:{code}")


def gpkg_point(blob: bytes | None, path: Path) -> tuple[float, float]:
    """``(x, y)`` of a GeoPackage geometry blob holding a point (NaN when null or empty)."""
    if blob is None:
        return math.nan, math.nan
    if blob[:2] != b"GP":
        raise InputError(f"{str(path)!r} has a geometry that is not a GeoPackage blob")
    flags = blob[3]
    empty = bool(flags & 0b10000)
    envelope = GPKG_ENVELOPE_BYTES.get((flags >> 1) & 0b111)
    if envelope is None:
        raise InputError(f"{str(path)!r} has a geometry with an invalid envelope")
    if empty:
        return math.nan, math.nan
    wkb = blob[8 + envelope :]
    order = "<" if wkb[0] == 1 else ">"
    (kind,) = struct.unpack(order + "I", wkb[1:5])
    if (kind & 0x0FFFFFFF) % 1000 != WKB_POINT:
        raise InputError(f"{str(path)!r} holds non-point geometries; sample needs points")
    x, y = struct.unpack(order + "dd", wkb[5:21])
    return x, y
