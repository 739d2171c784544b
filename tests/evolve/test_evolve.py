"""The architecture search end to end, tiny: killed with SIGKILL in the middle of an evaluation and run
again, it ends with the list and records of an uninterrupted run, and no draw is trained twice."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest

from rnnbench.report import make_report

TINY = [
    "evolve=jozefowicz",
    "debug=fast",
    "evolve.candidates=2",
    "evolve.draws=1",
    "evolve.tasks=[arithmetic]",
    "evolve.score=[tanh]",
    "evolve.memorization.pass=0.0",
    "search.space.model.param_budget.choices=[3000]",
    "search.space.cell.num_layers.choices=[1]",
    "search.workers=1",
    "search.heartbeat_s=1",
]


def evolve(results: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "rnnbench.evolve", *TINY, f"results_dir={results}"]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout)


def summary(results: Path) -> dict:
    return json.loads((results / "evolve" / "jozefowicz" / "summary.json").read_text())


@pytest.mark.slow
def test_a_killed_search_continues_to_the_same_list_and_trains_nothing_twice(tmp_path):
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    assert evolve(whole).returncode == 0
    command = [sys.executable, "-m", "rnnbench.evolve", *TINY, f"results_dir={parts}"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    events = parts / "evolve" / "jozefowicz" / "events.jsonl"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:  # killed once the first mutant's evaluation has begun
        if events.exists() and '"generated"' in events.read_text():
            break
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    rerun = evolve(parts)
    assert rerun.returncode == 0, rerun.stderr
    a, b = summary(whole), summary(parts)
    assert a["listed"] == b["listed"] and a["funnel"] == b["funnel"]
    assert [c["best"] for c in a["candidates"]] == [c["best"] for c in b["candidates"]]
    assert (whole / "evolve/jozefowicz/events.jsonl").read_text() == events.read_text()
    storage = optuna.storages.RDBStorage(f"sqlite:///{parts / 'studies.db'}")
    names = [s.study_name for s in optuna.get_all_study_summaries(storage)]
    assert len(names) == len(set(names)) == sum(len(c["best"]) for c in b["candidates"])
    for name in names:  # each draw ran to one outcome: a killed trial was retried, none ran twice
        trials = optuna.load_study(study_name=name, storage=storage).get_trials()
        done = [t.user_attrs["draw"] for t in trials if t.state != optuna.trial.TrialState.FAIL]
        assert sorted(done) == list(range(len(done)))
    written = make_report([str(parts)], parts / "report")
    text = (parts / "report" / "report.md").read_text()
    assert parts / "report" / "table-architectures-0.csv" in written
    assert "## Architectures: jozefowicz" in text and f"| generated | {b['funnel']['generated']} |" in text
    for h in b["listed"]:  # every listed architecture is ranked, the fittest shown as equations
        assert h[:8] in text or next(c["origin"] for c in b["candidates"] if c["hash"] == h) in text
    assert "h' = " in text and "| tanh | built-in |" in text
    assert "| fitness | copy (filter) |" in text  # the references' filter accuracy, recorded


@pytest.mark.parametrize(
    "override, start, words",
    [
        ("evolve.basline=gru", "evolve.basline is not a config key; valid keys", ("baseline", "candidates")),
        ("search.pruner=median", "search.pruner=median: an architecture search needs", ("pruner=none",)),
    ],
)
def test_a_bad_setting_is_one_line(tmp_path, override, start, words):
    result = subprocess.run(
        [sys.executable, "-m", "rnnbench.evolve", "evolve=jozefowicz", override, f"results_dir={tmp_path}"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"rnnbench.evolve: error: {start}")
    assert all(word in line for word in words)
