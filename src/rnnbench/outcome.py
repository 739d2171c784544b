"""How a run or a trial ended: the one classification that the search, its status and the report share.

A trial's outcome is the search's record of it (the trial's ``outcome`` attribute, written by
``rnnbench.search.trial``) read together with its Optuna state. The rule that matters: a trial that
failed without a recorded outcome is one whose worker was killed or stopped (its heartbeat went stale);
it is retried, and it is not a result.
"""

from __future__ import annotations

from enum import Enum


class Outcome(str, Enum):
    COMPLETED = "completed"  # ran to its end: a limit, the schedule or early stopping
    PRUNED = "pruned"  # stopped early by the search's pruner
    DIVERGED = "diverged"  # NaN/inf, or the validation loss far above the untrained model's
    REJECTED = "rejected"  # the draw's config is not valid (a one-line reason is recorded)
    ERROR = "error"  # the run raised, or ended without a finite validation value
    KILLED = "killed"  # its worker was killed or stopped: retried, not a result
    INTERRUPTED = "interrupted"  # a single run stopped by a signal: the same command continues it
    RUNNING = "running"
    WAITING = "waiting"  # queued, not started

    @property
    def is_result(self) -> bool:
        """A trial that ran to an outcome of its own (counts towards ``search.n_trials``)."""
        return self in RESULTS

    @property
    def is_failure(self) -> bool:
        return self in FAILURES


FAILURES = (Outcome.DIVERGED, Outcome.REJECTED, Outcome.ERROR)
RESULTS = (Outcome.COMPLETED, Outcome.PRUNED, *FAILURES)


def trial_outcome(state: str, user_attrs: dict) -> Outcome:
    """A trial's outcome from its Optuna state's name (``COMPLETE``, ``PRUNED``, ``FAIL``, ``RUNNING``,
    ``WAITING``) and its user attributes."""
    recorded = user_attrs.get("outcome")
    if state == "FAIL":
        return Outcome(recorded) if recorded in {o.value for o in FAILURES} else Outcome.KILLED
    return {"COMPLETE": Outcome.COMPLETED, "PRUNED": Outcome.PRUNED, "WAITING": Outcome.WAITING}.get(
        state, Outcome.RUNNING
    )


def run_outcome(status: str | None) -> Outcome:
    """A single run's outcome from its summary.json ``status`` (None: no summary yet, running)."""
    known = {o.value: o for o in (Outcome.COMPLETED, Outcome.PRUNED, Outcome.DIVERGED, Outcome.INTERRUPTED)}
    return known.get(status, Outcome.RUNNING)
