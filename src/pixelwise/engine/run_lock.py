"""One run per folder: an advisory lock held by the process that owns a run folder.

Why ``flock`` on a file that stays in the folder: the kernel drops the lock when its owner dies
(crash, SIGKILL, a pre-empted node), so a stale lock is recognised by simply acquiring it --
no PID guessing, no "delete the lock file by hand". The file also records who holds it, so a
second run into the same folder fails with a message naming the folder and the owning process
instead of silently mixing two runs' configs and checkpoints.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import sys
import time
from pathlib import Path

__all__ = ["LOCK_NAME", "RunLockedError", "run_lock"]

LOCK_NAME = ".lock"

# Locks this process holds, by folder: nested holders (a staged run and each stage's loop, the
# CLI and the engine) share one flock instead of conflicting with themselves.
_HELD: dict[Path, list] = {}


class RunLockedError(RuntimeError):
    """The run folder is owned by another live process; the message names the folder and it."""


def _owner(path: Path) -> str:
    try:
        info = json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        info = {}
    pid, host = info.get("pid", "?"), info.get("host", "?")
    since = info.get("since")
    when = time.strftime(" since %Y-%m-%d %H:%M:%S", time.localtime(since)) if isinstance(since, (int, float)) else ""
    command = f" ({info['command']})" if info.get("command") else ""
    return f"process {pid} on {host}{when}{command}"


class run_lock:  # noqa: N801 -- used as a context manager: ``with run_lock(folder):``
    """Hold the lock of ``folder`` (created if missing) for the ``with`` block.

    Raises :class:`RunLockedError` when another live process holds it. A lock left behind by a
    dead process is taken over (the kernel released it); ``on_stale`` is told whose it was.
    """

    def __init__(self, folder: str | os.PathLike, *, on_stale=None) -> None:
        self.folder = Path(folder)
        self.on_stale = on_stale

    def __enter__(self) -> "run_lock":
        self.folder.mkdir(parents=True, exist_ok=True)
        key = self.folder.resolve()
        held = _HELD.get(key)
        if held is not None:
            held[1] += 1
            return self
        path = self.folder / LOCK_NAME
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise RunLockedError(f"{self.folder}: this run folder is in use by {_owner(path)}; wait for that run "
                                 f"to finish (or stop it), or choose another folder") from None
        previous = os.read(fd, 4096)
        if previous.strip() and self.on_stale is not None:
            self.on_stale(f"{self.folder}: took over the lock left by {_owner(path)}, which no longer runs")
        record = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.time(),
                  "command": " ".join(sys.argv)[:300]}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(record).encode(), 0)
        _HELD[key] = [fd, 1]
        return self

    def __exit__(self, *exc) -> None:
        key = self.folder.resolve()
        held = _HELD.get(key)
        if held is None:
            return
        held[1] -= 1
        if held[1] == 0:
            del _HELD[key]
            fd = held[0]
            os.ftruncate(fd, 0)  # empty = released cleanly (a non-empty unlocked file = its owner died)
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
