"""Gated-feedback stacks: the equations, the ablation, and the two known broken public versions."""

from __future__ import annotations

import pytest
import torch

from helpers import references as ref
from rnnbench.cells import build_cell
from rnnbench.layers.recurrent import Recurrent, Stack
from rnnbench.model.init import initialize

T, B, I, H, L = 4, 3, 4, 5, 3  # I != H: layer 1 reads a different width than the layers above
KINDS = ("tanh", "gru", "lstm")
UNIT_GATES = {"tanh": [], "gru": ["r", "z"], "lstm": ["i", "f", "o"]}


def random_gf(kind, *, layers=L, input_size=I, hidden=H, seed=0, dtype=torch.float32, **options):
    torch.manual_seed(seed)
    cell = build_cell(f"gf_{kind}", input_size, hidden, num_layers=layers, **options).to(dtype)
    with torch.no_grad():
        for p in cell.parameters():
            p.uniform_(-0.8, 0.8)
    return cell


def named_parameters(cell):
    """The cell's fused tensors renamed per layer and per pair, as its docstring lays them out."""
    L, H, names = cell.num_layers, cell.hidden_size, list(cell.gate_names)
    GH, n_unit, unit = len(names) * H, (len(names) - 1) * H, names[:-1]
    bottom_up = [cell.weight_ih] + ([*cell.weight_bu] if L > 1 else [])
    P = {"W": [], "b": [], "U": {}, "wg": {}, "ug": {}, "Ur": {}}
    for j in range(L):
        P["W"].append(ref.split_rows(bottom_up[j][:GH], names))
        P["b"].append(ref.split_rows(cell.bias[j], names))
        for i in range(L):
            P["U"][(i, j)] = cell.weight_hh[i, j * H : (j + 1) * H]
            if cell.feedback_gates:
                P["wg"][(i, j)] = bottom_up[j][GH + i]
    unit_rows = cell.weight_hh[:, L * H : L * H + cell.n_unit_rec]  # (L_src, rows, H)
    global_rows = cell.weight_hh[:, L * H + cell.n_unit_rec :]  # (L_src, L_dst * L_src', H)
    for j in range(L):
        if not unit:  # GF-tanh has no unit-wise gates
            P["Ur"][j] = {}
        elif cell.unit_gates_read == "own":
            P["Ur"][j] = ref.split_rows(unit_rows[j], unit)
        else:  # destination j's block of every source, side by side: one matrix reading h*
            blocks = [ref.split_rows(unit_rows[i, j * n_unit : (j + 1) * n_unit], unit) for i in range(L)]
            P["Ur"][j] = {g: torch.cat([b[g] for b in blocks], 1) for g in unit}
        for i in range(L):
            if cell.feedback_gates:
                P["ug"][(i, j)] = torch.cat([global_rows[s, j * L + i] for s in range(L)])
    return P


def random_state(cell, batch=B):
    return tuple(torch.randn(batch, *shape, dtype=cell.weight_hh.dtype) * 0.5 for shape in cell.state_shapes)


@pytest.mark.parametrize("read", ["own", "all"])
@pytest.mark.parametrize("feedback", [True, False])
@pytest.mark.parametrize("kind", KINDS)
def test_matches_reference(kind, feedback, read):
    cell = random_gf(kind, feedback_gates=feedback, unit_gates_read=read)
    xs, state = torch.randn(T, B, I), random_state(cell)
    out, final = Recurrent(cell)(xs, state)
    cs = state[L:] if kind == "lstm" else None
    want_out, want_final = ref.gated_feedback(
        kind, xs, named_parameters(cell), state[:L], cs, feedback=feedback, read=read
    )
    torch.testing.assert_close(out, want_out)
    assert len(final) == len(want_final) == len(cell.state_shapes)
    for got, want in zip(final, want_final):
        torch.testing.assert_close(got, want)


