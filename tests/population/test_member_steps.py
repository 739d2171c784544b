"""A population's layer runs its members at once (``rnnbench.population.member_steps``): outputs, final
states and gradients equal those of each member's own run, whatever the members' sequence lengths."""

from __future__ import annotations

import pytest
import torch
from torch.func import functional_call, vmap

from rnnbench.cells import CELLS, GATED_FEEDBACK, build_cell
from rnnbench.layers.recurrent import Recurrent
from rnnbench.population.member_layer import MemberLayer, stackable

K, T, B, H = 3, 6, 2, 4  # input size == hidden size, so that MUT1/MUT2 are included
STACKABLE = sorted(n for n in CELLS if n not in GATED_FEEDBACK and stackable(build_cell(n, H, H)))
LENGTHS = {
    "full": None,
    "ragged members": [[4, 4], [2, 2], [6, 6]],  # each member's columns alike: members leave the loop
    "ragged columns": [[1, 5], [0, 2], [6, 3]],  # and columns masked within a member
}


def member_cells(name):
    cells = []
    for k in range(K):
        torch.manual_seed(k)
        cell = build_cell(name, H, H).double()
        with torch.no_grad():
            for p in cell.parameters():  # random biases and peepholes too
                p.uniform_(-0.8, 0.8)
        cells.append(cell)
    return cells


def loss_of(out, final):
    weights = torch.linspace(-1, 1, out[0].numel(), dtype=torch.double).view_as(out[0])
    return (out * weights).sum() + sum((f * (k + 2)).sum() for k, f in enumerate(final))


@pytest.mark.parametrize("impl", ["python", "auto"])  # auto: a torch kernel per member where a cell has one
@pytest.mark.parametrize("lengths", LENGTHS.values(), ids=LENGTHS.keys())
@pytest.mark.parametrize("name", STACKABLE)
def test_members_at_once_equal_each_member_alone(name, lengths, impl):
    cells = member_cells(name)
    torch.manual_seed(10)
    x = torch.randn(K, T, B, H, dtype=torch.double, requires_grad=True)
    mask = None if lengths is None else torch.arange(T).view(1, T, 1) < torch.tensor(lengths).view(K, 1, B)
    names = [n for n, _ in cells[0].named_parameters()]
    stacked = {n: torch.stack([c.get_parameter(n) for c in cells]).detach().requires_grad_() for n in names}

    layer = MemberLayer.wrap(Recurrent(build_cell(name, H, H).double(), impl=impl), None)

    def member(params, x, mask):
        return functional_call(layer, {f"cell.{n}": p for n, p in params.items()}, (x, None, mask))

    out, final = vmap(member, in_dims=(0, 0, None if mask is None else 0))(stacked, x, mask)
    grads = torch.autograd.grad(loss_of(out, final), [*stacked.values(), x])

    for k, cell in enumerate(cells):
        x_k = x[k].detach().requires_grad_()
        out_k, final_k = Recurrent(cell, impl="python")(x_k, None, None if mask is None else mask[k])
        grads_k = torch.autograd.grad(loss_of(out_k.unsqueeze(0), final_k), [*cell.parameters(), x_k])
        torch.testing.assert_close(out[k], out_k)
        for got, want in zip(final, final_k, strict=True):
            torch.testing.assert_close(got[k], want)
        for got, want in zip(grads, grads_k, strict=True):
            torch.testing.assert_close(got[k], want)
