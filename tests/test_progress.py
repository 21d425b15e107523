"""Progress reporting: a callback gets (done, total); no bar unless asked or on a terminal."""

import io

from geohsr.inference.progress import Progress


def test_callback_receives_done_and_total():
    calls = []
    progress = Progress(lambda done, total: calls.append((done, total)), 10, done_windows=4)
    progress.update(2, 1000)
    progress.update(4, 1000)
    progress.close()
    assert calls == [(6, 10), (10, 10)] and progress.bar is None


def test_no_bar_when_stderr_is_not_a_terminal(monkeypatch):
    monkeypatch.setattr("sys.stderr", io.StringIO())
    assert Progress(None, 5).bar is None
    assert Progress(False, 5).bar is None


def test_bar_shows_windows_and_megapixels_per_second(monkeypatch):
    stream = io.StringIO()
    monkeypatch.setattr("sys.stderr", stream)
    progress = Progress(True, 4)
    progress.update(2, 2_000_000)
    progress.close()
    text = stream.getvalue()
    assert "2/4" in text and "MP/s" in text and "win" in text
