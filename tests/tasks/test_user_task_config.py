"""A task from the user's own module, chosen from the command line with --config-dir (``_target_``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from omegaconf import OmegaConf

from helpers.paths import EXAMPLES
from rnnbench.config.schema import validate_task
from rnnbench.errors import ConfigError
from rnnbench.tasks import build_task


def test_the_example_task_trains_from_the_command_line(tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(EXAMPLES), os.environ.get("PYTHONPATH", "")])}
    command = [
        sys.executable,
        "-m",
        "rnnbench",
        "--config-dir",
        str(EXAMPLES / "my_tasks"),
        "task=delayed_echo",
        "task.delay=2",
        "cell.hidden_size=32",
        "trainer.max_steps=200",
        "trainer.eval_every=100",
        "trainer.progress=false",
    ]
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    (summary_file,) = (tmp_path / "results" / "runs" / "delayed_echo").glob("*/*/summary.json")
    summary = json.loads(summary_file.read_text())
    assert summary["task"] == "delayed_echo" and summary["headline"] == "valid/acc"
    assert summary["test"]["test/acc"] > 0.9  # chance is 1/8: it learned to remember two steps back


@pytest.mark.parametrize(
    "target, message",
    [
        ("no_such_module.Task", "task._target_='no_such_module.Task' cannot be imported"),
        ("delayed_echo.NoSuchTask", "task._target_='delayed_echo.NoSuchTask' cannot be imported"),
        ("torch.nn.Linear", "task._target_='torch.nn.Linear' is not a subclass of rnnbench.tasks.Task"),
    ],
)
def test_a_bad_target_is_one_line(examples_on_path, target, message):
    cfg = OmegaConf.create({"name": "mine", "_target_": target})
    for check in (lambda: build_task(cfg, seed=1), lambda: validate_task(dict(cfg))):
        with pytest.raises(ConfigError, match=message) as error:
            check()
        assert "\n" not in str(error.value)


def test_options_are_checked_against_the_class(examples_on_path):
    with pytest.raises(ConfigError, match="task.lenght"):
        validate_task({"name": "delayed_echo", "_target_": "delayed_echo.DelayedEcho", "lenght": 5})
    cfg = OmegaConf.create({"name": "echo", "_target_": "delayed_echo.DelayedEcho", "delay": 4})
    task = build_task(cfg, 1)
    assert task.name == "echo" and task.delay == 4
