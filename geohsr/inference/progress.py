"""Progress reporting for scene reconstruction: a tqdm bar on a terminal (windows, MP/s,
ETA), a caller's callback ``(windows_done, windows_total)``, or nothing."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

from tqdm import tqdm

ProgressArg = bool | None | Callable[[int, int], None]


def stderr_is_terminal() -> bool:
    """True when stderr is a terminal: progress bars go there only, never into logs."""
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):  # replaced or closed stderr
        return False


class Progress:
    """Counts finished windows and output pixels.

    ``progress``: ``True`` shows a bar, ``False`` nothing, ``None`` a bar only when stderr
    is a terminal; a callable is called with ``(windows_done, windows_total)``.
    """

    def __init__(self, progress: ProgressArg, total_windows: int, done_windows: int = 0):
        self.total = total_windows
        self.done = done_windows
        self.pixels = 0
        self.started = time.perf_counter()
        self.callback = progress if callable(progress) else None
        show = stderr_is_terminal() if progress is None else progress is True
        self.bar = (
            tqdm(
                total=total_windows,
                initial=done_windows,
                unit="win",
                dynamic_ncols=True,
                desc="reconstruct",
                file=sys.stderr,
            )
            if show
            else None
        )

    def update(self, windows: int, pixels: int) -> None:
        """``windows`` more windows done, ``pixels`` more output pixels written."""
        self.done += windows
        self.pixels += pixels
        if self.bar is not None:
            rate = self.pixels / 1e6 / max(time.perf_counter() - self.started, 1e-9)
            self.bar.set_postfix_str(f"{rate:.2f} MP/s", refresh=False)
            self.bar.update(windows)
        if self.callback is not None:
            self.callback(self.done, self.total)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