@pytest.mark.parametrize("read", ["own", "all"])
@pytest.mark.parametrize("kind", KINDS)
def test_gradcheck(kind, read):
    cell = random_gf(kind, layers=2, input_size=3, hidden=2, dtype=torch.float64, unit_gates_read=read)
    layer = Recurrent(cell)
    named = dict(layer.named_parameters())
    xs = torch.randn(3, 2, 3, dtype=torch.float64, requires_grad=True)
    state = tuple(s.requires_grad_() for s in random_state(cell, batch=2))

    def f(x, *rest):
        ps, s = rest[: len(named)], rest[len(named) :]
        out, final = torch.func.functional_call(layer, dict(zip(named, ps)), (x, s))
        return out, *final

    inputs = (xs, *[p.detach().clone().requires_grad_() for p in named.values()], *state)
    assert torch.autograd.gradcheck(f, inputs, eps=1e-6, atol=1e-5)


def zero_cross_layer(cell):
    with torch.no_grad():
        for i in range(cell.num_layers):
            for j in range(cell.num_layers):
                if i != j:
                    cell.weight_hh[i, j * H : (j + 1) * H] = 0


@pytest.mark.parametrize("kind", ["tanh", "lstm"])
def test_ablation_without_cross_layer_matrices_is_a_plain_stack(kind):
    """g ≡ 1 and U^{i→j} = 0 for i != j leaves U^{j→j}: a plain stack of the Jozefowicz cell."""
    gf = random_gf(kind, feedback_gates=False)
    zero_cross_layer(gf)
    plain = Stack([Recurrent(build_cell(kind, I if j == 0 else H, H)) for j in range(L)])
    P = named_parameters(gf)
    plain_order = {"tanh": ["cand"], "lstm": ["i", "f", "cand", "o"]}[kind]  # lstm.py: (i, f, z, o)
    with torch.no_grad():
        for j, layer in enumerate(plain.layers):
            c = layer.cell
            c.weight_ih.copy_(torch.cat([P["W"][j][g] for g in plain_order]))
            c.bias.copy_(torch.cat([P["b"][j][g] for g in plain_order]))
            own = {**P["Ur"][j], "cand": P["U"][(j, j)]}
            c.weight_hh.copy_(torch.cat([own[g] for g in plain_order]))
    xs, state = torch.randn(T, B, I), random_state(gf)
    per_layer = [state[j::L] for j in range(L)]  # ((h^j), or (h^j, c^j))
    out, final = Recurrent(gf)(xs, state)
    out_plain, final_plain = plain(xs, tuple(per_layer))
    torch.testing.assert_close(out, out_plain)
    torch.testing.assert_close(
        torch.stack(final), torch.stack([s for part in zip(*final_plain) for s in part])
    )


def test_gru_ablation_without_cross_layer_matrices_is_torch_gru():
    """GF-GRU resets after the matrix (Chung et al.) as torch.nn.GRU does; with g ≡ 1, no cross-layer
    matrices and torch's b_hn = 0 it is torch.nn.GRU, whose z is our 1 − z."""
    gf = random_gf("gru", feedback_gates=False)
    zero_cross_layer(gf)
    theirs = torch.nn.GRU(I, H, num_layers=L)
    P, flip = named_parameters(gf), {"r": 1, "z": -1, "cand": 1}
    with torch.no_grad():
        for j in range(L):
            own = {**P["Ur"][j], "cand": P["U"][(j, j)]}
            getattr(theirs, f"weight_ih_l{j}").copy_(torch.cat([flip[g] * P["W"][j][g] for g in flip]))
            getattr(theirs, f"weight_hh_l{j}").copy_(torch.cat([flip[g] * own[g] for g in flip]))
            getattr(theirs, f"bias_ih_l{j}").copy_(torch.cat([flip[g] * P["b"][j][g] for g in flip]))
            getattr(theirs, f"bias_hh_l{j}").zero_()
    xs, state = torch.randn(T, B, I), random_state(gf)
    out, final = Recurrent(gf)(xs, state)
    out_theirs, h_theirs = theirs(xs, torch.stack(state))
    torch.testing.assert_close(out, out_theirs)
    torch.testing.assert_close(torch.stack(final), h_theirs)


