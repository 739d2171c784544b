"""Every task, by the name used in configs (``task=<name>``)."""

from __future__ import annotations

from omegaconf import DictConfig

from rnnbench.errors import check_choice
from rnnbench.tasks.arithmetic import ArithmeticTask
from rnnbench.tasks.base import Batch, Task
from rnnbench.tasks.classify import ClassifyTask
from rnnbench.tasks.copy import CopyTask
from rnnbench.tasks.sort import SortTask
from rnnbench.tasks.xml import XmlTask

TASKS = {
    "arithmetic": ArithmeticTask,
    "xml": XmlTask,
    "copy": CopyTask,
    "sort": SortTask,
    "classify": ClassifyTask,
}


def build_task(cfg: DictConfig, seed: int) -> Task:
    """``cfg`` is the ``task`` node; its keys other than ``name`` are the task's options."""
    check_choice("task", cfg.name, sorted(TASKS))
    options = {k: v for k, v in cfg.items() if k != "name"}
    return TASKS[cfg.name](seed=seed, **options)


__all__ = ["TASKS", "Batch", "Task", "build_task"]
