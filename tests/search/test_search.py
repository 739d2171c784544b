"""Studies on Optuna: draws, outcomes, exact trial counts with several workers, kills, PostgreSQL, SLURM."""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import optuna
import pytest
from scipy import stats

from helpers.paths import SCRIPTS
from helpers.search import LR, TINY
from rnnbench.errors import ConfigError
from rnnbench.search.__main__ import main
from rnnbench.search.space import config_values, draws, parse_space
from rnnbench.search.study import counts, open_storage

GREFF = {
    "cell": {"hidden_size": {"low": 20, "high": 200, "log": True, "int": True}},
    "trainer": {
        "lr": {"low": 1e-6, "high": 1e-2, "log": True},
        "momentum": {"low": 0.01, "high": 1.0, "log": True, "one_minus": True},
    },
    "model": {"input_noise_std": {"low": 0.0, "high": 1.0}},
}


def search(tmp_path: Path, *args: str, command: str | None = None) -> int:
    with pytest.raises(SystemExit) as ended:
        main([*([command] if command else []), *TINY, f"results_dir={tmp_path}", *args])
    return ended.value.code


def load(tmp_path: Path, name: str, storage: str | None = None) -> optuna.Study:
    return optuna.load_study(study_name=name, storage=open_storage(storage, str(tmp_path)))


def worker_env() -> dict:
    env = dict(os.environ)
    env.pop("RNNBENCH_DATA", None)
    return env


