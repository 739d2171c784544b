"""A search command line, read into one composed config per cell and checked before anything runs.

Every override of ``python -m rnnbench`` works here (``task=``, ``experiment=``, ``debug=fast``,
``--config-dir``); ``cell=a,b,c`` (or ``search.cells`` of a ``study=`` preset) names the cells, one
study each. Each cell's config is composed with Hydra's compose API, as ``python -m rnnbench`` would
compose it, and checked by the schema; the space is checked against it (every searched key must be a
key of the config), so that a typo is one line before any worker starts.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from omegaconf import DictConfig, OmegaConf

from rnnbench.config.cli_checks import check_group_choices, check_writable, compose, split_argv
from rnnbench.config.schema import validate
from rnnbench.errors import ConfigError
from rnnbench.search.space import config_values, draws, parse_space
from rnnbench.search.trial import trial_config


@dataclass
class Search:
    argv: list[str]  # the command line, for workers started elsewhere
    cells: list[str]
    configs: list[DictConfig]  # one per cell

    @property
    def cfg(self) -> DictConfig:
        return self.configs[0]


def read_command_line(argv: list[str]) -> Search:
    extra_dirs, overrides, multirun = split_argv(argv)
    if multirun:
        raise ConfigError(
            "-m is not needed: the search runs its trials itself; give cell=a,b,c for several cells"
        )
    cell_args = [o for o in overrides if o.partition("=")[0] == "cell"]
    rest = [o for o in overrides if o.partition("=")[0] != "cell"]
    named = [c for arg in cell_args for c in arg.partition("=")[2].split(",") if c]
    check_group_choices(rest + [f"cell={c}" for c in named], extra_dirs)
    first = compose(rest + ([f"cell={named[0]}"] if named else []), extra_dirs)
    cells = named or list(first.search.cells or [first.cell.name])
    if len(set(cells)) != len(cells):
        raise ConfigError(f"cell={','.join(cells)} names a cell twice")
    check_group_choices([f"cell={c}" for c in cells], extra_dirs)
    configs = [compose(rest + [f"cell={c}"], extra_dirs) for c in cells]
    for cfg in configs:
        check_search(cfg)
    check_writable(configs[0].results_dir, "results_dir")
    check_data(configs[0])
    return Search(argv=list(argv), cells=cells, configs=configs)


def check_search(cfg: DictConfig) -> None:
    """The config, the space, and the first draw's config: keys and values of the base, keys of the draw."""
    validate(cfg)
    distributions = parse_space(cfg.search.space)
    if not distributions:
        raise ConfigError(
            "search.space is empty; choose search=greff, search=jozefowicz or write a space (docs/search.md)"
        )
    params = draws(distributions, 1, cfg.search.seed)[0]
    for key in config_values(params):
        parent, _, leaf = key.rpartition(".")
        node = OmegaConf.select(cfg, parent) if parent else cfg
        if not isinstance(node, DictConfig) or (leaf not in node and parent != "task"):
            raise ConfigError(f"search.space.{key} is not valid: {key} is not a config key")
    validate(trial_config(cfg, params, 0, None), values=False)


def check_data(cfg: DictConfig) -> None:
    """The task's data can be read here (a missing file would fail every trial)."""
    from rnnbench.tasks import build_task

    build_task(cfg.task, cfg.seed, cfg.data_dir)


def worker_count(cfg: DictConfig) -> int:
    """``search.workers``, or one per visible GPU (x ``workers_per_gpu``), or one per CPU core: the
    studies' models are small, and trials side by side use cores far better than threads within one
    trial (Greff-sized trials on JSB ran 5x slower with 2 threads than with 1)."""
    if cfg.search.workers is not None:
        return cfg.search.workers
    gpus = visible_gpus()
    return len(gpus) * cfg.search.workers_per_gpu if gpus else cpu_cores()


def cpu_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def visible_gpus() -> list[str]:
    import torch

    if not torch.cuda.is_available():
        return []
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    return listed.split(",") if listed else [str(i) for i in range(torch.cuda.device_count())]


def threads_per_worker(cfg: DictConfig, workers: int) -> int:
    if cfg.search.threads is not None:
        return cfg.search.threads
    return max(1, cpu_cores() // workers)
