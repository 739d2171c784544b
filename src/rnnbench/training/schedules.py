"""Learning-rate schedules and stopping rules, as small state machines fed one evaluation at a time.

* ``constant``: the rate never changes.
* ``zaremba`` (Zaremba et al. 2014): constant for the first ``decay_start`` epochs, then multiplied by
  ``decay`` at every further epoch: factor(epoch) = decay ** max(0, epoch + 1 − decay_start), epochs from 0.
  (small: decay_start 4, decay 0.5; medium: 6 and 1/1.2.)
* ``halving`` (Jozefowicz et al. 2015): after ``patience`` (3) evaluations without improvement of the
  validation metric, halve the rate at every evaluation for ``halvings`` (4) more, then stop.

Independently, early stopping (Greff et al. 2017: 15 epochs) ends a run after ``patience``
evaluations without improvement. With ``trainer.eval_every: null`` evaluations happen at epoch ends,
so "evaluations" and "epochs" coincide, as in the papers.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from rnnbench.config.choices import SCHEDULES
from rnnbench.errors import check_choice


@dataclass
class Schedule:
    kind: str = "constant"
    decay_start: int = 4  # zaremba: epochs at the initial rate
    decay: float = 0.5  # zaremba: factor per later epoch
    patience: int = 3  # halving: evaluations without improvement before halving starts
    halvings: int = 4  # halving: halved evaluations before the run stops
    higher_is_better: bool = False
    # state
    best: float | None = None
    since_best: int = 0
    halved: int = 0

    def __post_init__(self):
        check_choice("trainer.schedule", self.kind, SCHEDULES)

    def epoch_factor(self, epoch: int) -> float:
        """The rate multiplier that depends on the epoch alone (zaremba)."""
        if self.kind == "zaremba":
            return self.decay ** max(0, epoch + 1 - self.decay_start)
        return 1.0

    def eval_factor(self) -> float:
        """The rate multiplier from the evaluations seen so far (halving)."""
        return 0.5**self.halved

    def factor(self, epoch: int) -> float:
        return self.epoch_factor(epoch) * self.eval_factor()

    def observe(self, value: float) -> bool:
        """Feeds one validation value; returns True when the schedule ends the run."""
        improved = self.best is None or (value > self.best if self.higher_is_better else value < self.best)
        if improved:
            self.best, self.since_best = value, 0
        else:
            self.since_best += 1
        if self.kind != "halving":
            return False
        if self.halved >= self.halvings:
            return True
        if self.halved > 0 or self.since_best >= self.patience:
            self.halved += 1
        return False

    def state_dict(self) -> dict:
        return asdict(self)


def lr_sequence(schedule: Schedule, valid_values: list[float], lr: float, epochs_per_eval: int = 1):
    """The rates a run would use, one per evaluation interval, for a given validation curve; stops
    early when the schedule does. A pure function for tests and for reading a protocol."""
    rates = []
    for k, value in enumerate([None, *valid_values]):
        if value is not None and schedule.observe(value):
            break
        rates.append(lr * schedule.factor(k * epochs_per_eval))
    return rates
