"""Every task, by the name used in configs (``task=<name>``)."""

from __future__ import annotations

import inspect

from omegaconf import DictConfig

from rnnbench.errors import ConfigError, check_choice
from rnnbench.tasks.arithmetic import ArithmeticTask
from rnnbench.tasks.base import Batch, Task
from rnnbench.tasks.classify import ClassifyTask
from rnnbench.tasks.copy import CopyTask
from rnnbench.tasks.music import MusicTask
from rnnbench.tasks.ptb import PTBCharTask, PTBTask
from rnnbench.tasks.sort import SortTask
from rnnbench.tasks.xml import XmlTask

TASKS = {
    "arithmetic": ArithmeticTask,
    "xml": XmlTask,
    "copy": CopyTask,
    "sort": SortTask,
    "classify": ClassifyTask,
    "ptb": PTBTask,
    "ptb_char": PTBCharTask,
    "jsb": MusicTask,  # the music tasks are one class; the config's ``dataset`` picks the file
    "nottingham": MusicTask,
    "musedata": MusicTask,
    "piano_midi": MusicTask,
}


def build_task(cfg: DictConfig, seed: int, data_dir: str | None = None) -> Task:
    """``cfg`` is the ``task`` node; its keys other than ``name`` are the task's options.
    ``data_dir`` reaches only the tasks that read files."""
    check_choice("task", cfg.name, sorted(TASKS))
    options = {k: v for k, v in cfg.items() if k != "name"}
    cls = TASKS[cfg.name]
    if "data_dir" in inspect.signature(cls).parameters:
        options["data_dir"] = data_dir
    try:
        inspect.signature(cls).bind(seed=seed, **options)
    except TypeError as error:
        raise ConfigError(f"task={cfg.name}: {error}") from None
    task = cls(seed=seed, **options)
    task.name = cfg.name  # the config's name, whichever class serves it
    return task


__all__ = ["TASKS", "Batch", "Task", "build_task"]
