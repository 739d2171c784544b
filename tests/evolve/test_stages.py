"""An evaluation's command line: the search's, the task's settings, and a debug choice over both."""

from __future__ import annotations

import pytest

from rnnbench.evolve.stages import stage_argv
from rnnbench.search.command import read_command_line
from rnnbench.search.space import parse_space


def arithmetic_stage(*argv: str):
    args = tuple(read_command_line(list(argv)).cfg.evolve.task_args.get("arithmetic", []))
    return args, read_command_line(stage_argv(list(argv), args)).cfg


def test_a_stage_takes_the_task_settings_of_the_preset():
    args, cfg = arithmetic_stage("evolve=jozefowicz_cpu")
    assert "trainer.max_steps=4000" in args and cfg.trainer.max_steps == 4000
    assert stage_argv(["evolve=jozefowicz_cpu"], args) == [
        "evolve=jozefowicz_cpu",
        *args,
        "cell=genome",
        "search.paired=true",
    ]
    assert "model.param_budget" in parse_space(cfg.search.space)


@pytest.mark.parametrize("preset", ["evolve=jozefowicz_cpu", "evolve=jozefowicz"])
def test_debug_fast_makes_every_evaluation_tiny_whatever_the_preset(preset):
    _, cfg = arithmetic_stage(preset, "debug=fast")
    assert (cfg.trainer.max_steps, cfg.trainer.eval_batches, cfg.cell.hidden_size) == (12, 2, 16)
    assert cfg.model.param_budget is None and "model.param_budget" not in parse_space(cfg.search.space)
