"""The gated-feedback stacks' fused CPU layer (``cell.impl=fused``): the time loop of all L layers forward
and its backward run in C++ (``gf_kernel.cpp``), one call each per sequence, for GF-tanh, GF-GRU and
GF-LSTM, with or without global gates, unit-wise gates reading their own layer or all.

Layer 1's bottom-up pre-activations of all steps are the cell's ``project_input``, in front of the
kernel, in the kernel's products (``rnnbench.cells.kernels.kernel_projection``); the layers above read the
layer below at the same step, so their bottom-up products stay in the loop. Per step the kernel makes
one product per source layer i on h^i_{t-1} (``weight_hh[i]``: the feedback, unit-wise and global-gate
rows at once) and one bottom-up product per layer above the first.
The backward is hand-written backpropagation through time: per step, top layer first, from dh^j (the
output's gradient for the top layer, the layer above's bottom-up gradient for the others, plus what
step t+1 passes back), with s^j the gated sum and q the candidate's pre-activation,

    GF-tanh  dq = dh ⊙ (1 − h²);  ds = dq
    GF-GRU   dq = dh ⊙ z ⊙ (1 − c̃²);  dr̂ = dq ⊙ s ⊙ r(1 − r);  dẑ = dh ⊙ (c̃ − h_{t-1}) ⊙ z(1 − z);
             ds = dq ⊙ r;  dh_{t-1} gets dh ⊙ (1 − z)
    GF-LSTM  dc = (from t+1) + dh ⊙ o ⊙ (1 − tanh²c);  dî, df̂, dô as a plain LSTM;
             dq = dc ⊙ i ⊙ (1 − c̃²);  ds = dq;  dc_{t-1} = dc ⊙ f
    then     d(U^{i→j} h^i) = g^{i→j} ds;  dĝ^{i→j} = (ds · U^{i→j} h^i) g(1 − g)
             dh^{j-1}_t += [gates, q, ĝ] gradients W_bu^j;  dh^i_{t-1} += (all rows reading h^i) W_hh^i

and after the loop each matrix's gradient as one product over all steps. Masks as the runner's:
padded steps keep every layer's state, output zeros and pass the state's gradient by. Outputs and
gradients equal the step loop's (tests/cells/test_fused_gated_feedback.py).

Dropout between the layers is drawn inside the step; the kernel serves a cell without it (``dropout``
0, or in evaluation), and the step loop runs otherwise, so that a run draws the same masks whichever
path it takes. Like the other kernels it serves float32 and float64 on the CPU; elsewhere ``run``
returns None and the runner runs the step loop.
"""

from __future__ import annotations

import torch
from torch.autograd.function import once_differentiable

from rnnbench.cells.kernels import kernel_projection, native

NAME = "gf_kernel"
KIND = {"tanh": 0, "gru": 1, "lstm": 2}  # the kernel's codes
projection = kernel_projection.projection("rnnbench_gf")


class FusedGatedFeedback(torch.autograd.Function):
    """(xp, w_bu, bias_bu, w_hh, h0, c0, mask, flags) -> (out, h_T, c_T), states (L, B, H); absent
    tensors (no layers above the first, no cell state, no mask) are empty."""

    @staticmethod
    def forward(ctx, xp, w_bu, bias_bu, w_hh, h0, c0, mask, flags):
        out, hs, cs, acts, gs, fb, hc = torch.ops.rnnbench_gf.forward(
            xp, w_bu, bias_bu, w_hh, h0, c0, mask, *flags
        )
        ctx.save_for_backward(w_bu, w_hh, hs, cs, acts, gs, fb, hc, mask)
        ctx.flags = flags
        c_final = cs[:, -1].clone() if cs.numel() else cs
        if not cs.numel():
            ctx.mark_non_differentiable(c_final)
        return out, hs[:, -1].clone(), c_final

    @staticmethod
    @once_differentiable
    def backward(ctx, dout, dh, dc):
        w_bu, w_hh, hs, cs, acts, gs, fb, hc, mask = ctx.saved_tensors
        dc = dc.contiguous() if cs.numel() else dh.new_empty(0)
        dxp, dw_bu, dbias_bu, dw_hh, dh0, dc0 = torch.ops.rnnbench_gf.backward(
            dout.contiguous(), dh.contiguous(), dc, w_bu, w_hh, hs, cs, acts, gs, fb, hc, mask, *ctx.flags
        )
        upper = w_bu.numel() > 0
        return (
            dxp,
            dw_bu if upper else None,
            dbias_bu if upper else None,
            dw_hh,
            dh0,
            dc0 if cs.numel() else None,
            None,
            None,
        )


def run(cell, x: torch.Tensor, state: tuple, mask: torch.Tensor | None):
    """The layer of gated-feedback ``cell`` on ``x`` (T, B, I): (outputs, final state) as the step loop
    gives them, or None where the kernel does not serve (the runner then runs the step loop)."""
    if (cell.dropout.p > 0 and cell.training) or not native.serves(NAME, x, cell.weight_hh):
        return None
    L, empty = cell.num_layers, x.new_empty(0)
    xp = cell.project_input(x, linear=projection).contiguous()
    h0 = torch.stack(state[:L]).contiguous()
    c0 = torch.stack(state[L:]).contiguous() if cell.kind == "lstm" else empty
    w_bu = cell.weight_bu.contiguous() if L > 1 else empty
    bias_bu = cell.padded_bias()[1:].contiguous() if L > 1 else empty
    mask = empty.bool() if mask is None else mask.to(torch.bool).contiguous()
    flags = (KIND[cell.kind], cell.feedback_gates, cell.unit_gates_read == "all")
    out, h, c = FusedGatedFeedback.apply(xp, w_bu, bias_bu, cell.weight_hh.contiguous(), h0, c0, mask, flags)
    return out, (*h.unbind(0), *(c.unbind(0) if cell.kind == "lstm" else ()))
