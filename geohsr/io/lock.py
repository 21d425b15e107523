"""One writer per output: an OS-level lock beside the output, and a note of who holds it.

``<out>.lock`` is locked with ``flock`` (through :mod:`filelock`) for as long as a run owns
``<out>`` and ``<out>.partial``; the kernel drops the lock when the process dies, however it
dies. Who holds it (pid, host, start time, command) is written to ``<out>.lock.json`` once
the lock is taken, so a second run can name the first. A lock the kernel says is held is
never taken over, even when the recorded owner looks dead. Both files are removed when
the run ends (the lock file while still locked, so a waiting run cannot keep a stale one).
"""

from __future__ import annotations

import json
import os
import shlex
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from geohsr.exceptions import OutputError
from geohsr.io.output import write_error, write_text_atomically

#: suffix of the lock file beside an output (``out.zarr`` -> ``out.zarr.lock``)
LOCK_SUFFIX = ".lock"
#: suffix of the owner record beside the lock file (``out.zarr.lock.json``)
OWNER_SUFFIX = ".lock.json"
#: longest command shown in a "locked by" message
COMMAND_CHARS = 120


def lock_path(path: str | Path) -> Path:
    """The lock file of output ``path``."""
    path = Path(path)
    return path.with_name(path.name + LOCK_SUFFIX)


def owner_path(path: str | Path) -> Path:
    """The owner record (JSON) of output ``path``."""
    path = Path(path)
    return path.with_name(path.name + OWNER_SUFFIX)


def owner_record() -> dict[str, Any]:
    """Who this process is: pid, host, start time (UTC) and command line."""
    return {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": shlex.join(sys.argv),
    }


@contextmanager
def output_lock(path: str | Path, *, what: str | None = None) -> Iterator[None]:
    """Own output ``path`` for the duration of the block, or raise :class:`OutputError`.

    ``what`` names the output in messages (default: the path). The lock and owner files
    are removed, while still locked, when the block ends.
    """
    path = Path(path)
    lock = _acquire(path, what or str(path))
    try:
        _write_owner(path)
        yield
    finally:
        with suppress(OSError):
            owner_path(path).unlink()
        if _lock_fd(lock) is not None:  # a later run can tell a deleted lock file: tidy up
            with suppress(OSError):
                lock_path(path).unlink()  # while still locked, never after
        with suppress(FileNotFoundError):  # a soft (flock-less) lock's marker is gone already
            lock.release()


def _acquire(path: Path, what: str) -> FileLock:
    """The lock of ``path``, taken without waiting, or :class:`OutputError`."""
    for _ in range(3):
        lock = FileLock(lock_path(path), timeout=0, thread_local=False)
        try:
            lock.acquire()
        except Timeout:
            raise OutputError(busy_message(path, what)) from None
        except OSError as err:
            raise write_error(path, err) from err
        fd = _lock_fd(lock)
        if fd is None or os.fstat(fd).st_nlink > 0:
            return lock
        lock.release()  # the file was deleted by a run that just ended: take the new one
    raise OutputError(busy_message(path, what))


def _lock_fd(lock: FileLock) -> int | None:
    """The descriptor ``lock`` holds, where this filelock version tells it."""
    fd = getattr(getattr(lock, "_context", None), "lock_file_fd", None)
    return fd if isinstance(fd, int) else None


def _write_owner(path: Path) -> None:
    """Record this process as the owner of ``path`` (beside the lock file)."""
    write_text_atomically(owner_path(path), json.dumps(owner_record()))


def read_owner(path: str | Path) -> dict[str, Any] | None:
    """The owner record of output ``path``, or ``None`` when there is none (or it is garbled)."""
    try:
        record = json.loads(owner_path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def pid_exists(pid: int) -> bool:
    """True when a process ``pid`` exists on this machine."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    except (OverflowError, ValueError):
        return False
    return True


def running_writer(path: str | Path) -> str | None:
    """Who holds the lock of output ``path`` right now (``pid 1234@host since ...:
    command``, or ``another process`` without an owner record), or ``None`` when no run
    is writing it (a lock file left unlocked by a killed run included). Never creates a
    lock file."""
    lock = lock_path(path)
    if not lock.exists():
        return None
    probe = FileLock(lock, timeout=0, thread_local=False)
    try:
        probe.acquire()
    except Timeout:
        owner = read_owner(path)
        return _who(owner) if owner is not None else "another process"
    except OSError:
        return None  # cannot tell (a read-only folder): as if nobody held it
    probe.release()
    return None


def _who(owner: dict[str, Any]) -> str:
    """``pid 1234@host since 2026-...: geohsr reconstruct ...`` of an owner record."""
    command = str(owner.get("command", ""))
    if len(command) > COMMAND_CHARS:
        command = command[: COMMAND_CHARS - 3] + "..."
    who = f"pid {owner.get('pid')}@{owner.get('host')} since {owner.get('started', '?')}"
    return f"{who}: {command}" if command else who


def busy_message(path: Path, what: str) -> str:
    """One line saying who holds the lock of ``path`` and what to do."""
    owner = read_owner(path)
    lock = lock_path(path)
    if owner is None:
        return (
            f"{what} is being written by another process (it holds {lock}); wait for it to "
            "finish or stop it, or choose another output name"
        )
    pid, host = owner.get("pid"), owner.get("host")
    who = _who(owner)
    if host == socket.gethostname() and isinstance(pid, int) and not pid_exists(pid):
        return (
            f"{what} is locked ({lock}) by {who}, which no longer exists, yet the lock is "
            "still held (perhaps by a process it started); stop that process, or if none is "
            f"left, delete {lock} and rerun"
        )
    return (
        f"{what} is being written by another geohsr run ({who}); wait for it to finish or "
        "stop it, or choose another output name"
    )
