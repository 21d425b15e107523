"""`geohsr sample CUBE POINTS OUT.csv`: spectra at points from CSV, GeoJSON and GeoPackage
files, reprojected to the cube's CRS, one row per point and one column per wavelength."""

from __future__ import annotations

import csv
import json
import math
import sqlite3
import struct

import numpy as np
import pytest
import rasterio
from click.testing import CliRunner
from pyproj import CRS, Transformer
from scene_fixtures import TRANSFORM, gradient_rgb, save_model, write_raster

from geohsr.cli.main import cli
from geohsr.io.points import gpkg_point, read_points
from geohsr.io.sampling import SPECTRUM_COLUMNS
from geohsr.models import create_model

PIXELS = [(0, 0), (5, 7), (39, 29)]  # (col, row) of a 40 x 30 cube
LINE = {
    "type": "Feature",
    "properties": {},
    "geometry": {"type": "LineString", "coordinates": [[0, 0], [1, 1]]},
}


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def centre(col: int, row: int) -> tuple[float, float]:
    """Map coordinates (EPSG:32633) of a pixel's centre."""
    return TRANSFORM * (col + 0.5, row + 0.5)


@pytest.fixture(scope="module")
def cube(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cube")
    weights = save_model(create_model("scene_test_linear"), folder / "t.safetensors")
    rgb = write_raster(folder / "in.tif", gradient_rgb(30, 40))
    out = folder / "cube.tif"
    fast = ["--tile", "32", "--overlap", "8", "--device", "cpu", "--quiet"]
    result = run("reconstruct", rgb, out, "--weights", weights, *fast)
    assert result.exit_code == 0, result.output
    return out


def expected(cube_path, pixels):
    with rasterio.open(cube_path) as dataset:
        data = dataset.read(masked=True).filled(np.nan) * dataset.scales[0]
    return np.stack([data[:, row, col] for col, row in pixels])


def read_csv(path):
    with open(path, newline="") as file:
        return list(csv.DictReader(file))


def spectra(rows):
    return np.array([[float(r[c]) if r[c] else np.nan for c in SPECTRUM_COLUMNS] for r in rows])


def test_csv_points_in_the_cube_crs(tmp_path, cube):
    points = tmp_path / "p.csv"
    lines = ["name,x,y"] + [f"p{i},{x},{y}" for i, (x, y) in enumerate(centre(*p) for p in PIXELS)]
    points.write_text("\n".join(lines) + "\n")
    result = run("sample", cube, points, tmp_path / "s.csv")
    assert result.exit_code == 0, result.output
    assert "3 of 3 points" in result.stdout
    rows = read_csv(tmp_path / "s.csv")
    assert list(rows[0])[:5] == ["name", "x", "y", "col", "row"]
    assert list(rows[0])[5:] == list(SPECTRUM_COLUMNS) and len(SPECTRUM_COLUMNS) == 31
    assert [(int(r["col"]), int(r["row"])) for r in rows] == PIXELS
    np.testing.assert_allclose(spectra(rows), expected(cube, PIXELS), rtol=1e-6)


def test_geojson_in_wgs84_is_reprojected_and_outside_points_are_empty(tmp_path, cube):
    to_wgs84 = Transformer.from_crs("EPSG:32633", "EPSG:4326", always_xy=True)
    coordinates = [to_wgs84.transform(*centre(*p)) for p in PIXELS] + [(0.0, 0.0)]
    features = [
        {
            "type": "Feature",
            "properties": {"id": i},
            "geometry": {"type": "Point", "coordinates": c},
        }
        for i, c in enumerate(coordinates)
    ]
    features.append({"type": "Feature", "properties": {"id": 9}, "geometry": None})
    points = tmp_path / "p.geojson"
    points.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    result = run("sample", cube, points, tmp_path / "s.csv")
    assert result.exit_code == 0, result.output
    assert "3 of 5 points" in result.stdout and "2 point(s) fall outside" in result.stderr
    rows = read_csv(tmp_path / "s.csv")
    assert [r["id"] for r in rows] == ["0", "1", "2", "3", "9"]
    np.testing.assert_allclose(spectra(rows[:3]), expected(cube, PIXELS), rtol=1e-6)
    assert np.isnan(spectra(rows[3:])).all() and rows[3]["col"] == rows[4]["row"] == ""


def gpkg_blob(x: float, y: float, srs_id: int, envelope: bool = False) -> bytes:
    """A GeoPackage point geometry (little-endian, optionally with an xy envelope)."""
    header = struct.pack("<2sBBi", b"GP", 0, 0b011 if envelope else 0b001, srs_id)
    box = struct.pack("<4d", x, x, y, y) if envelope else b""
    return header + box + struct.pack("<BIdd", 1, 1, x, y)


def write_gpkg(path, points, srs_id=32633):
    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TABLE gpkg_spatial_ref_sys (srs_name TEXT, srs_id INTEGER PRIMARY KEY, "
            "organization TEXT, organization_coordsys_id INTEGER, definition TEXT)"
        )
        db.execute(
            "INSERT INTO gpkg_spatial_ref_sys VALUES ('UTM 33N', ?, 'EPSG', 32633, ?)",
            (srs_id, CRS.from_epsg(32633).to_wkt("WKT1_GDAL")),
        )
        db.execute(
            "CREATE TABLE gpkg_geometry_columns (table_name TEXT, column_name TEXT, "
            "geometry_type_name TEXT, srs_id INTEGER, z TINYINT, m TINYINT)"
        )
        db.execute(
            "INSERT INTO gpkg_geometry_columns VALUES ('sites', 'geom', 'POINT', ?, 0, 0)",
            (srs_id,),
        )
        db.execute("CREATE TABLE sites (fid INTEGER PRIMARY KEY, label TEXT, geom BLOB)")
        for i, (x, y) in enumerate(points):
            db.execute(
                "INSERT INTO sites VALUES (?, ?, ?)",
                (i + 1, f"s{i}", gpkg_blob(x, y, srs_id, i % 2 == 1)),
            )


def test_geopackage_points(tmp_path, cube):
    points = tmp_path / "p.gpkg"
    write_gpkg(points, [centre(*p) for p in PIXELS])
    result = run("sample", cube, points, tmp_path / "s.csv")
    assert result.exit_code == 0, result.output
    rows = read_csv(tmp_path / "s.csv")
    assert [r["label"] for r in rows] == ["s0", "s1", "s2"] and "geom" not in rows[0]
    np.testing.assert_allclose(spectra(rows), expected(cube, PIXELS), rtol=1e-6)


def test_crs_option_overrides_and_lonlat_columns(tmp_path, cube):
    to_wgs84 = Transformer.from_crs("EPSG:32633", "EPSG:4326", always_xy=True)
    lon, lat = to_wgs84.transform(*centre(5, 7))
    (tmp_path / "ll.csv").write_text(f"lon,lat\n{lon},{lat}\n")
    (tmp_path / "xy.csv").write_text(f"x,y\n{lon},{lat}\n")
    for name, extra in (("ll.csv", []), ("xy.csv", ["--crs", "EPSG:4326"])):
        result = run("sample", cube, tmp_path / name, tmp_path / "s.csv", *extra)
        assert result.exit_code == 0, result.output
        row = read_csv(tmp_path / "s.csv")[0]
        assert (row["col"], row["row"]) == ("5", "7")


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("p.csv", "a,b\n1,2\n", "no coordinate columns"),
        (
            "p.geojson",
            json.dumps({"type": "FeatureCollection", "features": [LINE]}),
            "sample needs points",
        ),
        ("p.shp", "", "use a .csv, .geojson or .gpkg"),
    ],
)
def test_bad_points_are_one_line_errors(tmp_path, cube, name, text, message):
    (tmp_path / name).write_text(text)
    result = run("sample", cube, tmp_path / name, tmp_path / "s.csv")
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and message in lines[0]
    assert not (tmp_path / "s.csv").exists()


