"""``--progress``: how a command reports progress. ``json`` prints one line
``{"done": n, "total": m}`` per update on stderr, for programs driving geohsr (the QGIS
provider parses it into its progress bar)."""

from __future__ import annotations

import json
import sys

import click

from geohsr.inference.progress import ProgressArg

#: the values of ``--progress``
PROGRESS_MODES = ("auto", "bar", "json", "none")

progress_option = click.option(
    "--progress",
    "progress_mode",
    type=click.Choice(PROGRESS_MODES),
    default="auto",
    show_default=True,
    help='auto: a bar on a terminal only; bar; none; json: one line {"done": n, "total": m} '
    "per update on stderr (windows done), for programs.",
)


def print_json_progress(done: int, total: int) -> None:
    """Write one machine-readable progress line to stderr, flushed at once."""
    sys.stderr.write(json.dumps({"done": done, "total": total}) + "\n")
    sys.stderr.flush()


def progress_arg(mode: str, quiet: bool) -> ProgressArg:
    """The library's ``progress`` argument for ``--progress mode`` (``--quiet``: no bar
    unless ``bar`` or ``json`` is asked for)."""
    if mode == "json":
        return print_json_progress
    if mode == "bar":
        return True
    if mode == "none" or quiet:
        return False
    return None
