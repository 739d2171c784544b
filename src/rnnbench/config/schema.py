"""The config schema: every key of every group, its type and its range, checked in one pass.

``validate(cfg)`` runs before anything is built or trained, for the command line, ``--config-dir``
files, experiments and sweep jobs alike; the first problem raises a one-line ``ConfigError`` that names
the key, the bad value and what is valid. The ``task`` group's keys are the task class's constructor
arguments (types from its annotations); a cell's own options (gated-feedback stacks, user cells) are
checked when the cell is built, which is still before training.
"""

from __future__ import annotations

import inspect
import math
import types
import typing
from dataclasses import dataclass

from omegaconf import DictConfig, ListConfig, OmegaConf

from rnnbench.config.choices import (
    AMP,
    LAUNCHERS,
    LOSS_OVER_TIME,
    OPTIMIZERS,
    PRUNERS,
    RESUME,
    SAMPLERS,
    SCHEDULES,
    TEST_WEIGHTS,
)
from rnnbench.config.packages import LOGGER_PACKAGES, check_logger
from rnnbench.errors import ConfigError
from rnnbench.layers.initial_state import KINDS
from rnnbench.layers.recurrent import IMPLS
from rnnbench.model.init import SCHEMES

Number = int | float


@dataclass(frozen=True)
class Key:
    kind: type | tuple[type, ...]  # int, float (ints accepted), bool, str
    low: float | None = None
    high: float | None = None
    low_open: bool = False  # low itself is not allowed
    high_open: bool = False
    choices: tuple | None = None
    nullable: bool = False
    runtime: bool = False  # may change when a run is resumed (where or how fast it runs, not what)

    def describe(self) -> str:
        if self.choices is not None:
            return "choose one of: " + ", ".join("null" if c is None else str(c) for c in self.choices)
        kind = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}.get(
            self.kind, "a number or a string"
        )
        if self.low is not None and self.high is None:
            kind += f" {'>' if self.low_open else '>='} {self.low}"
        elif self.low is not None or self.high is not None:
            left, right = "(" if self.low_open else "[", ")" if self.high_open else "]"
            kind += f" in {left}{self.low}, {self.high}{right}"
        return f"it must be {kind}" + (" or null" if self.nullable else "")

    def accepts(self, value) -> bool:
        if value is None:
            return self.nullable or (self.choices is not None and None in self.choices)
        if self.choices is not None:
            return value in self.choices and type(value) is type(next(c for c in self.choices if c == value))
        if isinstance(value, bool) != (self.kind is bool):
            return False
        kinds = (int, float) if self.kind is float else self.kind
        if not isinstance(value, kinds):
            return False
        if isinstance(value, float) and not math.isfinite(value):
            return False
        if self.low is not None and (value < self.low or (self.low_open and value == self.low)):
            return False
        return self.high is None or not (value > self.high or (self.high_open and value == self.high))


def integer(low=None, high=None, **kw) -> Key:
    return Key(int, low, high, **kw)


def number(low=None, high=None, **kw) -> Key:
    return Key(float, low, high, **kw)


def choice(*values, runtime=False) -> Key:
    return Key(object, choices=values, runtime=runtime)


FLAG, TEXT = Key(bool), Key(str)
SEED = integer(0, 2**32 - 1)

