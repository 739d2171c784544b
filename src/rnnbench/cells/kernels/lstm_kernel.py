"""The LSTM family's fused CPU layer (``cell.impl=fused``): the time loop forward and its backward run in
C++ (``lstm_kernel.cpp``), one call each per sequence, for every variant of ``rnnbench.cells.lstm``.

The input projection of all steps is one matrix product in front of the time loop (what the cell's
``project_input`` computes), its gradients likewise one product each after it. The backward is hand-written
backpropagation through time: per step, from the gradients reaching y_t and c_t (and the gate state
under FGR),

    dy = ∂L/∂out_t + (from t+1);  do = dy ⊙ h(c_t);  dh = dy ⊙ o
    dc = (from t+1) + dh ⊙ h'(c_t) + dô ⊙ p_o               (ô: the pre-activation; dô = do ⊙ o(1-o))
    dẑ = dc ⊙ i ⊙ g'(ẑ);  dî = (dc ⊙ z [- dc ⊙ c_{t-1} for CIFG]) ⊙ i(1-i);  df̂ = dc ⊙ c_{t-1} ⊙ f(1-f)
    dc_{t-1} = dc ⊙ f + dî ⊙ p_i + df̂ ⊙ p_f;  dy_{t-1} = [dî df̂ dẑ dô] R;  (FGR) dg_{t-1} = [dî df̂ dô] R_gg

and after the loop each matrix's gradient as one product over all steps. The masks are the
runner's: padded steps keep the state, output zeros and pass the state's gradient by. Outputs and
gradients equal the step loop's (tests/cells/test_fused.py).

The kernel serves float32 and float64 on the CPU; elsewhere (a GPU, bfloat16, inside torch.compile), or
where it cannot be built, ``run`` returns None and the runner runs the step loop.
"""

from __future__ import annotations

import torch
from torch.autograd.function import once_differentiable

from rnnbench.cells.kernels import native

NAME = "lstm_kernel"
FORGET = {"gate": 0, "none": 1, "coupled": 2}  # the kernel's codes


class FusedLSTM(torch.autograd.Function):
    """(x, w_ih, bias, y0, c0, g0, w_hh, peephole, w_gg, mask, flags) -> (out, y_T, c_T, g_T). Absent
    tensors (no peepholes, no gate recurrence, no mask) are empty; ``flags``: the spec in the kernel's
    terms."""

    @staticmethod
    def forward(ctx, x, w_ih, bias, y0, c0, g0, w_hh, peephole, w_gg, mask, flags):
        ops = torch.ops.rnnbench_lstm
        out, ys, cs, gs, acts, hc = ops.forward(x, w_ih, bias, y0, c0, g0, w_hh, peephole, w_gg, mask, *flags)
        ctx.save_for_backward(x, w_ih, ys, cs, gs, acts, hc, w_hh, peephole, w_gg, mask)
        ctx.flags = flags
        g_final = gs[-1].clone() if gs.numel() else gs
        if not gs.numel():
            ctx.mark_non_differentiable(g_final)
        return out, ys[-1].clone(), cs[-1].clone(), g_final

    @staticmethod
    @once_differentiable
    def backward(ctx, dout, dy, dc, dg):
        x, w_ih, ys, cs, gs, acts, hc, w_hh, peephole, w_gg, mask = ctx.saved_tensors
        dout, dy, dc, dg = (g.contiguous() for g in (dout, dy, dc, dg))
        grads = torch.ops.rnnbench_lstm.backward(
            dout,
            dy,
            dc,
            dg,
            x,
            w_ih,
            ys,
            cs,
            gs,
            acts,
            hc,
            w_hh,
            peephole,
            w_gg,
            mask,
            ctx.needs_input_grad[0],
            *ctx.flags,
        )
        return *as_returned(ctx.needs_input_grad[0], grads, peephole, w_gg), None, None


def as_returned(input_grad: bool, grads, peephole, w_gg) -> tuple:
    """The kernel's gradients of (x, w_ih, bias, y0, c0, g0, w_hh, peephole, w_gg) as autograd takes
    them: None for the input where it needs none and for the tensors a variant lacks."""
    dx, dw_ih, dbias, dy0, dc0, dg0, dw_hh, dpeep, dw_gg = grads
    recurrence, peepholes = w_gg.numel() > 0, peephole.numel() > 0
    return (
        dx if input_grad else None,
        dw_ih,
        dbias,
        dy0,
        dc0,
        dg0 if recurrence else None,
        dw_hh,
        dpeep if peepholes else None,
        dw_gg if recurrence else None,
    )


def run(cell, x: torch.Tensor, state: tuple, mask: torch.Tensor | None):
    """The layer of LSTM ``cell`` on ``x`` (T, B, I): (outputs, final state) as the step loop gives them,
    or None where the kernel does not serve (the runner then runs the step loop)."""
    if not native.serves(NAME, x, cell.weight_hh):
        return None
    args, flags = kernel_args(cell, dict(cell.named_parameters()), x, state, mask)
    out, y, c, g = FusedLSTM.apply(*args, flags)
    return out, (y, c, *(g.split(cell.hidden_size, -1) if cell.spec.gate_recurrence else ()))


def kernel_args(cell, params: dict, x: torch.Tensor, state: tuple, mask: torch.Tensor | None):
    """(x, w_ih, bias, y0, c0, g0, w_hh, peephole, w_gg, mask) as the kernel takes them (contiguous, an
    absent one empty), and ``cell``'s variant in the kernel's terms (flags). ``params``: the cell's
    parameters by name, its own or a population's stacked ones."""
    spec, empty = cell.spec, x.new_empty(0)
    recurrence = spec.gate_recurrence
    y0, c0 = (s.contiguous() for s in state[:2])
    g0 = torch.cat(state[2:], -1).contiguous() if recurrence else empty
    peephole = params["peephole"].contiguous() if cell.peephole_gates else empty
    w_gg = params["weight_gg"].contiguous() if recurrence else empty
    mask = empty.bool() if mask is None else mask.to(torch.bool).contiguous()
    w_ih, bias, w_hh = (params[n].contiguous() for n in ("weight_ih", "bias", "weight_hh"))
    flags = (
        "i" in cell.slot,
        FORGET[spec.forget_gate],
        "o" in cell.slot,
        spec.block_activation == "tanh",
        spec.output_activation == "tanh",
    )
    return (x.contiguous(), w_ih, bias, y0, c0, g0, w_hh, peephole, w_gg, mask), flags
