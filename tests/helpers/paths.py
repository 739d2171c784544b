"""The checkout's folders, for tests that read its configs, examples and scripts."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "configs"
EXAMPLES = ROOT / "examples"
SCRIPTS = ROOT / "scripts"
