"""A search on a real one-node SLURM cluster (tests/helpers/slurm_cluster.py: munged, slurmctld and slurmd
from the distribution's packages): the worker jobs go through sbatch as one job array; one of them is
signalled mid-trial as a pre-emption would signal it, saves its trial, is requeued, and the trial goes
on from its checkpoint; the search ends with exactly n_trials. Skipped, with the reason, where the
packages are not installed (``apt-get install slurm-wlm munge``; .ci/run installs them)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest

from rnnbench.search.study import counts, open_storage

STEPS, EVERY = 400, 40  # trials long enough that a signal lands mid-trial
ARGS = [
    "task=arithmetic",
    "debug=fast",
    "task.max_digits=2",
    "task.eval_size=40",
    "search.name=t",
    "+search.space.trainer.lr={choices:[0.01,0.02,0.03,0.04,0.05]}",
    f"trainer.max_steps={STEPS}",
    f"trainer.eval_every={EVERY}",
    "search.n_trials=4",
    "search.launcher=slurm",
    "search.slurm.cluster=slurm",
    "search.slurm.jobs=2",
    "search.slurm.cpus_per_task=1",
    "search.slurm.mem_gb=0.5",
    "search.slurm.timeout_min=120",
    "search.slurm.sbatch={comment:rnnbench-test}",
]


def wait_until(ready, what: str, timeout: float, poll: float = 0.5, log: Path | None = None):
    """ready()'s first truthy value; a bounded wait that fails saying what it waited for."""
    deadline = time.monotonic() + timeout
    while True:
        found = ready()
        if found:
            return found
        if time.monotonic() > deadline:
            tail = log.read_text(errors="replace")[-3000:] if log and log.exists() else ""
            pytest.fail(f"waited {timeout:.0f}s for {what}\n{tail}")
        time.sleep(poll)


def training(results: Path) -> list[Path]:
    """Run directories of trials in training that have evaluated at least once (their metrics.jsonl
    holds one line per evaluation; summary.json is written when a run ends)."""
    found = []
    for metrics in results.glob("studies/*/trial-*/metrics.jsonl"):
        if metrics.read_text().count("\n") >= 1 and not (metrics.parent / "summary.json").exists():
            found.append(metrics.parent)
    return found


def job_info(slurm, job: str, state: str | None = None) -> str:
    """``scontrol show job``'s record of the job ("" where it has none, or is not in ``state``)."""
    done = slurm.run("scontrol", "show", "job", job, check=False)
    found = done.stdout if done.returncode == 0 else ""
    return found if state is None or f"JobState={state}" in found.split() else ""


def test_a_search_runs_as_a_job_array_and_a_preempted_trial_resumes(tmp_path, slurm):
    results = tmp_path / "results"
    log = tmp_path / "launcher.log"
    env = {**slurm.env, "MPLCONFIGDIR": str(tmp_path / "mpl"), "PYTHONUNBUFFERED": "1"}  # a line at a time
    env.pop("RNNBENCH_DATA", None)  # the arithmetic task is generated
    command = [sys.executable, "-m", "rnnbench.search", *ARGS, f"results_dir={results}"]
    with log.open("w") as out:
        launcher = subprocess.Popen(
            command, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=tmp_path
        )
    try:
        # the workers went through sbatch as one array of 2 jobs: <array job>_0, <array job>_1
        line = wait_until(
            lambda: re.search(r"submitted 2 worker jobs: (\S+), (\S+)\n", log.read_text()),
            "the launcher to submit the jobs",
            900,
            log=log,
        )
        jobs = [line.group(1), line.group(2)]
        array = jobs[0].split("_")[0]
        assert jobs == [f"{array}_0", f"{array}_1"], jobs
        info = wait_until(lambda: job_info(slurm, jobs[0], "RUNNING"), "the first job to run", 900, log=log)
        assert f"ArrayJobId={array} ArrayTaskId=0" in info and "Comment=rnnbench-test" in info, info
        assert "MinMemoryNode=512M" in info and "NumCPUs=1" in info, info
        script = (results / "slurm" / array / f"{array}_submission.sh").read_text()
        for option in (
            "--array=0-1%2",
            "--signal=USR2@90",
            "--comment=rnnbench-test",
            "--cpus-per-task=1",
            "--mem=512MB",
            "--time=120",
            "--job-name=rnnbench-t",
        ):
            assert f"#SBATCH {option}\n" in script, script

        # both jobs train a trial that has evaluated: pre-empt one of them mid-trial with submitit's
        # signal for a job about to end (pre-emption, time limit: --signal=USR2@90)
        wait_until(lambda: len(training(results)) == 2, "two trials in training", 1800, log=log)
        preempted = jobs[0]
        slurm.run("scancel", "--signal=USR2", preempted)

        # the job saves its trial and asks SLURM to requeue it; SLURM holds a requeued job back until
        # its old credential expires (the test cluster's cred_expire: 10 s), then starts it again
        wait_until(
            lambda: "Restarts=1" in job_info(slurm, preempted),
            "the job to be requeued",
            300,
            log=log,
        )

        code = launcher.wait(timeout=2400)
    finally:
        if launcher.poll() is None:
            launcher.kill()
            launcher.wait()
    out = log.read_text(errors="replace")
    assert code == 0, out

    study = optuna.load_study(study_name="t-arithmetic-lstm", storage=open_storage(None, str(results)))
    found = counts(study)
    assert found["complete"] == 4 and found["killed"] == 1, found  # exactly n_trials; one was stopped
    assert found["running"] == found["waiting"] == found["failed"] == found["pruned"] == 0, found
    completed = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    assert sorted(t.user_attrs["draw"] for t in completed) == [0, 1, 2, 3]  # none twice
    stopped = next(t for t in study.trials if t.state == optuna.trial.TrialState.FAIL)
    retry = next(t for t in completed if t.user_attrs["draw"] == stopped.user_attrs["draw"])
    assert retry.user_attrs["run_dir"] == stopped.user_attrs["run_dir"]
    assert retry.user_attrs["first_eval_step"] > EVERY  # it went on from the stopped trial's checkpoint
    assert retry.user_attrs["steps"] == STEPS
    summary = json.loads((Path(retry.user_attrs["run_dir"]) / "summary.json").read_text())
    assert summary["status"] == "completed"

    # the pre-empted job said so in its log, was requeued once, and ended as the other did
    errors = "".join(p.read_text(errors="replace") for p in results.glob(f"slurm/{preempted}/*.err"))
    assert "rnnbench worker: stopped (SIGUSR2)" in errors and f"job {preempted} requeued" in errors, errors
    for job in jobs:  # (a job's step has ended once its result is written; the job itself soon after)
        wait_until(lambda job=job: job_info(slurm, job, "COMPLETED"), f"{job} to complete", 300)
    assert "Restarts=1" in job_info(slurm, preempted)
    assert "t-arithmetic-lstm" in out  # the launcher's status table
