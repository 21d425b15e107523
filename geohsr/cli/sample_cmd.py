"""`geohsr sample CUBE POINTS OUT.csv`: the cube's spectra at points, one column per
wavelength."""

from __future__ import annotations

import click


@click.command()
@click.argument("cube", type=click.Path(path_type=str))
@click.argument("points", type=click.Path(path_type=str))
@click.argument("out_csv", type=click.Path(path_type=str))
@click.option(
    "--crs",
    help="CRS of the points' coordinates (EPSG:4326, WKT, PROJ) [GeoJSON: its crs member, else "
    "EPSG:4326; GeoPackage: the layer's; CSV: EPSG:4326 for lon/lat columns, else the cube's].",
)
@click.option("--layer", help="GeoPackage layer (table) [its first point layer].")
def sample(cube: str, points: str, out_csv: str, crs: str | None, layer: str | None) -> None:
    """Write OUT.csv: the spectrum of CUBE (.zarr or .tif) at each point of POINTS.

    POINTS is a .csv (columns x,y, lon,lat, longitude,latitude or easting,northing), a
    .geojson or a .gpkg point layer; points are reprojected to the cube's CRS. OUT.csv
    keeps every point's columns and adds col, row (the cube pixel, 0-based) and nm_400 ...
    nm_700 (the cube's values; empty outside the cube or at nodata), one row per point.
    """
    from geohsr.io.cube_reader import open_cube
    from geohsr.io.points import parse_crs, read_points
    from geohsr.io.sampling import sample_spectra, write_spectra_csv

    table = read_points(points, layer=layer)
    points_crs = parse_crs(crs) if crs else table.crs
    sampled = sample_spectra(open_cube(cube), table, points_crs)
    write_spectra_csv(out_csv, table, sampled)
    inside = len(sampled.pixels) - sampled.n_outside
    click.echo(f"wrote {out_csv}: spectra at {inside} of {len(sampled.pixels)} points")
    if sampled.n_outside:
        click.echo(
            f"note: {sampled.n_outside} point(s) fall outside the cube (empty values); check "
            "the points' CRS (--crs)",
            err=True,
        )
