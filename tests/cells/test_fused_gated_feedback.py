"""The gated-feedback stacks' fused C++ kernel (``cell.impl=fused``, ``rnnbench.cells.kernels.gf_kernel``)
equals the Python step loop: outputs, final state and gradients (float64) for GF-tanh, GF-GRU and GF-LSTM, one
and three layers, with and without global gates, unit-wise gates reading their own layer or all, with no mask,
a prefix mask and a mask with gaps, in both of its product paths; gradcheck on a tiny size; dropout keeps the
step loop (the same draws) in training and the kernel in evaluation. Without a C++ compiler the file is
skipped."""

from __future__ import annotations

import warnings

import pytest
import torch

from helpers.kernels import T, assert_same, masks, run
from rnnbench.cells import build_cell
from rnnbench.cells.gated_feedback import GatedFeedbackCell
from rnnbench.cells.kernels import gf_kernel, native
from rnnbench.layers.recurrent import Recurrent

pytestmark = pytest.mark.skipif(
    native.missing_tool() is not None,
    reason=f"the fused gated-feedback kernel cannot be built: {native.missing_tool()}",
)

# (feedback_gates, unit_gates_read); GF-tanh has no unit-wise gates
OPTIONS = {"gates, own": (True, "own"), "no gates": (False, "own"), "gates, all": (True, "all")}
CASES = [
    (name, options)
    for name in ("gf_tanh", "gf_gru", "gf_lstm")
    for options in OPTIONS
    if not (name == "gf_tanh" and options == "gates, all")
]
# (batch, hidden): the step's products in plain loops; in a library product (9 rows, 40 units)
SIZES = {"loops": (2, 4), "library product": (9, 40)}


@pytest.fixture(scope="module", autouse=True)
def kernel():
    """Builds the kernel (or loads the cached build) once for the file; a failed build fails here."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert native.load(gf_kernel.NAME)


def random_cell(name, options="gates, own", layers=3, hidden=4, dropout=0.0, seed=0):
    torch.manual_seed(seed)
    gates, read = OPTIONS[options]
    cell = build_cell(
        name, 5, hidden, num_layers=layers, feedback_gates=gates, unit_gates_read=read, dropout=dropout
    ).double()
    with torch.no_grad():
        for p in cell.parameters():  # random biases too
            p.uniform_(-0.8, 0.8)
    return cell


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("mask", masks(2).keys())
@pytest.mark.parametrize("layers", [1, 3])
@pytest.mark.parametrize(("name", "options"), CASES)
def test_fused_equals_the_step_loop(name, options, layers, mask, size):
    batch, hidden = SIZES[size]
    cell = random_cell(name, options, layers, hidden)
    m = masks(batch)[mask]
    assert_same(run(cell, "fused", m, batch), run(cell, "python", m, batch))


@pytest.mark.parametrize("name", ["gf_gru", "gf_lstm"])
def test_float32_agrees_with_the_float64_step_loop(name):
    """float32 runs other products (oneDNN's where torch has it): equal to float32 precision."""
    cell, mask = random_cell(name, hidden=40), masks(9)["holes"]
    (out, final, grads), (out_ref, final_ref, grads_ref) = (
        run(cell, "fused", mask, 9, dtype=torch.float32),
        run(cell, "python", mask, 9),
    )
    torch.testing.assert_close(out.double(), out_ref, rtol=1e-4, atol=1e-4)
    for got, want in zip([*final, *grads], [*final_ref, *grads_ref], strict=True):
        torch.testing.assert_close(got.double(), want, rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize("name", ["gf_tanh", "gf_gru", "gf_lstm"])
def test_gradcheck(name):
    cell = random_cell(name, "gates, all" if name != "gf_tanh" else "gates, own", layers=2, hidden=3)
    layer = Recurrent(cell, impl="fused")
    torch.manual_seed(1)
    x = torch.randn(4, 2, 5, dtype=torch.double, requires_grad=True)
    state = tuple(torch.randn(2, 3, dtype=torch.double, requires_grad=True) for _ in cell.state_shapes)
    mask = torch.tensor([[True, True], [True, False], [False, True], [True, True]])

    def f(x, *state):
        out, final = layer(x, state, mask)
        return out, *final

    assert torch.autograd.gradcheck(f, (x, *state))


def test_fused_runs_without_the_step(monkeypatch):
    cell = random_cell("gf_lstm", hidden=40)
    expected = run(cell, "python", masks(5)["prefix mask"], 5)
    monkeypatch.setattr(cell, "step", lambda *a, **k: pytest.fail("the step loop ran"))
    assert_same(run(cell, "fused", masks(5)["prefix mask"], 5), expected)


def test_dropout_keeps_the_step_loop_in_training_and_the_kernel_in_evaluation(monkeypatch):
    """Training with dropout draws its masks in the step, as the step loop does, so a run draws the same
    masks on either path; in evaluation (no dropout drawn) the kernel runs."""
    cell = random_cell("gf_gru", dropout=0.5)
    x = torch.randn(T, 2, 5, dtype=torch.double)
    outs = []
    for impl in ("fused", "python"):
        torch.manual_seed(3)
        outs.append(Recurrent(cell, impl=impl)(x)[0])
    torch.testing.assert_close(outs[0], outs[1])
    cell.eval()
    expected = Recurrent(cell, impl="python")(x)[0]
    monkeypatch.setattr(GatedFeedbackCell, "step", lambda *a, **k: pytest.fail("the step loop ran"))
    torch.testing.assert_close(Recurrent(cell, impl="fused")(x)[0], expected)
