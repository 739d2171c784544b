"""The architecture search end to end, tiny: killed with SIGKILL in the middle of an evaluation and run
again, it ends with the list and records of an uninterrupted run, and no draw is trained twice."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest

from rnnbench.outcome import Outcome, trial_outcome
from rnnbench.report import make_report

TINY = [
    "evolve=jozefowicz",
    "debug=fast",
    "evolve.candidates=2",
    "evolve.draws=1",
    "evolve.tasks=[arithmetic]",
    "evolve.score=[tanh]",
    "evolve.memorization.pass=0.0",
    "search.space.cell.num_layers.choices=[1]",
    "search.workers=1",
    "search.heartbeat_s=1",
]
CLOCKS = {"wall_s", "tokens_per_s", "data_s"}  # differ from run to run


def evolve(results: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "rnnbench.evolve", *TINY, f"results_dir={results}"]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout)


def summary(results: Path) -> dict:
    return json.loads((results / "evolve" / "jozefowicz" / "summary.json").read_text())


def mutants(events: Path) -> list[str]:
    """The hashes of the mutants generated so far (not duplicates), from the lines written whole."""
    text = events.read_text() if events.exists() else ""
    lines = [json.loads(line) for line in text.splitlines(keepends=True) if line.endswith("\n")]
    return [e["hash"] for e in lines if e["event"] == "generated" and not e["duplicate"]]


def running(db: Path) -> list[tuple[str, int]]:
    """(study, trial number) of the RUNNING trials, read from the SQLite file without writing to it."""
    if not db.exists():
        return []
    try:
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1)) as connection:
            query = (
                "SELECT s.study_name, t.number FROM trials t JOIN studies s ON s.study_id = t.study_id "
                "WHERE t.state = 'RUNNING'"
            )
            return list(connection.execute(query))
    except sqlite3.OperationalError:  # not created yet, or locked by a write: the next look
        return []


def state(db: Path, study: str, number: int) -> str:
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)) as connection:
        query = (
            "SELECT t.state FROM trials t JOIN studies s ON s.study_id = t.study_id "
            "WHERE s.study_name = ? AND t.number = ?"
        )
        return connection.execute(query, (study, number)).fetchone()[0]


def logged(folder: Path) -> dict[Path, int]:
    """The sizes of the metrics files of a study's runs."""
    return {f: f.stat().st_size for f in folder.glob("trial-*/metrics.jsonl")}


def kill_in_training(results: Path, deadline: float) -> tuple[str, int]:
    """Starts the search and SIGKILLs it (its process group) as soon as a mutant's trial is RUNNING and
    its run has written an evaluation to metrics.jsonl (a checkpoint follows each): (study, trial number)
    of that trial. A trial can end between the look and the kill; the storage then shows it ended, and
    the search is started again (continuing, as after any kill) to be killed in a later mutant's trial."""
    command = [sys.executable, "-m", "rnnbench.evolve", *TINY, f"results_dir={results}"]
    db, events, tries = results / "studies.db", results / "evolve" / "jozefowicz" / "events.jsonl", []
    while time.monotonic() < deadline:
        process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
        target, before = None, {}  # the study's metrics files when each trial was first seen running
        while target is None and process.poll() is None and time.monotonic() < deadline:
            hashes = mutants(events)
            for study, number in running(db):
                if not any(h in study for h in hashes):
                    continue
                sizes = logged(results / "studies" / study)
                if before.setdefault((study, number), sizes) != sizes:  # its run wrote a line since
                    target = study, number
                    break
            else:
                time.sleep(0.02)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)  # the search and any process it started
        process.wait()
        assert target is not None, (
            f"no mutant's trial was seen in training (tries: {tries}, exit {process.returncode})"
        )
        found = state(db, *target)
        if found == "RUNNING":  # the process is dead: the kill hit this trial
            return target
        tries.append((*target, found))
    raise AssertionError(f"no kill landed in a mutant's trial before the deadline (tries: {tries})")


@pytest.mark.slow
def test_a_killed_search_continues_to_the_same_list_and_trains_nothing_twice(tmp_path):
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    assert evolve(whole).returncode == 0
    study, number = kill_in_training(parts, time.monotonic() + 300)
    events = parts / "evolve" / "jozefowicz" / "events.jsonl"
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
        outcomes = [trial_outcome(t.state.name, t.user_attrs) for t in trials]
        done = [t.user_attrs["draw"] for t, o in zip(trials, outcomes) if o.is_result]
        assert sorted(done) == list(range(len(done))) and len(done) >= 1, name
        assert all(o.is_result or o is Outcome.KILLED for o in outcomes), (name, outcomes)
    # the kill hit a trial in training: that trial is a killed one, and its draw ran once more, to its outcome
    trials = optuna.load_study(study_name=study, storage=storage).get_trials()
    killed = next(t for t in trials if t.number == number)
    assert trial_outcome(killed.state.name, killed.user_attrs) is Outcome.KILLED, killed
    draw = killed.user_attrs["draw"]
    (retry,) = [t for t in trials if t.user_attrs["draw"] == draw and t.number != number]
    assert retry.number > number and retry.params == killed.params
    assert trial_outcome(retry.state.name, retry.user_attrs).is_result, retry

    def evaluations(results: Path) -> dict[str, list[dict]]:  # the killed study's metrics, less clocks
        found = {}
        for path in (results / "studies" / study).glob("trial-*/metrics.jsonl"):
            lines = [json.loads(line) for line in path.read_text().splitlines()]
            found[path.parent.name] = [{k: v for k, v in x.items() if k not in CLOCKS} for x in lines]
        return found

    assert evaluations(parts) == evaluations(whole)  # continued from its checkpoint to the same numbers
    written = make_report([str(parts)], parts / "report")
    text = (parts / "report" / "report.md").read_text()
    assert parts / "report" / "table-architectures-0.csv" in written
    assert "## Architectures: jozefowicz" in text and f"| generated | {b['funnel']['generated']} |" in text
    for h in b["listed"]:  # every listed architecture is ranked, the fittest shown as equations
        assert h[:8] in text or next(c["origin"] for c in b["candidates"] if c["hash"] == h) in text
    assert "h' = " in text and "| tanh | built-in |" in text
    assert "| fitness | fitness, first 1 draw | copy (filter) |" in text  # the filter's accuracy, recorded


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
