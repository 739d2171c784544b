"""A cell from a plain step function: ``cell_from_step(step, params, state_shapes, input_size, output_size)``.

``step(x_t, state, params) -> (output, new_state)`` computes one time step on the input ``x_t`` (B, I)
and a tuple of state tensors (each (B, *shape), one per entry of ``state_shapes``); ``params`` is a dict
of tensors (each becomes a trainable parameter) or any ``nn.Module`` (its parameters train, and its
submodules, e.g. an inner ``Recurrent``, can run inside the step: nesting). The result is an ordinary
``rnnbench.cells.Cell``: ``rnnbench.layers.recurrent.Recurrent`` runs it, with masking and initial states.

Optionally ``project_input(x, params)`` holds the part of the step that depends on the input alone; it
is applied to the whole (T, B, I) sequence before the time loop, and ``step`` then receives its output.
Subclassing ``Cell`` directly is the same thing written as a class.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from rnnbench.cells.base import Cell


class FunctionCell(Cell):
    """Wraps ``step(x_t, state, params) -> (output, new_state)`` as a cell (see the module docstring)."""

    def __init__(
        self,
        step: Callable,
        params: dict[str, torch.Tensor] | nn.Module,
        state_shapes: Sequence,
        input_size: int,
        output_size: int,
        project_input: Callable | None = None,
    ):
        super().__init__()
        self.step_fn, self.project_fn = step, project_input
        self.params = params if isinstance(params, nn.Module) else nn.ParameterDict(params)
        # an int n is the shape (n,)
        self.shapes = tuple((s,) if isinstance(s, int) else tuple(s) for s in state_shapes)
        self.input_size, self.hidden_size = input_size, output_size

    @property
    def state_shapes(self):
        return self.shapes

    def project_input(self, x):
        return x if self.project_fn is None else self.project_fn(x, self.params)

    def step(self, xp, state):
        out, new_state = self.step_fn(xp, state, self.params)
        return out, tuple(new_state)


# the name the API documents; the class is the same thing
cell_from_step = FunctionCell
