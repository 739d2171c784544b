"""A worker: takes the studies' queued trials one at a time and trains them, until none is left.

Workers share nothing but the storage: any number of them, on one machine or many, run against the same
studies. Taking a trial is the storage's atomic WAITING -> RUNNING update, so no two workers train the
same trial. Among the queued trials of all cells the lowest draw goes first, so cells advance together
and a study stopped early holds comparable numbers of trials per cell. While a trial trains, a thread
records the worker's heartbeat; a worker that stops beating (killed) has its trial failed and queued
again by the next worker that looks (``optuna.storages.fail_stale_trials``). With an adaptive
``search.sampler`` a queued draw has no values yet: the worker that takes it has the sampler propose them
from the study's trials so far, while it still holds the claim (``rnnbench.search.study.propose``).
"""

from __future__ import annotations

import threading
from contextlib import contextmanager

import optuna
from omegaconf import DictConfig

from rnnbench.search.space import parse_space
from rnnbench.search.study import claim_lock, fail_stale_trials, propose
from rnnbench.search.trial import run_population, run_trial

WAITING, RUNNING = optuna.trial.TrialState.WAITING, optuna.trial.TrialState.RUNNING


def take(
    studies: list[optuna.Study], storage, count: int = 1, configs: list[DictConfig] | None = None
) -> tuple[int, list, list[int]] | None:
    """(index of a study, up to ``count`` of its queued trials now RUNNING for this worker, their storage
    ids), or None when nothing is queued. With ``configs`` (one per study), a taken trial without values
    gets them from the study's ``search.sampler``."""
    with claim_lock(storage):
        return take_queued(studies, storage, count, configs)


def take_queued(
    studies: list[optuna.Study], storage, count: int, configs: list[DictConfig] | None = None
) -> tuple[int, list, list[int]] | None:
    queued, listed = [], {}
    for index, study in enumerate(studies):
        fail_stale_trials(study)
        wanted = study.user_attrs.get("n_trials")  # draws queued for a larger n_trials stay queued
        for t in study.get_trials(deepcopy=False, states=(WAITING,)):
            draw = t.user_attrs.get("draw", 0)
            if wanted is None or draw < wanted:
                queued.append((draw, index, t.number))
                listed[index, t.number] = t
    chosen, trials, ids = None, [], []
    for _, index, number in sorted(queued):
        if chosen is not None and index != chosen:
            continue  # a population trains one cell
        study = studies[index]
        study_id = storage.get_study_id_from_name(study.study_name)
        trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, number)
        try:
            taken = storage.set_trial_state_values(trial_id, state=RUNNING)
        except optuna.exceptions.UpdateFinishedTrialError:
            taken = False  # another worker took it and has already finished it
        if taken:
            if hasattr(storage, "record_heartbeat"):  # at once: a trial without one never goes stale
                storage.record_heartbeat(trial_id)
            if configs is not None:  # before the next is taken: its proposal sees this one's values
                s = configs[index].search
                propose(
                    study,
                    storage,
                    trial_id,
                    parse_space(s.space),
                    s.get("sampler", "random"),
                    listed[index, number],
                )
            chosen = index
            trials.append(optuna.Trial(study, trial_id))
            ids.append(trial_id)
            if len(trials) == count:
                break
    return (chosen, trials, ids) if trials else None


@contextmanager
def heartbeat(storage, trial_ids: list[int], every_s: float):
    """Records the trials' heartbeats now and every ``every_s`` seconds until the block ends."""
    if not hasattr(storage, "record_heartbeat"):  # a journal file has no heartbeats
        yield
        return

    def beat_all():
        for trial_id in trial_ids:
            storage.record_heartbeat(trial_id)

    beat_all()
    done = threading.Event()

    def beat():
        while not done.wait(every_s):
            beat_all()

    thread = threading.Thread(target=beat, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()


def work(
    studies: list[optuna.Study], configs: list[DictConfig], storage, threads: int | None, on_trial=None
) -> int:
    """Trains queued trials until none is left; returns how many this worker trained."""
    trained, population = 0, configs[0].search.population
    while (taken := take(studies, storage, population, configs)) is not None:
        index, trials, ids = taken
        with heartbeat(storage, ids, configs[index].search.heartbeat_s):
            if population == 1:
                run_trial(studies[index], trials[0], configs[index], threads)
            else:
                run_population(studies[index], trials, configs[index], threads)
        trained += len(trials)
        if on_trial is not None:
            on_trial()
    return trained


def open_studies(search) -> tuple[list[optuna.Study], object]:
    """The studies of a prepared search (``rnnbench.search.study.prepare``) and their storage."""
    from rnnbench.search.study import open_storage, pruner, study_name

    cfg = search.cfg
    storage = open_storage(cfg.search.storage, cfg.results_dir, cfg.search.heartbeat_s, cfg.search.retries)
    studies = [
        optuna.load_study(study_name=study_name(c, cell), storage=storage, pruner=pruner(c))
        for c, cell in zip(search.configs, search.cells)
    ]
    return studies, storage


def worker_main(argv: list[str]) -> int:
    """A worker process (or SLURM job): reads the same command line as the launcher and works."""
    from rnnbench.search.command import read_command_line, threads_per_worker
    from rnnbench.search.study import check_sampler

    search = read_command_line(argv)
    check_sampler(search.cfg)
    studies, storage = open_studies(search)
    return work(studies, search.configs, storage, threads_per_worker(search.cfg, 1))
