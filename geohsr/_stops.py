"""Stops (Ctrl+C, SIGTERM) that arrive while a finished output is being published wait
until it is, so a stopped run never leaves a cube without its sidecars, nor reports a
cube it did publish as unpublished.

:func:`publishing` wraps a whole run; :func:`hold_stops`, called where the output is
renamed into place, starts the hold, which lasts to the end of the run. A stop that
arrived meanwhile is then delivered to the handler it would have reached (Python's
``KeyboardInterrupt``, the CLI's SIGTERM handler, or the default that ends the process),
and the exception it raises carries :data:`PUBLISHED_ATTR`, the published path. Only
the main thread handles signals; elsewhere nothing changes.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from contextvars import ContextVar
from pathlib import Path
from types import FrameType

#: attribute set on the exception of a stop held while this output was published
PUBLISHED_ATTR = "published_output"
#: the signals that stop a run (and are held while it publishes)
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class _Hold:
    """The signals held for one run and the handlers they replaced."""

    def __init__(self, output: Path) -> None:
        self.output = output
        self.previous: dict[int, object] = {}
        self.arrived: list[int] = []

    def start(self) -> None:
        if self.previous or threading.current_thread() is not threading.main_thread():
            return
        for signum in STOP_SIGNALS:
            self.previous[signum] = signal.signal(signum, self._record)

    def _record(self, signum: int, frame: FrameType | None) -> None:
        self.arrived.append(signum)

    def release(self) -> None:
        """Restore the handlers, then deliver the first stop that arrived (if any)."""
        for signum, handler in self.previous.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)
        if not self.arrived:
            return
        signum = self.arrived[0]
        handler = self.previous[signum]
        if not callable(handler):  # SIG_DFL ends the process (the output is complete)
            os.kill(os.getpid(), signum)
            return
        try:
            handler(signum, None)
        except BaseException as err:
            setattr(err, PUBLISHED_ATTR, self.output)
            raise


_current: ContextVar[_Hold | None] = ContextVar("geohsr_publish_hold", default=None)


@contextmanager
def publishing(output: str | Path) -> Iterator[None]:
    """Within the block, :func:`hold_stops` holds SIGINT/SIGTERM until the block ends
    (also when it ends by an error, which then wins over the stop). Nested in another
    ``publishing`` block, the outer one holds them (the command line's reconstruct holds
    a stop until it has printed its summary)."""
    if _current.get() is not None:
        yield
        return
    hold = _Hold(Path(output))
    token = _current.set(hold)
    try:
        yield
    except BaseException:
        _current.reset(token)
        with suppress(BaseException):  # the block's own error is the one to report
            hold.release()
        raise
    _current.reset(token)
    hold.release()


def hold_stops() -> None:
    """From here to the end of the enclosing :func:`publishing` block (if any), a stop
    waits: call it right before the output is renamed into place."""
    hold = _current.get()
    if hold is not None:
        hold.start()
