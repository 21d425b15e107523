"""`geohsr models` (the registry), `geohsr info PATH` (a weights file's metadata or a cube's
summary) and
`geohsr convert SRC DST` (re-save weights, e.g. as float16 for shipping)."""

from __future__ import annotations

import json
from pathlib import Path

import click


@click.command()
def models() -> None:
    """List the registered models: parameters (default configuration) and shipped weights
    (with their size when they were trained at another configuration, e.g. half width)."""
    from geohsr.models.catalog import model_catalog

    rows = []
    for entry in model_catalog():
        shipped = [
            f"{name} ({difference})" if difference else name
            for name, difference in entry.shipped_weights.items()
        ]
        rows.append((entry.name, f"{entry.parameters:,}", ", ".join(shipped) or "no"))
    header = ("model", "parameters", "shipped weights")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        click.echo(f"{row[0]:<{widths[0]}}  {row[1]:>{widths[1]}}  {row[2]:<{widths[2]}}".rstrip())


@click.command()
@click.argument("path")
@click.option("--json", "as_json", is_flag=True, help="Print the metadata as JSON.")
def info(path: str, as_json: bool) -> None:
    """Print what PATH is: the metadata of weights (a .safetensors path or a shipped weights
    name), or the size, georeference and provenance of a geohsr cube (.zarr or .tif)."""
    from geohsr.exceptions import InputError
    from geohsr.io.output import FORMATS, PARTIAL_SUFFIX

    if path.endswith(PARTIAL_SUFFIX):
        raise InputError(_about_a_partial(path))
    if Path(path).suffix.lower() in FORMATS:
        from geohsr.io.cube_reader import cube_metadata, cube_summary

        if as_json:
            click.echo(json.dumps(cube_metadata(path), indent=2))
            return
        for key, value in cube_summary(path):
            click.echo(f"{key}: {value}")
        return
    if Path(path).is_dir():
        raise InputError(
            f"{path!r} is a folder: geohsr info reads weights (.safetensors or a shipped "
            "name) and cubes (.zarr or .tif)"
        )
    from geohsr.models.weights import file_sha256, read_metadata, resolve_weights

    weights = resolve_weights(path)
    meta = {"file": str(weights), "sha256": file_sha256(weights), **read_metadata(weights)}
    if as_json:
        click.echo(json.dumps(meta, indent=2))
        return
    for key, value in summarize_metadata(meta):
        click.echo(f"{key}: {value}")


def _about_a_partial(path: str) -> str:
    """What ``geohsr info`` says of a ``.partial`` path (never read: a scratch copy)."""
    from geohsr.io.lock import running_writer
    from geohsr.io.output import PARTIAL_SUFFIX

    output = path.removesuffix(PARTIAL_SUFFIX)
    if not Path(path).exists():
        where = f"; {output!r} is published: run geohsr info on it" if Path(output).exists() else ""
        return f"{path!r} not found{where}"
    writer = running_writer(output)
    if writer:
        return (
            f"{path!r} is the scratch copy of a geohsr run writing {output!r} ({writer}); run "
            f"geohsr info on {output!r} once that run has ended"
        )
    return (
        f"{path!r} is the scratch copy of an interrupted geohsr run writing {output!r}; "
        f"geohsr info on {output!r} says how to finish it"
    )


def summarize_metadata(meta: dict) -> list[tuple[str, str]]:
    """Readable ``(key, line)`` pairs: camera tables appear by name only (``--json`` has all)."""
    camera = meta.get("camera") or {}
    rows = []
    for key, value in meta.items():
        if key == "camera":
            names = [c["name"] for c in camera.get("cameras", [])]
            rows.append(("cameras", f"{len(names)}: {', '.join(names)}" if names else "none"))
            if sampling := camera.get("sampling"):
                rows.append(("camera_sampling", format_metadata_value(sampling)))
        elif key in ("train_scenes", "val_scenes") and isinstance(value, list):
            rows.append((key, f"{len(value)}: {', '.join(map(str, value))}"))
        elif key == "metrics" and isinstance(value, dict) and "validation" in value:
            validation = value.get("validation") or {}
            rows.append(
                ("validation", ", ".join(f"{k} {v:.4g}" for k, v in validation.items()) or "none")
            )
        else:
            rows.append((key, format_metadata_value(value)))
    return rows


def format_metadata_value(value: object) -> str:
    """One readable line: strings as is, evenly spaced number lists as a range, else JSON."""
    if isinstance(value, str):
        return value
    if (
        isinstance(value, list)
        and len(value) > 3
        and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
        and len({b - a for a, b in zip(value[:-1], value[1:], strict=True)}) == 1
    ):
        return f"{value[0]}..{value[-1]} step {value[1] - value[0]} ({len(value)} values)"
    return json.dumps(value)


@click.command()
@click.argument("src")
@click.argument("dst", type=click.Path(dir_okay=False))
@click.option("--fp32", is_flag=True, help="Keep float32 (default: float16, half the size).")
def convert(src: str, dst: str, fp32: bool) -> None:
    """Re-save weights SRC as DST (float16 by default), keeping their metadata."""
    from geohsr.models.weights import convert_weights

    path = convert_weights(src, dst, half=not fp32)
    click.echo(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")
