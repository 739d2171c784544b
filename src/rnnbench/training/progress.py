"""How far a run has come, as one object, and the pure rules that end a run.

``Progress`` is everything about a run's position that is not a tensor of the model: step, epoch,
position in the epoch, the best evaluation so far, the loss window since the last evaluation, the
status. It round-trips through ``state_dict``/``load_state_dict`` as plain values (and one tensor), so
checkpoints stay loadable with ``weights_only=True``. ``limit_reached``, ``divergence`` and
``better`` decide when a run ends; they read their arguments only.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields

import torch


@dataclass
class Progress:
    step: int = 0
    epoch: int = 0  # epochs completed
    batch_in_epoch: int = 0  # batches of the current epoch already trained on
    status: str = "running"  # running | completed | diverged | interrupted | pruned
    stop_reason: str | None = None
    best: dict = field(default_factory=dict)  # valid metrics of the best evaluation
    best_step: int = 0
    last: dict = field(default_factory=dict)  # the latest metrics line
    initial_loss: float = math.inf  # the untrained model's loss: the yardstick for exploding losses
    elapsed: float = 0.0  # seconds of earlier sessions of this run
    # the window since the last evaluation: summed on the device, read once per evaluation
    window_loss: torch.Tensor = field(default_factory=lambda: torch.zeros(()))
    window_count: torch.Tensor = field(default_factory=lambda: torch.zeros(()))
    window_tokens: int = 0
    window_seconds: float = 0.0  # in training steps
    window_data_seconds: float = 0.0  # preparing batches

    def reset_window(self, device) -> None:
        self.window_loss = torch.zeros((), device=device)
        self.window_count = torch.zeros((), device=device)
        self.window_tokens, self.window_seconds, self.window_data_seconds = 0, 0.0, 0.0

    def state_dict(self) -> dict:
        state = asdict(self)
        state["window_loss"], state["window_count"] = self.window_loss.cpu(), self.window_count.cpu()
        return state

    def load_state_dict(self, state: dict, device) -> None:
        for f in fields(self):
            setattr(self, f.name, state[f.name])
        self.window_loss, self.window_count = self.window_loss.to(device), self.window_count.to(device)


def limit_reached(step: int, epoch: int, minutes: float, max_steps, max_epochs, max_minutes) -> str | None:
    """The limit that ends the run now, if any (None limits do not apply)."""
    if max_steps is not None and step >= max_steps:
        return "max_steps"
    if max_epochs is not None and epoch >= max_epochs:
        return "max_epochs"
    if max_minutes is not None and minutes >= max_minutes:
        return "max_minutes"
    return None


def divergence(train_loss: float, valid_loss: float | None, initial_loss: float, factor) -> str | None:
    """Why the run has diverged, or None: a non-finite loss, or a validation loss above ``factor``
    times the untrained model's."""
    if not math.isfinite(train_loss):
        return "non-finite training loss"
    if valid_loss is not None and not math.isfinite(valid_loss):
        return "non-finite validation loss"
    if valid_loss is not None and factor is not None and valid_loss > factor * initial_loss:
        return "validation loss exploded"
    return None


def better(a: float, b: float, higher_is_better: bool) -> bool:
    return a > b if higher_is_better else a < b
