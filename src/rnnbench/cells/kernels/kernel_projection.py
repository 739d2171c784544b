"""The input projection in front of a fused kernel's time loop, ``x w^T + b`` of all steps, in the
kernels' own matrix products (oneDNN's for float32, twice as fast as torch's ``linear`` at the study
shapes on this machine), forward and backward. Every kernel library registers the two operators
(``kernel_products.h``), so a cell's projection needs only its own kernel built."""

from __future__ import annotations

import torch
from torch.autograd.function import once_differentiable


class Projection(torch.autograd.Function):
    """(library, x, weight, bias or None) -> x w^T + b, with ``torch.ops.<library>``'s products."""

    @staticmethod
    def forward(ctx, library, x, weight, bias):
        x2 = x.reshape(-1, x.shape[-1]).contiguous()
        weight = weight.contiguous()
        ctx.save_for_backward(x2, weight)
        ctx.library, ctx.shape, ctx.has_bias = library, x.shape, bias is not None
        return getattr(torch.ops, library).projection(x2, weight, bias).view(*x.shape[:-1], -1)

    @staticmethod
    @once_differentiable
    def backward(ctx, dout):
        x2, weight = ctx.saved_tensors
        d2 = dout.reshape(-1, dout.shape[-1]).contiguous()
        ops = getattr(torch.ops, ctx.library)
        dx, dweight = ops.projection_backward(d2, x2, weight, ctx.needs_input_grad[1])
        dx = dx.view(ctx.shape) if ctx.needs_input_grad[1] else None
        return None, dx, dweight, d2.sum(0) if ctx.has_bias else None


def projection(library: str):
    """``linear(x, weight, bias=None)`` in the products of kernel library ``library`` (loaded)."""

    def linear(x, weight, bias=None):
        return Projection.apply(library, x, weight, bias)

    return linear
