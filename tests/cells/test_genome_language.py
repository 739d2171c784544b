"""The genome language: what parses to what, one-line errors for malformed genomes, what the compiled
cell hoists into ``project_input`` and hands the step."""

from __future__ import annotations

import math

import pytest
import torch

from rnnbench.cells.genome import BUILTIN_GENOMES, GenomeCell, canonical_hash, parse, to_text
from rnnbench.errors import ConfigError
from rnnbench.layers.recurrent import Recurrent


def kinds(genome):
    return sorted(n.kind for n in genome.nodes)


def test_builtin_genomes_parse_to_the_papers_graphs():
    lstm = parse(BUILTIN_GENOMES["lstm"])
    assert lstm.states == ("h", "c")  # the output first, as the built-in's (y, c)
    assert kinds(lstm).count("linear") == 4 and kinds(lstm).count("sigmoid") == 3
    assert [n.args for n in lstm.nodes if n.kind == "linear"] == [(0, 1)] * 4  # each reads [x; h]
    mut1 = parse(BUILTIN_GENOMES["mut1"])
    assert mut1.states == ("h",)
    assert sorted(len(n.args) for n in mut1.nodes if n.kind == "linear") == [1, 1, 2]
    assert [n.value for n in mut1.nodes if n.kind == "const"] == [1.0]


def test_statements_split_by_semicolons_in_any_order_with_comments():
    lines = "r = sigmoid(Linear(x, h))\nz = sigmoid(Linear(x, h))\n" + (
        "u = tanh(Linear(x, r * h))\nh' = z * h + (1 - z) * u"
    )
    one_line = "h' = z * h + (1 - z) * u; u = tanh(Linear(x, r * h))  # forward references\n" + (
        "z = sigmoid(Linear(x, h)) ; r = sigmoid(Linear(x, h))"
    )
    assert structure(parse(one_line)) == structure(parse(lines))
    assert canonical_hash(one_line) == canonical_hash(lines) == canonical_hash(BUILTIN_GENOMES["gru"])


def structure(genome):
    """The graph without the text's line numbers."""
    return [(n.kind, n.args, n.value, n.label) for n in genome.nodes], genome.states, genome.outputs


@pytest.mark.parametrize("name", sorted(BUILTIN_GENOMES))
def test_text_round_trips(name):
    genome = parse(BUILTIN_GENOMES[name])
    again = parse(to_text(genome))
    assert to_text(again) == to_text(genome)
    assert structure(again) == structure(genome)


def test_linear_scale_numbers_and_unused_lines():
    genome = parse(
        "a = Linear(0.9, h); b = Linear(0.5 * h); c = Linear(-1.5, x, h); unused = relu(x)\nh' = a + b * c"
    )
    linears = [n for n in genome.nodes if n.kind == "linear"]
    assert sorted(n.value for n in linears) == [-1.5, 0.0, 0.9]
    assert [n.value for n in genome.nodes if n.kind == "const"] == [0.5]  # 0.5 * h is an operand
    assert "unused" not in to_text(genome) and "relu" not in kinds(genome)
    assert "Linear(0.9, h)" in to_text(genome) and "Linear(-1.5, x, h)" in to_text(genome)


ERRORS = [
    (
        "unknown node",
        "z = sigm(Linear(x, h))\nh' = z",
        "line 1: unknown node sigm(...); choose one of: tanh, sigmoid, ",
    ),
    (
        "undefined name",
        "h' = tanh(Linear(x, q))",
        "line 1: 'q' is not defined (a state q needs a line q' = ...); ",
    ),
    ("the choices", "h' = tanh(Linear(x, q))", "names here: h, h', x"),
    (
        "state never produced",
        "z = tanh(c)\nh' = z * h",
        "genome line 1: 'c' is not defined (a state c needs a line",
    ),
    (
        "output never produced",
        "c' = tanh(Linear(x, c))",
        "the output state h is never produced; add a line h' =",
    ),
    (
        "cycle",
        "a = tanh(Linear(b))\nb = sigmoid(a)\nh' = a * h",
        "genome line 1: a depends on itself (a -> b -> a)",
    ),
    ("new state in a cycle", "h' = tanh(Linear(x, h')) ", "genome line 1: h' depends on itself (h' -> h')"),
    (
        "assigned twice",
        "z = tanh(h)\nz = relu(h)\nh' = z",
        "genome line 2: z is assigned twice (first on line 1)",
    ),
    ("input assigned", "x = tanh(h)\nh' = x", "genome line 1: x is the input and cannot be assigned"),
    ("old state assigned", "h = tanh(x)\nh' = h", "genome line 1: h is the previous state; write h' = ..."),
    ("node kind assigned", "tanh = h\nh' = tanh", "genome line 1: tanh is a node kind"),
    (
        "operand read twice",
        "h' = tanh(Linear(x, h, x))",
        "genome line 1: a Linear(...) reads one of its operands",
    ),
    (
        "constant state",
        "h' = 1 - 0.5",
        "genome line 1, in 1 - 0.5: the new state h' is a constant, not a vector",
    ),
    (
        "linear of a constant",
        "h' = tanh(Linear(2))",
        "genome line 1, in Linear(2): Linear(...) of a constant",
    ),
    ("unclosed call", "h' = tanh(Linear(x, h)", "genome line 1: expected ')', found the end of the line"),
    ("bad character", "h' = tanh(x) / 2", "genome line 1: unexpected character '/'"),
    ("missing value", "h' = ", "genome line 1: expected a name, a number, '(' or a function"),
    ("missing operator", "h' = tanh(x) h", "genome line 1: expected an operator (+, -, *) or the end"),
]


