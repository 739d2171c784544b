"""The LSTM family's fused C++ kernel (``cell.impl=fused``) equals the Python step loop: outputs, final
state and gradients (float64) for every variant, with and without masks, in both of its product paths
(plain loops for few rows, a library product for more); gradcheck on a tiny size; what ``auto`` picks;
and the step loop, with one warning, where the kernel cannot be built.

The kernel is compiled once per machine and cached (tens of seconds the first time); every test here
reuses that build. Without a C++ compiler the file is skipped.
"""

from __future__ import annotations

import warnings

import pytest
import torch

from helpers.configs import compose_config
from helpers.kernels import T, assert_same, masks, run
from rnnbench.cells import CELLS, build_cell
from rnnbench.cells.kernels import lstm_kernel, native
from rnnbench.cells.lstm import VARIANTS
from rnnbench.errors import ConfigError
from rnnbench.layers.recurrent import Recurrent
from rnnbench.model.network import build_model
from rnnbench.tasks import build_task

pytestmark = pytest.mark.skipif(
    native.missing_tool() is not None,
    reason=f"the fused LSTM kernel cannot be built: {native.missing_tool()}",
)

H = 4
LIBRARY = ("lstm", "lstm_b", "np")  # auto runs torch's own kernel for these
# (batch, hidden): the step's product in plain loops; in a library product (9 rows, a 512 KB matrix)
SIZES = {"loops": (2, H), "library product": (9, 128)}


@pytest.fixture(scope="module", autouse=True)
def kernel():
    """Builds the kernel (or loads the cached build) once for the file; a failed build fails here."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a build failure's warning becomes this test's error
        assert native.load(lstm_kernel.NAME)


def random_cell(name, hidden=H, seed=0):
    torch.manual_seed(seed)
    cell = build_cell(name, 5, hidden).double()
    with torch.no_grad():
        for p in cell.parameters():  # random biases and peepholes too, so that each one is tested
            p.uniform_(-0.8, 0.8)
    return cell


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("mask", masks(2).keys())
@pytest.mark.parametrize("name", VARIANTS)
def test_fused_equals_the_step_loop(name, mask, size):
    batch, hidden = SIZES[size]
    cell = random_cell(name, hidden)
    m = masks(batch)[mask]
    assert_same(run(cell, "fused", m, batch), run(cell, "python", m, batch))


@pytest.mark.parametrize("name", ["greff_v", "cifg", "fgr", "lstm_i"])
def test_float32_agrees_with_the_float64_step_loop(name):
    """float32 runs other products (oneDNN's where torch has it; 9 rows, a 400 KB matrix): equal to
    float32 precision."""
    cell, mask = random_cell(name, 160), masks(9)["holes"]
    with torch.no_grad():  # weights of a trained scale: float32 rounding is not amplified step to step
        for p in cell.parameters():
            p.mul_(0.1)
    reference = run(cell, "python", mask, 9)
    fast = run(cell, "fused", mask, 9, dtype=torch.float32)
    for got, want in zip([fast[0], *fast[1], *fast[2]], [reference[0], *reference[1], *reference[2]]):
        torch.testing.assert_close(got.double(), want, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", ["greff_v", "nig", "nfg", "nog", "niaf", "noaf", "cifg", "fgr", "lstm_f"])
def test_gradcheck(name):
    """The hand-written backward against finite differences: input, initial state and every parameter."""
    cell = build_cell(name, 3, 3).double()
    torch.manual_seed(0)
    with torch.no_grad():
        for p in cell.parameters():
            p.uniform_(-0.8, 0.8)
    layer, names = Recurrent(cell, impl="fused"), [n for n, _ in cell.named_parameters()]
    mask = torch.tensor([[1, 1], [1, 1], [1, 0]], dtype=torch.bool)
    x = torch.randn(3, 2, 3, dtype=torch.double, requires_grad=True)
    state = [torch.randn(2, *s, dtype=torch.double, requires_grad=True) for s in cell.state_shapes]
    params = [p.detach().clone().requires_grad_() for p in cell.parameters()]

    def layer_outputs(x, *rest):
        state, params = rest[: len(cell.state_shapes)], rest[len(cell.state_shapes) :]
        out, final = torch.func.functional_call(
            layer, dict(zip(["cell." + n for n in names], params)), (x, tuple(state), mask)
        )
        return out, *final

    assert torch.autograd.gradcheck(layer_outputs, (x, *state, *params))


def test_fused_runs_without_the_step(monkeypatch):
    cell = random_cell("greff_v")
    expected = run(cell, "python", masks(5)["prefix mask"], 5)
    monkeypatch.setattr(cell, "step", lambda *a: pytest.fail("the step loop ran"))
    assert_same(run(cell, "fused", masks(5)["prefix mask"], 5), expected)


def test_auto_picks_fused_for_every_cell_but_torch_kernels_on_the_cpu():
    paths = {name: Recurrent(build_cell(name, H, H)).path for name in CELLS}
    fused = set(VARIANTS) - set(LIBRARY) | {"gru", "mut1", "mut2", "mut3", "gf_tanh", "gf_gru", "gf_lstm"}
    assert {name for name, path in paths.items() if path == "fused"} == fused
    assert {paths[name] for name in (*LIBRARY, "tanh")} == {"library"}


def test_where_the_kernel_does_not_serve_the_step_loop_runs():
    cell = random_cell("greff_v").to(torch.bfloat16)  # float32 and float64 only
    x = torch.randn(T, 2, cell.input_size, dtype=torch.bfloat16)
    assert lstm_kernel.run(cell, x, cell.zero_state(2, x), None) is None
    assert Recurrent(cell, impl="fused").path == Recurrent(cell).path == "python"
    out, _ = Recurrent(cell, impl="fused")(x)
    torch.testing.assert_close(out, Recurrent(cell, impl="python")(x)[0])


def test_a_failed_build_warns_once_and_runs_the_step_loop(monkeypatch, tmp_path):
    monkeypatch.setattr(native, "_loaded", {})  # as in a fresh process
    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", str(tmp_path))  # no cached build
    monkeypatch.setenv("CXX", "false")  # a compiler that fails
    cell = random_cell("cifg")
    with pytest.warns(RuntimeWarning, match=r"building C\+\+ kernel lstm_kernel failed .*Python step loop"):
        run(cell, "fused", None, 2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # once only
        assert_same(run(cell, "fused", None, 2), run(cell, "python", None, 2))
    assert Recurrent(cell).path == "python"


def test_no_compiler_warns_and_runs_the_step_loop(monkeypatch):
    monkeypatch.setattr(native, "_loaded", {})
    monkeypatch.setenv("CXX", "no-such-compiler")
    cell = random_cell("nig")
    assert Recurrent(cell).path == "python"
    with pytest.warns(RuntimeWarning, match=r"cannot build C\+\+ kernel lstm_kernel: no C\+\+ compiler"):
        assert_same(run(cell, "fused", None, 2), run(cell, "python", None, 2))


def test_fused_for_a_cell_without_a_kernel_is_a_one_line_error():
    cfg = compose_config("debug=fast", "cell=tanh", "cell.impl=fused")
    with pytest.raises(ConfigError, match="cell.impl=fused is not available for TanhCell") as error:
        build_model(cfg, build_task(cfg.task, cfg.seed))
    assert "\n" not in str(error.value)
