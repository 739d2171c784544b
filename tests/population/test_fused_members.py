"""The LSTM kernel's population entry (``forward_members``/``backward_members``, run by
``rnnbench.population.member_steps`` for a population's layer): members of different hidden sizes and lengths,
padded and stacked, get the outputs, final states and gradients of each member's own fused run, with
zeros in the padding, for variants with and without each gate, peepholes, coupled gates and gate
recurrence, with and without masks."""

from __future__ import annotations

import pytest
import torch

from rnnbench.cells import build_cell
from rnnbench.cells.kernels import native
from rnnbench.layers.recurrent import Recurrent
from rnnbench.population import lstm_members
from rnnbench.population.member_steps import member_lengths
from rnnbench.population.padding import pad

pytestmark = pytest.mark.skipif(
    native.missing_tool() is not None,
    reason=f"the fused LSTM kernel cannot be built: {native.missing_tool()}",
)

T, B, I = 7, 3, 5
LENGTHS = {"full": None, "ragged": [[7, 7, 7], [4, 2, 4], [5, 0, 3]]}  # the last: a column within padding


def members(name, sizes):
    cells = []
    for k, H in enumerate(sizes):
        torch.manual_seed(k)
        cell = build_cell(name, I, H).double()
        with torch.no_grad():
            for p in cell.parameters():
                p.uniform_(-0.8, 0.8)
        cells.append(cell)
    return cells


def loss_of(out, final, weights):
    """A sum over members: member k's part reads only its own outputs and final state."""
    return (out * weights).sum() + sum((f * (k + 2)).sum() for k, f in enumerate(final))


@pytest.mark.parametrize("lengths", LENGTHS.values(), ids=LENGTHS.keys())
@pytest.mark.parametrize("name", ["greff_v", "cifg", "nfg", "noaf", "lstm", "fgr"])
def test_members_at_once_equal_each_members_own_run(name, lengths):
    sizes = [4, 4, 4] if name == "fgr" else [3, 6, 4]  # FGR is not paddable: equal sizes
    cells, full = members(name, sizes), max(sizes)
    template = build_cell(name, I, full).double()
    K = len(cells)
    torch.manual_seed(5)
    x = torch.randn(K, T, B, I, dtype=torch.double, requires_grad=True)
    mask = None if lengths is None else torch.arange(T).view(1, T, 1) < torch.tensor(lengths).view(K, 1, B)
    names = [n for n, _ in template.named_parameters()]
    params = {
        n: torch.stack(
            [
                pad(c.get_parameter(n).detach(), template.get_parameter(n).shape, H, full)
                for c, H in zip(cells, sizes)
            ]
        ).requires_grad_()
        for n in names
    }
    states = [[torch.randn(B, *s, dtype=torch.double) for s in c.state_shapes] for c in cells]
    stacked = tuple(
        torch.stack([pad(s, (B, *shape), H, full) for s, H in zip(parts, sizes)]).requires_grad_()
        for parts, shape in zip(zip(*states), template.state_shapes)
    )
    lens, masked = member_lengths(mask, K, T)
    out, final = lstm_members.run_members(template, params, x, stacked, mask, (sizes, lens, masked))
    weights = torch.linspace(-1, 1, out.numel(), dtype=torch.double).view_as(out)
    grads = torch.autograd.grad(loss_of(out, final, weights), [*params.values(), x, *stacked])
    for k, (cell, H) in enumerate(zip(cells, sizes)):
        L = lens[k]
        x_k = x[k, :L].detach().requires_grad_()
        state_k = tuple(s.requires_grad_() for s in states[k])
        out_k, final_k = Recurrent(cell, impl="fused")(x_k, state_k, None if mask is None else mask[k, :L])
        out_k = pad(out_k, (L, B, full), H, full)
        final_k = tuple(pad(f, (B, *shape), H, full) for f, shape in zip(final_k, template.state_shapes))
        torch.testing.assert_close(out[k, :L], out_k)
        assert not out[k, L:].any()
        for got, want in zip(final, final_k, strict=True):
            torch.testing.assert_close(got[k], want)
        own_loss = loss_of(out_k, final_k, weights[k, :L])
        own = torch.autograd.grad(own_loss, [*cell.parameters(), x_k, *state_k])
        for n, got, want in zip(names, grads, own):
            torch.testing.assert_close(got[k], pad(want, got[k].shape, H, full), msg=n)
        torch.testing.assert_close(grads[len(names)][k, :L], want_x := own[len(names)])
        assert not grads[len(names)][k, L:].any() and want_x.shape[0] == L
        for got, want, shape in zip(grads[len(names) + 1 :], own[len(names) + 1 :], template.state_shapes):
            torch.testing.assert_close(got[k], pad(want, (B, *shape), H, full))
