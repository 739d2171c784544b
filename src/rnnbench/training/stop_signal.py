"""SIGINT/SIGTERM as a flag that a training loop checks between steps, so that a stopped run saves its
checkpoint and a rerun continues it."""

from __future__ import annotations

import signal
import threading


class StopSignal:
    """Turns SIGINT/SIGTERM into a flag the loop checks between steps (main thread only). A second
    signal raises KeyboardInterrupt at once; the last checkpoint stays intact."""

    def __init__(self):
        self.received: int | None = None
        self.previous = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self.previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.received is not None:
            raise KeyboardInterrupt
        self.received = signum

    def __exit__(self, *exc):
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)
