"""How far a run has come, as one object, and the pure rules that end a run.

``Progress`` is everything about a run's position that is not a tensor of the model: step, epoch,
position in the epoch, the best evaluation so far, the loss window since the last evaluation, the
status. It round-trips through ``state_dict``/``load_state_dict`` as plain values (and one tensor), so
checkpoints stay loadable with ``weights_only=True``. ``limit_reached``, ``divergence`` and
``better`` decide when a run ends; they read their arguments only.
"""

from __future__ import annotations

import math
from dataclasses import MISSING, asdict, dataclass, field, fields

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
    # the gradient's global norm before clipping, summed over the window's steps, and how many were clipped
    window_grad_norm: torch.Tensor = field(default_factory=lambda: torch.zeros(()))
    window_clipped: torch.Tensor = field(default_factory=lambda: torch.zeros(()))
    window_steps: int = 0
    window_tokens: int = 0
    window_seconds: float = 0.0  # in training steps
    window_data_seconds: float = 0.0  # preparing batches

    def reset_window(self, device) -> None:
        for name in TENSORS:
            setattr(self, name, torch.zeros((), device=device))
        self.window_steps, self.window_tokens, self.window_seconds, self.window_data_seconds = 0, 0, 0.0, 0.0

    def state_dict(self) -> dict:
        return asdict(self) | {name: getattr(self, name).cpu() for name in TENSORS}

    def load_state_dict(self, state: dict, device) -> None:
        for f in fields(self):
            if f.name in state:
                setattr(self, f.name, state[f.name])
            else:  # a checkpoint written before the field existed
                setattr(self, f.name, f.default if f.default_factory is MISSING else f.default_factory())
        for name in TENSORS:
            setattr(self, name, getattr(self, name).to(device))


TENSORS = ("window_loss", "window_count", "window_grad_norm", "window_clipped")  # kept on the device


def global_norm(grads: list[torch.Tensor]) -> torch.Tensor:
    """The 2-norm of all ``grads`` together, as ``torch.nn.utils.clip_grad_norm_`` computes it."""
    if not grads:
        return torch.zeros(())
    if hasattr(torch.nn.utils, "get_total_norm"):  # torch >= 2.6: one fused call
        return torch.nn.utils.get_total_norm(grads)
    return torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))


def window_gradients(p: Progress) -> dict:
    """The metrics line's gradient fields for the window: the mean global norm before clipping and the
    share of steps that clipping scaled down (0 without clipping); a sync, once per evaluation."""
    if p.window_steps == 0:
        return {}
    return {
        "train/grad_norm": float(p.window_grad_norm) / p.window_steps,
        "train/clipped": float(p.window_clipped) / p.window_steps,
    }


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
