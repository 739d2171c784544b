"""Readout, teacher forcing and decoders, against hand-written loops over the cell's own step."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import rnnbench
from rnnbench.cells import build_cell
from rnnbench.errors import ConfigError
from rnnbench.layers.readout import Readout, TeacherForcing
from rnnbench.layers.recurrent import Recurrent

I, H, R, C, T, B = 3, 6, 2, 4, 6, 5


def randomize(module: nn.Module) -> nn.Module:
    with torch.no_grad():
        for p in module.parameters():
            p.uniform_(-0.6, 0.6)
    return module.double()


def data(width=I):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(T, B, width, generator=g, dtype=torch.float64)
    truth = 3 + torch.randn(T, B, R, generator=g, dtype=torch.float64)  # far from anything the model emits
    return x, truth


def manual(cell, readout, x, merge, context=None, feedback=None):
    """y_t = readout(cell(merge(x_t, f_t) ⊕ c)); f_t = feedback[t-1] if given, else y_{t-1}; f_0 = 0."""
    state = tuple(x.new_zeros(x.shape[1], *s) for s in cell.state_shapes)
    previous, ys = x.new_zeros(x.shape[1], R), []
    for t in range(x.shape[0]):
        f = previous if feedback is None or t == 0 else feedback[t - 1]
        merged = x[t] + f if merge == "add" else torch.cat([x[t], f], -1)
        if context is not None:
            merged = torch.cat([merged, context], -1)
        out, state = cell.step(cell.project_input(merged), state)
        previous = readout(out)
        ys.append(previous)
    return torch.stack(ys)


@pytest.mark.parametrize("merge, cell_input", [("concat", I + R), ("add", R)])
@pytest.mark.parametrize("probability", [0.0, 1.0])
def test_feedback_and_full_teacher_forcing_match_a_manual_loop(merge, cell_input, probability):
    cell, readout = randomize(build_cell("lstm", cell_input, H)), randomize(nn.Linear(H, R))
    layer = Readout(cell, merge=merge, readout=readout)
    x, truth = data(I if merge == "concat" else R)
    y, state = layer(x, truth=truth, teacher_forcing=probability)
    expected = manual(cell, readout, x, merge, feedback=truth if probability == 1.0 else None)
    torch.testing.assert_close(y, expected)
    torch.testing.assert_close(state[-1], expected[-1])  # the last state is the last readout
    assert len(state) == 3  # (y, c) of the LSTM and the readout


def test_no_truth_is_free_running():
    cell, readout = randomize(build_cell("gru", I + R, H)), randomize(nn.Linear(H, R))
    x, _ = data()
    y, _ = Readout(cell, readout=readout)(x)
    torch.testing.assert_close(y, manual(cell, readout, x, "concat"))


def test_teacher_forcing_probability_mixes_truth_and_own_output():
    """A cell that emits its feedback: y_t = f_t, so each y_t shows which source step t read."""

    def echo(x, state, p):
        return x, (x,)

    cell = rnnbench.cell_from_step(echo, {}, [R], R, R)
    steps, batch = 3, 4000
    truth = torch.arange(1, steps + 1).double().view(steps, 1, 1).expand(steps, batch, R)
    torch.manual_seed(0)
    y, _ = Readout(cell, merge="concat")(truth.new_zeros(steps, batch, 0), truth=truth, teacher_forcing=0.3)
    assert (y[0] == 0).all()  # step 0 reads the initial readout state
    for t in (1, 2):
        from_truth = y[t, :, 0] == t  # truth[t-1] = t
        own = y[t, :, 0] == y[t - 1, :, 0]
        assert (from_truth | own).all()
        assert abs(from_truth.double().mean().item() - 0.3) < 0.03


def test_decoder_sees_the_context_every_step():
    cell, readout = randomize(build_cell("tanh", R + C, H)), randomize(nn.Linear(H, R))
    layer = Readout(cell, merge="concat", readout=readout, context_size=C)
    x = torch.zeros(T, B, 0, dtype=torch.float64)  # no input at all: generation from the context
    context = torch.randn(B, C, dtype=torch.float64)
    y, _ = layer(x, context=context)
    torch.testing.assert_close(y, manual(cell, readout, x, "concat", context=context))
    other, _ = layer(x, context=context.flip(0))
    assert not torch.allclose(other, y)


def test_readout_respects_padding_and_learned_initial_readout():
    cell, readout = randomize(build_cell("gru", I + R, H)), randomize(nn.Linear(H, R))
    layer = randomize(Readout(cell, readout=readout, initial_state="learned"))
    x, truth = data()
    lengths = [6, 2, 4, 1, 3]
    mask = torch.arange(T).unsqueeze(1) < torch.tensor(lengths)
    y, _ = layer(x, mask=mask, truth=truth, teacher_forcing=1.0)
    for b, L in enumerate(lengths):
        alone, _ = layer(x[:L, b : b + 1], truth=truth[:L, b : b + 1], teacher_forcing=1.0)
        torch.testing.assert_close(y[:L, b : b + 1], alone)
        assert (y[L:, b] == 0).all()
    y.sum().backward()
    assert all(v.grad.abs().sum() > 0 for v in layer.layer.initial_state.values)


def test_sizes_that_do_not_fit_the_merge_are_config_errors():
    with pytest.raises(ConfigError, match="merge='add'"):
        Readout(build_cell("tanh", I, H), merge="add", readout=nn.Linear(H, R))
    with pytest.raises(ConfigError, match="merge='sum'"):
        Readout(build_cell("tanh", I, H), merge="sum")
    assert Readout(build_cell("tanh", I + R + C, H), readout=nn.Linear(H, R), context_size=C).input_size == I


def test_schedule_values_are_exact():
    assert TeacherForcing("constant", start=0.7)(12345) == 0.7
    linear = TeacherForcing("linear", start=1.0, end=0.1, decay_steps=100)
    assert [linear(s) for s in (0, 50, 100, 1000)] == [1.0, 1.0 - 0.9 * 0.5, 0.1, 0.1]
    inverse = TeacherForcing("inverse_sigmoid", k=10.0)
    assert inverse(0) == 10 / 11 and inverse(10) == 10 / (10 + math.e)
    assert inverse(10**9) == pytest.approx(0.0)
    values = [inverse(s) for s in range(0, 200, 10)]
    assert values == sorted(values, reverse=True)


@pytest.mark.parametrize(
    "kwargs, named",
    [
        ({"schedule": "cosine"}, "teacher_forcing.schedule='cosine'"),
        ({"start": 1.5}, "teacher_forcing.start=1.5"),
        ({"k": 0.5}, "teacher_forcing.k=0.5"),
        ({"decay_steps": 0}, "teacher_forcing.decay_steps=0"),
    ],
)
def test_bad_schedules_are_config_errors(kwargs, named):
    with pytest.raises(ConfigError, match=named.replace(".", r"\.")):
        TeacherForcing(**kwargs)


def test_context_decoder_without_feedback_is_a_plain_recurrent_layer():
    cell = randomize(build_cell("tanh", I + C, H))
    x, _ = data()
    context = torch.randn(B, C, dtype=torch.float64)
    out, _ = Recurrent(cell)(rnnbench.with_context(x, context))
    h = torch.zeros(B, H, dtype=torch.float64)
    for t in range(T):
        h = cell.step(cell.project_input(torch.cat([x[t], context], -1)), (h,))[0]
    torch.testing.assert_close(out[-1], h)
