"""Every cell against an independent reference, torch.nn parity where the math is the same, gradcheck."""

from __future__ import annotations

import pytest
import torch

from helpers import references as ref
from rnnbench.cells import CELLS, GATED_FEEDBACK, VARIANTS, build_cell
from rnnbench.layers.recurrent import Recurrent, Stack
from rnnbench.model.init import initialize

T, B, I, H = 5, 3, 4, 4  # I == H so that MUT1/MUT2 are included
# GF stacks: tests/cells/test_gated_feedback.py; genomes: tests/cells/test_genome_equivalence.py
ONE_LAYER_CELLS = sorted(set(CELLS) - set(GATED_FEEDBACK) - {"genome"})


def random_cell(name, input_size=I, hidden=H, seed=0, dtype=torch.float32):
    torch.manual_seed(seed)
    cell = build_cell(name, input_size, hidden).to(dtype)
    with torch.no_grad():
        for p in cell.parameters():  # random biases and peepholes too, so that each one is tested
            p.uniform_(-0.8, 0.8)
    return cell


def reference_run(name, cell, xs, state):
    """Runs the plain-equation reference with weights renamed from the cell's documented layout."""
    h = state[0]
    if name == "tanh":
        return ref.tanh_rnn(xs, cell.weight_ih, cell.weight_hh, cell.bias, h)
    if name == "gru":
        names = ["r", "z", "h"]
        W, U, b = (ref.split_rows(w, names) for w in (cell.weight_ih, cell.weight_hh, cell.bias))
        return ref.gru(xs, W, U, b, h)
    if name.startswith("mut"):
        input_rows = {"mut1": ["z", "r"], "mut2": ["z", "h"], "mut3": ["z", "r", "h"]}[name]
        recurrent_rows = {"mut1": ["r", "h"], "mut2": ["z", "r", "h"], "mut3": ["z", "r", "h"]}[name]
        W = ref.split_rows(cell.weight_ih, input_rows)
        U = ref.split_rows(cell.weight_hh, recurrent_rows)
        b = ref.split_rows(cell.bias, ["z", "r", "h"])
        return ref.mut(name, xs, W, U, b, h)
    spec = VARIANTS[name]
    names = [g for g in "ifzo" if g in cell.gate_names]
    W, U, b = (ref.split_rows(w, names) for w in (cell.weight_ih, cell.weight_hh, cell.bias))
    p = ref.split_rows(cell.peephole, list(cell.peephole_gates)) if spec.peepholes else None
    no = [g for g in "ifo" if g not in names and not (g == "f" and spec.forget_gate == "coupled")]
    act = {"tanh": torch.tanh, "identity": lambda a: a}
    gate_rec = None
    if spec.gate_recurrence:
        blocks = [row.chunk(3, 1) for row in cell.weight_gg.chunk(3, 0)]  # [dst][src]
        gate_rec = {(s, d): blocks[di][si] for di, d in enumerate("ifo") for si, s in enumerate("ifo")}
    return ref.lstm(
        xs,
        W,
        U,
        b,
        h,
        state[1],
        p=p,
        no=no,
        coupled=spec.forget_gate == "coupled",
        g=act[spec.block_activation],
        hact=act[spec.output_activation],
        gate_rec=gate_rec,
    )


@pytest.mark.parametrize("name", ONE_LAYER_CELLS)
def test_cell_matches_reference(name):
    cell = random_cell(name)
    xs = torch.randn(T, B, I)
    state = tuple(torch.randn(B, *shape) * 0.5 for shape in cell.state_shapes)
    if VARIANTS.get(name) and VARIANTS[name].gate_recurrence:
        state = state[:2] + tuple(torch.zeros(B, H) for _ in state[2:])
    out, final = Recurrent(cell)(xs, state)
    expected_out, expected_final = reference_run(name, cell, xs, state)
    torch.testing.assert_close(out, expected_out)
    for got, want in zip(final, expected_final):
        torch.testing.assert_close(got, want)


