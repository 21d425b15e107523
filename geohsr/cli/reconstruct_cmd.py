"""`geohsr reconstruct SRC DST`: one RGB raster -> one 31-band cube (.zarr or .tif)."""

from __future__ import annotations

import click

from geohsr._stops import publishing
from geohsr.cli.cluster_options import reconstruct_on, scene_cluster_options
from geohsr.cli.main import OUTPUT_META, OVERWRITE_META, PUBLISHED_META
from geohsr.cli.options import options_from_params, reconstruct_options
from geohsr.cli.progress_output import progress_arg, progress_option
from geohsr.inference.value_range import value_notes


@click.command()
@click.argument("src", type=click.Path(path_type=str))
@click.argument("dst", type=click.Path(path_type=str))
@reconstruct_options
@scene_cluster_options
@click.option(
    "--overwrite",
    is_flag=True,
    help="Replace an existing output, or start again over an interrupted run's DST.partial.",
)
@click.option("--resume", is_flag=True, help="Continue an interrupted .zarr run (DST.partial).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar and no summary.")
@progress_option
def reconstruct(
    src: str, dst: str, overwrite: bool, resume: bool, quiet: bool, progress_mode: str, **params
) -> None:
    """Reconstruct a 31-band cube (400-700 nm) from the RGB raster SRC into DST.

    DST ends in .zarr (Zarr) or .tif (Cloud-Optimised GeoTIFF); it keeps SRC's CRS and
    pixel grid (or its ground control points / RPCs; --warp resamples to a map grid).
    Masked/nodata pixels become NaN (or 65535 with --dtype uint16). The progress bar shows
    on a terminal only (--progress json: one JSON line per update on stderr).
    """
    meta = click.get_current_context().meta  # for the advice after a stop
    meta[OUTPUT_META], meta[OVERWRITE_META] = dst, overwrite
    with publishing(dst):  # a stop while publishing waits until the summary is out
        _reconstruct(src, dst, overwrite, resume, quiet, progress_mode, params)
        meta[PUBLISHED_META] = dst  # a stop from now on finds the work done


def _reconstruct(
    src: str, dst: str, overwrite: bool, resume: bool, quiet: bool, progress_mode: str, params
) -> None:
    """The body of :func:`reconstruct`."""
    weights, options = options_from_params(params)
    result = reconstruct_on(
        params,
        src,
        dst,
        weights=weights,
        options=options,
        overwrite=overwrite,
        resume=resume,
        progress=progress_arg(progress_mode, quiet),
        log=None if quiet else lambda line: click.echo(line, err=True),
    )
    for line in value_notes(result.values, options.camera):  # even when quiet: a warning
        click.echo(f"note: {line}", err=True)
    if quiet:
        return
    if result.already_complete:
        click.echo(f"{result.output} is already complete (same input and settings): nothing to do")
        return
    _, height, width = result.shape
    resumed = " (resumed: the rest was done before)" if result.resumed_from_band else ""
    click.echo(
        f"wrote {result.output}: 31 x {height} x {width} ({result.megapixels:.2f} MP), "
        f"{result.n_windows} windows in {result.seconds:.1f} s{resumed} "
        f"({result.megapixels_per_s:.2f} MP/s)"
    )
    if result.chunks:
        click.echo(
            f"{result.chunks} independent chunks; their borders cost {result.redundancy:.1%} "
            "extra windows"
        )
    if result.georeference in ("gcps", "rpcs"):
        kind = "ground control points" if result.georeference == "gcps" else "RPCs"
        click.echo(
            f"note: the input is georeferenced by {kind} only; the output keeps them (no map "
            "grid). For a map grid pass --warp CRS (e.g. --warp EPSG:32633 or --warp gcps)"
        )
    elif result.crs is None:
        click.echo("note: the input has no CRS, so the output is not georeferenced either")