@pytest.mark.parametrize("kind", KINDS)
def test_feedback_flows_from_upper_layers(kind):
    """Broken version (a) gates each layer's OWN state, so nothing flows down. Here the global gates
    ignore h* (u_g = 0), so layer 1 can hear layer 2's previous state only through U^{2→1}."""
    cell = random_gf(kind, layers=2)
    with torch.no_grad():
        cell.weight_hh[:, 2 * H + cell.n_unit_rec :] = 0  # u_g
    xp = cell.project_input(torch.randn(B, I))
    state = random_state(cell)
    moved = (state[0], state[1] + 1.0, *state[2:])  # only h^2_{t-1} changes

    def layer1_next(s):
        return cell.step(xp, s)[1][0]

    assert not torch.allclose(layer1_next(state), layer1_next(moved), atol=1e-4)
    with torch.no_grad():
        cell.weight_hh[1, :H] = 0  # U^{2→1}
    torch.testing.assert_close(layer1_next(state), layer1_next(moved))


def test_global_gate_is_one_scalar_per_pair():
    """Broken version (b) uses a vector gate. The parameters give one scalar per ordered pair, and the
    gate observed through an identity U^{2→1} is the same for every unit."""
    cell = random_gf("tanh", layers=2)
    GH = H  # tanh: one row block per layer
    assert cell.weight_ih.shape == (GH + 2, I)  # w_g^{1→1}, w_g^{2→1}: one row each
    assert cell.weight_bu.shape == (1, GH + 2, H)  # w_g^{1→2}, w_g^{2→2}
    assert cell.weight_hh.shape == (2, 2 * H + 4, H)  # u_g: 2 x 2 pairs, one row per source layer
    with torch.no_grad():  # layer 1's pre-activation becomes g^{2→1} h^2_{t-1}, nothing else
        cell.weight_ih[:GH] = 0
        cell.bias.zero_()
        cell.weight_hh[0, :H] = 0
        cell.weight_hh[1, :H] = torch.eye(H)
    h2 = torch.rand(B, H) * 0.5 + 0.2
    xp = cell.project_input(torch.randn(B, I))
    h1_next = cell.step(xp, (torch.randn(B, H), h2))[1][0]
    gate = torch.atanh(h1_next) / h2  # (B, H): the effective gate, unit by unit
    torch.testing.assert_close(gate, gate[:, :1].expand(B, H))
    assert ((gate > 0) & (gate < 1)).all()
    assert gate.std(0).max() > 1e-3, "the gate depends on the example"


def test_forget_bias_reaches_every_layer():
    cell = build_cell("gf_lstm", I, H, forget_bias=1.0, num_layers=L)
    initialize(cell, "uniform")
    per_gate = cell.bias.view(L, 4, H)
    assert torch.equal(per_gate[:, 1], torch.ones(L, H))
    assert torch.equal(per_gate[:, [0, 2, 3]], torch.zeros(L, 3, H))


def test_dropout_only_in_training_and_only_above_layer_one():
    cell = random_gf("lstm", dropout=0.5)
    plain = random_gf("lstm")
    xs = torch.randn(T, B, I)
    cell.eval()
    torch.testing.assert_close(Recurrent(cell)(xs)[0], Recurrent(plain)(xs)[0])
    cell.train()
    torch.manual_seed(3)
    out, final = Recurrent(cell)(xs[:1])
    torch.testing.assert_close(final[0], Recurrent(plain)(xs[:1])[1][0])  # layer 1, first step: no dropout
    assert not torch.allclose(out, Recurrent(plain)(xs[:1])[0])