@pytest.mark.parametrize("name", ONE_LAYER_CELLS)
def test_gradcheck(name):
    cell = random_cell(
        name, input_size=3 if name not in ("mut1", "mut2") else 2, hidden=2, dtype=torch.float64
    )
    layer = Recurrent(cell)
    xs = torch.randn(3, 2, cell.input_size, dtype=torch.float64, requires_grad=True)
    named = dict(layer.named_parameters())

    def f(x, *ps):
        return torch.func.functional_call(layer, dict(zip(named, ps)), (x,))[0]

    inputs = (xs, *[p.detach().clone().requires_grad_() for p in named.values()])
    assert torch.autograd.gradcheck(f, inputs, eps=1e-6, atol=1e-5)


def copy_torch_lstm(torch_lstm, layers):
    with torch.no_grad():
        for k, layer in enumerate(layers):
            cell = layer.cell
            cell.weight_ih.copy_(getattr(torch_lstm, f"weight_ih_l{k}"))  # both in (i, f, g, o) order
            cell.weight_hh.copy_(getattr(torch_lstm, f"weight_hh_l{k}"))
            cell.bias.copy_(getattr(torch_lstm, f"bias_ih_l{k}") + getattr(torch_lstm, f"bias_hh_l{k}"))


@pytest.mark.parametrize("kind", ["lstm", "tanh"])
@pytest.mark.parametrize("num_layers", [1, 2])
def test_parity_with_torch_nn(kind, num_layers):
    torch.manual_seed(1)
    theirs = (torch.nn.LSTM if kind == "lstm" else torch.nn.RNN)(I, H, num_layers=num_layers)
    ours = Stack([Recurrent(build_cell(kind, I, H)) for _ in range(num_layers)])
    copy_torch_lstm(theirs, ours.layers)
    xs = torch.randn(T, B, I)
    out_theirs, final_theirs = theirs(xs)
    out_ours, final_ours = ours(xs)
    torch.testing.assert_close(out_ours, out_theirs)
    h_theirs = final_theirs[0] if kind == "lstm" else final_theirs
    torch.testing.assert_close(torch.stack([s[0] for s in final_ours]), h_theirs)
    if kind == "lstm":
        torch.testing.assert_close(torch.stack([s[1] for s in final_ours]), final_theirs[1])
    # gradients: the torch biases each receive the gradient of our single summed bias
    target = torch.randn_like(out_ours)
    ((out_ours - target) ** 2).sum().backward()
    ((out_theirs - target) ** 2).sum().backward()
    for k, layer in enumerate(ours.layers):
        torch.testing.assert_close(layer.cell.weight_ih.grad, getattr(theirs, f"weight_ih_l{k}").grad)
        torch.testing.assert_close(layer.cell.weight_hh.grad, getattr(theirs, f"weight_hh_l{k}").grad)
        torch.testing.assert_close(layer.cell.bias.grad, getattr(theirs, f"bias_ih_l{k}").grad)


def test_gru_differs_from_torch_gru():
    """The Jozefowicz GRU resets h before the matrix; torch.nn.GRU after it. They must differ."""
    torch.manual_seed(2)
    theirs = torch.nn.GRU(I, H)
    cell = build_cell("gru", I, H)
    with torch.no_grad():
        r, z, n = theirs.weight_ih_l0.chunk(3)
        cell.weight_ih.copy_(torch.cat([r, z, n]))
        cell.weight_hh.copy_(theirs.weight_hh_l0)
        cell.bias.copy_(theirs.bias_ih_l0 + theirs.bias_hh_l0)
    xs = torch.randn(T, B, I)
    assert not torch.allclose(Recurrent(cell)(xs)[0], theirs(xs)[0], atol=1e-3)


def test_lstm_b_starts_with_forget_bias_one():
    torch.manual_seed(0)
    model = Stack([Recurrent(build_cell("lstm_b", I, H))])
    initialize(model, "uniform")
    cell = model.layers[0].cell
    bias = dict(zip(cell.gate_names, cell.bias.chunk(4)))
    assert torch.equal(bias["f"], torch.ones(H))
    assert torch.equal(bias["i"], torch.zeros(H)) and torch.equal(bias["o"], torch.zeros(H))
    plain = Stack([Recurrent(build_cell("lstm", I, H))])
    initialize(plain, "uniform")
    assert torch.equal(plain.layers[0].cell.bias, torch.zeros(4 * H))


def test_forget_bias_option_overrides():
    cell = build_cell("lstm", I, H, forget_bias=2.5)
    initialize(cell, "uniform")
    assert torch.equal(cell.bias[H : 2 * H], torch.full((H,), 2.5))
