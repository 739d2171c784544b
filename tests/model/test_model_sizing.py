"""Model building: parameter-budget sizing, initialisation schemes, dense inputs for MUT1/MUT2."""

from __future__ import annotations

import math

import pytest
import torch

from helpers.configs import compose_config
from rnnbench.errors import ConfigError
from rnnbench.model.budget import parse_budget
from rnnbench.model.network import build_model, count_at, count_parameters
from rnnbench.tasks import build_task
from rnnbench.training.trainer import train


def arithmetic(cfg):
    return build_task(cfg.task, cfg.seed)


def tanh_model_params(V, O, H, L):
    """Closed formula: embedding V*H, L tanh layers of H(H+H+1), readout H*O + O."""
    return V * H + L * H * (2 * H + 1) + H * O + O


def test_budget_picks_the_largest_hidden_size_that_fits():
    cfg = compose_config("cell=tanh", "cell.num_layers=2", "model.param_budget=20000")
    task = arithmetic(cfg)
    model = build_model(cfg, task)
    H = model.stack.layers[0].cell.hidden_size
    V, O = task.input_size, task.output_size
    expected = max(h for h in range(1, 200) if tanh_model_params(V, O, h, 2) <= 20000)
    assert expected == H
    assert count_parameters(model) == tanh_model_params(V, O, H, 2) <= 20000
    assert all(layer.cell.hidden_size == H for layer in model.stack.layers)


@pytest.mark.parametrize("cell", ["lstm", "gru", "mut1", "fgr", "gf_lstm"])
def test_budget_count_is_exact_for_every_kind_of_cell(cell):
    cfg = compose_config(f"cell={cell}", "cell.num_layers=2", "model.param_budget=50000")
    task = arithmetic(cfg)
    model = build_model(cfg, task)
    H = model.stack.layers[0].cell.hidden_size
    assert count_parameters(model) == count_at(cfg, task, H) <= 50000 < count_at(cfg, task, H + 1)


def test_budget_too_small_is_one_line():
    cfg = compose_config("cell=gf_lstm", "model.param_budget=100")
    with pytest.raises(ConfigError) as error:
        build_model(cfg, arithmetic(cfg))
    message = str(error.value)
    assert "\n" not in message and "model.param_budget=100 is too small" in message and "gf_lstm" in message


@pytest.mark.parametrize(
    "given, expected", [(1000000, 1000000), ("1M", 1000000), ("250K", 250000), ("2.5k", 2500)]
)
def test_budget_spellings(given, expected):
    assert parse_budget(given) == expected


@pytest.mark.parametrize("bad", [0, -5, "lots", 1.5, True])
def test_bad_budget_is_rejected(bad):
    with pytest.raises(ConfigError, match="model.param_budget"):
        parse_budget(bad)


def test_summary_records_the_built_size_and_budget(tmp_path):
    cfg = compose_config(
        "cell=gru",
        "debug=fast",
        "model.param_budget=30000",
        "trainer.max_steps=2",
        "trainer.eval_every=2",
        "task.eval_size=16",
    )
    summary = train(cfg, tmp_path)
    H = summary["hidden_size"]
    assert summary["param_budget"] == 30000 and cfg.cell.hidden_size != H
    assert summary["num_params"] == count_at(cfg, arithmetic(cfg), H) <= 30000


def weights_and_biases(model):
    named = list(model.named_parameters())
    return [(n, p) for n, p in named if not n.endswith("bias")], [
        (n, p) for n, p in named if n.endswith("bias")
    ]


@pytest.mark.parametrize("cell", ["lstm", "greff_v", "gf_lstm", "gf_gru"])
def test_uniform_init_bound_is_scale_over_sqrt_fan_in(cell):
    s = 2.0
    cfg = compose_config(f"cell={cell}", "cell.hidden_size=48", "model.init=uniform", f"model.init_scale={s}")
    model = build_model(cfg, arithmetic(cfg))
    weights, biases = weights_and_biases(model)
    for name, p in weights:
        bound = s / math.sqrt(p.shape[-1])
        assert p.abs().max() <= bound, name
        if p.numel() >= 1000:  # large enough to come close to the bound and spread over it
            assert p.abs().max() > 0.95 * bound, name
            assert abs(p.std().item() - bound / math.sqrt(3)) < 0.05 * bound, name
    for name, p in biases:
        assert torch.count_nonzero(p) == 0, name


@pytest.mark.parametrize("cell", ["greff_v", "gf_lstm"])
def test_normal_init_std(cell):
    cfg = compose_config(f"cell={cell}", "cell.hidden_size=48", "model.init=normal", "model.init_std=0.1")
    model = build_model(cfg, arithmetic(cfg))
    weights, biases = weights_and_biases(model)
    values = torch.cat([p.detach().flatten() for _, p in weights])
    assert values.numel() > 20000
    assert abs(values.std().item() - 0.1) < 0.003 and abs(values.mean().item()) < 0.003
    assert all(torch.count_nonzero(p) == 0 for _, p in biases)


def test_pytorch_init_covers_gf_cells():
    cfg = compose_config("cell=gf_gru", "cell.hidden_size=25", "model.init=pytorch")
    cell = build_model(cfg, arithmetic(cfg)).stack.layers[0].cell
    for name, p in cell.named_parameters():
        assert 0 < p.abs().max() <= 1 / math.sqrt(25), name


class FakeDenseTask:
    """Only what the model needs from a dense-input task such as polyphonic music (88 keys)."""

    name, input_kind, input_size, output_size = "fake_music", "dense", 88, 88
    carries_state = many_to_one = False


@pytest.mark.parametrize("cell", ["mut1", "mut2"])
def test_mut1_mut2_need_a_projection_for_dense_inputs(cell):
    cfg = compose_config(f"cell={cell}", "cell.hidden_size=16")
    with pytest.raises(ConfigError) as error:
        build_model(cfg, FakeDenseTask())
    message = str(error.value)
    assert "\n" not in message and f"cell {cell}" in message and "input 88, hidden 16" in message
    assert "model.input_projection=true" in message
    fixed = compose_config(f"cell={cell}", "cell.hidden_size=16", "model.input_projection=true")
    model = build_model(fixed, FakeDenseTask())
    logits, _ = model(torch.rand(5, 2, 88))
    assert logits.shape == (5, 2, 88) and torch.isfinite(logits).all()


def test_dense_budget_for_mut1_without_projection_is_one_line():
    cfg = compose_config("cell=mut1", "model.param_budget=100000")
    with pytest.raises(ConfigError, match="model.input_projection=true"):
        build_model(cfg, FakeDenseTask())
