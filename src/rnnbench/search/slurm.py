"""Worker jobs on a SLURM cluster through submitit (``search.launcher=slurm``).

The launcher prepares the studies, then submits ``search.slurm.jobs`` worker jobs as one job array;
each job runs the same worker loop as a local worker, against the same storage. Use PostgreSQL or a
journal file on a shared filesystem as the storage (SQLite's locking is unsafe over NFS).
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig


def submit(cfg: DictConfig, argv: list[str]):
    """Submits the worker jobs; returns the submitit jobs."""
    import submitit

    from rnnbench.search.worker import worker_main

    s = cfg.search.slurm
    folder = Path(cfg.results_dir).absolute() / "slurm" / "%j"
    executor = submitit.AutoExecutor(folder=folder, cluster=s.cluster)
    parameters = {"name": f"rnnbench-{cfg.search.name}", "timeout_min": s.timeout_min,
                  "cpus_per_task": s.cpus_per_task, "mem_gb": s.mem_gb, "gpus_per_node": s.gpus_per_node,
                  "slurm_array_parallelism": s.jobs}  # fmt: skip
    if s.partition:
        parameters["slurm_partition"] = s.partition
    executor.update_parameters(**parameters)
    job_argv = [*argv, f"search.threads={s.cpus_per_task}"]
    return executor.map_array(worker_main, [job_argv] * s.jobs)
