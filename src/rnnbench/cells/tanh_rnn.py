"""The tanh RNN (Elman network)::

    h_t = tanh(W_xh x_t + W_hh h_{t-1} + b_h)

Weights ``weight_ih`` (H, I), ``weight_hh`` (H, H), one ``bias`` (H) added with the input projection
(``torch.nn.RNN`` has two biases: their sum is this one). State: (h,). Parameters: H*(I+H+1).
The same equations as ``torch.nn.RNN``: ``sequence`` runs its kernel (``rnnbench.cells.library``).
"""

from __future__ import annotations

import torch

from rnnbench.cells.base import Cell, fused
from rnnbench.cells.library import run_kernel


class TanhCell(Cell):
    library_kernel = True

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        self.weight_ih = fused(hidden_size, input_size)
        self.weight_hh = fused(hidden_size, hidden_size)
        self.bias = torch.nn.Parameter(torch.zeros(hidden_size))

    def project_input(self, x):
        return torch.nn.functional.linear(x, self.weight_ih, self.bias)

    def step_weights(self):
        return (self.weight_hh.t(),)

    def step(self, xp, state, weights=None):
        (w_hh,) = self.step_weights() if weights is None else weights
        h = torch.tanh(xp + state[0] @ w_hh)
        return h, (h,)

    def sequence(self, x, state, mask):
        weights = [self.weight_ih, self.weight_hh, self.bias, torch.zeros_like(self.bias)]
        return run_kernel("rnn_tanh", x, state, weights, mask, self.training)
