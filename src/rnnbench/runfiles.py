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
import math
import os
import platform
import subprocess
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

import rnnbench
from rnnbench.errors import ConfigError

WAY_OUT = "use another run directory, or trainer.resume=never to start over"


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
            f.write(to_json(record) + "\n")

    def keep_metrics_until(self, step: int) -> None:
        """Drops lines written after a checkpoint at ``step``: the resumed run writes them again. A last
        line cut short by a kill is dropped too; any other unreadable line is an error."""
        if not self.metrics.exists():
            return
        lines = [x for x in self.metrics.read_text(errors="replace").splitlines() if x.strip()]
        records = []
        for number, line in enumerate(lines, 1):
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                if number == len(lines):
                    break  # cut short by a kill: the resumed run writes it again
                raise ConfigError(f"{self.metrics} line {number} is not JSON; {WAY_OUT}") from None
            if not isinstance(record, dict) or not {"step", "split"} <= record.keys():
                raise ConfigError(f"{self.metrics} line {number} is not an rnnbench metrics line; {WAY_OUT}")
            records.append(record)
        kept = [r for r in records if r["step"] <= step and r["split"] != "test" and not r.get("at_limit")]
        atomic_write(self.metrics, "".join(to_json(r) + "\n" for r in kept))

    def read_summary(self) -> dict:
        try:
            summary = json.loads(self.summary.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            reason = getattr(error, "strerror", None) or str(error).splitlines()[0]
            raise ConfigError(f"{self.summary} cannot be read ({reason}); {WAY_OUT}") from None
        if not isinstance(summary, dict) or "status" not in summary:
            raise ConfigError(f"{self.summary} is not an rnnbench summary; {WAY_OUT}")
        return summary

    def write_summary(self, summary: dict) -> None:
        atomic_write(self.summary, to_json(summary, indent=2) + "\n")

    def save_model(self, state_dict: dict, cfg: DictConfig) -> None:
        tmp = self.model.with_suffix(".tmp")
        torch.save({"model": state_dict, "config": OmegaConf.to_container(cfg, resolve=True)}, tmp)
        os.replace(tmp, self.model)

    def load_model(self) -> dict:
        """The best weights, read without running code; a foreign or damaged file is a one-line error."""
        try:
            saved = torch.load(self.model, map_location="cpu", weights_only=True)
        except Exception as error:  # unpickling refused, truncated or not a torch file at all
            reason = (str(error).strip().splitlines() or [type(error).__name__])[0][:160]
            raise ConfigError(f"{self.model} is not a readable rnnbench model file ({reason})") from None
        if not isinstance(saved, dict) or not isinstance(saved.get("model"), dict):
            raise ConfigError(f"{self.model} is not an rnnbench model file (it has no weights under 'model')")
        return saved["model"]


def finite(value):
    """Strict JSON has no NaN or infinity: a diverged run's non-finite numbers are written as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    return value


def to_json(value, indent=None) -> str:
    return json.dumps(finite(value), indent=indent, allow_nan=False)


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
