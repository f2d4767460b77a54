"""Stop requests from Ctrl-C and from cluster schedulers, turned into a checkpoint and a clean exit.

SIGINT (Ctrl-C) and SIGTERM (what Slurm, Kubernetes and ``kill`` send before SIGKILL) both only
set a flag: the training loop stops at the next step boundary, saves a checkpoint and returns
``interrupted``. A second signal while that checkpoint is being written is noted and otherwise
ignored, so it cannot leave a half-written file; a second signal at any other time raises
``KeyboardInterrupt`` at once (the last completed step is still saved unless it hit the middle of
an optimizer update).
"""

from __future__ import annotations

import signal
import sys
import threading
from contextlib import contextmanager

__all__ = ["EXIT_CODES", "StopSignals"]

HANDLED = (signal.SIGINT, signal.SIGTERM)
# Shell convention: 128 + signal number.
EXIT_CODES = {"SIGINT": 130, "SIGTERM": 143}


class StopSignals:
    """Context manager that installs the handlers (main thread only) and restores the previous
    ones on exit. Handlers an application installed itself are left alone for SIGINT (it then
    gets the ``KeyboardInterrupt`` path); SIGTERM is taken over unless it is ignored."""

    def __init__(self) -> None:
        self.received: str | None = None  # name of the first signal
        self._saving = False
        self._previous: dict[int, object] = {}

    @property
    def requested(self) -> bool:
        return self.received is not None

    def __enter__(self) -> "StopSignals":
        if threading.current_thread() is not threading.main_thread():
            return self
        for sig in HANDLED:
            current = signal.getsignal(sig)
            ours = current is signal.default_int_handler if sig == signal.SIGINT else current in (signal.SIG_DFL, None)
            if ours:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        name = signal.Signals(signum).name
        if self._saving:
            print(f"{name} received while a checkpoint is being written: finishing the save first", file=sys.stderr,
                  flush=True)
            return
        if self.received is not None:
            raise KeyboardInterrupt
        self.received = name

    @contextmanager
    def saving(self):
        """Signals inside this block are deferred: a checkpoint write is never cut in half."""
        self._saving = True
        try:
            yield
        finally:
            self._saving = False

    def __exit__(self, *exc) -> None:
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)
        self._previous.clear()
