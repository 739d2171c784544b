"""One outcome model: the search's counts, its completion rule and the report's rows classify every
kind of trial alike (a failed trial without a recorded outcome is a killed worker's, and no result)."""

from __future__ import annotations

import optuna
import pytest

from rnnbench.outcome import Outcome, run_outcome, trial_outcome
from rnnbench.report.load import study_trial_row
from rnnbench.search.study import counts, has_outcome

# (state, recorded outcome) -> what every reader must make of it
CASES = [
    (optuna.trial.TrialState.COMPLETE, "completed", Outcome.COMPLETED),
    (optuna.trial.TrialState.PRUNED, "pruned", Outcome.PRUNED),
    (optuna.trial.TrialState.FAIL, "diverged", Outcome.DIVERGED),
    (optuna.trial.TrialState.FAIL, "rejected", Outcome.REJECTED),
    (optuna.trial.TrialState.FAIL, "error", Outcome.ERROR),
    (optuna.trial.TrialState.FAIL, None, Outcome.KILLED),
    (optuna.trial.TrialState.RUNNING, None, Outcome.RUNNING),
    (optuna.trial.TrialState.WAITING, None, Outcome.WAITING),
]


@pytest.fixture
def study():
    study = optuna.create_study(storage=optuna.storages.InMemoryStorage(), study_name="s")
    attrs = {"task": "classify", "cell": "lstm", "headline": "acc", "higher_is_better": True}
    for key, value in attrs.items():
        study.set_user_attr(key, value)
    for state, recorded, _ in CASES:
        attrs = {"outcome": recorded} if recorded else {}
        if state == optuna.trial.TrialState.WAITING:
            study.enqueue_trial({}, user_attrs=attrs)
            continue
        trial = study.ask()
        for key, value in attrs.items():
            trial.set_user_attr(key, value)
        if state != optuna.trial.TrialState.RUNNING:
            study.tell(trial, 0.5 if state == optuna.trial.TrialState.COMPLETE else None, state=state)
    return study


def test_every_reader_classifies_a_trial_alike(study):
    trials = study.get_trials(deepcopy=False)
    assert len(trials) == len(CASES)
    by_state = sorted(trials, key=lambda t: t.number)
    for trial, (state, _, expected) in zip(by_state, CASES):
        assert trial.state == state
        assert trial_outcome(trial.state.name, trial.user_attrs) is expected
        assert has_outcome(trial) == expected.is_result
        assert study_trial_row(study, trial, "here")["outcome"] == expected.value
    assert counts(study) == {"complete": 1, "pruned": 1, "failed": 3, "killed": 1, "running": 1, "waiting": 1}


def test_a_killed_trial_is_no_result_and_a_recorded_failure_is():
    assert not Outcome.KILLED.is_result and Outcome.ERROR.is_result and Outcome.ERROR.is_failure
    assert trial_outcome("FAIL", {"outcome": "completed"}) is Outcome.KILLED  # not a failure's record


@pytest.mark.parametrize(
    "status, expected",
    [("completed", "completed"), ("diverged", "diverged"), ("interrupted", "interrupted"), (None, "running")],
)
def test_single_runs_read_their_summary_status(status, expected):
    assert run_outcome(status).value == expected
