"""MUT1, MUT2, MUT3: the three cells found by the architecture search of Jozefowicz et al. 2015.

Written h_{t+1} = F(x_t, h_t). Unlike the GRU, z multiplies the NEW candidate::

    MUT1  z = σ(W_xz x_t + b_z)                           no recurrent term
          r = σ(W_xr x_t + W_hr h_t + b_r)
          h_{t+1} = tanh(W_hh (r ⊙ h_t) + tanh(x_t) + b_h) ⊙ z + h_t ⊙ (1 − z)
    MUT2  z = σ(W_xz x_t + W_hz h_t + b_z)
          r = σ(x_t + W_hr h_t + b_r)                     raw x_t, no matrix
          h_{t+1} = tanh(W_hh (r ⊙ h_t) + W_xh x_t + b_h) ⊙ z + h_t ⊙ (1 − z)
    MUT3  z = σ(W_xz x_t + W_hz tanh(h_t) + b_z)          recurrent input to z is tanh(h)
          r = σ(W_xr x_t + W_hr h_t + b_r)
          h_{t+1} = tanh(W_hh (r ⊙ h_t) + W_xh x_t + b_h) ⊙ z + h_t ⊙ (1 − z)

MUT1 and MUT2 add the unprojected x_t to hidden-sized vectors: they need input size == hidden size.
Weight layout: the input projection produces (z, r, h) pre-activations, (T, B, 3H), bias included;
``weight_ih`` holds only the matrices that exist, in that order; ``weight_hh`` holds the recurrent
matrices in the order (W_hz, W_hr, W_hh), those that exist. ``bias`` is (b_z, b_r, b_h).
State: (h,). Parameters: MUT1 2HI+2H²+3H, MUT2 2HI+3H²+3H, MUT3 3HI+3H²+3H.

Each layer also runs in the package's fused C++ kernel (``fused_sequence``,
``rnnbench.cells.kernels.gru_kernel``).
"""

from __future__ import annotations

import torch
from torch.nn.functional import linear

from rnnbench.cells.base import Cell, fused, require_square
from rnnbench.cells.kernels import gru_kernel


def gated_update(h, z, candidate_pre):
    return torch.tanh(candidate_pre) * z + h * (1 - z)


class _MutCell(Cell):
    n_input_matrices = 3  # how many of (W_xz, W_xr, W_xh) exist
    n_recurrent_matrices = 3  # how many of (W_hz, W_hr, W_hh) exist
    fused_kernel = gru_kernel.NAME
    fused_layout: gru_kernel.Layout  # where the kernel finds the gates and matrices

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        self.weight_ih = fused(self.n_input_matrices * hidden_size, input_size)
        self.weight_hh = fused(self.n_recurrent_matrices * hidden_size, hidden_size)
        self.bias = torch.nn.Parameter(torch.zeros(3 * hidden_size))

    def step_weights(self):
        """The recurrent matrices that exist, transposed for ``h @ w``."""
        return tuple(w.t() for w in self.weight_hh.split(self.hidden_size))

    def fused_sequence(self, x, state, mask):
        return gru_kernel.run(self, x, state, mask)


class Mut1Cell(_MutCell):
    n_input_matrices, n_recurrent_matrices = 2, 2
    fused_layout = gru_kernel.Layout(xz=0, xr=1, hz=-1, hr=0, tz=-1, hc=1, z_keeps=False)

    def __init__(self, input_size, hidden_size):
        require_square("mut1", input_size, hidden_size)
        super().__init__(input_size, hidden_size)

    def project_input(self, x, linear=linear):  # the fused kernel passes its own products
        H = self.hidden_size
        zr = linear(x, self.weight_ih, self.bias[: 2 * H])
        return torch.cat([zr, torch.tanh(x) + self.bias[2 * H :]], -1)

    def step(self, xp, state, weights=None):
        h, H = state[0], self.hidden_size
        x_z, x_r, x_h = xp.split(H, -1)
        w_hr, w_hh = self.step_weights() if weights is None else weights
        z, r = torch.sigmoid(x_z), torch.sigmoid(x_r + h @ w_hr)
        h_new = gated_update(h, z, (r * h) @ w_hh + x_h)
        return h_new, (h_new,)


class Mut2Cell(_MutCell):
    n_input_matrices = 2
    fused_layout = gru_kernel.Layout(xz=0, xr=1, hz=0, hr=1, tz=-1, hc=2, z_keeps=False)

    def __init__(self, input_size, hidden_size):
        require_square("mut2", input_size, hidden_size)
        super().__init__(input_size, hidden_size)

    def project_input(self, x, linear=linear):  # the fused kernel passes its own products
        H = self.hidden_size
        x_z, x_h = linear(x, self.weight_ih).split(H, -1)
        return torch.cat([x_z, x, x_h], -1) + self.bias

    def step_weights(self):
        H = self.hidden_size
        return self.weight_hh[: 2 * H].t(), self.weight_hh[2 * H :].t()  # (W_hz, W_hr) and W_hh

    def step(self, xp, state, weights=None):
        h, H = state[0], self.hidden_size
        w_zr, w_hh = self.step_weights() if weights is None else weights
        z, r = torch.sigmoid(xp[..., : 2 * H] + h @ w_zr).chunk(2, -1)
        h_new = gated_update(h, z, (r * h) @ w_hh + xp[..., 2 * H :])
        return h_new, (h_new,)


class Mut3Cell(_MutCell):
    fused_layout = gru_kernel.Layout(xz=0, xr=1, hz=-1, hr=1, tz=0, hc=2, z_keeps=False)

    def project_input(self, x, linear=linear):  # the fused kernel passes its own products
        return linear(x, self.weight_ih, self.bias)

    def step(self, xp, state, weights=None):
        h, H = state[0], self.hidden_size
        x_z, x_r, x_h = xp.split(H, -1)
        w_hz, w_hr, w_hh = self.step_weights() if weights is None else weights
        z = torch.sigmoid(x_z + torch.tanh(h) @ w_hz)
        r = torch.sigmoid(x_r + h @ w_hr)
        h_new = gated_update(h, z, (r * h) @ w_hh + x_h)
        return h_new, (h_new,)
