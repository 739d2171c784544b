"""Every task, by the name used in configs (``task=<name>``), and tasks from users' modules.

A task config with ``_target_: package.module.Class`` builds the user's task (a ``Task`` subclass) as
``Class(seed=..., **options)``, options being the config's other keys (and ``data_dir`` where the class
takes it), e.g. ``examples/my_tasks/task/parity.yaml`` used as ``python -m rnnbench --config-dir
examples/my_tasks task=parity`` with ``examples`` on ``PYTHONPATH``.
"""

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
from rnnbench.user_code import import_target

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


def task_class(cfg) -> type:
    """The class a ``task`` config names: a built-in by ``name``, or a user's ``_target_``."""
    target = cfg.get("_target_")
    if not target:
        check_choice("task", cfg.get("name"), sorted(TASKS))
        return TASKS[cfg["name"]]
    cls = import_target("task._target_", target)
    if not (isinstance(cls, type) and issubclass(cls, Task)):
        raise ConfigError(f"task._target_={target!r} is not a subclass of rnnbench.tasks.Task")
    return cls


def build_task(cfg: DictConfig, seed: int, data_dir: str | None = None) -> Task:
    """``cfg`` is the ``task`` node; its keys other than ``name`` (and ``_target_``) are the task's
    options. ``data_dir`` reaches only the tasks that read files."""
    cls = task_class(cfg)
    options = {k: v for k, v in cfg.items() if k not in ("name", "_target_")}
    if "data_dir" in inspect.signature(cls).parameters:
        options["data_dir"] = data_dir
    try:
        inspect.signature(cls).bind(seed=seed, **options)
    except TypeError as error:
        raise ConfigError(f"task={cfg.name}: {error}") from None
    task = cls(seed=seed, **options)
    task.name = cfg.name  # the config's name, whichever class serves it
    return task


__all__ = ["TASKS", "Batch", "Task", "build_task", "task_class"]
