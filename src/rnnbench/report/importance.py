"""Hyperparameter importance by fANOVA (Hutter et al. 2014), with Optuna's evaluator, as Greff et al.

For each task and cell with enough complete trials, the test values are fitted by a random forest over
the hyperparameters that vary; the importance of a hyperparameter is the fraction of the test value's
variance its main effect explains. Only main effects are given (Greff et al. also show pairwise
interactions, which Optuna's evaluator does not compute): what the bars leave to 1 is interactions and
noise. Importances of a handful of trials are noise themselves; ``min_trials`` keeps those out.

fANOVA's variances are taken over a uniform measure on each hyperparameter's axis, so the axis decides
what "explained" means: a log-drawn value goes in as its log10, and the variance is that over the
distribution the search drew from. On a linear axis (what Optuna's evaluator does with a log
distribution) nine tenths of a learning rate drawn in [1e-6, 1e-2] would be weighted in its top
decade alone.
"""

from __future__ import annotations

import logging
import math

import pandas as pd

from rnnbench.report.stats import scored
from rnnbench.report.tables import groups

MIN_TRIALS = 5  # below this, a forest over the trials says nothing


def varying_params(trials: pd.DataFrame) -> list[str]:
    """Hyperparameters that every trial of ``trials`` sets and that take more than one value."""
    names = sorted({name for params in trials["params"] for name in params})
    found = []
    for name in names:
        values = [params.get(name) for params in trials["params"]]
        if None not in values and len({repr(v) for v in values}) > 1:
            found.append(name)
    return found


def is_numeric(values: list) -> bool:
    return all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)


def encoded(trials: pd.DataFrame, names: list[str], scales: dict) -> list[dict]:
    """Each trial's values of ``names`` on the axis fANOVA integrates over: log10 for log-drawn ones."""
    logs = set()
    for name in names:
        values = [params[name] for params in trials["params"]]
        if scales.get(name) == "log" and is_numeric(values) and min(values) > 0:
            logs.add(name)
    return [
        {name: math.log10(params[name]) if name in logs else params[name] for name in names}
        for params in trials["params"]
    ]


def distributions(points: list[dict], names: list[str], scales: dict) -> dict:
    """Optuna distributions spanning the encoded values seen (a study's own ranges may differ)."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    found = {}
    for name in names:
        values = [point[name] for point in points]
        if scales.get(name) == "categorical" or not is_numeric(values):
            found[name] = CategoricalDistribution(sorted(set(values), key=repr))
        elif all(isinstance(v, int) for v in values):
            found[name] = IntDistribution(min(values), max(values))
        else:
            found[name] = FloatDistribution(min(values), max(values))
    return found


def fanova(frame: pd.DataFrame, scales: dict, min_trials: int = MIN_TRIALS, seed: int = 0) -> pd.DataFrame:
    """Rows (task, cell, param, importance, n): one per varying hyperparameter of each (task, cell)."""
    import optuna
    from optuna.importance import FanovaImportanceEvaluator
    from optuna.trial import create_trial

    optuna.logging.set_verbosity(logging.WARNING)
    rows = []
    for task, cell, trials in groups(frame):
        good = scored(trials)
        names = varying_params(good)
        if len(good) < max(min_trials, 2) or not names:
            continue
        points = encoded(good, names, scales)
        spaces = distributions(points, names, scales)
        study = optuna.create_study()
        for point, value in zip(points, good["test"]):
            study.add_trial(create_trial(params=point, distributions=spaces, value=float(value)))
        result = FanovaImportanceEvaluator(seed=seed).evaluate(study)
        rows += [
            {"task": task, "cell": cell, "param": name, "importance": float(result[name]), "n": len(good)}
            for name in names
        ]
    return pd.DataFrame(rows, columns=["task", "cell", "param", "importance", "n"])
