"""`geohsr models` (the registry), `geohsr info WEIGHTS` (a weights file's metadata) and
`geohsr convert SRC DST` (re-save weights, e.g. as float16 for shipping)."""

from __future__ import annotations

import json

import click


@click.command()
def models() -> None:
    """List the registered models: parameters and shipped weights."""
    from geohsr.models.catalog import model_catalog

    rows = [
        (entry.name, f"{entry.parameters:,}", ", ".join(entry.shipped_weights) or "no")
        for entry in model_catalog()
    ]
    header = ("model", "parameters", "shipped weights")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        click.echo(f"{row[0]:<{widths[0]}}  {row[1]:>{widths[1]}}  {row[2]:<{widths[2]}}".rstrip())


@click.command()
@click.argument("weights")
@click.option("--json", "as_json", is_flag=True, help="Print the metadata as JSON.")
def info(weights: str, as_json: bool) -> None:
    """Print the metadata of WEIGHTS (a .safetensors path or a shipped weights name)."""
    from geohsr.models.weights import file_sha256, read_metadata, resolve_weights

    path = resolve_weights(weights)
    meta = {"file": str(path), "sha256": file_sha256(path), **read_metadata(path)}
    if as_json:
        click.echo(json.dumps(meta, indent=2))
        return
    for key, value in summarize_metadata(meta):
        click.echo(f"{key}: {value}")


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
