"""The LSTM family's fused CPU kernel for a population's members, all in one call each way
(``forward_members``/``backward_members`` of ``rnnbench/cells/kernels/lstm_kernel.cpp``): every member on its
own hidden size and its own steps, with the single run's arithmetic
(tests/population/test_fused_members.py)."""

from __future__ import annotations

import torch
from torch.autograd.function import once_differentiable

from rnnbench.cells.kernels import native
from rnnbench.cells.kernels.lstm_kernel import NAME, as_returned, kernel_args


class FusedLSTMMembers(torch.autograd.Function):
    """A population's members in one call each way (``lstm_kernel.cpp``, ``forward_members``): tensors
    with a leading member dimension, padded; ``members`` = (sizes, lengths, masked), one entry per member.
    Returns (out, y_T, c_T, g_T), padded."""

    @staticmethod
    def forward(ctx, x, w_ih, bias, y0, c0, g0, w_hh, peephole, w_gg, mask, flags, members):
        ops = torch.ops.rnnbench_lstm
        out, y, c, g, *saved = ops.forward_members(
            x, w_ih, bias, y0, c0, g0, w_hh, peephole, w_gg, mask, *members, *flags
        )
        ctx.save_for_backward(x, w_ih, w_hh, peephole, w_gg, mask, *saved)
        ctx.flags, ctx.members = flags, members
        if not g.numel():
            ctx.mark_non_differentiable(g)
        return out, y, c, g

    @staticmethod
    @once_differentiable
    def backward(ctx, dout, dy, dc, dg):
        x, w_ih, w_hh, peephole, w_gg, mask, *saved = ctx.saved_tensors
        dout, dy, dc, dg = (g.contiguous() for g in (dout, dy, dc, dg))
        grads = torch.ops.rnnbench_lstm.backward_members(
            dout,
            dy,
            dc,
            dg,
            x,
            w_ih,
            w_hh,
            peephole,
            w_gg,
            mask,
            saved,
            *ctx.members,
            ctx.needs_input_grad[0],
            *ctx.flags,
        )
        return *as_returned(ctx.needs_input_grad[0], grads, peephole, w_gg), None, None, None


def run_members(cell, params: dict, x: torch.Tensor, state: tuple, mask, members):
    """A population's layer of LSTM ``cell`` (the template, at the padded size) for all members at once:
    ``params`` the cell's stacked parameters by name, ``x`` (K, T, B, I), ``state`` stacked, ``mask``
    (K, T, B) or None, ``members`` (sizes, lengths, masked). Returns (outputs, final state) stacked, or
    None where the kernel does not serve."""
    if not native.serves(NAME, x, params["weight_hh"]):
        return None
    args, flags = kernel_args(cell, params, x, state, mask)
    out, y, c, g = FusedLSTMMembers.apply(*args, flags, members)
    return out, (y, c, *(g.split(cell.hidden_size, -1) if cell.spec.gate_recurrence else ()))
