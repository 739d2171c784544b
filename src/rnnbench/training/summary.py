"""A run's summary.json: its outcome, best and final values, and what it ran on."""

from __future__ import annotations

from omegaconf import DictConfig

from rnnbench.model.budget import configured_budget
from rnnbench.training.progress import Progress
from rnnbench.training.runfiles import git_commit, versions


def summarize(cfg: DictConfig, p: Progress, test: dict, facts: dict) -> dict:
    """The summary.json of a run: its outcome, best and final values, and what it ran on."""
    tc = cfg.trainer
    return {
        "status": p.status,
        "stop_reason": p.stop_reason,
        "cell": cfg.cell.name,
        "task": facts["task"],
        "headline": facts["headline"],
        "higher_is_better": facts["higher_is_better"],
        "steps": p.step,
        "epochs": p.epoch,
        "best_step": p.best_step,
        "best": p.best,
        "final": {k: v for k, v in p.last.items() if "/" in k},
        "test": test,
        "test_weights": tc.test_weights,  # best | last: which weights scored the test split
        "seed": cfg.seed,
        "data_seed": cfg.seed if cfg.data_seed is None else cfg.data_seed,
        "init_seed": cfg.seed if cfg.init_seed is None else cfg.init_seed,
        "device": facts["device"],
        "num_params": facts["num_params"],
        "hidden_size": facts["hidden_size"],  # as built: model.param_budget may set it
        "param_budget": configured_budget(cfg.model),
        "num_layers": cfg.cell.num_layers,
        "wall_s": facts["wall_s"],
        "runtime": {
            "deterministic": bool(tc.deterministic),
            "amp": tc.amp,
            "compile": bool(tc.compile),
            "threads": facts["threads"],
        },
        "versions": versions(),
        "git_commit": git_commit(),
    }
