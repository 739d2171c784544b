"""``python -m rnnbench`` in a subprocess, and the run folder it wrote."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def rnnbench(*args, cwd):
    env = {**os.environ, "HYDRA_FULL_ERROR": "0"}
    return subprocess.run(
        [sys.executable, "-m", "rnnbench", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def run_dir(tmp_path: Path) -> Path:
    (found,) = (tmp_path / "results" / "runs").glob("*/*/*/config.yaml")
    return found.parent
