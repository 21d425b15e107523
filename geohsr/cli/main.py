"""`geohsr` command line entry point.

Subcommands live in their own modules and are imported only when invoked, so
`geohsr --help` stays fast (no torch import). Any :class:`GeoHSRError`, and a subcommand's
unknown option or invalid option value, becomes a one-line message on stderr and exit code
2; warnings become one-line notes or nothing (:mod:`geohsr.cli.notes`). SIGTERM unwinds the
command like Ctrl+C (locks released, no output published unless it was complete); both
end in one line saying how to go on, and exit with 143 and 130.
"""

from __future__ import annotations

import atexit
import importlib
import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import click

from geohsr._stops import PUBLISHED_ATTR, STOP_SIGNALS
from geohsr._version import __version__
from geohsr.cli.notes import warnings_as_notes
from geohsr.exceptions import GeoHSRError

#: command name -> "module:attribute" of its click command
COMMANDS: dict[str, str] = {
    "models": "geohsr.cli.models_cmd:models",
    "info": "geohsr.cli.models_cmd:info",
    "convert": "geohsr.cli.models_cmd:convert",
    "reconstruct": "geohsr.cli.reconstruct_cmd:reconstruct",
    "preview": "geohsr.cli.preview_cmd:preview",
    "finetune": "geohsr.cli.train_cmd:finetune",
    "evaluate": "geohsr.cli.train_cmd:evaluate",
    "batch": "geohsr.cli.batch_cmd:batch",
    "sample": "geohsr.cli.sample_cmd:sample",
    "backends": "geohsr.cli.backends_cmd:backends",
}


#: keys of ``ctx.meta`` under which a command records the output it writes and whether it
#: replaces an existing one (reconstruct), for the advice after a stop
OUTPUT_META = "geohsr.output"
OVERWRITE_META = "geohsr.overwrite"
#: key of ``ctx.meta`` a command sets, while stops are still held, once its output is
#: published and reported: a stop after that finds the work done
PUBLISHED_META = "geohsr.published"

#: what a stopped command left and how to go on (reconstruct, batch, finetune)
AFTER_A_STOP = {
    "reconstruct": (
        "unfinished outputs are not published. A .zarr keeps its finished rows in "
        "DST.partial: rerun the same command with --resume; a .tif starts again with "
        "--overwrite"
    ),
    "finetune": "rerun the same command with --resume to continue from the last checkpoint",
    "batch": "rerun the same command: it skips the scenes it finished",
}
#: the advice after a stop of any other command
AFTER_ANY_STOP = "unfinished outputs are not published; rerun the command"


def after_a_stop(command: str | None, output: str | None = None, overwrite: bool = False) -> str:
    """What a user can do after ``geohsr COMMAND`` was stopped (Ctrl+C or SIGTERM), for
    its ``output`` when known (reconstruct: the cube, ``overwrite``: the run was replacing
    it; finetune: the run folder)."""
    if command == "finetune" and output is not None:
        from geohsr.training.config import LAST_CHECKPOINT

        if not (Path(output) / LAST_CHECKPOINT).exists():
            return "no checkpoint was saved yet: rerun the same command to start again"
    if command == "reconstruct" and output is not None:
        from geohsr.io.output import partial_path

        partial = partial_path(output)
        if not partial.exists():
            return f"{output} is not published; nothing was written yet: rerun the same command"
        if output.lower().endswith(".zarr"):
            how = "with --resume in place of --overwrite" if overwrite else "with --resume"
            return (
                f"{output} is not published; {partial} keeps its finished rows: rerun the "
                f"same command {how} to continue"
            )
        return f"{output} is not published; rerun the same command with --overwrite"
    return AFTER_A_STOP.get(command or "", AFTER_ANY_STOP)


def published_before_stop(err: BaseException) -> str | None:
    """The output a stopped command finished publishing while the stop waited (see
    :mod:`geohsr._stops`), else ``None``."""
    output = getattr(err, PUBLISHED_ATTR, None)
    return None if output is None else str(output)


class Terminated(BaseException):
    """SIGTERM arrived. A BaseException, like KeyboardInterrupt, so no ``except Exception``
    swallows it and every ``finally`` (locks, scratch files, threads) runs on the way out."""