def spawn(tmp_path: Path, *args: str, command: str | None = None) -> subprocess.Popen:
    first = [command] if command else []
    argv = [sys.executable, "-m", "rnnbench.search", *first, *TINY, f"results_dir={tmp_path}", *args]
    return subprocess.Popen(
        argv, env=worker_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


# ---- the space and its draws ----------------------------------------------------------------------------
def test_draws_follow_the_configured_distributions():
    distributions = parse_space(GREFF)
    assert set(distributions) == {
        "cell.hidden_size",
        "trainer.lr",
        "1-trainer.momentum",
        "model.input_noise_std",
    }
    drawn = draws(distributions, 3000, seed=7)
    lr = np.array([d["trainer.lr"] for d in drawn])
    one_minus = np.array([d["1-trainer.momentum"] for d in drawn])
    noise = np.array([d["model.input_noise_std"] for d in drawn])
    hidden = np.array([d["cell.hidden_size"] for d in drawn])
    assert lr.min() >= 1e-6 and lr.max() <= 1e-2
    assert one_minus.min() >= 0.01 and one_minus.max() <= 1.0
    assert hidden.dtype.kind == "i" and hidden.min() >= 20 and hidden.max() <= 200
    # log-uniform: uniform on the log scale, and clearly not uniform on the linear one
    assert (
        stats.kstest(np.log(lr), stats.uniform(np.log(1e-6), np.log(1e-2) - np.log(1e-6)).cdf).pvalue > 1e-3
    )
    assert stats.kstest(lr, stats.uniform(1e-6, 1e-2).cdf).pvalue < 1e-6
    assert stats.kstest(np.log(one_minus), stats.uniform(np.log(0.01), -np.log(0.01)).cdf).pvalue > 1e-3
    assert stats.kstest(noise, stats.uniform(0, 1).cdf).pvalue > 1e-3
    assert np.mean(hidden < 63) == pytest.approx(0.5, abs=0.05)  # 63 ~ the geometric middle of [20, 200]
    momentum = config_values(drawn[0])["trainer.momentum"]
    assert momentum == pytest.approx(1 - drawn[0]["1-trainer.momentum"])


def test_grid_choices_are_drawn_uniformly_and_draws_repeat_with_the_seed():
    space = {
        "trainer": {"lr": {"choices": [0.1, 0.2, 0.5]}},
        "cell": {"num_layers": {"choices": [1, 2, 3, 4]}},
    }
    drawn = draws(parse_space(space), 1200, seed=3)
    layers = np.bincount([d["cell.num_layers"] for d in drawn])[1:]
    assert stats.chisquare(layers).pvalue > 1e-3 and len(layers) == 4
    assert {d["trainer.lr"] for d in drawn} == {0.1, 0.2, 0.5}
    assert draws(parse_space(space), 50, seed=3) == drawn[:50]
    assert draws(parse_space(space), 50, seed=4) != drawn[:50]


@pytest.mark.parametrize(
    "space, message",
    [
        (
            {"trainer": {"lr": {"low": 1, "hihg": 2}}},
            "search.space.trainer.lr.hihg is not a search-space key",
        ),
        ({"trainer": {"lr": {"low": 0, "high": 1, "log": True}}}, "log: true; it must be > 0"),
        ({"trainer": {"lr": {"low": 2, "high": 1}}}, "low <= high"),
        ({"trainer": {"lr": {"choices": []}}}, "non-empty list"),
        ({"trainer": {"lr": 0.1}}, "search.space.trainer.lr=0.1 is not valid"),
    ],
)
def test_a_bad_space_is_one_line(space, message):
    with pytest.raises(ConfigError, match=message):
        parse_space(space)


@pytest.mark.parametrize("preset", ["search=jozefowicz", "search=greff", "study=jozefowicz_xml"])
def test_debug_fast_pins_the_model_size_a_search_would_draw(preset):
    from rnnbench.search.command import read_command_line

    searched = set(parse_space(read_command_line([preset]).cfg.search.space))
    assert searched & {"model.param_budget", "cell.hidden_size"}  # what the preset draws ...
    cfg = read_command_line([preset, "debug=fast"]).cfg
    left = set(parse_space(cfg.search.space))
    assert left == searched - {"model.param_budget", "cell.hidden_size"}  # ... and with debug=fast
    assert (cfg.cell.hidden_size, cfg.model.param_budget, cfg.trainer.max_steps) == (16, None, 12)


def test_command_line_mistakes_are_one_line(tmp_path, capsys):
    assert search(tmp_path, "+search.space.trainer.lrr={low:0.1,high:0.2}") == 2
    assert capsys.readouterr().err.strip() == (
        "rnnbench.search: error: search.space.trainer.lrr is not valid: trainer.lrr is not a config key"
    )
    assert search(tmp_path, LR, "cell=lstm,nope") == 2
    assert "cell='nope' is not valid; choose one of:" in capsys.readouterr().err
    assert search(tmp_path, LR, "search.storage=postgresql+psycopg://x@127.0.0.1:1/db") == 2
    assert "cannot be opened" in capsys.readouterr().err
    assert search(tmp_path) == 2
    assert "search.space is empty" in capsys.readouterr().err
    assert not (tmp_path / "studies").exists()


# ---- a study end to end -----------------------------------------------------------------------------------
def test_a_tiny_paired_search_stores_its_trials(tmp_path):
    assert search(tmp_path, LR, "cell=lstm,gru", "search.n_trials=3") == 0
    studies = [load(tmp_path, f"t-arithmetic-{cell}") for cell in ("lstm", "gru")]
    for study, cell in zip(studies, ("lstm", "gru")):
        assert study.user_attrs["cell"] == cell and study.user_attrs["headline"] == "valid/acc"
        assert study.direction == optuna.study.StudyDirection.MAXIMIZE
        trials = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
        assert sorted(t.user_attrs["draw"] for t in trials) == [0, 1, 2]
        for t in trials:
            summary = json.loads((Path(t.user_attrs["run_dir"]) / "summary.json").read_text())
            assert t.value == summary["best"]["valid/acc"] == t.user_attrs["valid"]["valid/acc"]
            assert t.user_attrs["test"] == summary["test"] and "test/acc" in t.user_attrs["test"]
            assert summary["seed"] == t.user_attrs["seed"] and t.user_attrs["outcome"] == "completed"
            config = (Path(t.user_attrs["run_dir"]) / "config.yaml").read_text()
            assert f"lr: {t.params['trainer.lr']}" in config and "search:" not in config
    paired = [{t.user_attrs["draw"]: (t.params, t.user_attrs["seed"]) for t in s.trials} for s in studies]
    assert paired[0] == paired[1]  # every cell trains the same draws with the same seeds
    # running the same command again changes nothing; raising n_trials adds only the new draws
    assert search(tmp_path, LR, "cell=lstm,gru", "search.n_trials=3") == 0
    assert len(load(tmp_path, "t-arithmetic-lstm").trials) == 3
    assert search(tmp_path, LR, "cell=lstm", "search.n_trials=4", "search.paired=false") == 0
    assert sorted(t.user_attrs["draw"] for t in load(tmp_path, "t-arithmetic-lstm").trials) == [0, 1, 2, 3]
    # lowering n_trials leaves the draws beyond it queued, not trained
    assert search(tmp_path, LR, "cell=gru", "search.n_trials=5", command="prepare") == 0
    assert search(tmp_path, LR, "cell=gru", "search.n_trials=3") == 0
    found = counts(load(tmp_path, "t-arithmetic-gru"))
    assert found["complete"] == 3 and found["waiting"] == 2


def test_no_more_workers_start_than_trials_are_queued(tmp_path, monkeypatch):
    from rnnbench.search import launch
    from rnnbench.search.command import cpu_cores

    started = []

    def spy(search_, workers, threads):
        started.append((workers, threads))
        return real(search_, workers, threads)

    real = launch.start_workers
    monkeypatch.setattr(launch, "start_workers", spy)
    assert search(tmp_path, LR, "search.n_trials=1", "search.workers=3") == 0
    assert started == []  # one queued trial: trained in the launcher's process, no worker started
    assert search(tmp_path, LR, "search.n_trials=3", "search.workers=3") == 0
    assert started == [(2, max(1, cpu_cores() // 3))]  # two queued: two workers, threads as for three
    trials = load(tmp_path, "t-arithmetic-lstm").get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    assert sorted(t.user_attrs["draw"] for t in trials) == [0, 1, 2]


def test_diverging_and_rejected_configurations_fail_and_the_study_completes(tmp_path):
    space = "+search.space.trainer.lr={choices:[1.0e+6,0.01,-1.0]}"  # diverges, trains, rejected
    assert search(tmp_path, space, "trainer.optimizer=sgd", "search.n_trials=9", "search.seed=1") == 0
    study = load(tmp_path, "t-arithmetic-lstm")
    outcomes = {t.user_attrs["draw"]: (t.state, t.user_attrs["outcome"]) for t in study.trials}
    assert len(outcomes) == 9 and counts(study)["killed"] == 0
    for t in study.trials:
        if t.params["trainer.lr"] == -1.0:
            assert outcomes[t.user_attrs["draw"]] == (optuna.trial.TrialState.FAIL, "rejected")
            assert "trainer.lr=-1.0 is not valid" in t.user_attrs["reason"]
        elif t.params["trainer.lr"] == 1.0e6:
            assert outcomes[t.user_attrs["draw"]] == (optuna.trial.TrialState.FAIL, "diverged")
        else:
            assert outcomes[t.user_attrs["draw"]] == (optuna.trial.TrialState.COMPLETE, "completed")
    assert {o for _, o in outcomes.values()} == {"rejected", "diverged", "completed"}


def test_a_population_search_stores_exactly_n_trials(tmp_path):
    space = "+search.space.cell.hidden_size={low:8,high:24,int:true}"  # padded members of different sizes
    assert search(tmp_path, LR, space, "search.n_trials=5", "search.population=3") == 0
    study = load(tmp_path, "t-arithmetic-lstm")
    assert counts(study)["complete"] == 5 and len(study.trials) == 5
    for t in study.trials:
        summary = json.loads((Path(t.user_attrs["run_dir"]) / "summary.json").read_text())
        assert (
            summary["hidden_size"] == t.params["cell.hidden_size"] and t.value == summary["best"]["valid/acc"]
        )


def test_a_median_pruner_prunes_trials_through_the_evaluation_hook(tmp_path):
    lr = "+search.space.trainer.lr={low:1.0e-5,high:0.1,log:true}"
    args = [lr, "trainer.max_steps=40", "trainer.eval_every=10", "search.n_trials=10", "search.pruner=median"]
    assert search(tmp_path, *args) == 0
    study = load(tmp_path, "t-arithmetic-lstm")
    pruned = study.get_trials(states=(optuna.trial.TrialState.PRUNED,))
    assert pruned and counts(study)["complete"] + len(pruned) == 10
    for t in pruned:
        summary = json.loads((Path(t.user_attrs["run_dir"]) / "summary.json").read_text())
        assert summary["status"] == "pruned" and summary["steps"] < 40 and t.user_attrs["outcome"] == "pruned"


def test_the_pruning_hook_prunes_a_trial_worse_than_the_median():
    from rnnbench.search.trial import pruning_hook

    study = optuna.create_study(pruner=optuna.pruners.MedianPruner(n_startup_trials=1, n_warmup_steps=0))
    good = study.ask()
    good.report(1.0, 10)
    study.tell(good, 1.0)
    seen = []
    hook = pruning_hook(study.ask(), "valid/loss", seen)
    assert hook({"step": 10, "valid/loss": 5.0}) == "prune"
    hook = pruning_hook(study.ask(), "valid/loss", seen)
    assert hook({"step": 10, "valid/loss": 0.5}) == "continue"
    assert seen == [10, 10]


# ---- several workers, kills, other storages -----------------------------------------------------------
def test_two_workers_on_one_sqlite_study_reach_exactly_n_trials(tmp_path):
    pool = spawn(tmp_path, LR, "search.n_trials=6", "search.workers=2")
    out, _ = pool.communicate(timeout=300)
    assert pool.returncode == 0, out
    study = load(tmp_path, "t-arithmetic-lstm")
    assert counts(study) == {"complete": 6, "pruned": 0, "failed": 0, "killed": 0, "running": 0, "waiting": 0}
    assert sorted(t.user_attrs["draw"] for t in study.trials) == list(range(6))


def test_a_killed_worker_s_trial_is_retried_from_its_checkpoint(tmp_path):
    long = ["trainer.max_steps=200", "trainer.eval_every=20", "search.heartbeat_s=1", "search.n_trials=2"]
    assert search(tmp_path, LR, *long, command="prepare") == 0
    worker = spawn(tmp_path, LR, *long, command="worker")
    deadline = time.time() + 120
    while time.time() < deadline:  # kill it once its first trial has evaluated twice
        lines = [p.read_text().count("\n") for p in tmp_path.glob("studies/*/trial-*/metrics.jsonl")]
        if lines and max(lines) >= 2:
            break
        time.sleep(0.05)
    worker.send_signal(signal.SIGKILL)
    worker.wait()
    time.sleep(2.5)  # the dead worker's heartbeat goes stale (2 x heartbeat_s)
    assert search(tmp_path, LR, *long) == 0
    study = load(tmp_path, "t-arithmetic-lstm")
    found = counts(study)
    assert found["complete"] == 2 and found["killed"] == 1 and found["running"] == found["waiting"] == 0
    completed = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    assert sorted(t.user_attrs["draw"] for t in completed) == [0, 1]  # no draw completed twice
    killed = next(t for t in study.trials if t.state == optuna.trial.TrialState.FAIL)
    retry = next(t for t in completed if t.user_attrs["draw"] == killed.user_attrs["draw"])
    assert retry.user_attrs["run_dir"] == killed.user_attrs["run_dir"]
    assert retry.user_attrs["first_eval_step"] > 20  # it went on from the killed trial's checkpoint
    assert retry.user_attrs["steps"] == 200


def test_gpu_box_script_runs_a_worker_per_gpu(tmp_path):
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "nvidia-smi").write_text("#!/bin/sh\nprintf '0\\n1\\n'\n")  # two GPUs, as nvidia-smi lists them
    (fake / "nvidia-smi").chmod(0o755)
    env = {**worker_env(), "PATH": f"{fake}:{Path(sys.executable).parent}:{os.environ['PATH']}"}
    env.pop("CUDA_VISIBLE_DEVICES", None)
    script = SCRIPTS / "gpu_box.sh"
    args = [*TINY, f"results_dir={tmp_path}", LR, "search.n_trials=4"]
    done = subprocess.run(
        ["bash", str(script), "--", *args], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 workers on GPUs 0 1" in done.stdout and "t-arithmetic-lstm" in done.stdout
    assert counts(load(tmp_path, "t-arithmetic-lstm"))["complete"] == 4


def test_status_of_a_missing_storage_is_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as ended:
        main(["status", str(tmp_path / "none.db")])
    assert ended.value.code == 2
    assert (
        capsys.readouterr()
        .err.strip()
        .endswith("none.db is not a study storage (no such file); give the storage of a search")
    )


def test_sigterm_to_the_launcher_saves_every_trial_and_a_restart_completes_them(tmp_path):
    long = ["trainer.max_steps=300", "trainer.eval_every=20", "search.n_trials=3", "search.workers=2"]
    pool = spawn(tmp_path, LR, *long)
    deadline = time.time() + 120
    while time.time() < deadline and not list(tmp_path.glob("studies/*/trial-*/metrics.jsonl")):
        time.sleep(0.05)
    time.sleep(1)
    pool.send_signal(signal.SIGTERM)
    out, _ = pool.communicate(timeout=120)
    assert pool.returncode == 128 + signal.SIGTERM, out
    assert "stopped (SIGTERM); trials in progress were saved" in out
    study = load(tmp_path, "t-arithmetic-lstm")
    assert counts(study)["running"] == 0
    stopped = {t.user_attrs["draw"] for t in study.get_trials(states=(optuna.trial.TrialState.FAIL,))}
    queued = {t.user_attrs["draw"] for t in study.get_trials(states=(optuna.trial.TrialState.WAITING,))}
    assert stopped and stopped <= queued  # every stopped trial is queued again
    assert search(tmp_path, LR, *long[:3]) == 0  # one worker finishes the study
    study = load(tmp_path, "t-arithmetic-lstm")
    assert sorted(
        t.user_attrs["draw"] for t in study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    ) == [0, 1, 2]


def test_a_journal_file_holds_a_study(tmp_path):
    journal = str(tmp_path / "journal.log")
    assert search(tmp_path, LR, "search.n_trials=2", f"search.storage={journal}") == 0
    assert counts(load(tmp_path, "t-arithmetic-lstm", journal))["complete"] == 2


def test_the_slurm_path_submits_worker_jobs(tmp_path):
    # submitit's debug executor runs the submitted jobs here, as a cluster would
    args = [
        LR,
        "search.n_trials=2",
        "search.launcher=slurm",
        "search.slurm.cluster=debug",
        "search.slurm.jobs=1",
    ]
    assert search(tmp_path, *args) == 0
    assert counts(load(tmp_path, "t-arithmetic-lstm"))["complete"] == 2


def test_a_failed_worker_job_is_one_line_and_the_wait_goes_on():
    from submitit.core.utils import FailedJobError

    from rnnbench.search.slurm import wait_for

    waited = []

    class Job:  # what the launcher uses of a submitit job
        def __init__(self, job_id, error=None):
            self.job_id, self.error = job_id, error
            self.paths = SimpleNamespace(stderr=Path(f"slurm/{job_id}/{job_id}_0_log.err"))

        def result(self):
            waited.append(self.job_id)
            if self.error:
                raise self.error
            return 1

    failed = FailedJobError("Job (task=0) failed during processing with trace:\nTraceback ...")
    problems = wait_for([Job("7_0", failed), Job("7_1")])
    assert waited == ["7_0", "7_1"]  # the other job is still waited for
    assert problems == [
        "job 7_0 failed (Job (task=0) failed during processing with trace:); its log: slurm/7_0/7_0_0_log.err"
    ]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def postgres():
    """A throwaway PostgreSQL server, run as an unprivileged user (initdb refuses root) in a folder of
    its own under the system's temporary folder (pytest's folders are closed to other users)."""
    initdb = shutil.which("initdb") or "/usr/lib/postgresql/15/bin/initdb"
    pg_ctl = shutil.which("pg_ctl") or "/usr/lib/postgresql/15/bin/pg_ctl"
    if not Path(initdb).exists() or not Path(pg_ctl).exists():
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) are not installed")
    as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    folder = Path(tempfile.mkdtemp(prefix="rnnbench-pg-"))
    folder.chmod(0o777)
    data, port = folder / "data", free_port()
    subprocess.run(
        [*as_user, initdb, "-D", str(data), "-A", "trust", "-U", "postgres"], check=True, capture_output=True
    )
    options = f"-p {port} -k {folder} -h 127.0.0.1"
    start = [*as_user, pg_ctl, "-D", str(data), "-o", options, "-l", str(folder / "log"), "-w", "start"]
    subprocess.run(start, check=True, capture_output=True)
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*as_user, pg_ctl, "-D", str(data), "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)


def test_two_workers_on_postgresql_reach_exactly_n_trials(tmp_path, postgres):
    pool = spawn(tmp_path, LR, "search.n_trials=4", "search.workers=2", f"search.storage={postgres}")
    out, _ = pool.communicate(timeout=300)
    assert pool.returncode == 0, out
    study = load(tmp_path, "t-arithmetic-lstm", postgres)
    assert counts(study)["complete"] == 4 and len(study.trials) == 4
    assert math.isfinite(study.best_value)