# Every key and its allowed values. ``runtime`` keys may differ when a run is resumed.
SCHEMA: dict[str, dict[str, Key] | Key] = {
    "seed": SEED,
    "data_seed": integer(0, 2**32 - 1, nullable=True),  # data order; null = seed
    "init_seed": integer(0, 2**32 - 1, nullable=True),  # initial weights; null = seed
    "device": Key(str, runtime=True),  # checked by rnnbench.training.device
    "results_dir": Key(str, runtime=True),
    "data_dir": Key(str, nullable=True, runtime=True),
    "cell": {
        "name": TEXT,
        "hidden_size": integer(1, 65536),
        "num_layers": integer(1, 64),
        "forget_bias": number(-100, 100, nullable=True),
        # equal results, other speed
        "impl": choice(*IMPLS, runtime=True),
        "_target_": Key(str, nullable=True),
        "factory": Key(str, nullable=True),
    },
    "model": {
        "embed_size": integer(1, 65536, nullable=True),
        "param_budget": Key((int, str), nullable=True),  # checked by rnnbench.model.budget
        "input_projection": FLAG,
        "dropout": number(0, 1, high_open=True),
        "input_noise_std": number(0),
        "init": choice(*SCHEMES),
        "init_scale": number(0, low_open=True),
        "init_std": number(0, low_open=True),
        "initial_state": choice(*KINDS),
        "initial_state_std": number(0),
        "bidirectional": FLAG,
    },
    "trainer": {
        "optimizer": choice(*OPTIMIZERS),
        "lr": number(0, low_open=True),
        "momentum": number(0, 1, high_open=True),
        "nesterov": FLAG,
        "momentum_scales_lr": FLAG,
        "weight_decay": number(0),
        "clip_norm": number(0, low_open=True, nullable=True),
        "loss_over_time": choice(*LOSS_OVER_TIME),
        "schedule": choice(*SCHEDULES),
        "decay_start": integer(0),
        "decay": number(0, 1, low_open=True),
        "halving_patience": integer(1),
        "halvings": integer(0),
        "patience": integer(1, nullable=True),
        "max_steps": integer(1, nullable=True, runtime=True),
        "max_epochs": integer(1, nullable=True, runtime=True),
        "max_minutes": number(0, nullable=True, runtime=True),
        "eval_every": integer(1, nullable=True),
        "eval_batches": integer(1, nullable=True),
        # which weights the test split scores: a choice made after training, so an ended run may change it
        "test_weights": choice(*TEST_WEIGHTS, runtime=True),
        "divergence_factor": number(1, low_open=True, nullable=True),
        "resume": choice(*RESUME, runtime=True),
        "deterministic": FLAG,
        "amp": choice(*AMP),
        "compile": Key(bool, runtime=True),
        "threads": integer(1, 4096, nullable=True, runtime=True),
        "progress": Key(bool, runtime=True),
        "logger": choice(None, *LOGGER_PACKAGES, runtime=True),  # rnnbench.training.loggers
        "population": integer(1),
    },
    # python -m rnnbench.search (docs/search.md); a single run ignores it. All of it is runtime: how a
    # study is run, not what one of its runs computes.
    "search": {
        "name": Key(str, runtime=True),
        "space": Key(dict, runtime=True),  # checked by rnnbench.search.space
        "cells": Key(list, nullable=True, runtime=True),
        "n_trials": integer(1, 10**7, runtime=True),
        "workers": integer(1, 4096, nullable=True, runtime=True),
        "workers_per_gpu": integer(1, 64, runtime=True),
        "threads": integer(1, 4096, nullable=True, runtime=True),
        "storage": Key(str, nullable=True, runtime=True),
        "study_name": Key(str, nullable=True, runtime=True),
        "seed": integer(0, 2**31 - 1, runtime=True),
        "paired": Key(bool, runtime=True),
        "sampler": choice(*SAMPLERS, runtime=True),  # paired needs random
        "pruner": choice(*PRUNERS, runtime=True),
        "population": integer(1, 1024, runtime=True),
        "retries": integer(0, 100, runtime=True),
        "heartbeat_s": integer(1, 3600, runtime=True),
        "launcher": choice(*LAUNCHERS, runtime=True),
        "slurm": Key(dict, runtime=True),
    },
    "evolve": Key(dict, runtime=True),  # python -m rnnbench.evolve; checked by rnnbench.evolve.settings
}


def runtime_keys() -> list[str]:
    """Dotted names of the keys that may change when a run is resumed."""
    found = []
    for name, entry in SCHEMA.items():
        if isinstance(entry, Key):
            found += [name] if entry.runtime else []
        else:
            found += [f"{name}.{k}" for k, key in entry.items() if key.runtime]
    return found


