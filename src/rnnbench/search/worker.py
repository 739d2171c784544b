"""A worker: takes the studies' queued trials one at a time and trains them, until none is left.

Workers share nothing but the storage: any number of them, on one machine or many, run against the same
studies. Taking a trial is the storage's atomic WAITING -> RUNNING update, so no two workers train the
same trial. Among the queued trials of all cells the lowest draw goes first, so cells advance together
and a study stopped early holds comparable numbers of trials per cell. While a trial trains, a thread
records the worker's heartbeat; a worker that stops beating (killed) has its trial failed and queued
again by the next worker that looks (``optuna.storages.fail_stale_trials``).
"""

from __future__ import annotations

import threading
from contextlib import contextmanager

import optuna
from omegaconf import DictConfig

from rnnbench.search.study import fail_stale_trials
from rnnbench.search.trial import run_trial

WAITING, RUNNING = optuna.trial.TrialState.WAITING, optuna.trial.TrialState.RUNNING


def take(studies: list[optuna.Study], storage) -> tuple[int, optuna.Trial, int] | None:
    """(index of the study, its trial now RUNNING for this worker, the trial's storage id), or None
    when nothing is queued."""
    queued = []
    for index, study in enumerate(studies):
        fail_stale_trials(study)
        for t in study.get_trials(deepcopy=False, states=(WAITING,)):
            queued.append((t.user_attrs.get("draw", 0), index, t.number))
    for _, index, number in sorted(queued):
        study = studies[index]
        study_id = storage.get_study_id_from_name(study.study_name)
        trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, number)
        try:
            taken = storage.set_trial_state_values(trial_id, state=RUNNING)
        except optuna.exceptions.UpdateFinishedTrialError:
            taken = False  # another worker took it and has already finished it
        if taken:
            return index, optuna.Trial(study, trial_id), trial_id
    return None


@contextmanager
def heartbeat(storage, trial_id: int, every_s: float):
    """Records the trial's heartbeat now and every ``every_s`` seconds until the block ends."""
    if not hasattr(storage, "record_heartbeat"):  # a journal file has no heartbeats
        yield
        return
    storage.record_heartbeat(trial_id)
    done = threading.Event()

    def beat():
        while not done.wait(every_s):
            storage.record_heartbeat(trial_id)

    thread = threading.Thread(target=beat, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()


def work(studies: list[optuna.Study], configs: list[DictConfig], storage, threads: int | None,
         on_trial=None) -> int:  # fmt: skip
    """Trains queued trials until none is left; returns how many this worker trained."""
    trained = 0
    while (taken := take(studies, storage)) is not None:
        index, trial, trial_id = taken
        with heartbeat(storage, trial_id, configs[index].search.heartbeat_s):
            outcome = run_trial(studies[index], trial, configs[index], threads)
        trained += 1
        if on_trial is not None:
            on_trial(studies[index], trial, outcome)
    return trained


def open_studies(search) -> tuple[list[optuna.Study], object]:
    """The studies of a prepared search (``rnnbench.search.study.prepare``) and their storage."""
    from rnnbench.search.study import open_storage, pruner, study_name

    cfg = search.cfg
    storage = open_storage(cfg.search.storage, cfg.results_dir, cfg.search.heartbeat_s, cfg.search.retries)
    studies = [optuna.load_study(study_name=study_name(c, cell), storage=storage, pruner=pruner(c))
               for c, cell in zip(search.configs, search.cells)]  # fmt: skip
    return studies, storage


def worker_main(argv: list[str]) -> int:
    """A worker process (or SLURM job): reads the same command line as the launcher and works."""
    from rnnbench.search.command import read_command_line, threads_per_worker

    search = read_command_line(argv)
    studies, storage = open_studies(search)
    return work(studies, search.configs, storage, threads_per_worker(search.cfg, 1))
