"""Where a layer's state starts when no state is passed in (config ``model.initial_state``).

* ``zeros`` (default): every state tensor is 0.
* ``normal``: every entry ~ N(0, std²), drawn afresh for each batch (``std`` = ``model.initial_state_std``).
* ``uniform``: every entry ~ U(−√3·std, √3·std), the uniform law with that same standard deviation.
* ``learned``: one parameter tensor per state tensor (of the cell's ``state_shapes``), shared by every
  sequence of the batch; it starts at 0, so an untrained learned state equals ``zeros``.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from rnnbench.errors import check_choice, check_positive

KINDS = ("zeros", "normal", "uniform", "learned")


class InitialState(nn.Module):
    def __init__(self, state_shapes, kind: str = "zeros", std: float = 0.1):
        super().__init__()
        check_choice("model.initial_state", kind, KINDS)
        check_positive("model.initial_state_std", std, allow_zero=True)
        self.state_shapes = tuple(tuple(s) for s in state_shapes)
        self.kind, self.std = kind, float(std)
        if kind == "learned":
            self.values = nn.ParameterList(nn.Parameter(torch.zeros(s)) for s in self.state_shapes)

    @torch.no_grad()
    def reset_parameters(self) -> None:
        if self.kind == "learned":
            for v in self.values:
                v.zero_()

    def forward(self, batch: int, like: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """One tensor (batch, *shape) per state tensor, with the dtype and device of ``like``."""
        if self.kind == "learned":
            return tuple(v.to(like.dtype).expand(batch, *v.shape) for v in self.values)
        shapes = [(batch, *s) for s in self.state_shapes]
        if self.kind == "normal":
            return tuple(torch.randn(s, dtype=like.dtype, device=like.device) * self.std for s in shapes)
        if self.kind == "uniform":
            bound = math.sqrt(3.0) * self.std
            return tuple(
                torch.empty(s, dtype=like.dtype, device=like.device).uniform_(-bound, bound) for s in shapes
            )
        return tuple(like.new_zeros(s) for s in shapes)