def check(name: str, key: Key, value) -> None:
    if key.kind in (dict, list):  # a node: its own module checks what is inside
        if not isinstance(value, key.kind) and not (value is None and key.nullable):
            raise ConfigError(
                f"{name}={value!r} is not valid; it must be a {'mapping' if key.kind is dict else 'list'}"
            )
        return
    if isinstance(value, DictConfig | ListConfig | dict | list):
        raise ConfigError(f"{name} must be a single value, not {type(value).__name__}; {key.describe()}")
    if not key.accepts(value):
        raise ConfigError(f"{name}={value!r} is not valid; {key.describe()}")


def unknown(name: str, valid) -> ConfigError:
    return ConfigError(f"{name} is not a config key; valid keys: {', '.join(sorted(valid))}")


def validate(cfg: DictConfig, values: bool = True) -> None:
    """Raises ``ConfigError`` for the first unknown key, wrong type or out-of-range value
    (``values=False``: unknown keys only)."""
    try:
        plain = OmegaConf.to_container(cfg, resolve=True)
    except Exception as error:  # an interpolation that does not resolve
        raise ConfigError(f"the config does not resolve: {str(error).splitlines()[0]}") from None
    for name in plain:
        if name not in SCHEMA and name != "task":
            raise unknown(name, [*SCHEMA, "task"])
    for name, entry in SCHEMA.items():
        if name not in plain:
            if isinstance(entry, Key) and not entry.nullable:
                raise ConfigError(f"{name} is missing from the config")
            continue
        if isinstance(entry, Key):
            if values:
                check(name, entry, plain[name])
        elif not isinstance(plain[name], dict):
            raise ConfigError(f"{name}={plain[name]!r} is not valid; it must be a config group")
        else:
            validate_group(name, entry, plain[name], values)
    validate_task(plain.get("task"), values)
    logger = plain["trainer"].get("logger") if isinstance(plain.get("trainer"), dict) else None
    if values and logger is not None:  # the package it needs: one line naming what to install
        check_logger(logger)


def validate_group(group: str, keys: dict[str, Key], values: dict, check_values: bool = True) -> None:
    user_cell = group == "cell" and (values.get("_target_") or values.get("factory"))
    for name, value in values.items():
        if name in keys:
            if check_values:
                check(f"{group}.{name}", keys[name], value)
        elif group == "cell":
            continue  # a cell's own options: checked when the cell is built
        else:
            raise unknown(f"{group}.{name}", keys)
    if group == "cell" and not user_cell:
        from rnnbench.cells import CELLS

        if values.get("name") not in CELLS:
            raise ConfigError(f"cell={values.get('name')!r} is not valid; choose one of: {', '.join(CELLS)}")


def validate_task(values, check_values: bool = True) -> None:
    from rnnbench.tasks import task_class

    if not isinstance(values, dict):
        task_class({"name": values})  # one line: not valid, and the choices
    options = inspect.signature(task_class(values), eval_str=True).parameters
    accepted = [k for k in options if k not in ("seed", "data_dir")]
    for name, value in values.items():
        if name in ("name", "_target_"):
            continue
        if name not in accepted:
            raise unknown(f"task.{name}", ["name", *accepted])
        kind = annotation_key(options[name].annotation)
        if kind is not None and check_values:
            check(f"task.{name}", kind, value)


def annotation_key(annotation) -> Key | None:
    """The schema key for a constructor argument annotated ``int``, ``float``, ``str``, ``bool`` or
    ``X | None``; None for anything else (the constructor checks it)."""
    args = typing.get_args(annotation) if isinstance(annotation, types.UnionType) else (annotation,)
    nullable = type(None) in args
    kinds = [a for a in args if a is not type(None)]
    if len(kinds) != 1 or kinds[0] not in (int, float, str, bool):
        return None
    return Key(kinds[0], nullable=nullable)
