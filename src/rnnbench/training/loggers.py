"""Live mirrors of a run in an experiment tracker: ``trainer.logger``.

``trainer.logger=tensorboard`` writes TensorBoard event files to ``<run_dir>/tensorboard/`` while the
run goes: every metrics line, as it is appended to metrics.jsonl, becomes scalars at its ``step`` (its
finite numbers under their metrics.jsonl keys: ``valid/*``, ``train/loss``, ``lr``, ``epoch``,
``tokens_per_s``, ...; the test line gives its ``test/*`` values), and each session of the run writes
the resolved config as text and its values as hyperparameters (TensorBoard's HParams tab) at its first
step. Populations and search trials are runs like any other: one event folder per run directory, so
``tensorboard --logdir results/runs`` or ``--logdir <results_dir>/studies`` shows every run, grouped by
folder (a search: by study).

A resumed run repeats no point: the session's writer starts with TensorBoard's purge marker
(``SummaryWriter(purge_step=...)``) at the first step whose metrics lines the session writes anew
(``RunFiles.rewritten_from``: the step after the checkpoint's, or earlier where the resume dropped
lines: an evaluation at a limit, the test line), which hides every older point from that step on, then
writes again the metrics lines still kept from that step on. A run that had no event files yet (the
logger turned on when resuming) gets all its kept lines. So what TensorBoard shows is metrics.jsonl.

``trainer.logger`` is a runtime key: it stays out of the run directory's name and may change when a run
is resumed. The package it needs is checked with the config (``rnnbench.config.schema.validate``): one line
naming what to install.
"""

from __future__ import annotations

import json
import math
import re
import time
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from rnnbench.config.packages import check_logger
from rnnbench.errors import ConfigError

FOLDER = "tensorboard"  # in the run directory


def open_logger(cfg: DictConfig, files) -> TensorBoardLogger | None:
    """The run's logger (``trainer.logger``; None: none), opened after the run's metrics file was
    started or cut back for a resume (``RunFiles.start_metrics`` / ``keep_metrics_until``)."""
    name = cfg.trainer.get("logger")
    if name is None:
        return None
    check_logger(name)
    return TensorBoardLogger(cfg, files)


def scalars(record: dict) -> dict[str, float]:
    """The values of a metrics line that become scalars at its step: its finite numbers, the step and
    flags aside. A test line gives only its ``test/*`` values: its epoch and wall time are those of the
    run's end, not of the step whose weights it scored. Non-finite values are left out, as metrics.jsonl
    writes them as null."""
    test = record.get("split") == "test"
    found = {}
    for key, value in record.items():
        if key == "step" or isinstance(value, bool) or not isinstance(value, int | float):
            continue
        if math.isfinite(value) and (not test or key.startswith("test/")):
            found[key] = float(value)
    return found


def hyperparameters(cfg: DictConfig) -> dict:
    """The config as flat ``dotted.key: value`` pairs, runtime keys left out (they do not change what
    a run computes); lists and mappings as JSON text."""
    from rnnbench.config.schema import runtime_keys

    skip = set(runtime_keys())
    found = {}

    def walk(node: dict, prefix: str):
        for key, value in node.items():
            name = f"{prefix}{key}"
            if name in skip:
                continue
            if isinstance(value, dict):
                walk(value, f"{name}.")
            elif value is None or isinstance(value, bool | int | float | str):
                found[name] = value
            else:
                found[name] = json.dumps(value)

    walk(OmegaConf.to_container(cfg, resolve=True), "")
    return found


def event_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("events.out.tfevents.*")) if folder.is_dir() else []


def after_earlier_files(earlier: list[Path]) -> None:
    """TensorBoard reads a folder's event files in the order of their names, and a name begins with the
    second it was created in (then host, process, counter). A new file created in the same second as the
    newest one could be read before it, and its purge marker then would not hide that file's points:
    wait for the next second (at most one; only when a session starts within a second of the last)."""
    stamps = [int(m.group(1)) for p in earlier if (m := re.match(r"events\.out\.tfevents\.(\d+)\.", p.name))]
    if not stamps:
        return
    wait = max(stamps) + 1 - time.time()
    if 0 < wait <= 2:  # a file from further in the future: another machine's clock, nothing to wait for
        time.sleep(wait + 0.01)


class TensorBoardLogger:
    """Mirrors one run directory's metrics lines to TensorBoard event files in ``<run_dir>/tensorboard``."""

    def __init__(self, cfg: DictConfig, files):
        try:
            from torch.utils.tensorboard import SummaryWriter
            from torch.utils.tensorboard.summary import hparams
        except ImportError as error:  # a tensorboard too old or broken for torch
            raise ConfigError(
                f"trainer.logger=tensorboard cannot load TensorBoard ({error}); pip install -U tensorboard"
            ) from None
        self.dir = Path(files.dir) / FOLDER
        earlier = event_files(self.dir)
        start = getattr(files, "rewritten_from", 0) if earlier else 0
        after_earlier_files(earlier)
        self.writer = SummaryWriter(str(self.dir), purge_step=start)
        yaml = OmegaConf.to_yaml(cfg, resolve=True)
        self.writer.add_text("config", "".join(f"    {line}\n" for line in yaml.splitlines()), start)
        _, session_start, _ = hparams(hyperparameters(cfg), {})
        self.writer.file_writer.add_summary(session_start, start)
        for record in getattr(files, "kept", []):
            if record["step"] >= start:
                self.log_metrics(record, flush=False)
        self.writer.flush()

    def log_metrics(self, record: dict, flush: bool = True) -> None:
        """One metrics line, written through to the event file (a kill loses no line the checkpoint
        after it counts as written)."""
        step = int(record["step"])
        for tag, value in scalars(record).items():
            self.writer.add_scalar(tag, value, step)
        if flush:
            self.writer.flush()

    def close(self) -> None:
        self.writer.close()
