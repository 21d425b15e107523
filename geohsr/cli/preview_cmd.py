"""`geohsr preview CUBE OUT.png`: input RGB, cube rendered back to RGB, their difference,
spectra at representative (or given) pixels."""

from __future__ import annotations

import click

from geohsr.cli.options import parse_numbers


@click.command()
@click.argument("cube", type=click.Path(path_type=str))
@click.argument("out_png", type=click.Path(path_type=str))
@click.option(
    "--rgb",
    "rgb_path",
    type=click.Path(path_type=str),
    help="The input RGB raster the cube was made from: shown, and compared with the cube.",
)
@click.option(
    "--pixels",
    multiple=True,
    callback=lambda ctx, param, values: tuple(parse_numbers(int, 2)(ctx, param, v) for v in values),
    help="Pixel x,y (column,row) whose spectrum to plot; repeat for more [auto: --count].",
)
@click.option(
    "--count",
    type=click.IntRange(1, 10),
    default=4,
    show_default=True,
    help="Representative pixels picked when no --pixels are given (spectral clusters).",
)
def preview(cube, out_png, rgb_path, pixels, count) -> None:
    """Write OUT.png: a picture of CUBE (.zarr or .tif) to check at a glance.

    With --rgb (the raster the cube was made from) it also shows |input - cube rendered
    back to RGB| through the cube's recorded camera (CIE 1964 when it was unknown).
    """
    from geohsr.preview import make_preview

    shown = make_preview(cube, out_png, rgb_path=rgb_path, pixels=pixels or None, count=count)
    click.echo(f"wrote {out_png} (spectra at {', '.join(f'{x},{y}' for x, y in shown)})")
