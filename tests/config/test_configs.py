"""Every cell x task combination composes from the real configs and builds a model."""

from __future__ import annotations

import pytest
import torch

from helpers.configs import compose_config
from helpers.realdata import DATA_DIR, DATA_TASKS, SKIP_REASON
from rnnbench.cells import CELLS
from rnnbench.config.cli_checks import available
from rnnbench.errors import ConfigError
from rnnbench.model.network import build_model
from rnnbench.tasks import TASKS, build_task

SQUARE_CELLS = ("mut1", "mut2")  # they add the raw input to the state: input size must equal hidden size


def test_every_registered_name_has_a_config():
    assert set(available("cell", [])) == set(CELLS)
    assert set(available("task", [])) == set(TASKS)


@pytest.mark.parametrize("task", sorted(TASKS))
@pytest.mark.parametrize("cell", sorted(CELLS))
def test_cell_task_composes_and_builds(cell, task):
    if task in DATA_TASKS and DATA_DIR is None:
        pytest.skip(SKIP_REASON)
    cfg = compose_config(f"cell={cell}", f"task={task}", "debug=fast")
    assert cfg.cell.name == cell and cfg.task.name == task
    built = build_task(cfg.task, cfg.seed, cfg.get("data_dir"))
    if cell in SQUARE_CELLS and built.input_kind == "dense":  # 88 notes in, 16 units: needs a projection
        with pytest.raises(ConfigError, match="model.input_projection=true"):
            build_model(cfg, built)
        cfg = compose_config(f"cell={cell}", f"task={task}", "debug=fast", "model.input_projection=true")
    model = build_model(cfg, built)
    assert sum(p.numel() for p in model.parameters()) > 0


@pytest.mark.parametrize("task", sorted(TASKS))
def test_every_task_evaluates_to_exact_averages_with_loss_and_headline(task):
    """One protocol: ``evaluate`` returns the loss (the divergence check reads it) and the headline, and
    the loss is the exact per-token average an independent loop over the same batches computes."""
    if task in DATA_TASKS and DATA_DIR is None:
        pytest.skip(SKIP_REASON)
    cfg = compose_config(f"task={task}", "debug=fast", "model.input_projection=true")
    built = build_task(cfg.task, cfg.seed, cfg.get("data_dir"))
    model = build_model(cfg, built).eval()
    metrics = built.evaluate(model, "valid", "cpu", 2)
    assert {"loss", built.headline} <= metrics.keys() and built.name == task
    total = count = 0.0
    state = None
    with torch.no_grad():
        for k, batch in enumerate(built.eval_batches("valid")):
            if k == 2:
                break
            logits, state = model(batch.inputs, state if built.carries_state else None, batch.step_mask)
            s, n = built.loss(logits, batch)
            total, count = total + s.item(), count + n.item()
    assert metrics["loss"] == pytest.approx(total / count, rel=1e-6)
