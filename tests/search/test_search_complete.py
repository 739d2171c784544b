"""A search command ends with exactly n_trials outcomes, or exits 1 with one line saying what is left:
trials still RUNNING without a live worker (a killed worker's, its heartbeat still fresh) are waited
out, failed by their stale heartbeat, queued again and trained before the launcher returns."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from omegaconf import OmegaConf
from tqdm import tqdm

from helpers.search import LR, TINY
from rnnbench.search.command import Search
from rnnbench.search.launch import wait_for_running
from rnnbench.search.study import counts, open_storage, shortfall

LONG = ["trainer.max_steps=300", "trainer.eval_every=20", "search.heartbeat_s=2", "search.n_trials=2"]


def load(tmp_path: Path, name: str) -> optuna.Study:
    return optuna.load_study(study_name=name, storage=open_storage(None, str(tmp_path)))


def spawn(tmp_path: Path, *args: str, command: str | None = None, log: str | None = None) -> subprocess.Popen:
    env = dict(os.environ)
    env.pop("RNNBENCH_DATA", None)
    first = [command] if command else []
    argv = [sys.executable, "-m", "rnnbench.search", *first, *TINY, f"results_dir={tmp_path}", *args]
    out = open(tmp_path / log, "w") if log else subprocess.PIPE  # noqa: SIM115
    return subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT, text=True)


def finish(process: subprocess.Popen, timeout: float = 300) -> str:
    try:
        out, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        out, _ = process.communicate()
        raise AssertionError(f"no end within {timeout} s:\n{out}") from None
    return out or ""


def kill_a_worker_in_its_last_trial(tmp_path: Path, *args: str) -> int:
    """A worker SIGKILLed while it trains the study's last queued draw: its trial stays RUNNING. Returns
    the trial's storage id."""
    prepare = spawn(tmp_path, LR, *LONG, *args, command="prepare")
    out = finish(prepare)
    assert prepare.returncode == 0, out
    worker = spawn(tmp_path, LR, *LONG, *args, command="worker")
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:  # two trials started, the later one evaluated twice
            metrics = tmp_path.glob("studies/*/trial-*/metrics.jsonl")
            lines = sorted(p.read_text().count("\n") for p in metrics)
            if len(lines) == 2 and lines[0] >= 2:
                break
            time.sleep(0.05)
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.communicate()
    study = load(tmp_path, "t-arithmetic-lstm")
    found = counts(study)
    assert found["complete"] == 1 and found["running"] == 1 and found["waiting"] == 0, found
    (running,) = study.get_trials(states=(optuna.trial.TrialState.RUNNING,))
    return running._trial_id


def rerun_while_beating(tmp_path: Path, trial_id: int, *args: str) -> tuple[int, str]:
    """Runs the same command again while the killed trial's heartbeat goes on (as a worker elsewhere
    would beat it) until the launcher says it waits for it; then the beats stop, as they do when a
    worker is killed. Returns the launcher's exit code and output."""
    storage = open_storage(None, str(tmp_path), heartbeat_s=2)
    storage.record_heartbeat(trial_id)
    rerun = spawn(tmp_path, LR, *LONG, *args, log="rerun.log")
    try:
        deadline = time.monotonic() + 240
        while rerun.poll() is None and time.monotonic() < deadline:
            if "waiting for 1 running elsewhere" in (tmp_path / "rerun.log").read_text():
                break
            storage.record_heartbeat(trial_id)
            time.sleep(0.5)
        finish(rerun)
    finally:
        if rerun.poll() is None:
            rerun.kill()
            rerun.wait()
    return rerun.returncode, (tmp_path / "rerun.log").read_text()


def test_a_rerun_waits_for_a_running_trial_and_retries_it_once_its_heartbeat_stops(tmp_path):
    trial_id = kill_a_worker_in_its_last_trial(tmp_path)
    code, out = rerun_while_beating(tmp_path, trial_id)
    assert code == 0, out
    study = load(tmp_path, "t-arithmetic-lstm")
    assert counts(study) == {"complete": 2, "pruned": 0, "failed": 0, "killed": 1, "running": 0, "waiting": 0}
    completed = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    assert sorted(t.user_attrs["draw"] for t in completed) == [0, 1]
    killed = next(t for t in study.trials if t.state == optuna.trial.TrialState.FAIL)
    retry = next(t for t in completed if t.user_attrs["draw"] == killed.user_attrs["draw"])
    assert retry.user_attrs["first_eval_step"] > 20  # it went on from the killed trial's checkpoint
    assert "no outcome yet" not in out


def test_a_rerun_whose_retries_ran_out_exits_1_with_what_is_left(tmp_path):
    trial_id = kill_a_worker_in_its_last_trial(tmp_path, "search.retries=0")
    code, out = rerun_while_beating(tmp_path, trial_id, "search.retries=0")
    assert code == 1, out
    assert out.strip().splitlines()[-1] == (
        "rnnbench.search: 1 of 2 trials have no outcome yet (0 running elsewhere, 1 failed after retries); "
        "run the same command again to continue"
    )
    assert counts(load(tmp_path, "t-arithmetic-lstm"))["running"] == 0
    again = spawn(tmp_path, LR, *LONG, "search.retries=0")  # as the line says: it queues the draw again
    out = finish(again)
    assert again.returncode == 0, out
    assert counts(load(tmp_path, "t-arithmetic-lstm"))["complete"] == 2


def study_with_trials(tmp_path: Path, heartbeat_s: int = 60):
    storage = open_storage(None, str(tmp_path), heartbeat_s=heartbeat_s, retries=1)
    study = optuna.create_study(study_name="s-lstm", storage=storage)
    study.set_user_attr("n_trials", 3)
    study.set_user_attr("cell", "lstm")
    for draw in range(3):
        study.enqueue_trial({}, user_attrs={"draw": draw})
    return study, storage


@pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed to be used with Study.optimize")
def test_the_line_counts_what_is_left(tmp_path):
    study, storage = study_with_trials(tmp_path)
    done = study.ask()  # the queued draw 0
    done.set_user_attr("outcome", "completed")
    study.tell(done, 1.0)
    assert shortfall([study], 1) is None
    killed = study.ask()  # draw 1: its worker was killed, and its retries ran out
    study.tell(killed, state=optuna.trial.TrialState.FAIL)
    study.ask()  # draw 2: running
    assert shortfall([study], 3) == (
        "2 of 3 trials have no outcome yet (1 running elsewhere, 1 failed after retries); "
        "run the same command again to continue"
    )


@pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed to be used with Study.optimize")
def test_a_trial_taken_by_a_worker_that_died_before_its_first_beat_is_queued_again(tmp_path):
    study, storage = study_with_trials(tmp_path, heartbeat_s=1)
    for _ in range(3):
        trial = study.ask()
        if trial.number < 2:
            trial.set_user_attr("outcome", "completed")
            study.tell(trial, 1.0)
    cfg = OmegaConf.create({"search": {"n_trials": 3, "heartbeat_s": 1}})
    search = Search(argv=[], cells=["lstm"], configs=[cfg])
    with tqdm(total=3, disable=True) as bar:
        assert wait_for_running(search, [study], storage, bar)  # after 5 heartbeat periods without one
    waiting = study.get_trials(states=(optuna.trial.TrialState.WAITING,))
    assert [t.user_attrs["draw"] for t in waiting] == [2]
    assert shortfall([study], 3).startswith("1 of 3 trials have no outcome yet (0 running elsewhere")
