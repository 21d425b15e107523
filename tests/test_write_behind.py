"""The write-behind thread of the single-process pass: order, bounded waiting, and that a
progress record never follows a failed write."""

from __future__ import annotations

import threading

import pytest

from geohsr.exceptions import OutputError
from geohsr.inference.write_behind import WriteBehind


def test_then_does_not_wait_and_keeps_order(tmp_path):
    behind = WriteBehind(tmp_path / "out.zarr", resumable=True)
    release, calls = threading.Event(), []
    behind.submit(lambda: (release.wait(5), calls.append("write")))
    behind.then(calls.append, "band done")  # returns although the write is still running
    assert calls == []
    release.set()
    behind.drain()
    behind.close()
    assert calls == ["write", "band done"]


def test_a_failed_write_is_never_followed_by_its_record(tmp_path):
    behind = WriteBehind(tmp_path / "out.zarr", resumable=True)
    recorded = []

    def failing_write():
        raise OSError(28, "No space left on device")

    behind.submit(failing_write)
    behind.then(recorded.append, 0)
    with pytest.raises(OutputError, match="No space left"):
        behind.drain()
    behind.close()
    assert recorded == []  # the band is not recorded as written, so --resume redoes it
