"""One evaluation of a genome on a task: a study of ``rnnbench.search`` with K draws more per evaluation.

The study ``<evolve.name>-<genome hash>-<task>-genome`` holds every draw the genome got on the task: the
first evaluation queues draws 0..K-1, a re-evaluation K..2K-1, and so on; ``search.paired`` with one seed
gives every genome the same draws, a paired comparison. Trials that have an outcome are never run again,
so a search run again after a kill trains only what it had not finished.
"""

from __future__ import annotations

import copy
import functools
import math
import sys

import optuna


class Unfinished(Exception):
    """An evaluation ended without all its trials' outcomes (a worker failed or was stopped)."""


def study_prefix(name: str, genome_hash: str, task: str) -> str:
    return f"{name}-{genome_hash}-{task}"


def evaluate(argv: list[str], text: str, prefix: str, task_args: tuple[str, ...], n_trials: int) -> float:
    """The best validation value of the genome ``text`` over the first ``n_trials`` draws of the study
    named ``prefix`` (run until they all have an outcome); NaN where none completed."""
    from rnnbench.search.launch import run_pool
    from rnnbench.search.study import open_storage, prepare, shortfall
    from rnnbench.search.worker import open_studies

    quoted = text.replace("\n", "; ").replace("'", "\\'")
    own = [f"cell.genome='{quoted}'", f"search.study_name={prefix}", f"search.n_trials={n_trials}"]
    search = stage_search(stage_argv(argv, task_args), own)
    search.cfg.cell.genome, search.cfg.search.study_name, search.cfg.search.n_trials = text, prefix, n_trials
    s = search.cfg.search
    storage = open_storage(s.storage, search.cfg.results_dir, s.heartbeat_s, s.retries)
    prepare(search.cfg, search.cells, storage)
    studies, storage = open_studies(search)
    if shortfall(studies, n_trials) is not None:
        if s.launcher == "slurm":  # worker jobs of this evaluation; the search waits for them
            from rnnbench.search.slurm import submit, wait_for

            for problem in wait_for(submit(search.cfg, search.argv)):
                print(f"rnnbench.evolve: {problem}", file=sys.stderr)
        else:
            run_pool(search, studies, storage)
        studies, storage = open_studies(search)
        left = shortfall(studies, n_trials)
        if left is not None:
            raise Unfinished(left)
    return best_value(studies[0], n_trials)


def stage_argv(argv: list[str], task_args: tuple[str, ...]) -> list[str]:
    """A stage's command line: the search's, then the task's settings (``evolve.task_args``), then the
    values of a ``debug=`` choice again: a debug search stays tiny whatever steps a preset gives a task."""
    return [*argv, *task_args, *debug_values(argv), "cell=genome", "search.paired=true"]


def debug_values(argv: list[str]) -> list[str]:
    """``debug=<name>``'s file (configs/debug/) as ``key=value`` overrides; none without a debug choice."""
    from importlib.resources import files

    from omegaconf import OmegaConf

    names = [a.partition("=")[2] for a in argv if a.partition("=")[0] in ("debug", "+debug")]
    if not names:
        return []
    values = OmegaConf.to_container(
        OmegaConf.create((files("rnnbench.configs") / "debug" / f"{names[-1]}.yaml").read_text())
    )
    return [f"{key}={override_text(value)}" for key, value in leaves(values, "")]


def leaves(node: dict, prefix: str):
    for key, value in node.items():
        if isinstance(value, dict):
            yield from leaves(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def override_text(value) -> str:
    return "null" if value is None else str(value).lower() if isinstance(value, bool) else str(value)


@functools.cache
def composed(argv: tuple[str, ...]):
    """A task's search command, composed and checked once (the genome and study vary per evaluation)."""
    from rnnbench.search.command import read_command_line

    return read_command_line(list(argv))


def stage_search(argv: list[str], own: list[str]):
    """The search of one evaluation: the task's composed config with this genome, study and draws;
    ``argv`` + ``own`` is its command line, for worker processes."""
    from rnnbench.search.command import Search

    base = composed(tuple(argv))
    return Search(argv=[*argv, *own], cells=base.cells, configs=[copy.deepcopy(base.cfg)])


def best_value(study: optuna.Study, n_trials: int) -> float:
    values = [
        t.value
        for t in study.get_trials(deepcopy=False, states=[optuna.trial.TrialState.COMPLETE])
        if t.user_attrs.get("draw", 0) < n_trials and t.value is not None
    ]
    if not values:
        return math.nan
    return max(values) if study.direction == optuna.study.StudyDirection.MAXIMIZE else min(values)
