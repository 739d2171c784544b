"""Every fast path of the layer runner (``cell.impl``) equals the Python step loop: outputs, final state
and gradients, with and without masks. Also: what ``auto`` picks, one-line errors, the benchmark runs."""

from __future__ import annotations

import csv
import subprocess
import sys

import pytest
import torch

from helpers.configs import compose_config
from helpers.kernels import assert_same
from rnnbench.cells import CELLS, GATED_FEEDBACK, build_cell
from rnnbench.cells.base import Cell
from rnnbench.errors import ConfigError
from rnnbench.layers.recurrent import Recurrent
from rnnbench.model.network import build_model
from rnnbench.tasks import build_task

T, B, H = 6, 5, 4  # I == H so that MUT1/MUT2 are included
LIBRARY_CELLS = ("lstm", "lstm_b", "np", "tanh")  # exactly torch.nn.LSTM / torch.nn.RNN
LENGTHS = [T, 3, 1, T, 2]  # padded columns of several lengths, and full ones


def prefix_mask(lengths=LENGTHS):
    return torch.arange(T).unsqueeze(1) < torch.tensor(lengths)  # (T, B)


def random_cell(name, seed=0):
    torch.manual_seed(seed)
    options = {"num_layers": 2} if name in GATED_FEEDBACK else {}
    cell = build_cell(name, H, H, **options).double()
    with torch.no_grad():
        for p in cell.parameters():  # random biases and peepholes too, so that each one is tested
            p.uniform_(-0.8, 0.8)
    return cell


def run(cell, impl, mask, seed=1):
    """Outputs, final state and the gradients of every parameter, the input and the initial state."""
    torch.manual_seed(seed)
    x = torch.randn(T, B, H, dtype=torch.double, requires_grad=True)
    state = tuple(torch.randn(B, *s, dtype=torch.double, requires_grad=True) for s in cell.state_shapes)
    out, final = Recurrent(cell, impl=impl)(x, state, mask)
    weights = torch.linspace(-1, 1, out.numel(), dtype=torch.double).view_as(out)  # every output counts
    loss = (out * weights).sum() + sum((f * (k + 2)).sum() for k, f in enumerate(final))
    grads = torch.autograd.grad(loss, [*cell.parameters(), x, *state], allow_unused=True)
    return out.detach(), [f.detach() for f in final], grads


MASKS = {"no mask": None, "prefix mask": prefix_mask()}


@pytest.mark.parametrize("mask", MASKS.values(), ids=MASKS.keys())
@pytest.mark.parametrize("name", LIBRARY_CELLS)
def test_library_kernel_equals_the_step_loop(name, mask):
    cell = random_cell(name)
    assert_same(run(cell, "library", mask), run(cell, "python", mask))


@pytest.mark.parametrize("name", LIBRARY_CELLS)
def test_library_kernel_runs_without_the_step(name, monkeypatch):
    """``auto`` picks torch's kernel for these cells: the step loop is never entered."""
    cell = random_cell(name)
    expected = run(cell, "python", prefix_mask())
    monkeypatch.setattr(cell, "step", lambda *a: pytest.fail("the step loop ran"))
    assert Recurrent(cell).path == "library"
    assert_same(run(cell, "auto", prefix_mask()), expected)


@pytest.mark.parametrize("lengths", [[T, 0, 2, T, 1], "holes"])
def test_masks_that_are_not_lengths_fall_back_to_the_step_loop(lengths):
    holes = torch.rand(T, B, generator=torch.Generator().manual_seed(0)) > 0.3
    mask = holes if lengths == "holes" else prefix_mask(lengths)
    cell = random_cell("lstm")
    assert_same(run(cell, "library", mask), run(cell, "python", mask))


class PlainCell(Cell):
    """A cell as users write one: a step and nothing else."""

    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        self.weight = torch.nn.Parameter(torch.randn(hidden_size, input_size + hidden_size) / hidden_size)

    def step(self, xp, state):
        h = torch.tanh(torch.cat([xp, state[0]], -1) @ self.weight.t())
        return h, (h,)


def test_auto_picks_the_step_loop_for_a_cell_without_a_kernel():
    """Every built-in cell but a genome has torch's kernel or a fused one (tests/cells/test_fused*.py); a
    cell without either runs the step loop, and ``library`` or ``fused`` for it is a one-line error."""
    kernels = {n for n in CELLS if random_cell(n).library_kernel or random_cell(n).fused_kernel}
    assert kernels == set(CELLS) - {"genome"}
    assert Recurrent(random_cell("genome")).path == "python"
    cell = PlainCell(H, H).double()
    assert Recurrent(cell).path == "python"
    assert_same(run(cell, "auto", prefix_mask()), run(cell, "python", prefix_mask()))
    for impl in ("library", "fused"):
        with pytest.raises(ConfigError, match=f"cell.impl={impl} is not available"):
            Recurrent(cell, impl=impl)


@pytest.mark.slow  # compiling costs a few seconds per cell on a CPU
@pytest.mark.parametrize("name", sorted(CELLS))
def test_compiled_step_equals_the_step_loop(name):
    cell = random_cell(name)
    for mask in MASKS.values():  # the same compiled step serves both
        assert_same(run(cell, "compiled", mask), run(cell, "python", mask))


@pytest.mark.parametrize(
    "overrides, message",
    [
        (
            ["cell.impl=fast"],
            "cell.impl='fast' is not valid; choose one of: auto, python, compiled, library, fused",
        ),
        (["cell=gru", "cell.impl=library"], "cell.impl=library is not available for GRUCell"),
    ],
)
def test_bad_impl_is_a_one_line_error(overrides, message):
    cfg = compose_config("debug=fast", *overrides)
    with pytest.raises(ConfigError, match=message) as error:
        build_model(cfg, build_task(cfg.task, cfg.seed))
    assert "\n" not in str(error.value)


def test_model_layers_follow_cell_impl():
    cfg = compose_config("debug=fast", "cell.num_layers=2", "cell.impl=python")
    model = build_model(cfg, build_task(cfg.task, cfg.seed))
    assert [layer.path for layer in model.stack.layers] == ["python", "python"]


def test_bench_quick_writes_its_csv(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "rnnbench.bench", "--quick", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    rows = list(csv.DictReader(next(tmp_path.glob("cells-*.csv")).read_text().splitlines()))
    assert {r["cell"] for r in rows} >= {"nn.LSTM", "lstm", "gru"}
    assert all(float(r["total_min_ms"]) > 0 for r in rows)
    assert [float(r["ratio"]) for r in rows if r["cell"] == "nn.LSTM"] == [1.0]
    assert {r["cell"]: r["path"] for r in rows}["lstm"] == "library"
    training = list(csv.DictReader(next(tmp_path.glob("training-*.csv")).read_text().splitlines()))
    assert len(training) == 2 and all(float(r["tokens_per_s"]) > 0 for r in training)
    assert "nn.LSTM" in result.stdout


def test_bench_bad_option_is_one_line(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "rnnbench.bench", "--cells", "lstmm", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert result.stderr.strip().count("\n") == 0 and "lstmm" in result.stderr
