"""The GRU as Jozefowicz et al. 2015 write it: the reset gate acts on h BEFORE the recurrent matrix::

    r_t = σ(W_xr x_t + W_hr h_{t-1} + b_r)
    z_t = σ(W_xz x_t + W_hz h_{t-1} + b_z)
    h̃_t = tanh(W_xh x_t + W_hh (r_t ⊙ h_{t-1}) + b_h)
    h_t = z_t ⊙ h_{t-1} + (1 − z_t) ⊙ h̃_t

``torch.nn.GRU`` (cuDNN) applies r after the matrix, r ⊙ (W_hh h + b_hn): a different cell.
Weight layout: rows (r, z, h̃) in ``weight_ih`` (3H, I) and ``weight_hh`` (3H, H); one ``bias`` (3H)
added with the input projection. State: (h,). Parameters: 3H*(I+H+1).

The whole layer also runs in the package's fused C++ kernel (``fused_sequence``,
``rnnbench.cells.kernels.gru_kernel``).
"""

from __future__ import annotations

import torch

from rnnbench.cells.base import Cell, fused
from rnnbench.cells.kernels import gru_kernel


class GRUCell(Cell):
    fused_kernel = gru_kernel.NAME
    fused_layout = gru_kernel.Layout(xz=1, xr=0, hz=1, hr=0, tz=-1, hc=2, z_keeps=True)

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        self.weight_ih = fused(3 * hidden_size, input_size)
        self.weight_hh = fused(3 * hidden_size, hidden_size)
        self.bias = torch.nn.Parameter(torch.zeros(3 * hidden_size))

    def project_input(self, x, linear=torch.nn.functional.linear):
        """``linear``: the fused kernel passes its own products."""
        return linear(x, self.weight_ih, self.bias)

    def step_weights(self):
        H = self.hidden_size
        return self.weight_hh[: 2 * H].t(), self.weight_hh[2 * H :].t()  # (r, z) rows and h̃ rows

    def fused_sequence(self, x, state, mask):
        return gru_kernel.run(self, x, state, mask)

    def step(self, xp, state, weights=None):
        h, H = state[0], self.hidden_size
        w_rz, w_h = self.step_weights() if weights is None else weights
        x_rz, x_h = xp[..., : 2 * H], xp[..., 2 * H :]
        r, z = torch.sigmoid(x_rz + h @ w_rz).chunk(2, -1)
        candidate = torch.tanh(x_h + (r * h) @ w_h)
        h_new = z * h + (1 - z) * candidate
        return h_new, (h_new,)