@pytest.mark.parametrize("text, message", [e[1:] for e in ERRORS], ids=[e[0] for e in ERRORS])
def test_malformed_genomes_raise_one_line_naming_the_place(text, message):
    with pytest.raises(ConfigError) as error:
        GenomeCell(4, 4, text)
    assert message in str(error.value)
    assert "\n" not in str(error.value)


SHAPE_ERRORS = [
    (
        "raw x added to h",
        "h' = tanh(x + Linear(h))",
        "genome line 1, in x + Linear(h): '+' of x (width 3) and ",
    ),
    (
        "the widths",
        "h' = tanh(x + Linear(h))",
        "'+' of x (width 3) and Linear(h) (width 5); put the input through",
    ),
    (
        "state of input width",
        "z = sigmoid(Linear(h))\nh' = z * tanh(x)",
        "genome line 2, in z * tanh(x): '*' of z",
    ),
    ("new state is x", "h' = x", "genome, in x: the new state h' has width 3, not the hidden width 5"),
    ("mut1, input 3, hidden 5", BUILTIN_GENOMES["mut1"], "genome line 4, in Linear(r * h) + tanh(x): '+' of"),
]


@pytest.mark.parametrize("text, message", [e[1:] for e in SHAPE_ERRORS], ids=[e[0] for e in SHAPE_ERRORS])
def test_shapes_that_cannot_be_raise_at_the_cells_sizes(text, message):
    GenomeCell(5, 5, text)  # fine where input size == hidden size
    with pytest.raises(ConfigError) as error:
        GenomeCell(3, 5, text)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_any_state_names_and_constant_expressions():
    cell = GenomeCell(
        3, 5, "m' = tanh(Linear(x, h, m)) * sigmoid(2 - 1)\nh' = m' * sigmoid(Linear(h)) + 0.5 * h"
    ).double()
    assert cell.genome.states == ("h", "m") and cell.state_shapes == ((5,), (5,))
    torch.manual_seed(0)
    for p in cell.parameters():
        torch.nn.init.uniform_(p, -0.5, 0.5)
    x = torch.randn(4, 2, 3, dtype=torch.double)
    out, (h, m) = Recurrent(cell, impl="python")(x)
    m_ref, h_ref = torch.zeros(2, 5, dtype=torch.double), torch.zeros(2, 5, dtype=torch.double)
    (w_ih,), (w_h, w_m), b = [cell.weight_ih], list(cell.weight_hh), cell.bias
    blocks = cell.blocks
    for t in range(4):
        rows = lambda name, operand, w: w[slice(*blocks[name, operand][1:])]  # noqa: E731
        pre_m = (
            x[t] @ rows("m'", "x", w_ih).t()
            + h_ref @ rows("m'", "h", w_h).t()
            + m_ref @ rows("m'", "m", w_m).t()
        )
        m_new = torch.tanh(pre_m + b[slice(*cell.bias_rows["m'"])]) * (1 / (1 + math.exp(-1)))
        gate = torch.sigmoid(h_ref @ rows("h'", "h", w_h).t() + b[slice(*cell.bias_rows["h'"])])
        h_ref, m_ref = m_new * gate + 0.5 * h_ref, m_new
    torch.testing.assert_close(h, h_ref, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(m, m_ref, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(out[-1], h_ref, rtol=1e-12, atol=1e-12)


def autograd_nodes(tensor):
    seen, out, stack = set(), [], [tensor.grad_fn]
    while stack:
        fn = stack.pop()
        if fn is not None and fn not in seen:
            seen.add(fn)
            out.append(type(fn).__name__)
            stack.extend(f for f, _ in fn.next_functions)
    return out


def test_x_only_work_is_hoisted_into_one_matmul_before_the_loop():
    torch.manual_seed(0)
    cell = GenomeCell(4, 4, BUILTIN_GENOMES["mut1"]).double()
    for p in cell.parameters():
        torch.nn.init.uniform_(p, -0.5, 0.5)
    xp = cell.project_input(torch.randn(6, 2, 4, dtype=torch.double, requires_grad=True))
    products = [n for n in autograd_nodes(xp) if n in ("AddmmBackward0", "MmBackward0", "BmmBackward0")]
    assert products == ["AddmmBackward0"]  # W_xz x and W_xr x: one matmul for the whole sequence
    assert tuple(cell.weight_ih.shape) == (8, 4)
    # z = sigmoid(W_xz x + b_z), 1 - z and tanh(x) depend on x alone: the step runs only r's sigmoid
    h = torch.randn(2, 4, dtype=torch.double, requires_grad=True)
    out, _ = cell.step(xp[0].detach(), (h,))
    assert autograd_nodes(out).count("SigmoidBackward0") == 1 and "RsubBackward1" not in autograd_nodes(out)
    out.sum().backward()
    assert cell.weight_ih.grad is None  # the step never reads the input weights


def test_step_gets_each_matrix_once_pre_split():
    cell = GenomeCell(3, 5, BUILTIN_GENOMES["lstm"])
    assert [tuple(w.shape) for w in cell.step_weights()] == [(5, 20)]  # h @ W_h for all four gates
    cell = GenomeCell(3, 5, BUILTIN_GENOMES["gru"])
    # (r, z) share h's matrix; u reads r * h; no bias rows: every Linear reads x, its bias is in xp
    assert [tuple(w.shape) for w in cell.step_weights()] == [(5, 10), (5, 5)]
    cell = GenomeCell(5, 5, BUILTIN_GENOMES["mut1"])
    assert [tuple(w.shape) for w in cell.step_weights()] == [(5, 5), (5, 5), (5,)]  # W_hr, W_u and b_u
