"""search.sampler: random draws queued up front, or TPE, CMA-ES and GP proposing each trial as a worker
takes it; exact trial counts with several workers and kills either way."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from omegaconf import OmegaConf

from helpers.search import TINY
from rnnbench.search.__main__ import main
from rnnbench.search.command import read_command_line
from rnnbench.search.space import parse_space
from rnnbench.search.study import (
    counts,
    make_sampler,
    open_storage,
    prepare,
    queue_proposals,
    sampler_seed,
)
from rnnbench.search.worker import take

# Two dimensions (CMA-ES and GP model two or more), one of them searched as 1 - value.
SPACE = [
    "+search.space.trainer.lr={low:0.001,high:0.1,log:true}",
    "+search.space.trainer.momentum={low:0.01,high:1,log:true,one_minus:true}",
]
BOUNDS = {"trainer.lr": (0.001, 0.1), "1-trainer.momentum": (0.01, 1.0)}
SAMPLERS = ["random", "tpe", "cmaes", "gp"]


def sampler_args(name: str) -> list[str]:
    return [f"search.sampler={name}"] + ([] if name == "random" else ["search.paired=false"])


def needs(name: str) -> None:
    if name == "cmaes":
        pytest.importorskip("cmaes", reason="search.sampler=cmaes needs the cmaes package (pip install)")


def search(tmp_path: Path, *args: str, command: str | None = None) -> int:
    with pytest.raises(SystemExit) as ended:
        main([*([command] if command else []), *TINY, f"results_dir={tmp_path}", *args])
    return ended.value.code


def load(tmp_path: Path, name: str = "t-arithmetic-lstm") -> optuna.Study:
    return optuna.load_study(study_name=name, storage=open_storage(None, str(tmp_path)))


def spawn(tmp_path: Path, *args: str, command: str | None = None) -> subprocess.Popen:
    env = dict(os.environ)
    env.pop("RNNBENCH_DATA", None)
    first = [command] if command else []
    argv = [sys.executable, "-m", "rnnbench.search", *first, *TINY, f"results_dir={tmp_path}", *args]
    return subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def in_space(params: dict) -> bool:
    return set(params) == set(BOUNDS) and all(low <= params[k] <= high for k, (low, high) in BOUNDS.items())


@pytest.mark.parametrize("name", SAMPLERS)
def test_each_sampler_ends_with_exactly_n_trials_under_two_workers(tmp_path, name):
    needs(name)
    pool = spawn(tmp_path, *SPACE, *sampler_args(name), "search.n_trials=3", "search.workers=2")
    out, _ = pool.communicate(timeout=600)
    assert pool.returncode == 0, out
    study = load(tmp_path)
    assert counts(study) == {"complete": 3, "pruned": 0, "failed": 0, "killed": 0, "running": 0, "waiting": 0}
    assert sorted(t.user_attrs["draw"] for t in study.trials) == [0, 1, 2]
    assert study.user_attrs["sampler"] == name
    for t in study.trials:
        assert in_space(t.params) and t.user_attrs["sampler"] == name
        config = OmegaConf.load(Path(t.user_attrs["run_dir"]) / "config.yaml")
        assert config.trainer.lr == t.params["trainer.lr"]
        assert config.trainer.momentum == pytest.approx(1 - t.params["1-trainer.momentum"])  # one_minus
    assert len({t.params["trainer.lr"] for t in study.trials}) == 3  # three proposals, not one repeated


def replay(trials: list, distributions: dict, sampler: optuna.samplers.BaseSampler, direction) -> dict:
    """What ``sampler`` proposes for the next trial of a study that holds ``trials``."""
    copy = optuna.create_study(sampler=sampler, direction=direction)
    copy.add_trials(trials)
    return copy.ask(fixed_distributions=distributions).params


@pytest.mark.parametrize("name, startup", [("tpe", 10), ("cmaes", 1), ("gp", 10)])
def test_a_worker_asks_the_sampler_for_each_trial_from_the_study_so_far(tmp_path, name, startup):
    """The worker's take() has the configured sampler propose each queued draw from the trials before it:
    its first ``startup`` proposals are the sampler's random ones, the later ones its model's (the same
    sampler on the same history proposes the same values; its random fallback does not)."""
    needs(name)
    n = startup + 2
    argv = [*TINY, f"results_dir={tmp_path}", *SPACE, *sampler_args(name), f"search.n_trials={n}"]
    found = read_command_line(argv)
    storage = open_storage(None, str(tmp_path))
    study = prepare(found.cfg, found.cells, storage)[0]
    assert counts(study)["waiting"] == n and all(not t.params for t in study.trials)  # queued, no values
    distributions = parse_space(found.cfg.search.space)
    for _ in range(n):
        index, trials, ids = take([study], storage, 1, found.configs)
        params = storage.get_trial(ids[0]).params
        assert in_space(params)  # proposed before training, as the worker takes the draw
        study.tell(trials[0], -abs(math.log10(params["trainer.lr"]) + 2))  # best at lr = 0.01
    assert take([study], storage, 1, found.configs) is None  # exactly n draws
    trials = sorted(study.trials, key=lambda t: t.number)
    assert [t.user_attrs["draw"] for t in trials] == list(range(n))
    seed = study.user_attrs["seed"]
    for t in trials:
        assert t.user_attrs["sampler"] == name
        own_seed = sampler_seed(seed, t.number)
        before = trials[: t.number]
        chosen = replay(before, distributions, make_sampler(name, own_seed), study.direction)
        at_random = replay(before, distributions, make_sampler("random", own_seed), study.direction)
        assert t.params == pytest.approx(chosen), f"trial {t.number}"
        if t.number < startup:
            assert t.params == pytest.approx(at_random), f"startup trial {t.number}"
        else:
            assert t.params != pytest.approx(at_random), f"trial {t.number} is not the model's"


def test_paired_draws_need_the_random_sampler(tmp_path, capsys):
    assert search(tmp_path, *SPACE, "search.sampler=tpe") == 2
    assert capsys.readouterr().err.strip() == (
        "rnnbench.search: error: search.sampler=tpe is not valid with search.paired=true (paired cells "
        "train the same draws, queued up front); choose search.sampler=random, or search.paired=false for tpe"
    )
    assert search(tmp_path, *SPACE, "search.sampler=bayes", "search.paired=false") == 2
    assert capsys.readouterr().err.strip() == (
        "rnnbench.search: error: search.sampler='bayes' is not valid; choose one of: random, tpe, cmaes, gp"
    )
    assert not optuna.get_all_study_names(open_storage(None, str(tmp_path)))  # nothing was queued
    assert not (tmp_path / "studies").exists()


def test_a_draw_whose_retries_ran_out_is_queued_again_with_its_values():
    study = optuna.create_study()
    lr = optuna.distributions.FloatDistribution(0.001, 0.1, log=True)
    killed = optuna.create_trial(
        state=optuna.trial.TrialState.FAIL,
        params={"trainer.lr": 0.02},
        distributions={"trainer.lr": lr},
        user_attrs={"draw": 0, "sampler": "tpe"},
    )
    study.add_trial(killed)
    queue_proposals(study, 3, held=set())
    queued = {t.user_attrs["draw"]: t for t in study.get_trials(states=(optuna.trial.TrialState.WAITING,))}
    assert sorted(queued) == [0, 1, 2]
    assert queued[0].system_attrs["fixed_params"] == {"trainer.lr": 0.02}
    assert queued[0].user_attrs["sampler"] == "tpe"
    assert queued[1].system_attrs["fixed_params"] == {} == queued[2].system_attrs["fixed_params"]


def test_a_killed_tpe_worker_s_trial_is_retried_with_its_values(tmp_path):
    long = ["trainer.max_steps=200", "trainer.eval_every=20", "search.heartbeat_s=1", "search.n_trials=2"]
    args = [*SPACE, *sampler_args("tpe"), *long]
    assert search(tmp_path, *args, command="prepare") == 0
    worker = spawn(tmp_path, *args, command="worker")
    deadline = time.time() + 300
    while time.time() < deadline:  # kill it once its first trial has evaluated twice
        lines = [p.read_text().count("\n") for p in tmp_path.glob("studies/*/trial-*/metrics.jsonl")]
        if lines and max(lines) >= 2:
            break
        time.sleep(0.05)
    worker.send_signal(signal.SIGKILL)
    worker.wait()
    time.sleep(2.5)  # the dead worker's heartbeat goes stale (2 x heartbeat_s)
    assert search(tmp_path, *args) == 0
    study = load(tmp_path)
    found = counts(study)
    assert found["complete"] == 2 and found["killed"] == 1 and found["running"] == found["waiting"] == 0
    completed = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    assert sorted(t.user_attrs["draw"] for t in completed) == [0, 1]  # no draw completed twice
    killed = next(t for t in study.trials if t.state == optuna.trial.TrialState.FAIL)
    retry = next(t for t in completed if t.user_attrs["draw"] == killed.user_attrs["draw"])
    assert retry.params == killed.params and in_space(retry.params)  # the proposal is kept, not redrawn
    assert retry.user_attrs["run_dir"] == killed.user_attrs["run_dir"]
    assert retry.user_attrs["first_eval_step"] > 20  # it went on from the killed trial's checkpoint
