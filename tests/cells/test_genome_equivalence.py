"""The six built-in cells written as genomes compute exactly what the built-in cells compute (float64,
through ``Recurrent`` with a mask of several lengths): outputs, final states, and the gradients of the
input, the initial state and every parameter. The reference is the built-ins' step loop (impl=python)."""

from __future__ import annotations

import pytest
import torch

from rnnbench.cells import build_cell
from rnnbench.cells.genome import BUILTIN_GENOMES, GenomeCell, copy_builtin_parameters, parameter_pairs
from rnnbench.layers.recurrent import Recurrent

T, B, H = 7, 5, 4
LENGTHS = [7, 3, 1, 7, 2]
SQUARE = ("mut1", "mut2")  # they add the raw input to hidden-width values
EXACT = {"rtol": 1e-12, "atol": 1e-13}  # float64 rounding, summed over T steps: nothing else


def pair(name, seed=0):
    I = H if name in SQUARE else 3  # noqa: E741
    torch.manual_seed(seed)
    builtin = build_cell(name, I, H).double()
    with torch.no_grad():
        for p in builtin.parameters():  # random biases too, so that every row is tested
            p.uniform_(-0.8, 0.8)
    genome = GenomeCell(I, H, BUILTIN_GENOMES[name]).double()
    return builtin, copy_builtin_parameters(name, builtin, genome)


def run(cell, seed=1):
    torch.manual_seed(seed)
    x = torch.randn(T, B, cell.input_size, dtype=torch.double, requires_grad=True)
    state = tuple(torch.randn(B, H, dtype=torch.double, requires_grad=True) for _ in cell.state_shapes)
    mask = torch.arange(T).unsqueeze(1) < torch.tensor(LENGTHS)
    out, final = Recurrent(cell, impl="python")(x, state, mask)
    weights = torch.linspace(-1, 1, out.numel(), dtype=torch.double).view_as(out)  # every output counts
    loss = (out * weights).sum() + sum(((k + 2) * f.sin()).sum() for k, f in enumerate(final))
    params = dict(cell.named_parameters())
    grads = torch.autograd.grad(loss, [x, *state, *params.values()])
    return out, final, grads[: 1 + len(state)], dict(zip(params, grads[1 + len(state) :]))


@pytest.mark.parametrize("name", sorted(BUILTIN_GENOMES))
def test_genome_equals_the_builtin_cell(name):
    builtin, genome = pair(name)
    out, final, input_grads, param_grads = run(builtin)
    g_out, g_final, g_input_grads, g_param_grads = run(genome)
    assert sum(p.numel() for p in genome.parameters()) == sum(p.numel() for p in builtin.parameters())
    torch.testing.assert_close(g_out, out, **EXACT)
    assert out[3:, 2].abs().sum() == 0  # padded steps output 0 in both
    for got, want in zip(g_final, final, strict=True):
        torch.testing.assert_close(got, want, **EXACT)
    for got, want in zip(g_input_grads, input_grads, strict=True):  # x and the initial state
        torch.testing.assert_close(got, want, **EXACT)
    for param, rows, genome_param, genome_rows in parameter_pairs(name, genome):
        torch.testing.assert_close(
            g_param_grads[genome_param][genome_rows], param_grads[param][rows], **EXACT
        )


@pytest.mark.parametrize("name", ["gru", "mut3"])
def test_a_different_weight_is_noticed(name):
    """The comparison can fail: one weight off by 1e-9 shows in the outputs."""
    builtin, genome = pair(name)
    with torch.no_grad():
        genome.weight_hh[-1][0, 0] += 1e-9
    with pytest.raises(AssertionError):
        torch.testing.assert_close(run(genome)[0], run(builtin)[0], **EXACT)


def test_gru_genome_with_the_gates_swapped_is_another_cell():
    """z keeping the old state (the GRU) against z taking the candidate (MUT-style): same weights."""
    builtin, _ = pair("gru")
    swapped = BUILTIN_GENOMES["gru"].replace("h' = z * h + (1 - z) * u", "h' = (1 - z) * h + z * u")
    genome = copy_builtin_parameters("gru", builtin, GenomeCell(3, H, swapped).double())
    assert not torch.allclose(run(genome)[0], run(builtin)[0])


def test_copy_refuses_a_genome_of_other_linears():
    builtin, _ = pair("gru")
    other = GenomeCell(3, H, BUILTIN_GENOMES["mut3"]).double()
    with pytest.raises((ValueError, KeyError)):
        copy_builtin_parameters("gru", builtin, other)


def test_linear_scale_is_on_each_operands_block_diagonal():
    """Linear(0.9, x, h) = (W_x + 0.9 eye(H, I)) x + (W_h + 0.9 I) h + b, for I < H and I > H."""
    for I in (3, 6):  # noqa: E741
        cell = GenomeCell(I, H, "h' = tanh(Linear(0.9, x, h))").double()
        torch.manual_seed(I)
        for p in cell.parameters():
            torch.nn.init.uniform_(p, -0.5, 0.5)
        x, h = torch.randn(2, I, dtype=torch.double), torch.randn(2, H, dtype=torch.double)
        out, _ = cell.step(cell.project_input(x.unsqueeze(0))[0], (h,))
        w_x, w_h = (
            cell.weight_ih + 0.9 * torch.eye(H, I).double(),
            cell.weight_hh[0] + 0.9 * torch.eye(H).double(),
        )
        torch.testing.assert_close(out, torch.tanh(x @ w_x.t() + h @ w_h.t() + cell.bias), **EXACT)


def test_gradcheck_of_a_genome_with_scales_and_constants():
    """Finite differences agree with autograd through project_input, the step and the masks."""
    text = "g = relu(Linear(1.1, h) * Linear(x))\nm' = sigmoid(Linear(0.9, x, m)) - 0.5 * g\n" + (
        "h' = tanh(m' + g) * h"
    )
    cell = GenomeCell(3, 2, text).double()
    torch.manual_seed(0)
    for p in cell.parameters():
        torch.nn.init.uniform_(p, -0.5, 0.5)
    x = torch.randn(3, 2, 3, dtype=torch.double, requires_grad=True)
    h, m = (torch.randn(2, 2, dtype=torch.double, requires_grad=True) for _ in range(2))
    mask = torch.tensor([[True, True], [True, False], [True, False]])
    layer = Recurrent(cell, impl="python")

    def f(x, h, m, *params):
        out, final = torch.func.functional_call(layer, dict(zip(names, params)), (x, (h, m), mask))
        return out, *final

    names = [f"cell.{n}" for n, _ in cell.named_parameters()]
    assert torch.autograd.gradcheck(f, (x, h, m, *(p.detach().requires_grad_() for p in cell.parameters())))
