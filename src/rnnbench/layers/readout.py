"""Readout: a layer whose every step also reads its own previous output; teacher forcing; decoders.

At step t the layer emits y_t = readout(o_t), where o_t is the cell's output and ``readout`` an optional
module (identity by default). The cell's input at step t is

    merge(x_t, f_t) ⊕ c        merge "add": x_t + f_t (needs width(x) = width(y));  "concat": x_t ⊕ f_t
    f_t = y*_{t-1} with probability p (teacher forcing), else y_{t-1}  (the model's own previous output)

with f_0 the initial readout state (zeros, or learned with ``initial_state="learned"``), y* the ground
truth (T, B, R) and c an optional context vector (B, C) that every step sees (a decoder conditioned on
an encoding). Without feedback, a context decoder is ``Recurrent`` on ``with_context(x, c)``.

The previous output is carried as the last state tensor, so the one runner ``Recurrent`` runs it, with
masking and initial states; the coin flips are drawn for all steps before the time loop.

``TeacherForcing`` gives p as a function of the training step (scheduled sampling, Bengio et al. 2015).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from rnnbench.cells.base import Cell
from rnnbench.errors import ConfigError, check_choice, check_positive
from rnnbench.layers.recurrent import Recurrent

MERGES = ("add", "concat")
SCHEDULES = ("constant", "linear", "inverse_sigmoid")


def with_context(x: torch.Tensor, context: torch.Tensor | None) -> torch.Tensor:
    """(T, B, I) and (B, C) -> (T, B, I + C): the same context vector appended to every step."""
    if context is None:
        return x
    return torch.cat([x, context.unsqueeze(0).expand(x.shape[0], -1, -1)], -1)


class FeedbackCell(Cell):
    """Wraps ``cell``: merges the previous readout into the input; state = cell's state + (y_{t-1},).

    Its step input packs, per step, [x_t ⊕ c (input_size), y*_{t-1} (R), use-the-truth flag (1)].
    """

    def __init__(self, cell: Cell, merge: str, context_size: int, readout: nn.Module, readout_size: int):
        super().__init__()
        check_choice("merge", merge, MERGES)
        self.cell, self.merge, self.readout = cell, merge, readout
        self.readout_size, self.context_size = readout_size, context_size
        feedback_width = readout_size if merge == "concat" else 0
        self.input_size = cell.input_size - feedback_width - context_size  # width of x
        self.hidden_size = cell.hidden_size
        if self.input_size < 0 or (merge == "add" and self.input_size != readout_size):
            raise ConfigError(
                f"cell input size {cell.input_size} does not fit merge={merge!r} with readout size "
                f"{readout_size} and context size {context_size}; for 'add' it must be readout + context, "
                f"for 'concat' input + readout + context"
            )

    @property
    def output_size(self) -> int:
        return self.readout_size

    @property
    def state_shapes(self):
        return (*self.cell.state_shapes, (self.readout_size,))

    def step(self, packed, state):
        width = self.input_size + self.context_size
        x, truth, use_truth = packed.split([width, self.readout_size, 1], -1)
        feedback = torch.where(use_truth > 0.5, truth, state[-1])
        x_only, context = x.split([self.input_size, self.context_size], -1)
        merged = x_only + feedback if self.merge == "add" else torch.cat([x_only, feedback], -1)
        inner_input = torch.cat([merged, context], -1)
        out, inner_state = self.cell.step(self.cell.project_input(inner_input), state[:-1])
        y = self.readout(out)
        return y, (*inner_state, y)


class Readout(nn.Module):
    """A sequence layer that feeds its previous output back into its input (see the module docstring).

    ``cell.input_size`` fixes the width of x: readout + context for "add", x + readout + context for
    "concat". ``readout_size`` defaults to the readout's ``out_features``, else ``cell.output_size``.
    """

    def __init__(
        self,
        cell: Cell,
        merge: str = "concat",
        readout: nn.Module | None = None,
        readout_size: int | None = None,
        context_size: int = 0,
        initial_state: str = "zeros",
        initial_state_std: float = 0.1,
    ):
        super().__init__()
        readout = nn.Identity() if readout is None else readout
        size = readout_size or getattr(readout, "out_features", None) or cell.output_size
        self.layer = Recurrent(
            FeedbackCell(cell, merge, context_size, readout, size), initial_state, initial_state_std
        )

    @property
    def output_size(self) -> int:
        return self.layer.output_size

    @property
    def input_size(self) -> int:
        return self.layer.cell.input_size

    def forward(self, x, state=None, mask=None, context=None, truth=None, teacher_forcing: float = 0.0):
        """Returns readouts (T, B, R) and the final state.

        ``truth`` (T, B, R) is what the layer should emit at each step; with probability
        ``teacher_forcing`` (per step and sequence) step t reads truth[t-1] instead of its own y_{t-1}.
        """
        T, B = x.shape[:2]
        x = with_context(x, context)
        if truth is None:
            truth, teacher_forcing = x.new_zeros(T, B, self.output_size), 0.0
        previous_truth = torch.cat([torch.zeros_like(truth[:1]), truth[:-1]])  # y*_{t-1}
        use_truth = torch.rand(T, B, 1, device=x.device) < teacher_forcing
        use_truth[0] = False  # step 0 reads the initial readout state
        packed = torch.cat([x, previous_truth.to(x.dtype), use_truth.to(x.dtype)], -1)
        return self.layer(packed, state, mask)

    def last_output(self, outputs, mask=None):
        return self.layer.last_output(outputs, mask)


@dataclass(frozen=True)
class TeacherForcing:
    """The teacher-forcing probability as a function of the training step.

    * ``constant``: p = ``start``;
    * ``linear``: p = max(``end``, ``start`` − (``start`` − ``end``) · step / ``decay_steps``);
    * ``inverse_sigmoid``: p = k / (k + exp(step / k)), k ≥ 1 (Bengio et al. 2015).
    """

    schedule: str = "constant"
    start: float = 1.0
    end: float = 0.0
    decay_steps: int = 1000
    k: float = 100.0

    def __post_init__(self):
        check_choice("teacher_forcing.schedule", self.schedule, SCHEDULES)
        for key in ("start", "end"):
            if not 0.0 <= getattr(self, key) <= 1.0:
                raise ConfigError(
                    f"teacher_forcing.{key}={getattr(self, key)!r} is not valid; it must be in [0, 1]"
                )
        check_positive("teacher_forcing.decay_steps", self.decay_steps)
        if self.k < 1:
            raise ConfigError(f"teacher_forcing.k={self.k!r} is not valid; it must be >= 1")

    def __call__(self, step: int) -> float:
        if self.schedule == "linear":
            return max(self.end, self.start - (self.start - self.end) * step / self.decay_steps)
        if self.schedule == "inverse_sigmoid":
            return self.k / (self.k + math.exp(min(step / self.k, 700.0)))  # 700: no overflow
        return self.start
