"""The files every run leaves in its directory; reports read only these.

* ``config.yaml``: the fully resolved configuration of the run.
* ``metrics.jsonl``: one JSON object per evaluation, in order (see docs/runs.md, "Run files").
* ``summary.json``: written at the end (and rewritten if the run is resumed): status, best and final
  metrics, test metrics (of the weights ``trainer.test_weights`` names: by default the best validation
  point's), seed, device, sizes, versions, wall time.
* ``model.pt``: the weights the test split scored (by default those with the best validation score),
  with the resolved config beside them.
* ``checkpoint.pt``: the state to resume from (``rnnbench.training.checkpoint``), rewritten at every
  evaluation.
* ``tensorboard/``: with ``trainer.logger=tensorboard``, event files mirroring metrics.jsonl as it is
  written (``RunFiles.mirror``, ``rnnbench.training.loggers``).

Every write is whole or not at all: a file is written beside its old version and renamed over it, a
metrics line is appended whole or cut off again. A write that fails (disk full, quota, read-only
folder) is a one-line ``RunFileError`` naming the file (``rnnbench.errors.write``), and leaves no
temporary file behind.
"""

from __future__ import annotations

import contextlib
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
from rnnbench.errors.write import writing

WAY_OUT = "use another run directory, or trainer.resume=never to start over"


class RunFiles:
    def __init__(self, run_dir: str | Path):
        self.dir = Path(run_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.config, self.metrics = self.dir / "config.yaml", self.dir / "metrics.jsonl"
        self.summary, self.model = self.dir / "summary.json", self.dir / "model.pt"
        self.checkpoint = self.dir / "checkpoint.pt"
        self.mirror = (
            None  # a logger (rnnbench.training.loggers) that sees each metrics line once it is written
        )
        # this session's metrics lines: those kept from earlier sessions, and the first step whose lines
        # it writes anew (what a mirror of an earlier session shows from that step on is out of date)
        self.kept: list[dict] = []
        self.rewritten_from = 0

    def write_config(self, cfg: DictConfig) -> None:
        atomic_write(self.config, OmegaConf.to_yaml(cfg, resolve=True))

    def start_metrics(self) -> None:
        with writing(self.metrics):
            self.metrics.write_text("")
        self.kept, self.rewritten_from = [], 0

    def append_metrics(self, record: dict) -> None:
        """Appends one line, whole: a line the disk had no room for is cut off again."""
        data = memoryview((to_json(record) + "\n").encode())
        with writing(self.metrics):
            fd = os.open(self.metrics, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
            try:
                start = os.fstat(fd).st_size
                try:
                    while data:
                        data = data[os.write(fd, data) :]
                except OSError:
                    with contextlib.suppress(OSError):
                        os.ftruncate(fd, start)
                    raise
            finally:
                os.close(fd)
        if self.mirror is not None:
            self.mirror.log_metrics(record)

    def close_mirror(self) -> None:
        mirror, self.mirror = self.mirror, None
        if mirror is not None:
            mirror.close()

    def keep_metrics_until(self, step: int, ended: bool = False) -> None:
        """Drops lines written after a checkpoint at ``step``: the resumed run writes them again. A last
        line cut short by a kill is dropped too; any other unreadable line is an error. ``ended``: the
        checkpoint is that of a run that has ended (only its test line and files are left to write), so
        its evaluation at a limit stays. ``kept`` and ``rewritten_from`` tell a mirror what changed."""
        self.kept, self.rewritten_from = [], step + 1
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

        def redone(r):  # the test line, and an evaluation at a limit that the extended run leaves out
            return r["split"] == "test" or (r.get("at_limit") and not ended)

        kept = [r for r in records if r["step"] <= step and not redone(r)]
        atomic_write(self.metrics, "".join(to_json(r) + "\n" for r in kept))
        dropped = [r["step"] for r in records if r["step"] > step or redone(r)]
        self.kept, self.rewritten_from = kept, min([step + 1, *dropped])

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
        with writing(self.model, tmp):
            with tmp.open("wb") as f:  # through Python's file: a failed write keeps its errno
                torch.save({"model": state_dict, "config": OmegaConf.to_container(cfg, resolve=True)}, f)
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
    """Readers never see half a file: write beside it, then rename over it. A failed write leaves the
    old file as it was and is a one-line ``RunFileError``."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    with writing(path, tmp):
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
