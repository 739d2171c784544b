"""One trial of a study: its config, its run directory, and its outcome told to Optuna.

A trial is an ordinary run, ``train(cfg, run_dir)``, of the cell's composed config with the draw's
values set. Its run directory is named by the draw's values and seed, not by the trial number, so a
retried trial (a killed worker's, queued again) finds the killed one's checkpoint and continues it.

Outcomes: a run that trains to the end is COMPLETE with its best validation headline value; a pruned
run is PRUNED; a run that diverges, a config the schema or the model rejects, and any other error are
FAIL with ``outcome`` and ``reason`` in the trial's attributes, and the study goes on. A run stopped by
a signal (the worker is being stopped) is failed without an outcome and queued again.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path

import optuna
from omegaconf import DictConfig, OmegaConf, open_dict

from rnnbench.data import DataError
from rnnbench.errors import ConfigError
from rnnbench.errors.write import RunFileError
from rnnbench.outcome import Outcome
from rnnbench.search.space import config_values, parse_space, suggest
from rnnbench.search.study import experimental_api
from rnnbench.training.lock import RunInUse
from rnnbench.training.runtime import derived_seed

SUMMARY_ATTRS = (
    "num_params",
    "hidden_size",
    "num_layers",
    "wall_s",
    "steps",
    "epochs",
    "device",
    "headline",
    "test_weights",
)


class WorkerStopped(Exception):
    """The worker received SIGINT or SIGTERM during a trial; the trial is queued again."""


def trial_seed(draw: int, study_seed: int) -> int:
    return derived_seed(study_seed, 1000 + draw) % 2**31


def trial_config(base: DictConfig, params: dict, seed: int, threads: int | None) -> DictConfig:
    """The cell's config with the draw's values, the trial's seed and the worker's threads."""
    cfg = copy.deepcopy(base)
    with open_dict(cfg):
        for key, value in config_values(params).items():
            OmegaConf.update(cfg, key, value, merge=False, force_add=True)
        cfg.seed = seed
        cfg.trainer.threads = threads
        cfg.trainer.progress = False  # the launcher shows one bar for the whole pool
        cfg.pop("search", None)
    return cfg


def run_dir_of(results_dir: str, study_name: str, params: dict, seed: int) -> Path:
    key = json.dumps({"params": params, "seed": seed}, sort_keys=True)
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    return Path(results_dir).absolute() / "studies" / study_name / f"trial-{digest}"


def pruning_hook(trial: optuna.Trial, headline: str, seen: list):
    def on_eval(record: dict) -> str:
        value = record.get(headline)
        seen.append(record["step"])
        if value is None or not math.isfinite(value):
            return "continue"  # the divergence check ends such a run
        trial.report(value, record["step"])
        return "prune" if trial.should_prune() else "continue"

    return on_eval


@dataclass
class Setup:
    """A taken trial, ready to train."""

    trial: optuna.Trial
    cfg: DictConfig
    run_dir: Path
    seen: list  # evaluation steps this attempt saw


def set_up(study: optuna.Study, trial: optuna.Trial, base: DictConfig, threads: int | None) -> Setup:
    distributions = parse_space(base.search.space)
    params = {name: suggest(trial, name, dist) for name, dist in distributions.items()}
    seed = trial_seed(trial.user_attrs["draw"], study.user_attrs["seed"])
    run_dir = run_dir_of(base.results_dir, study.study_name, params, seed)
    trial.set_user_attr("seed", seed)
    trial.set_user_attr("run_dir", str(run_dir))
    return Setup(trial, trial_config(base, params, seed, threads), run_dir, [])


def run_trial(study: optuna.Study, trial: optuna.Trial, base: DictConfig, threads: int | None) -> str:
    """Trains the trial and tells the study; returns the outcome."""
    from rnnbench.training.trainer import train

    one = set_up(study, trial, base, threads)
    try:
        summary = train(one.cfg, one.run_dir, pruning_hook(trial, study.user_attrs["headline"], one.seen))
    except Exception as problem:
        return failed(study, one, problem)
    return record(study, one, summary)


def run_population(
    study: optuna.Study, trials: list[optuna.Trial], base: DictConfig, threads: int | None
) -> list[str]:
    """Trains trials of one study at once as one batched model (``search.population``); trials whose
    configs the schema rejects fail alone, and trials that cannot share a batch (they differ in more
    than the values a population allows per member) train one by one."""
    from rnnbench.config.schema import validate
    from rnnbench.population import check_compatible, train_population

    outcomes, ready = [], []
    for trial in trials:
        one = set_up(study, trial, base, threads)
        try:
            validate(one.cfg)
        except ConfigError as problem:
            outcomes.append(failed(study, one, problem))
            continue
        ready.append(one)
    if not ready:
        return outcomes
    try:
        check_compatible([one.cfg for one in ready])
    except ConfigError:
        return outcomes + [run_trial(study, one.trial, base, threads) for one in ready]
    headline = study.user_attrs["headline"]
    hooks = [pruning_hook(one.trial, headline, one.seen) for one in ready]
    try:
        summaries = train_population([one.cfg for one in ready], [one.run_dir for one in ready], hooks)
    except Exception as problem:
        return outcomes + [failed(study, one, problem) for one in ready]
    stopped = None
    for one, summary in zip(ready, summaries):
        try:
            outcomes.append(record(study, one, summary))
        except WorkerStopped as signal_name:
            stopped = signal_name  # every member is saved and queued again before the worker stops
    if stopped is not None:
        raise stopped
    return outcomes


def failed(study: optuna.Study, one: Setup, problem: Exception) -> str:
    if isinstance(problem, RunInUse):  # another worker runs this very trial: it will tell the study
        return "taken"
    if isinstance(problem, (DataError, RunFileError)):  # this machine lacks the data or the disk space:
        requeue(study, one.trial)  # the trial goes back to the queue and this worker stops with one line
        raise problem
    if isinstance(problem, ConfigError):
        return fail(study, one.trial, "rejected", str(problem))
    return fail(study, one.trial, "error", f"{type(problem).__name__}: {str(problem)[:300]}")


def record(study: optuna.Study, one: Setup, summary: dict) -> str:
    """Tells the study how the trial's run ended; returns the outcome."""
    trial = one.trial
    if one.seen:
        trial.set_user_attr("first_eval_step", one.seen[0])  # > the first evaluation's step when resumed
    for key in SUMMARY_ATTRS:
        trial.set_user_attr(key, summary.get(key))
    trial.set_user_attr("valid", summary["best"])
    trial.set_user_attr("test", summary["test"])
    status = summary["status"]
    if status == "interrupted":
        requeue(study, trial)
        raise WorkerStopped(summary["stop_reason"])
    if status == "diverged":
        return fail(study, trial, "diverged", summary["stop_reason"])
    if status == "pruned":
        trial.set_user_attr("outcome", Outcome.PRUNED.value)
        study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        return "pruned"
    value = summary["best"].get(summary["headline"])
    if value is None or not math.isfinite(value):
        return fail(study, trial, "error", "the run ended without a finite validation value")
    trial.set_user_attr("outcome", Outcome.COMPLETED.value)
    trial.set_user_attr("reason", summary["stop_reason"])
    study.tell(trial, value)
    return "completed"


def fail(study: optuna.Study, trial: optuna.Trial, outcome: str, reason: str) -> str:
    trial.set_user_attr("outcome", Outcome(outcome).value)  # a failure is one of outcome.FAILURES
    trial.set_user_attr("reason", reason)
    study.tell(trial, state=optuna.trial.TrialState.FAIL)
    return outcome


def requeue(study: optuna.Study, trial: optuna.Trial) -> None:
    """A stopped trial: failed without an outcome and queued again, to continue from its checkpoint."""
    study.tell(trial, state=optuna.trial.TrialState.FAIL)
    frozen = study.get_trials(deepcopy=False)[trial.number]
    with experimental_api():
        optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=None)(study, frozen)
