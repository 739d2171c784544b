"""Turning a one-step cell into a sequence layer, and stacking such layers.

Tensors are time-major: inputs (T, B, I), outputs (T, B, H), masks (T, B) with True at real steps.
"""

from __future__ import annotations

import torch
from torch import nn

from rnnbench.cells.base import Cell, State


class Recurrent(nn.Module):
    """Runs ``cell`` over a sequence: input projection for all steps first, then the time loop."""

    def __init__(self, cell: Cell):
        super().__init__()
        self.cell = cell

    def forward(self, x: torch.Tensor, state: State | None = None, mask: torch.Tensor | None = None):
        if state is None:
            state = self.cell.zero_state(x.shape[1], x)
        xp = self.cell.project_input(x)  # (T, B, ·): the only place the input matrices are applied
        outputs = []
        for t in range(x.shape[0]):
            out, new_state = self.cell.step(xp[t], state)
            if mask is not None:  # padded steps keep the state of the last real step
                keep = mask[t].unsqueeze(-1)
                new_state = tuple(torch.where(keep, n, s) for n, s in zip(new_state, state))
                out = out * keep
            outputs.append(out)
            state = new_state
        return torch.stack(outputs), state


class Stack(nn.Module):
    """Layers on top of each other; dropout only on the connections between layers (Zaremba et al.)."""

    def __init__(self, layers: list[Recurrent], dropout: float = 0.0):
        super().__init__()
        self.layers = nn.ModuleList(layers)
        self.dropout = nn.Dropout(dropout)

    @property
    def output_size(self) -> int:
        return self.layers[-1].cell.output_size

    def forward(self, x, state: tuple[State, ...] | None = None, mask=None):
        states = []
        for k, layer in enumerate(self.layers):
            if k > 0:
                x = self.dropout(x)
            x, s = layer(x, None if state is None else state[k], mask)
            states.append(s)
        return x, tuple(states)
