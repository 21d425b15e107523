"""`geohsr models` (the registry) and `geohsr info WEIGHTS` (a weights file's metadata)."""

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
    for key, value in meta.items():
        text = value if isinstance(value, str) else json.dumps(value)
        click.echo(f"{key}: {text}")
