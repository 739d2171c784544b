"""Every cell x task combination composes from the real configs and builds a model."""

from __future__ import annotations

import pytest
from hydra import compose, initialize_config_module

from rnnbench.cells import CELLS
from rnnbench.cli_checks import available
from rnnbench.model import build_model
from rnnbench.tasks import TASKS, build_task


def compose_config(*overrides):
    with initialize_config_module(config_module="rnnbench.configs", version_base="1.3"):
        return compose(config_name="config", overrides=list(overrides))


def test_every_registered_name_has_a_config():
    assert set(available("cell", [])) == set(CELLS)
    assert set(available("task", [])) == set(TASKS)


@pytest.mark.parametrize("task", sorted(TASKS))
@pytest.mark.parametrize("cell", sorted(CELLS))
def test_cell_task_composes_and_builds(cell, task):
    cfg = compose_config(f"cell={cell}", f"task={task}", "debug=fast")
    assert cfg.cell.name == cell and cfg.task.name == task
    model = build_model(cfg, build_task(cfg.task, cfg.seed))
    assert sum(p.numel() for p in model.parameters()) > 0
