"""The fused C++ kernel of the GRU and the MUT cells (``cell.impl=fused``,
``rnnbench.cells.kernels.gru_kernel``) equals the Python step loop: outputs, final state and gradients
(float64), with no mask, a prefix mask and a mask with gaps, in both of its product paths (plain loops for few
rows, a library product for more); float32 agrees; gradcheck on a tiny size; what ``auto`` picks. Without a
C++ compiler the file is skipped.
"""

from __future__ import annotations

import warnings

import pytest
import torch

from helpers.kernels import T, assert_same, masks, run
from rnnbench.cells import build_cell
from rnnbench.cells.kernels import gru_kernel, native
from rnnbench.layers.recurrent import Recurrent

pytestmark = pytest.mark.skipif(
    native.missing_tool() is not None,
    reason=f"the fused GRU kernel cannot be built: {native.missing_tool()}",
)

NAMES = ("gru", "mut1", "mut2", "mut3")
# (batch, hidden): the step's products in plain loops; in a library product (9 rows, a 256 KB matrix)
SIZES = {"loops": (2, 5), "library product": (9, 128)}


@pytest.fixture(scope="module", autouse=True)
def kernel():
    """Builds the kernel (or loads the cached build) once for the file; a failed build fails here."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert native.load(gru_kernel.NAME)


def random_cell(name, hidden, seed=0):
    """Input size == hidden size: MUT1 and MUT2 add the raw input to the state."""
    torch.manual_seed(seed)
    cell = build_cell(name, hidden, hidden).double()
    with torch.no_grad():
        for p in cell.parameters():  # random biases too
            p.uniform_(-0.8, 0.8) if p.dim() == 1 else p.uniform_(-2 / hidden**0.5, 2 / hidden**0.5)
    return cell


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("mask", masks(2).keys())
@pytest.mark.parametrize("name", NAMES)
def test_fused_equals_the_step_loop(name, mask, size):
    batch, hidden = SIZES[size]
    cell = random_cell(name, hidden)
    m = masks(batch)[mask]
    assert_same(run(cell, "fused", m, batch), run(cell, "python", m, batch))


@pytest.mark.parametrize("name", NAMES)
def test_float32_agrees_with_the_float64_step_loop(name):
    """float32 runs other products (oneDNN's where torch has it): equal to float32 precision."""
    cell, mask = random_cell(name, 160), masks(9)["holes"]
    reference = run(cell, "python", mask, 9)
    fast = run(cell, "fused", mask, 9, dtype=torch.float32)
    for got, want in zip([fast[0], *fast[1], *fast[2]], [reference[0], *reference[1], *reference[2]]):
        torch.testing.assert_close(got.double(), want, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_gradcheck(name):
    """The hand-written backward against finite differences: input, initial state and every parameter."""
    cell = random_cell(name, 3)
    layer, names = Recurrent(cell, impl="fused"), [n for n, _ in cell.named_parameters()]
    mask = torch.tensor([[1, 1], [0, 1], [1, 0]], dtype=torch.bool)  # a gap and a padded end
    x = torch.randn(3, 2, 3, dtype=torch.double, requires_grad=True)
    h0 = torch.randn(2, 3, dtype=torch.double, requires_grad=True)
    params = [p.detach().clone().requires_grad_() for p in cell.parameters()]

    def layer_outputs(x, h0, *params):
        out, final = torch.func.functional_call(
            layer, dict(zip(["cell." + n for n in names], params)), (x, (h0,), mask)
        )
        return out, *final

    assert torch.autograd.gradcheck(layer_outputs, (x, h0, *params))


def test_fused_runs_without_the_step(monkeypatch):
    cell = random_cell("mut3", 5)
    expected = run(cell, "python", masks(5)["prefix mask"], 5)
    monkeypatch.setattr(cell, "step", lambda *a: pytest.fail("the step loop ran"))
    assert_same(run(cell, "fused", masks(5)["prefix mask"], 5), expected)


def test_where_the_kernel_does_not_serve_the_step_loop_runs():
    cell = random_cell("gru", 5).to(torch.bfloat16)  # float32 and float64 only
    x = torch.randn(T, 2, 5, dtype=torch.bfloat16)
    assert gru_kernel.run(cell, x, cell.zero_state(2, x), None) is None
    assert Recurrent(cell, impl="fused").path == Recurrent(cell).path == "python"
    out, _ = Recurrent(cell, impl="fused")(x)
    torch.testing.assert_close(out, Recurrent(cell, impl="python")(x)[0])