@contextmanager
def sigterm_unwinds() -> Iterator[None]:
    """Within the block, SIGTERM raises :class:`Terminated` in the main thread (elsewhere,
    or without SIGTERM, nothing changes); the previous handler is restored afterwards."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, frame: object) -> None:
        raise Terminated(signum)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)


class _Console:
    """Whether this process runs the ``geohsr`` console command (:func:`main`): only then
    may a stop end the process at once (never in a program that calls :func:`cli`)."""

    active = False


_console = _Console()


class LazyGroup(click.Group):
    """A click group that imports each subcommand's module on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, attr = target.split(":")
        return getattr(importlib.import_module(module_name), attr)

    def invoke(self, ctx: click.Context):
        try:
            with sigterm_unwinds(), warnings_as_notes():
                return super().invoke(ctx)
        except GeoHSRError as err:
            click.echo(f"Error: {err}", err=True)
            ctx.exit(2)
        except click.exceptions.NoArgsIsHelpError:
            raise
        except click.UsageError as err:  # a subcommand's bad option or value: one line too
            where = err.ctx.command_path if err.ctx is not None else ctx.command_path
            click.echo(f"Error: {err.format_message()} (see `{where} --help`)", err=True)
            ctx.exit(err.exit_code)
        except (Terminated, KeyboardInterrupt) as err:
            how = "SIGTERM" if isinstance(err, Terminated) else "Ctrl+C"
            code = 128 + (signal.SIGTERM if isinstance(err, Terminated) else signal.SIGINT)
            if _console.active:  # a second Ctrl+C from here on ends it at once, quietly
                exit_at_once_on_stop(code)
            published = published_before_stop(err) or ctx.meta.get(PUBLISHED_META)
            if published is not None and ctx.invoked_subcommand == "reconstruct":
                # the stop came as the cube was published: the command's work is done
                click.echo(
                    f"note: {published} is complete; the stop ({how}) came as it was published",
                    err=True,
                )
                ctx.exit(0)
            advice = after_a_stop(
                ctx.invoked_subcommand,
                ctx.meta.get(OUTPUT_META),
                overwrite=ctx.meta.get(OVERWRITE_META, False),
            )
            if published is not None:
                advice = f"{published} was complete and is published; {advice}"
            newline = "\n" if how == "Ctrl+C" else ""  # after the ^C the terminal echoes
            click.echo(f"{newline}Error: stopped by {how}; {advice}", err=True)
            ctx.exit(code)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="geohsr")
def cli() -> None:
    """Reconstruct 31-band hyperspectral cubes (400-700 nm) from RGB imagery."""


def main() -> None:
    """The ``geohsr`` console command: :func:`cli`. Once the command is over, a stop (Ctrl+C,
    SIGTERM) during the interpreter's teardown (about a second with torch and OpenVINO
    loaded) cannot turn a finished run into 130/143 without a word, or print tracebacks:
    while Python code still runs (thread joins, exit functions) it ends the process at once
    with the command's exit code; after the last exit function, when Python no longer
    handles signals (module and library cleanup), it is ignored."""
    _console.active = True
    atexit.register(ignore_stops)  # registered first, so it runs last
    try:
        cli()  # standalone mode: always ends in SystemExit
    except SystemExit as end:
        code = end.code if isinstance(end.code, int) else (0 if end.code is None else 1)
        exit_at_once_on_stop(code)
        raise


def exit_at_once_on_stop(code: int) -> None:
    """From now on, SIGINT or SIGTERM flush stdout/stderr and end the process with ``code``."""

    def stop(signum: int, frame: object) -> None:
        for stream in (sys.stdout, sys.stderr):
            with suppress(Exception):
                stream.flush()
        os._exit(code)

    for signum in STOP_SIGNALS:
        signal.signal(signum, stop)


def ignore_stops() -> None:
    """SIGINT and SIGTERM are ignored from now on (the end of the interpreter's teardown:
    an ignored signal stays ignored after Python stops handling signals)."""
    if threading.current_thread() is threading.main_thread():
        for signum in STOP_SIGNALS:
            signal.signal(signum, signal.SIG_IGN)
