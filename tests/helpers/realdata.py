"""Tests that read the real PTB and music files: they run when RNNBENCH_DATA names the data folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

DATA_DIR = Path(os.environ["RNNBENCH_DATA"]) if os.environ.get("RNNBENCH_DATA") else None
DATA_TASKS = ("ptb", "ptb_char", "jsb", "nottingham", "musedata", "piano_midi")
SKIP_REASON = (
    "RNNBENCH_DATA is not set: point it at the PTB and music files "
    "(python -m rnnbench.data download all --data-dir DIR)"
)
needs_data = pytest.mark.skipif(DATA_DIR is None, reason=SKIP_REASON)
