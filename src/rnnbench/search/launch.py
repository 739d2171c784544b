"""Running a search here: worker processes against the prepared studies, and one progress bar.

``search.workers=N`` starts N worker processes (``python -m rnnbench.search worker ...``), each with
``torch`` threads = cores // N, so that the pool never asks for more threads than there are cores
(oversubscribed threads slow every step down many times over). On a machine with GPUs each worker sees
one GPU (``CUDA_VISIBLE_DEVICES``), ``search.workers_per_gpu`` workers per GPU. Workers end with their
launcher, however it ends: on Linux the kernel kills them when it dies (``PR_SET_PDEATHSIG``).
"""

from __future__ import annotations

import contextlib
import ctypes
import math
import os
import signal
import subprocess
import sys
import time

import optuna
from tqdm import tqdm

from rnnbench.search.command import Search, threads_per_worker, visible_gpus, worker_count
from rnnbench.search.study import (
    all_draw_states,
    claim_lock,
    counts,
    fail_stale_trials,
    fail_unbeating,
    heartbeats,
    running_trials,
)
from rnnbench.search.trial import WorkerStopped


def die_with_parent() -> None:  # runs in the child between fork and exec
    with contextlib.suppress(OSError):  # not Linux: workers outlive a killed launcher (trials are retried)
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def start_workers(search: Search, workers: int, threads: int) -> list[subprocess.Popen]:
    gpus = visible_gpus()
    processes = []
    for k in range(workers):
        env = dict(os.environ)
        if gpus:
            env["CUDA_VISIBLE_DEVICES"] = gpus[k % len(gpus)]
        command = [
            sys.executable,
            "-m",
            "rnnbench.search",
            "worker",
            *search.argv,
            f"search.threads={threads}",
        ]
        preexec = die_with_parent if sys.platform.startswith("linux") else None
        processes.append(subprocess.Popen(command, env=env, preexec_fn=preexec))  # noqa: PLW1509
    return processes


def progress(studies: list[optuna.Study]) -> tuple[int, str]:
    """(trials with an outcome, the best value so far per cell) over the studies."""
    done, best = 0, []
    for study in studies:
        found = counts(study)
        done += found["complete"] + found["pruned"] + found["failed"]
        if found["complete"]:
            best.append(f"{study.user_attrs['cell']} {study.best_value:.4g}")
    return done, ", ".join(best[:4]) + (" ..." if len(best) > 4 else "")


def update(bar: tqdm, studies: list[optuna.Study]) -> None:
    bar.n, best = progress(studies)
    bar.set_postfix_str(f"best: {best}" if best else "", refresh=True)


def run_pool(search: Search, studies: list[optuna.Study], storage) -> int:
    """Runs the workers until the queue is empty, then waits for trials still RUNNING (other machines'
    workers, or killed workers whose heartbeats have yet to go stale) and runs the workers again on those
    queued again; returns the exit code (``shortfall`` says what is left where it ends short)."""
    workers = worker_count(search.cfg)
    total = search.cfg.search.n_trials * len(studies)
    name = f"{search.cfg.search.name} on {search.cfg.task.name}"
    bar = tqdm(total=total, initial=progress(studies)[0], desc=name, unit="trial", dynamic_ncols=True)
    n_trials = search.cfg.search.n_trials
    try:
        while True:
            before = all_draw_states(studies, n_trials)
            code = run_workers(search, studies, storage, workers, bar)
            stuck = before["waiting"] and all_draw_states(studies, n_trials) == before  # took none of them
            if code != 0 or stuck:
                return code
            if not wait_for_running(search, studies, storage, bar):
                return 0
    finally:
        update(bar, studies)
        bar.close()


def run_workers(search: Search, studies: list[optuna.Study], storage, workers: int, bar: tqdm) -> int:
    """One round: the workers take queued trials until none is left; the exit code of a worker that
    failed, else 0 (a worker killed by a signal, its trial retried, is not a failure here). No more
    workers start than the queue can keep busy (an architecture search's one-draw filter: none)."""
    threads = threads_per_worker(search.cfg, workers)  # as configured, however few trials are left
    s = search.cfg.search
    queued = all_draw_states(studies, s.n_trials)["waiting"]
    workers = max(1, min(workers, math.ceil(queued / s.population)))
    if workers == 1:  # in this process: no start-up cost, and tests see it directly
        from rnnbench.search.worker import work

        def on_trial(*_):
            update(bar, studies)

        work(studies, search.configs, storage, threads, on_trial)
        return 0
    processes = start_workers(search, workers, threads)
    terminated = []

    def forward(signum, frame):  # e.g. a scheduler's SIGTERM: each worker saves its trial and queues it
        terminated.append(signum)
        for p in processes:
            p.send_signal(signum)

    previous, shown = signal.signal(signal.SIGTERM, forward), time.monotonic()
    try:
        while any(p.poll() is None for p in processes):
            time.sleep(0.5)
            if time.monotonic() - shown > 5:  # the storage is asked every few seconds, not every moment
                update(bar, studies)
                shown = time.monotonic()
    except KeyboardInterrupt:  # Ctrl-C reached the workers too: each saves its trial and queues it
        for p in processes:
            p.wait()
        raise
    finally:
        signal.signal(signal.SIGTERM, previous)
    if terminated:
        raise WorkerStopped("SIGTERM")
    failed = [p.returncode for p in processes if p.returncode > 0]
    return failed[0] if failed else 0


def stop_on_sigterm(signum, frame):
    raise WorkerStopped("SIGTERM")


def wait_for_running(search: Search, studies: list[optuna.Study], storage, bar: tqdm) -> bool:
    """Waits while trials are RUNNING and no local worker runs: a live worker's (another launcher's, a
    SLURM job's) until it ends, a killed worker's until its heartbeat is stale and
    ``fail_stale_trials`` queues it again. True when trials are queued (run the workers again); False
    when none is running, or when no heartbeat moved for the grace period and three beats more
    (``shortfall`` then counts them as running elsewhere). A storage without heartbeats (a journal
    file) cannot tell a live worker from a dead one: no wait there."""
    n_trials, every = search.cfg.search.n_trials, search.cfg.search.heartbeat_s
    if not hasattr(storage, "record_heartbeat") or not all_draw_states(studies, n_trials)["running"]:
        return False
    patience, poll = 5 * every, min(5.0, max(0.5, every / 2))  # grace (2 beats) + 3 beats
    seen, moved = None, time.monotonic()
    previous = signal.signal(signal.SIGTERM, stop_on_sigterm)
    try:
        while True:
            with claim_lock(storage):
                for study in studies:
                    fail_stale_trials(study)  # a killed worker's trial: failed and queued again
            found = all_draw_states(studies, n_trials)
            update(bar, studies)
            if found["waiting"]:
                return True
            if not found["running"]:
                return False
            running = running_trials(studies, storage, n_trials)
            beats = heartbeats(storage, running)
            now = {trial_id: beats.get(trial_id) for trial_id in running}
            if now != seen:
                seen, moved = now, time.monotonic()
            elif time.monotonic() - moved > patience:
                never = [trial_id for trial_id, beat in now.items() if beat is None]
                for trial_id in never:  # taken by a worker that died before its first beat
                    fail_unbeating(running[trial_id][0], storage, trial_id)
                if not never:
                    return False
                continue
            bar.set_postfix_str(f"waiting for {found['running']} running elsewhere", refresh=True)
            time.sleep(poll)
    finally:
        signal.signal(signal.SIGTERM, previous)
