"""One run directory, one process: an exclusive ``flock`` on ``<run_dir>/run.lock``.

The operating system releases the lock when the process ends, however it ends (kill -9 included), so a
killed run never leaves its directory stuck; a second process on the same directory refuses at once.
"""

from __future__ import annotations

import fcntl
import os
from contextlib import contextmanager
from pathlib import Path

from rnnbench.errors import ConfigError


class RunInUse(ConfigError):
    """Another process holds the run directory."""


@contextmanager
def run_lock(run_dir: Path):
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / "run.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "another process"
            raise RunInUse(
                f"{run_dir} is in use by process {holder}; wait for it to end, or use another run directory"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)  # closing releases the lock
