"""Worker jobs on a SLURM cluster through submitit (``search.launcher=slurm``).

The launcher prepares the studies, then submits ``search.slurm.jobs`` worker jobs as one job array
(``sbatch --array=0-<jobs-1>%<jobs>``); each job runs the same worker loop as a local worker, against the
same storage. Use PostgreSQL or a journal file on a shared filesystem as the storage (SQLite's locking
is unsafe over NFS).

Pre-emption and time limits. submitit asks SLURM to send SIGUSR2 90 s before a job's time limit
(``--signal=USR2@90``), and SIGUSR2 is its signal for pre-emption (a cluster sends it at pre-emption
with ``SlurmctldParameters=preempt_send_user_signal``); SIGTERM comes with ``scancel`` and with a
pre-emption's grace time. The first of these stops the trial in training at its next step: it saves
its checkpoint and goes back to the study's queue (as a local worker does on SIGTERM). After SIGUSR2
the job then asks SLURM to requeue it (``scontrol requeue``): it starts again with the same array index
and takes the queued trials, the stopped one from its checkpoint. After SIGTERM alone the job ends
(a cancelled job stays cancelled; SLURM itself requeues a job it pre-empts with ``PreemptMode=REQUEUE``)
and its trial waits for the other jobs, or for the next run of the same command. A signal that comes
while no trial trains (between trials, or while one is being set up) stops the job once that trial
has ended.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from rnnbench.errors import ConfigError
from rnnbench.search.trial import WorkerStopped

STOP_SIGNALS = (signal.SIGTERM, signal.SIGUSR2)


def submit(cfg: DictConfig, argv: list[str]):
    """Submits the worker jobs as one job array; returns the submitit jobs."""
    import submitit

    s = cfg.search.slurm
    folder = Path(cfg.results_dir).absolute() / "slurm" / "%j"
    executor = submitit.AutoExecutor(folder=folder, cluster=s.cluster)
    parameters = {
        "name": f"rnnbench-{cfg.search.name}",
        "timeout_min": s.timeout_min,
        "cpus_per_task": s.cpus_per_task,
        "mem_gb": s.mem_gb,
        "gpus_per_node": s.gpus_per_node,
        "slurm_array_parallelism": s.jobs,
    }
    if s.partition:
        parameters["slurm_partition"] = s.partition
    extra = s.get("sbatch")
    if extra is not None and not isinstance(extra, DictConfig):
        raise ConfigError(
            f"search.slurm.sbatch={extra} is not valid: give sbatch options as "
            "{account: NAME, qos: NAME, ...}"
        )
    if extra:
        parameters["slurm_additional_parameters"] = OmegaConf.to_container(extra, resolve=True)
    executor.update_parameters(**parameters)
    job_argv = [*argv, f"search.threads={s.cpus_per_task}"]
    return executor.map_array(run_worker, [job_argv] * s.jobs)


def wait_for(jobs) -> list[str]:
    """Waits for every worker job to end; one line per job that failed (its trials stay in the study's
    queue, for the other jobs or the next run of the same command), instead of submitit's traceback."""
    problems = []
    for job in jobs:
        try:
            job.result()
        except Exception as error:  # submitit's FailedJobError, UncompletedJobError: the job's own failure
            reason = (str(error).strip().splitlines() or [type(error).__name__])[0][:200]
            problems.append(f"job {job.job_id} failed ({reason}); its log: {job.paths.stderr}")
    return problems


def run_worker(argv: list[str]) -> int:
    """A worker job: works until the queue is empty and returns how many trials it trained. Stopped by
    a signal it saves its trial and queues it again; after SIGUSR2 (pre-emption, time limit) it also
    requeues itself and ends without a result (the requeued job gives it)."""
    from rnnbench.search.command import read_command_line, threads_per_worker
    from rnnbench.search.worker import open_studies, work

    with Preemption() as preemption:
        try:
            search = read_command_line(argv)
            studies, storage = open_studies(search)
            return work(
                studies,
                search.configs,
                storage,
                threads_per_worker(search.cfg, 1),
                on_trial=preemption.after_trial,
            )
        except WorkerStopped as stopped:
            print(
                f"rnnbench worker: stopped ({stopped}); a trial in training was saved and queued again",
                file=sys.stderr,
                flush=True,
            )
            if signal.SIGUSR2 in preemption.received and requeue():
                sys.exit(-1)  # as submitit does: no result yet, the requeued job gives it
            return 0


class Preemption:
    """SIGTERM and SIGUSR2 in a worker job. The first one stops the trial in training at its next step
    (the trainer's own stop: a checkpoint, ``status: interrupted``, the trial queued again); later ones
    change nothing (a second signal would make the trainer give up its save). A signal while no trial
    trains stops the worker after its current trial (``after_trial``). ``received``: the signals seen
    here (a SIGTERM that the trainer's handler took directly is not among them)."""

    def __init__(self):
        from rnnbench.training.stop_signal import StopSignal

        self.stop_signal = StopSignal
        self.received: list[int] = []
        self.previous: dict = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():  # signals reach the main thread only
            for sig in STOP_SIGNALS:
                self.previous[sig] = signal.signal(sig, self.handle)
        return self

    def __exit__(self, *exc):
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)

    def handle(self, signum, frame):
        self.received.append(signum)
        current = signal.getsignal(signal.SIGTERM)
        training = getattr(current, "__self__", None)  # the trainer's handler while a trial trains
        if isinstance(training, self.stop_signal):
            if training.received is None:
                current(signum, frame)
            signal.signal(signal.SIGTERM, self.handle)  # until the trainer restores this one

    def after_trial(self) -> None:
        if self.received:
            raise WorkerStopped(signal.Signals(self.received[0]).name)


def requeue() -> bool:
    """Asks SLURM to requeue this job; True when it did. Not in a SLURM job: False."""
    try:
        import submitit

        env = submitit.JobEnvironment()
        if env.cluster != "slurm":
            return False
        job_id = env.job_id
    except Exception:  # not a submitit job
        return False
    try:
        done = subprocess.run(["scontrol", "requeue", job_id], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as problem:
        print(f"rnnbench worker: job {job_id} not requeued ({problem})", file=sys.stderr, flush=True)
        return False
    if done.returncode != 0:
        reason = (done.stderr or done.stdout).strip().splitlines()
        print(
            f"rnnbench worker: job {job_id} not requeued ({reason[-1] if reason else done.returncode})",
            file=sys.stderr,
            flush=True,
        )
        return False
    print(f"rnnbench worker: job {job_id} requeued", file=sys.stderr, flush=True)
    return True
