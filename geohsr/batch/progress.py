"""Progress of a batch: a line per finished scene, and on a terminal an overall bar and a
bar per running scene (never bars in a log file)."""

from __future__ import annotations

import sys
import threading
from typing import Any

from tqdm.auto import tqdm

from geohsr.batch.report import SceneRecord
from geohsr.inference.progress import stderr_is_terminal


class BatchProgress:
    """Shows batch progress on stderr.

    The overall bar counts finished scenes (the ``complete`` ones, skipped, start it off);
    scene bars count the windows of scenes being reconstructed and are fed by dask events
    (:meth:`on_event`, called from the client's event thread); :meth:`finished` closes a
    scene's bar and prints its one-line outcome. ``enabled=False`` prints nothing at all;
    ``bars`` (default: when stderr is a terminal) shows the bars, otherwise only the lines.
    """

    def __init__(
        self, total: int, *, complete: int = 0, enabled: bool = True, bars: bool | None = None
    ) -> None:
        self.enabled = enabled
        self.bars = enabled and (stderr_is_terminal() if bars is None else bars)
        self._lock = threading.Lock()
        self._scene_bars: dict[str, tqdm] = {}
        self._overall = tqdm(
            total=total,
            initial=complete,
            desc="scenes",
            unit="scene",
            position=0,
            disable=not self.bars,
            file=sys.stderr,
            dynamic_ncols=True,
        )
        if complete and enabled:
            self._overall.write(
                f"skipping {complete} scene(s) whose outputs are complete", file=sys.stderr
            )

    def on_event(self, event: tuple[float, dict[str, Any]]) -> None:
        """Handle one ``(timestamp, {"scene", "done", "total"})`` progress event."""
        _, message = event
        with self._lock:
            if not self.bars:
                return
            bar = self._scene_bars.get(message["scene"])
            if bar is None:
                bar = tqdm(
                    total=message["total"],
                    desc=message["scene"],
                    unit="win",
                    leave=False,
                    file=sys.stderr,
                    dynamic_ncols=True,
                )
                self._scene_bars[message["scene"]] = bar
            bar.update(message["done"] - bar.n)

    def finished(self, record: SceneRecord) -> None:
        """Close the scene's bar, print its outcome and advance the overall bar."""
        with self._lock:
            bar = self._scene_bars.pop(record.scene, None)
            if bar is not None:
                bar.close()
            if self.enabled:
                self._overall.write(describe(record), file=sys.stderr)
            self._overall.update(1)

    def close(self) -> None:
        with self._lock:
            for bar in self._scene_bars.values():
                bar.close()
            self._scene_bars.clear()
            self._overall.close()

    def __enter__(self) -> BatchProgress:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def describe(record: SceneRecord) -> str:
    """One line for a finished scene: status, name, time and throughput or the error."""
    if record.status == "done":
        rate = record.megapixels / record.seconds if record.seconds > 0 else 0.0
        return (
            f"done     {record.scene}  {record.megapixels:.2f} MP in {record.seconds:.1f} s "
            f"({rate:.3f} MP/s, worker {record.worker})"
        )
    return f"FAILED   {record.scene}  {record.error}"
