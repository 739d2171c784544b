"""The files every run leaves in its directory; reports read only these.

* ``config.yaml``: the fully resolved configuration of the run.
* ``metrics.jsonl``: one JSON object per evaluation, in order (see README, "Run files").
* ``summary.json``: written at the end (and rewritten if the run is resumed): status, best and final
  metrics, test metrics at the best validation point, seed, device, sizes, versions, wall time.
* ``model.pt``: the weights with the best validation score, with the resolved config beside them.
* ``checkpoint.pt``: the state to resume from (``rnnbench.checkpoint``), rewritten at every evaluation.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

import rnnbench


class RunFiles:
    def __init__(self, run_dir: str | Path):
        self.dir = Path(run_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.config, self.metrics = self.dir / "config.yaml", self.dir / "metrics.jsonl"
        self.summary, self.model = self.dir / "summary.json", self.dir / "model.pt"
        self.checkpoint = self.dir / "checkpoint.pt"

    def write_config(self, cfg: DictConfig) -> None:
        atomic_write(self.config, OmegaConf.to_yaml(cfg, resolve=True))

    def start_metrics(self) -> None:
        self.metrics.write_text("")

    def append_metrics(self, record: dict) -> None:
        with self.metrics.open("a") as f:
            f.write(json.dumps(record) + "\n")

    def keep_metrics_until(self, step: int) -> None:
        """Drops lines written after a checkpoint at ``step``: the resumed run writes them again."""
        if not self.metrics.exists():
            return
        lines = self.metrics.read_text().splitlines()
        kept = [
            x
            for x in lines
            if x.strip() and json.loads(x)["step"] <= step and json.loads(x)["split"] != "test"
        ]
        atomic_write(self.metrics, "".join(x + "\n" for x in kept))

    def read_summary(self) -> dict | None:
        return json.loads(self.summary.read_text()) if self.summary.exists() else None

    def write_summary(self, summary: dict) -> None:
        atomic_write(self.summary, json.dumps(summary, indent=2) + "\n")

    def save_model(self, state_dict: dict, cfg: DictConfig) -> None:
        tmp = self.model.with_suffix(".tmp")
        torch.save({"model": state_dict, "config": OmegaConf.to_container(cfg, resolve=True)}, tmp)
        os.replace(tmp, self.model)


def atomic_write(path: Path, text: str) -> None:
    """Readers never see half a file: write beside it, then rename over it."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def versions() -> dict:
    return {
        "rnnbench": rnnbench.__version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
    }


def git_commit() -> str | None:
    """The commit of the rnnbench source tree, when it is a git checkout."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None
