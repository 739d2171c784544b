"""The architectures section's paired fitness: every architecture on the first draws they all got."""

from __future__ import annotations

import optuna
import pytest
from optuna.trial import create_trial

from rnnbench.report.architectures import first_draws, ranking

BASE, MUTANT = "a" * 16, "b" * 16


def study(storage: str, genome: str, task: str, values: list[float]) -> None:
    s = optuna.create_study(storage=storage, study_name=f"s-{genome}-{task}-genome", direction="maximize")
    for draw, value in enumerate(values):
        s.add_trial(create_trial(value=value, user_attrs={"draw": draw}))


def test_the_paired_fitness_uses_only_the_draws_every_architecture_got(tmp_path):
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    folder = tmp_path / "data" / "evolve" / "s"
    folder.mkdir(parents=True)
    storage = f"sqlite:///{tmp_path / 'data' / 'studies.db'}"
    study(storage, BASE, "arith", [0.4, 0.5, 0.6, 0.9, 0.7, 0.8])  # re-evaluated: draws 3-5 are its own
    study(storage, BASE, "xml", [0.3, 0.2, 0.4, 0.5, 0.3, 0.3])
    study(storage, MUTANT, "arith", [0.55, 0.3, 0.65])
    study(storage, MUTANT, "xml", [0.2, 0.44, 0.1])
    candidates = [
        {"hash": h, "origin": o, "stage": "listed", "parent": None, "mutation": None, "rounds": r}
        | {"fitness": f, "best": {}, "ratios": {}}
        for h, o, r, f in ((BASE, "gru", 2, 1.0), (MUTANT, "mutant", 1, 0.65 / 0.9))
    ]
    settings = {"name": "s", "draws": 3, "tasks": ["arith", "xml"], "memorization": {"task": "copy"}}
    summary = {"folder": str(folder), "settings": settings, "baseline": BASE, "candidates": candidates}
    assert first_draws(summary) == {
        (BASE, "arith"): 0.6,
        (BASE, "xml"): 0.4,
        (MUTANT, "arith"): 0.65,
        (MUTANT, "xml"): 0.44,
    }
    table = ranking(summary).set_index("architecture")
    assert table.loc["bbbbbbbb", "fitness, first 3 draws"] == pytest.approx(min(0.65 / 0.6, 0.44 / 0.4))
    assert table.loc["gru", "fitness, first 3 draws"] == 1.0
    assert "fitness, first 3 draws" not in ranking(summary | {"folder": str(tmp_path / "x" / "y")})
