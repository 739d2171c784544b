"""Properties every cell must have: its documented parameter count, a loss that one SGD step lowers,
the Greff variants' one-change relations, and a working ``debug=fast`` run from the command line."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from rnnbench.cells import CELLS, GATED_FEEDBACK, build_cell
from rnnbench.layers.recurrent import Recurrent
from rnnbench.model.init import initialize


def lstm_like(gates, peepholes=0):
    return lambda i, h: gates * h * (i + h + 1) + peepholes * h


# The formulas of docs/cells.md, for input size i and hidden size h (one layer).
FORMULAS = {
    "tanh": lambda i, h: h * (i + h + 1),
    "gru": lambda i, h: 3 * h * (i + h + 1),
    "mut1": lambda i, h: 2 * h * i + 2 * h * h + 3 * h,
    "mut2": lambda i, h: 2 * h * i + 3 * h * h + 3 * h,
    "mut3": lambda i, h: 3 * h * i + 3 * h * h + 3 * h,
    "lstm": lstm_like(4),
    "lstm_b": lstm_like(4),
    "lstm_f": lstm_like(3),
    "lstm_i": lstm_like(3),
    "lstm_o": lstm_like(3),
    "greff_v": lstm_like(4, 3),
    "niaf": lstm_like(4, 3),
    "noaf": lstm_like(4, 3),
    "nig": lstm_like(3, 2),
    "nfg": lstm_like(3, 2),
    "nog": lstm_like(3, 2),
    "cifg": lstm_like(3, 2),
    "np": lstm_like(4),
    "fgr": lambda i, h: lstm_like(4, 3)(i, h) + 9 * h * h,
    "genome": lambda i, h: 3 * h * (i + h + 1),  # cell=genome alone runs the GRU's genome
}


def gf_formula(kind, i, h, layers, feedback, read):
    """Counted per connection: bottom-up W and biases, the L*L feedback U^{i→j}, the unit-wise gates'
    recurrent matrices, and two vectors per ordered pair of layers for the scalar global gates."""
    G = {"tanh": 1, "gru": 3, "lstm": 4}[kind]
    below = i + (layers - 1) * h  # widths the layers read from below, summed over layers
    count = G * h * below + layers * G * h + layers * layers * h * h
    count += layers * (G - 1) * h * (h if read == "own" else layers * h)
    if feedback:
        count += layers * below + layers * layers * layers * h  # w_g reads h^{j-1}, u_g reads h*
    return count


ONE_LAYER = sorted(set(CELLS) - set(GATED_FEEDBACK))


def test_every_cell_has_a_formula():
    assert set(FORMULAS) | {f"gf_{k}" for k in ("tanh", "gru", "lstm")} == set(CELLS)


@pytest.mark.parametrize("name", ONE_LAYER)
@pytest.mark.parametrize("i, h", [(6, 6), (3, 7)])
def test_parameter_count_formula(name, i, h):
    if name in ("mut1", "mut2") and i != h:
        pytest.skip("needs input size == hidden size")
    cell = build_cell(name, i, h)
    assert sum(p.numel() for p in cell.parameters()) == FORMULAS[name](i, h)


@pytest.mark.parametrize("read", ["own", "all"])
@pytest.mark.parametrize("feedback", [True, False])
@pytest.mark.parametrize("kind", ["tanh", "gru", "lstm"])
@pytest.mark.parametrize("layers", [1, 3])
def test_gf_parameter_count_formula(kind, layers, feedback, read):
    cell = build_cell(f"gf_{kind}", 3, 7, num_layers=layers, feedback_gates=feedback, unit_gates_read=read)
    assert sum(p.numel() for p in cell.parameters()) == gf_formula(kind, 3, 7, layers, feedback, read)


def small_cell(name, size=8, seed=0):
    torch.manual_seed(seed)
    options = {"num_layers": 2} if name in GATED_FEEDBACK else {}
    cell = build_cell(name, size, size, **options)
    initialize(cell, "uniform")
    return cell


@pytest.mark.parametrize("name", sorted(CELLS))
def test_finite_and_one_sgd_step_lowers_the_loss(name):
    cell = small_cell(name)
    model = torch.nn.ModuleDict({"rnn": Recurrent(cell), "head": torch.nn.Linear(8, 3)})
    torch.manual_seed(1)
    xs, targets = torch.randn(6, 4, 8), torch.randn(6, 4, 3)

    def loss():
        out, final = model["rnn"](xs)
        assert torch.isfinite(out).all() and all(torch.isfinite(s).all() for s in final)
        return torch.nn.functional.mse_loss(model["head"](out), targets)

    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    before = loss()
    before.backward()
    optimizer.step()
    with torch.no_grad():
        after = loss()
    assert after < before - 1e-4


def named_rows(param, names):
    """The row blocks of a fused parameter, by gate name (order as the cell's docstring states)."""
    return dict(zip(names, param.chunk(len(names))))


def test_np_is_greff_v_without_peepholes():
    H = 8
    v, np_cell = small_cell("greff_v"), small_cell("np", seed=5)
    xs = torch.randn(5, 3, H)
    with torch.no_grad():
        for name in ("weight_ih", "weight_hh", "bias"):
            getattr(np_cell, name).copy_(getattr(v, name))  # same gates, same order (i, f, z, o)
        v.peephole.uniform_(-1, 1)
    assert not torch.allclose(Recurrent(v)(xs)[0], Recurrent(np_cell)(xs)[0], atol=1e-3)
    with torch.no_grad():
        v.peephole.zero_()
    torch.testing.assert_close(Recurrent(v)(xs)[0], Recurrent(np_cell)(xs)[0])


def test_cifg_forget_gate_is_one_minus_input_gate():
    """greff_v whose forget-gate weights are the input gate's, negated, has f = σ(−a_i) = 1 − i: CIFG."""
    H = 8
    v, cifg = small_cell("greff_v"), small_cell("cifg", seed=5)
    assert cifg.gate_names == ("i", "z", "o") and cifg.weight_ih.shape[0] == 3 * H  # no forget rows
    with torch.no_grad():
        for p in v.parameters():
            p.uniform_(-0.8, 0.8)
        for name in ("weight_ih", "weight_hh", "bias", "peephole"):
            peep = name == "peephole"
            rows = named_rows(getattr(v, name), v.peephole_gates if peep else v.gate_names)
            rows["f"].copy_(-rows["i"])
            order = cifg.peephole_gates if peep else cifg.gate_names
            getattr(cifg, name).copy_(torch.cat([rows[g] for g in order]))
    xs = torch.randn(5, 3, H)
    out_v, (y_v, c_v) = Recurrent(v)(xs)
    out_c, (y_c, c_c) = Recurrent(cifg)(xs)
    torch.testing.assert_close(out_c, out_v)
    torch.testing.assert_close(c_c, c_v)


def test_debug_fast_runs_for_every_cell(tmp_path):
    """One multirun process for every cell (start-up paid once), then each run's summary.json."""
    names = sorted(CELLS)
    overrides = ["trainer.max_steps=2", "trainer.eval_every=2", "trainer.eval_batches=1", "task.eval_size=16"]
    env = {**os.environ, "HYDRA_FULL_ERROR": "0", "OMP_NUM_THREADS": "1"}  # tiny models: threads only contend
    result = subprocess.run(
        [sys.executable, "-m", "rnnbench", "-m", f"cell={','.join(names)}", "debug=fast", *overrides],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    summaries = [
        json.loads(p.read_text()) for p in (tmp_path / "results" / "runs").glob("*/*/*/summary.json")
    ]
    assert sorted(s["cell"] for s in summaries) == names
    for s in summaries:
        assert s["status"] == "completed" and s["steps"] == 2, s["cell"]
        assert s["hidden_size"] == 16 and s["num_params"] > 0 and s["param_budget"] is None
        assert s["num_layers"] == (3 if s["cell"] in GATED_FEEDBACK else 1)
        assert all(isinstance(v, float) for v in s["best"].values()), s["cell"]
