"""`geohsr backends`: which inference backends and precisions this machine runs."""

from __future__ import annotations

import click

from geohsr.exceptions import GeoHSRError


@click.command()
def backends() -> None:
    """List the inference backends and precisions this machine runs, and what --backend auto
    and --precision auto choose on CPU and CUDA."""
    import torch

    from geohsr.inference.backends import (
        hardware_precisions,
        resolve_backend,
        resolve_precision,
    )
    from geohsr.inference.backends.capabilities import openvino_installed
    from geohsr.inference.backends.openvino_backend import cache_dir
    from geohsr.inference.options import PRECISIONS

    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    for device in devices:
        name = torch.cuda.get_device_name() if device == "cuda" else "CPU"
        click.echo(f"{device} ({name}):")
        names = ["torch"] + (["openvino"] if device == "cpu" else [])
        for backend in names:
            if backend == "openvino" and not openvino_installed():
                click.echo('  openvino: not installed (pip install "geohsr[openvino]")')
                continue
            precisions = ", ".join(
                p for p in PRECISIONS[1:] if p in hardware_precisions(backend, device)
            )
            click.echo(f"  {backend}: {precisions}")
        try:
            chosen = resolve_backend("auto", device)
            click.echo(f"  auto: {chosen} {resolve_precision('auto', chosen, device)}")
        except GeoHSRError as error:  # e.g. a bad GEOHSR_BACKEND: report it, list the rest
            click.echo(f"  auto: {error}")
    if not torch.cuda.is_available():
        click.echo("cuda: not available")
    click.echo(f"converted models cache: {cache_dir() / 'openvino'}")