def test_bad_crs_is_a_one_line_error(tmp_path, cube):
    (tmp_path / "p.csv").write_text("x,y\n1,2\n")
    result = run("sample", cube, tmp_path / "p.csv", tmp_path / "s.csv", "--crs", "nonsense")
    assert result.exit_code == 2 and "cannot understand the CRS" in result.stderr


def test_gpkg_point_blob_variants(tmp_path):
    assert gpkg_point(gpkg_blob(1.5, -2.0, 4326), tmp_path) == (1.5, -2.0)
    assert gpkg_point(gpkg_blob(1.5, -2.0, 4326, envelope=True), tmp_path) == (1.5, -2.0)
    big_endian = struct.pack(">2sBBi", b"GP", 0, 0, 4326) + struct.pack(">BIdd", 0, 1, 3.0, 4.0)
    assert gpkg_point(big_endian, tmp_path) == (3.0, 4.0)
    assert all(math.isnan(v) for v in gpkg_point(None, tmp_path))


def test_csv_rows_without_coordinates_are_kept(tmp_path):
    (tmp_path / "p.csv").write_text("X,Y,n\n1,2,a\n,,b\n")
    table = read_points(tmp_path / "p.csv")
    assert table.columns == ["X", "Y", "n"] and table.crs is None
    assert table.xs[0] == 1.0 and math.isnan(table.xs[1]) and len(table.rows) == 2
