"""A cell from the user's own module, chosen from the command line with --config-dir."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from helpers.paths import EXAMPLES
from rnnbench.cells import build_cell_from_config
from rnnbench.errors import ConfigError


def test_the_example_cell_runs_from_the_command_line(tmp_path):
    from helpers.configs import compose_config
    from rnnbench.tasks import build_task

    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(EXAMPLES), os.environ.get("PYTHONPATH", "")])}
    command = [sys.executable, "-m", "rnnbench", "--config-dir", str(EXAMPLES / "my_cells"), "cell=my_cell"]
    result = subprocess.run(
        [*command, "debug=fast"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    (summary_file,) = (tmp_path / "results" / "runs").glob("*/*/*/summary.json")
    run = summary_file.parent
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["cell"] == "my_cell" and summary["steps"] == 12
    task = build_task(compose_config("debug=fast").task, 1)
    H = summary["hidden_size"]
    embedding, mgu, head = task.input_size * H, 2 * H * (H + H + 1), (H + 1) * task.output_size
    assert summary["num_params"] == embedding + mgu + head


def test_options_reach_the_factory(examples_on_path):
    config = {"name": "my_cell", "hidden_size": 4, "num_layers": 1, "forget_bias": None}
    cell = build_cell_from_config({**config, "_target_": "my_cell.MyCell", "activation": "relu"}, 3)
    assert cell.activation is torch.relu and cell.input_size == 3 and cell.hidden_size == 4
    same = build_cell_from_config({**config, "factory": "my_cell.MyCell"}, 3)
    assert same.activation is torch.tanh


@pytest.mark.parametrize(
    "target, message",
    [
        ("no_such_module.Cell", "cell._target_='no_such_module.Cell' cannot be imported"),
        ("my_cell.NoSuchCell", "cell._target_='my_cell.NoSuchCell' cannot be imported"),
        ("my_cell.ACTIVATIONS", "cannot be called"),
        ("torch.nn.Linear", "returned Linear, not an rnnbench.cells.Cell"),
    ],
)
def test_bad_targets_are_one_line_config_errors(examples_on_path, target, message):
    config = {"name": "x", "hidden_size": 4, "num_layers": 1, "_target_": target}
    with pytest.raises(ConfigError) as error:
        build_cell_from_config(config, 3)
    assert message in str(error.value) and "\n" not in str(error.value)
