"""An example of a cell written outside rnnbench: the minimal gated unit (MGU, Zhou et al. 2016)::

    f_t = σ(W_f x_t + U_f h_{t-1} + b_f)
    h̃_t = act(W_h x_t + U_h (f_t ⊙ h_{t-1}) + b_h)
    h_t = (1 − f_t) ⊙ h_{t-1} + f_t ⊙ h̃_t

Train it with the configs in ``examples/my_cells`` (from the repository root)::

    PYTHONPATH=examples python -m rnnbench --config-dir examples/my_cells cell=my_cell debug=fast

``MyCell(input_size, hidden_size, **options)`` is how rnnbench calls the ``_target_`` of a cell config;
``activation`` is such an option (``cell.activation=relu`` on the command line).
"""

from __future__ import annotations

import torch
from torch import nn

from rnnbench.cells import Cell

ACTIVATIONS = {"tanh": torch.tanh, "relu": torch.relu}


class MyCell(Cell):
    def __init__(self, input_size: int, hidden_size: int, activation: str = "tanh"):
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        self.activation = ACTIVATIONS[activation]
        # gates (f, h̃) fused; rnnbench.model.init re-initialises these under the run's model.init scheme
        self.weight_ih = nn.Parameter(torch.randn(2 * hidden_size, input_size) / input_size**0.5)
        self.weight_hh = nn.Parameter(torch.randn(2 * hidden_size, hidden_size) / hidden_size**0.5)
        self.bias = nn.Parameter(torch.zeros(2 * hidden_size))

    def project_input(self, x):  # both input matrices, for all steps at once
        return nn.functional.linear(x, self.weight_ih, self.bias)

    def step(self, xp, state):
        (h,) = state
        xf, xh = xp.chunk(2, -1)
        uf, uh = self.weight_hh.chunk(2, 0)
        f = torch.sigmoid(xf + h @ uf.t())
        candidate = self.activation(xh + (f * h) @ uh.t())
        h = (1 - f) * h + f * candidate
        return h, (h,)
