"""`geohsr batch INPUTS... --out-dir DIR`: many scenes on a dask cluster, resumable."""

from __future__ import annotations

from pathlib import Path

import click

from geohsr.batch.cluster import DEFAULT_RETRIES
from geohsr.batch.inputs import OUTPUT_SUFFIXES
from geohsr.cli.options import options_from_params, reconstruct_options


@click.command()
@click.argument("inputs", nargs=-1, required=True)
@click.option(
    "--out-dir",
    "-o",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for the cubes (<name>.zarr or .tif) and geohsr_batch_report.json.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(sorted(OUTPUT_SUFFIXES)),
    default="zarr",
    show_default=True,
    help="Output per scene: Zarr or Cloud-Optimised GeoTIFF.",
)
@reconstruct_options
@click.option(
    "--scheduler",
    metavar="tcp://HOST:PORT",
    help="Use this running dask scheduler instead of starting a local cluster.",
)
@click.option(
    "--scheduler-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Use the scheduler described by this file (`dask scheduler --scheduler-file`).",
)
@click.option(
    "--n-workers",
    type=click.IntRange(min=1),
    help="Local cluster workers [one per GPU, else cores // threads-per-worker].",
)
@click.option(
    "--threads-per-worker",
    type=click.IntRange(min=1),
    help="torch threads of each local worker [cores / GPUs; CPU: 4 or fewer].",
)
@click.option(
    "--retries",
    type=click.IntRange(min=0),
    default=DEFAULT_RETRIES,
    show_default=True,
    help="Retries of a scene after a transient I/O error.",
)
@click.option(
    "--split-scenes",
    type=click.FloatRange(min=0),
    metavar="AREA",
    help="Split Zarr scenes larger than AREA megapixels into independent chunk tasks "
    "(--chunk-size), so giant scenes share the workers with small ones.",
)
@click.option("--overwrite", is_flag=True, help="Redo scenes whose outputs are complete.")
@click.option("--quiet", "-q", is_flag=True, help="No progress output; only the summary.")
@click.pass_context
def batch(
    ctx: click.Context,
    inputs,
    out_dir,
    fmt,
    scheduler,
    scheduler_file,
    n_workers,
    threads_per_worker,
    retries,
    split_scenes,
    overwrite,
    quiet,
    **params,
) -> None:
    """Reconstruct every scene in INPUTS into --out-dir on a dask cluster.

    INPUTS are raster files, folders, globs ('scenes/*.tif'), text or CSV manifests (one
    path per line; CSV: a 'path' and an optional 'name' column) or STAC item JSON files
    (their RGB asset). Scene NAME is written to OUT_DIR/NAME.zarr (or .tif). Re-running
    the same command skips finished scenes and redoes missing or failed ones; a failing
    scene is reported and does not stop the others. Exit code 1 if any scene failed, 2 if
    the batch could not run (e.g. another batch is writing into OUT_DIR). Progress bars
    show on a terminal only; logs get one line per scene.
    """
    from geohsr.batch import REPORT_FILENAME, ClusterOptions, batch_reconstruct

    weights, options = options_from_params(params)
    if scheduler is None and scheduler_file is None:  # local workers run on this machine
        from geohsr.inference.backends import check_settings

        check_settings(options.device, options.backend, options.precision)
    report = batch_reconstruct(
        inputs,
        out_dir,
        weights=weights,
        fmt=fmt,
        options=options,
        cluster=ClusterOptions(
            scheduler=scheduler,
            scheduler_file=scheduler_file,
            n_workers=n_workers,
            threads_per_worker=threads_per_worker,
        ),
        overwrite=overwrite,
        retries=retries,
        show_progress=not quiet,
        log=None if quiet else lambda line: click.echo(line, err=True),
        split_scenes=split_scenes,
    )
    if report.path is None:
        click.echo(
            f"nothing to do: all {len(report.records)} outputs in {out_dir} are complete "
            f"(--overwrite redoes them); {out_dir / REPORT_FILENAME} is left as it was"
        )
        return
    click.echo(report.summary_text())
    click.echo(f"report: {report.path}")
    if not report.ok:
        ctx.exit(1)
