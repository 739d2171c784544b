"""The cell API: user cells, masking, bidirectional layers, nesting, initial states, model options.

Every reference here is a hand-written loop or a run of one sequence alone, never the layer under test.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

import rnnbench
from rnnbench.cells import build_cell
from rnnbench.errors import ConfigError
from rnnbench.layers.initial_state import InitialState
from rnnbench.layers.recurrent import Bidirectional, Recurrent, Stack, reverse_real

I, H, T = 3, 5, 7
LENGTHS = [7, 4, 1, 5]


def randomize(module: nn.Module, scale: float = 0.5) -> nn.Module:
    with torch.no_grad():
        for p in module.parameters():
            p.uniform_(-scale, scale)
    return module.double()


def fast_weight_step(x, state, p):
    """A user step with a vector and a matrix state: M' = 0.9 M + h hᵀ, h' = tanh(W x + M' h + U h)."""
    h, M = state
    M = 0.9 * M + h.unsqueeze(2) * h.unsqueeze(1)
    h = torch.tanh(x @ p["W"] + (M @ h.unsqueeze(2)).squeeze(2) + h @ p["U"])
    return h, (h, M)


def fast_weight_cell():
    params = {"W": torch.randn(I, H), "U": torch.randn(H, H)}
    return randomize(rnnbench.cell_from_step(fast_weight_step, params, [H, (H, H)], I, H))


def padded_batch(lengths=LENGTHS, width=I):
    x = torch.randn(max(lengths), len(lengths), width, dtype=torch.float64)
    mask = torch.arange(max(lengths)).unsqueeze(1) < torch.tensor(lengths)
    return x, mask


# --- a user cell from a plain function ------------------------------------------------------------


def test_function_cell_equals_a_hand_loop():
    cell = fast_weight_cell()
    x, _ = padded_batch()
    out, (h, M) = Recurrent(cell)(x)
    W, U = cell.params["W"], cell.params["U"]
    h_ref, M_ref = torch.zeros(4, H, dtype=torch.float64), torch.zeros(4, H, H, dtype=torch.float64)
    for t in range(x.shape[0]):
        M_ref = 0.9 * M_ref + torch.einsum("bi,bj->bij", h_ref, h_ref)
        h_ref = torch.tanh(x[t] @ W + torch.einsum("bij,bj->bi", M_ref, h_ref) + h_ref @ U)
        torch.testing.assert_close(out[t], h_ref)
    torch.testing.assert_close(M, M_ref)
    assert {n for n, _ in cell.named_parameters()} == {"params.W", "params.U"}


def test_function_cell_project_input_is_hoisted_and_trains():
    calls = []

    def project(x, p):
        calls.append(x.shape)
        return x @ p["W"]

    def step(xp, state, p):
        h = torch.tanh(xp + state[0] @ p["U"])
        return h, (h,)

    cell = rnnbench.cell_from_step(step, {"W": torch.randn(I, H), "U": torch.randn(H, H)}, [H], I, H, project)
    x = torch.randn(T, 2, I)
    out, _ = Recurrent(cell)(x)
    assert calls == [x.shape]  # once, for the whole sequence
    h = torch.zeros(2, H)
    for t in range(T):
        h = torch.tanh(x[t] @ cell.params["W"] + h @ cell.params["U"])
    torch.testing.assert_close(out[-1], h)
    out.sum().backward()
    assert cell.params["W"].grad.abs().sum() > 0


# --- masking --------------------------------------------------------------------------------------


@pytest.mark.parametrize("make_cell", [lambda: build_cell("lstm", I, H), lambda: build_cell("gru", I, H)])
def test_padding_changes_nothing_builtin(make_cell):
    check_padding_changes_nothing(randomize(make_cell()))


def test_padding_changes_nothing_user_cell_with_matrix_state():
    check_padding_changes_nothing(fast_weight_cell())


def check_padding_changes_nothing(cell):
    layer = Recurrent(cell)
    x, mask = padded_batch()
    out, state = layer(x, mask=mask)
    for b, L in enumerate(LENGTHS):
        alone, alone_state = layer(x[:L, b : b + 1])
        torch.testing.assert_close(out[:L, b : b + 1], alone)
        assert (out[L:, b] == 0).all()
        for s, a in zip(state, alone_state):
            torch.testing.assert_close(s[b : b + 1], a)


def test_padding_with_nan_does_not_leak():
    layer = Recurrent(randomize(build_cell("tanh", I, H)))
    x, mask = padded_batch()
    clean, _ = layer(x, mask=mask)
    x[~mask] = float("nan")  # whatever sits in the padding
    dirty, state = layer(x, mask=mask)
    assert torch.equal(clean, dirty) and torch.isfinite(state[0]).all()


# --- bidirectional --------------------------------------------------------------------------------


def test_reverse_real_reverses_only_the_real_prefix():
    x = torch.arange(4).view(4, 1, 1).expand(4, 2, 1).float()
    mask = torch.tensor([[1, 1], [1, 1], [1, 0], [0, 0]]).bool()
    assert reverse_real(x, mask)[:, :, 0].t().tolist() == [[2, 1, 0, 3], [1, 0, 2, 3]]
    torch.testing.assert_close(reverse_real(reverse_real(x, mask), mask), x)


def test_bidirectional_backward_half_is_a_forward_run_over_the_reversed_real_part():
    fwd, bwd = Recurrent(randomize(build_cell("lstm", I, H))), Recurrent(randomize(build_cell("gru", I, H)))
    layer = Bidirectional(fwd, bwd)
    x, mask = padded_batch()
    out, (state_f, state_b) = layer(x, mask=mask)
    assert out.shape == (T, 4, 2 * H) and layer.output_size == 2 * H
    last = layer.last_output(out, mask)
    assert last.shape == (4, 2 * H)
    for b, L in enumerate(LENGTHS):
        seq = x[:L, b : b + 1]
        ref_f, ref_state_f = fwd(seq)
        ref_b, ref_state_b = bwd(seq.flip(0))
        torch.testing.assert_close(out[:L, b : b + 1, :H], ref_f)
        torch.testing.assert_close(out[:L, b : b + 1, H:], ref_b.flip(0))  # step t: read x_{L-1}..x_t
        assert (out[L:, b] == 0).all()
        torch.testing.assert_close(last[b], torch.cat([ref_f[-1, 0], ref_b[-1, 0]]))
        torch.testing.assert_close(state_f[1][b : b + 1], ref_state_f[1])
        torch.testing.assert_close(state_b[0][b : b + 1], ref_state_b[0])


def test_stack_of_bidirectional_layers_and_many_to_one_without_mask():
    layers = [
        Bidirectional(Recurrent(build_cell("tanh", I, H)), Recurrent(build_cell("tanh", I, H))),
        Recurrent(build_cell("tanh", 2 * H, 4)),
    ]
    stack = randomize(Stack(layers))
    x, _ = padded_batch()
    out, states = stack(x)
    assert out.shape == (T, 4, 4) and len(states) == 2 and len(states[0]) == 2
    torch.testing.assert_close(stack.last_output(out), out[-1])


# --- nesting --------------------------------------------------------------------------------------

K, D = 3, 2  # each outer step's input is a sub-sequence of K steps of width D


def test_a_cell_whose_step_runs_an_inner_recurrent_layer():
    inner = Recurrent(build_cell("tanh", D, 4))
    outer = build_cell("gru", 4, H)

    def step(x, state, p):
        sub = x.view(x.shape[0], K, D).transpose(0, 1)  # (K, B, D)
        encoded, _ = p["inner"](sub)
        return p["outer"].step(p["outer"].project_input(encoded[-1]), state)

    modules = nn.ModuleDict({"inner": inner, "outer": outer})
    cell = randomize(rnnbench.cell_from_step(step, modules, outer.state_shapes, K * D, H))
    x, mask = padded_batch(width=K * D)
    out, _ = Recurrent(cell)(x, mask=mask)

    tanh_cell, gru = inner.cell, outer
    for b, L in enumerate(LENGTHS):
        h = torch.zeros(1, H, dtype=torch.float64)
        for t in range(L):
            g = torch.zeros(1, 4, dtype=torch.float64)
            for k in range(K):
                g = torch.tanh(
                    x[t, b : b + 1, k * D : (k + 1) * D] @ tanh_cell.weight_ih.t()
                    + tanh_cell.bias
                    + g @ tanh_cell.weight_hh.t()
                )
            h = gru.step(gru.project_input(g), (h,))[0]
            torch.testing.assert_close(out[t, b : b + 1], h)
    out.sum().backward()
    assert tanh_cell.weight_hh.grad.abs().sum() > 0  # the inner layer trains through the outer loop


class DeepTransitionCell(rnnbench.Cell):
    """A subclassed cell whose step runs two inner cells one after the other."""

    def __init__(self):
        super().__init__()
        self.input_size, self.hidden_size = I, H
        self.first, self.second = build_cell("tanh", I, H), build_cell("tanh", H, H)

    @property
    def state_shapes(self):
        return ((H,), (H,))

    def step(self, x, state):
        a, (h1,) = self.first.step(self.first.project_input(x), state[:1])
        b, (h2,) = self.second.step(self.second.project_input(a), state[1:])
        return b, (h1, h2)


def test_a_subclassed_cell_that_steps_inner_cells():
    cell = randomize(DeepTransitionCell())
    x, _ = padded_batch()
    out, _ = Recurrent(cell)(x)
    h1 = h2 = torch.zeros(4, H, dtype=torch.float64)
    for t in range(T):
        h1 = torch.tanh(x[t] @ cell.first.weight_ih.t() + cell.first.bias + h1 @ cell.first.weight_hh.t())
        h2 = torch.tanh(h1 @ cell.second.weight_ih.t() + cell.second.bias + h2 @ cell.second.weight_hh.t())
    torch.testing.assert_close(out[-1], h2)


# --- initial states -------------------------------------------------------------------------------


def test_drawn_initial_states_have_the_configured_spread():
    like = torch.zeros(1, dtype=torch.float64)
    normal = InitialState([(H,), (2, 3)], "normal", 0.5)(20000, like)
    uniform = InitialState([(H,)], "uniform", 0.5)(20000, like)[0]
    assert [s.shape for s in normal] == [(20000, H), (20000, 2, 3)]
    assert abs(normal[0].std().item() - 0.5) < 0.01 and abs(normal[1].mean().item()) < 0.01
    assert abs(uniform.std().item() - 0.5) < 0.01 and uniform.abs().max() <= 0.5 * 3**0.5
    again = InitialState([(H,)], "normal", 0.5)(20000, like)[0]
    assert not torch.equal(again, normal[0])  # drawn afresh for every batch
    zeros = InitialState([(H,)])(3, like)[0]
    assert zeros.shape == (3, H) and (zeros == 0).all()


def test_bad_initial_state_is_a_config_error():
    with pytest.raises(ConfigError, match="model.initial_state='ones'.*learned"):
        InitialState([(H,)], "ones")


def test_learned_initial_state_receives_gradient():
    layer = randomize(Recurrent(build_cell("lstm", I, H), initial_state="learned"))
    with torch.no_grad():
        for v in layer.initial_state.values:
            v.zero_()
    x, mask = padded_batch()
    out, _ = layer(x, mask=mask)
    out.pow(2).sum().backward()
    grads = [v.grad for v in layer.initial_state.values]
    assert len(grads) == 2 and all(g is not None and g.abs().sum() > 0 for g in grads)  # h and c


def test_learned_initial_state_lowers_the_loss():
    """Zero input, no bias: with h_0 = 0 the state stays 0 forever; a learned h_0 can fit the target."""
    torch.manual_seed(0)
    target = torch.tensor([0.5, -0.3, 0.2, 0.4])

    def step(x, state, p):
        h = torch.tanh(x @ p["W"] + state[0] @ p["U"])
        return h, (h,)

    def final_loss(kind):
        torch.manual_seed(1)
        params = {"W": torch.randn(2, 4) * 0.5, "U": torch.eye(4) + 0.1 * torch.randn(4, 4)}
        layer = Recurrent(rnnbench.cell_from_step(step, params, [4], 2, 4), initial_state=kind)
        optimizer = torch.optim.Adam(layer.parameters(), lr=0.05)
        x = torch.zeros(5, 8, 2)
        for _ in range(150):
            loss = ((layer(x)[0] - target) ** 2).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        return loss.item()

    zeros, learned = final_loss("zeros"), final_loss("learned")
    assert zeros == pytest.approx(target.pow(2).mean().item())  # nothing to learn from
    assert learned < 0.1 * zeros


# --- model options: initial_state, bidirectional ---------------------------------------------------


def test_model_options_learned_state_and_bidirectional():
    from helpers.configs import compose_config
    from rnnbench.model.network import build_model
    from rnnbench.tasks import build_task

    overrides = (
        "debug=fast",
        "task=classify",
        "model.bidirectional=true",
        "model.initial_state=learned",
        "cell.num_layers=2",
    )
    cfg = compose_config(*overrides)
    task = build_task(cfg.task, cfg.seed)
    model = build_model(cfg, task)
    hidden = cfg.cell.hidden_size
    assert model.stack.output_size == 2 * hidden and model.head.in_features == 2 * hidden
    second = model.stack.layers[1]
    assert isinstance(second, Bidirectional) and second.forward_layer.cell.input_size == 2 * hidden
    learned = [p for n, p in model.named_parameters() if "initial_state" in n]
    assert len(learned) == 2 * 2 * 2 and all((p == 0).all() for p in learned)  # layers x dirs x (h, c)
    batch = next(iter(task.train_batches(0)))
    logits, _ = model(batch.inputs, None, batch.step_mask)
    assert logits.shape == (1, batch.inputs.shape[1], task.output_size)  # many-to-one
    expected = model.head(
        model.stack.last_output(
            model.stack(model.encoder(batch.inputs), None, batch.step_mask)[0], batch.step_mask
        )
    )
    torch.testing.assert_close(logits[0], expected)
    with pytest.raises(ConfigError, match="next step"):
        arithmetic = compose_config("debug=fast", "model.bidirectional=true")
        build_model(arithmetic, build_task(arithmetic.task, 0))

    plain = build_model(compose_config("debug=fast"), task)
    assert plain.stack.output_size == hidden
    assert not any("initial_state" in n for n, _ in plain.named_parameters())
