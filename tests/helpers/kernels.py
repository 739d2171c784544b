"""A layer's run compared with another's: outputs, final state and the gradients of every parameter, the
input and the initial state, for the fast paths (``cell.impl``) against the Python step loop."""

from __future__ import annotations

import torch

from rnnbench.layers.recurrent import Recurrent

T = 6  # time steps


def masks(batch: int) -> dict:
    lengths = [T, 3, 1, T, 2, 4, 5, 6, 1][:batch]
    holes = torch.rand(T, batch, generator=torch.Generator().manual_seed(0)) > 0.3
    return {
        "no mask": None,
        "prefix mask": torch.arange(T).unsqueeze(1) < torch.tensor(lengths),
        "holes": holes,  # not a prefix: padded steps in the middle of a column
    }


def run(cell, impl: str, mask, batch: int, dtype=torch.float64, seed=1):
    """Outputs, final state and the gradients of every parameter, the input and the initial state."""
    torch.manual_seed(seed)
    cell = cell.to(dtype)
    x = torch.randn(T, batch, cell.input_size, dtype=torch.float64).to(dtype).requires_grad_()
    state = tuple(
        torch.randn(batch, *s, dtype=torch.float64).to(dtype).requires_grad_() for s in cell.state_shapes
    )
    out, final = Recurrent(cell, impl=impl)(x, state, mask)
    weights = torch.linspace(-1, 1, out.numel(), dtype=dtype).view_as(out)  # every output counts
    loss = (out * weights).sum() + sum((f * (k + 2)).sum() for k, f in enumerate(final))
    grads = torch.autograd.grad(loss, [*cell.parameters(), x, *state], allow_unused=True)
    return out.detach(), [f.detach() for f in final], grads


def assert_same(fast, reference):
    (out, final, grads), (out_ref, final_ref, grads_ref) = fast, reference
    torch.testing.assert_close(out, out_ref)
    for got, want in zip(final, final_ref, strict=True):
        torch.testing.assert_close(got, want)
    for got, want in zip(grads, grads_ref, strict=True):
        if want is None:
            assert got is None or not got.any()
        else:
            torch.testing.assert_close(got, want)
