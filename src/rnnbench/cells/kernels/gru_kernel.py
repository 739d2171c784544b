"""The fused CPU layer (``cell.impl=fused``) of the GRU and the MUT cells: the time loop forward and its
backward run in C++ (``gru_kernel.cpp``), one call each per sequence.

Each of these cells is, per step, with ``a`` the cell's input projection of the step::

    r = σ(a_r + W_r h);  z = σ(a_z + W_z h)  (GRU, MUT2),  σ(a_z + W_z tanh(h))  (MUT3),  σ(a_z)  (MUT1)
    c = tanh(a_c + W_c (r ⊙ h))
    h' = z ⊙ h + (1 − z) ⊙ c  (GRU)   or   h' = z ⊙ c + (1 − z) ⊙ h  (MUT1..3)

The input projection of all steps is the cell's own ``project_input``, in front of the kernel, with its
matrix products (``projection``, forward and backward) those of the kernel
(``rnnbench.cells.kernels.kernel_projection``). Per step the kernel makes one product
on h (W_r, with W_z where it reads h), one on r ⊙ h (W_c), and for MUT3 one on tanh(h). The backward is
hand-written backpropagation through time: per step, from dh, the gradient reaching h' (∂L/∂out_t + from
t+1), with k the share of the old state (z for the GRU, 1 − z for the MUT cells),

    dĉ = dh ⊙ (1 − k) ⊙ (1 − c²);  dẑ = ±dh ⊙ (h − c) ⊙ z(1 − z)     (ˆ: pre-activation; + GRU, − MUT)
    d(r⊙h) = dĉ W_c;  dr̂ = d(r⊙h) ⊙ h ⊙ r(1 − r)
    dh_{t-1} = dh ⊙ k + d(r⊙h) ⊙ r + [dr̂ dẑ] W_{r,z}  (MUT3: + (dẑ W_z) ⊙ (1 − tanh²(h)))

and after the loop each recurrent matrix's gradient as one product over all steps. The masks are the
runner's: padded steps keep the state, output zeros and pass the state's gradient by. Outputs and
gradients equal the step loop's (tests/cells/test_fused_gru_mut.py).

The kernel serves float32 and float64 on the CPU; elsewhere (a GPU, bfloat16, inside torch.compile), or
where it cannot be built, ``run`` returns None and the runner runs the step loop.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch.autograd.function import once_differentiable

from rnnbench.cells.kernels import kernel_projection, native

NAME = "gru_kernel"


class Layout(NamedTuple):
    """Where a cell keeps what the kernel reads: the blocks (of H) of z and r in the input projection
    (the candidate's is 2), and of the recurrent matrices in ``weight_hh`` (-1: the cell has none)."""

    xz: int  # z in the input projection
    xr: int  # r in the input projection
    hz: int  # W_z, applied to h
    hr: int  # W_r
    tz: int  # W_z, applied to tanh(h) (MUT3)
    hc: int  # W_c, applied to r ⊙ h
    z_keeps: bool  # True: h' = z h + (1 - z) c (the GRU); False: h' = z c + (1 - z) h (MUT1..3)


projection = kernel_projection.projection("rnnbench_gru")


class FusedGRU(torch.autograd.Function):
    """(xp, h0, w_hh, mask, layout) -> (out, h_T); an absent mask is empty."""

    @staticmethod
    def forward(ctx, xp, h0, w_hh, mask, layout):
        out, hs, acts, rhs, ths = torch.ops.rnnbench_gru.forward(xp, h0, w_hh, mask, *layout)
        ctx.save_for_backward(hs, acts, rhs, ths, w_hh, mask)
        ctx.layout = layout
        return out, hs[-1].clone()

    @staticmethod
    @once_differentiable
    def backward(ctx, dout, dh):
        hs, acts, rhs, ths, w_hh, mask = ctx.saved_tensors
        dxp, dh0, dw_hh = torch.ops.rnnbench_gru.backward(
            dout.contiguous(), dh.contiguous(), hs, acts, rhs, ths, w_hh, mask, *ctx.layout
        )
        return dxp, dh0, dw_hh, None, None


def run(cell, x: torch.Tensor, state: tuple, mask: torch.Tensor | None):
    """The layer of ``cell`` (with a ``fused_layout``, and a ``project_input`` that takes the ``linear``
    to use) on ``x`` (T, B, I): (outputs, final state) as the
    step loop gives them, or None where the kernel does not serve (the runner then runs the step loop)."""
    if not native.serves(NAME, x, cell.weight_hh):
        return None
    xp = cell.project_input(x, linear=projection).contiguous()
    mask = x.new_empty(0, dtype=torch.bool) if mask is None else mask.to(torch.bool).contiguous()
    out, h = FusedGRU.apply(xp, state[0].contiguous(), cell.weight_hh.contiguous(), mask, cell.fused_layout)
    return out, (h,)
