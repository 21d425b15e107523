"""`geohsr reconstruct SRC DST`: one RGB raster -> one 31-band cube (.zarr or .tif)."""

from __future__ import annotations

import click

from geohsr.inference.options import DEFAULT_WEIGHTS, OUTPUT_DTYPES


def parse_numbers(kind: type, count: int | None):
    """A click callback turning ``"3,2,1"`` into a tuple of ``kind``."""

    def callback(ctx: click.Context, param: click.Parameter, value: str | None):
        if value is None:
            return None
        try:
            numbers = tuple(kind(part) for part in value.split(","))
        except ValueError:
            raise click.BadParameter(f"expected comma-separated numbers, got {value!r}") from None
        if count is not None and len(numbers) != count:
            raise click.BadParameter(f"expected {count} comma-separated numbers, got {value!r}")
        return numbers

    return callback


@click.command()
@click.argument("src", type=click.Path(path_type=str))
@click.argument("dst", type=click.Path(path_type=str))
@click.option(
    "--weights",
    default=DEFAULT_WEIGHTS,
    show_default=True,
    help="Shipped weights name or a .safetensors file.",
)
@click.option("--tile", default=512, show_default=True, help="Window size (pixels).")
@click.option("--overlap", default=64, show_default=True, help="Window overlap (pixels).")
@click.option("--batch-size", type=int, help="Windows per model call [cpu: 2, cuda: 8].")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--threads", type=int, help="torch CPU threads [torch default].")
@click.option(
    "--bands",
    callback=parse_numbers(int, 3),
    help="1-based red,green,blue bands of a multispectral file, e.g. 3,2,1.",
)
@click.option(
    "--scale",
    type=float,
    help="Divide raw values by this (needed for 16-bit/float input, e.g. 65535).",
)
@click.option(
    "--stretch",
    callback=parse_numbers(float, 2),
    help="Percentile stretch low,high instead of --scale, e.g. 2,98.",
)
@click.option("--nodata", type=float, help="Extra raw value to treat as missing.")
@click.option(
    "--dtype",
    type=click.Choice(OUTPUT_DTYPES),
    default="float32",
    show_default=True,
    help="uint16 stores reflectance x 10000 (65535 = nodata).",
)
@click.option(
    "--zarr-format",
    type=click.Choice(["2", "3"]),
    default="2",
    show_default=True,
    help="Zarr format (2 is readable by GDAL).",
)
@click.option("--overwrite", is_flag=True, help="Replace an existing output.")
@click.option("--resume", is_flag=True, help="Continue an interrupted .zarr run.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar and no summary.")
def reconstruct(
    src,
    dst,
    weights,
    tile,
    overlap,
    batch_size,
    device,
    threads,
    bands,
    scale,
    stretch,
    nodata,
    dtype,
    zarr_format,
    overwrite,
    resume,
    quiet,
) -> None:
    """Reconstruct a 31-band cube (400-700 nm) from the RGB raster SRC into DST.

    DST ends in .zarr (Zarr) or .tif (Cloud-Optimised GeoTIFF); it keeps SRC's CRS and
    pixel grid. Masked/nodata pixels become NaN (or 65535 with --dtype uint16).
    """
    from geohsr.inference.options import ReconstructOptions
    from geohsr.inference.scene import reconstruct_scene

    options = ReconstructOptions(
        tile=tile,
        overlap=overlap,
        batch_size=batch_size,
        device=device,
        threads=threads,
        bands=bands,
        scale=scale,
        stretch=stretch,
        nodata=nodata,
        dtype=dtype,
        zarr_format=int(zarr_format),
    )
    result = reconstruct_scene(
        src,
        dst,
        weights=weights,
        options=options,
        overwrite=overwrite,
        resume=resume,
        progress=False if quiet else None,
    )
    if quiet:
        return
    _, height, width = result.shape
    click.echo(
        f"wrote {result.output}: 31 x {height} x {width} ({result.megapixels:.2f} MP), "
        f"{result.n_windows} windows in {result.seconds:.1f} s "
        f"({result.megapixels_per_s:.2f} MP/s)"
    )
    if result.crs is None:
        click.echo("note: the input has no CRS, so the output is not georeferenced either")
