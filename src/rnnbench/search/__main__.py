"""``python -m rnnbench.search [group=choice ...] [key=value ...]``: a hyperparameter study.

    python -m rnnbench.search search=greff task=jsb cell=greff_v,cifg search.n_trials=200 search.workers=2
    python -m rnnbench.search study=greff_jsb                  # a paper's study: its task, space and cells
    python -m rnnbench.search status [storage]                 # a table of the studies in a storage
    python -m rnnbench.search prepare ... / worker ...         # the two halves, for machines of your own

Running the same command again continues the study: trials that ended are kept, killed ones continue
from their checkpoints. The command returns once every cell's study holds search.n_trials outcomes
(waiting out the heartbeats of trials still RUNNING, and retrying killed workers' trials), or exits 1
with one line saying what is left. A mistake on the command line is one line on stderr and exit code 2.
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import optuna

from rnnbench.errors import ConfigError
from rnnbench.errors.write import EXIT_CODE as WRITE_FAILED
from rnnbench.errors.write import RunFileError, storage_write_error
from rnnbench.search.trial import WorkerStopped


def error(message) -> None:
    print(f"rnnbench.search: error: {message}", file=sys.stderr)


def quiet_optuna() -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)


def open_existing(storage: str | None):
    """The storage ``status`` reads; a file that is not there is an error, not a new empty storage."""
    from rnnbench.search.study import open_storage, storage_url

    url = storage_url(storage, "results")
    path = url[len("sqlite:///") :] if url.startswith("sqlite:///") else url if "://" not in url else None
    if path is not None and not Path(path).is_file():
        raise ConfigError(f"{path} is not a study storage (no such file); give the storage of a search")
    return open_storage(storage, "results")


def prepare(argv: list[str]):
    from rnnbench.search.command import read_command_line
    from rnnbench.search.study import open_storage, prepare

    search = read_command_line(argv)
    s = search.cfg.search
    storage = open_storage(s.storage, search.cfg.results_dir, s.heartbeat_s, s.retries)
    prepare(search.cfg, search.cells, storage)
    return search


def run(argv: list[str]) -> int:
    from rnnbench.search.launch import run_pool
    from rnnbench.search.status import print_status
    from rnnbench.search.study import shortfall, storage_url
    from rnnbench.search.worker import open_studies

    search = prepare(argv)
    cfg = search.cfg
    if cfg.search.launcher == "slurm":
        from rnnbench.search.slurm import submit, wait_for

        jobs = submit(cfg, search.argv)
        print(f"submitted {len(jobs)} worker jobs: {', '.join(j.job_id for j in jobs)}")
        if not cfg.search.slurm.wait:
            return 0
        for problem in wait_for(jobs):
            print(f"rnnbench.search: {problem}", file=sys.stderr)
        code = 0
    else:
        studies, storage = open_studies(search)
        code = run_pool(search, studies, storage)
    studies, storage = open_studies(search)
    print_status(storage)
    print(f"storage: {storage_url(cfg.search.storage, cfg.results_dir)}")
    left = shortfall(studies, cfg.search.n_trials)  # the command ends with n_trials outcomes, or says so
    if left is not None:
        sys.stdout.flush()  # the line comes last
        print(f"rnnbench.search: {left}", file=sys.stderr)
        return code or 1
    return code


def storage_of(argv: list[str]) -> str:
    """The storage URL the command line names (for messages about it): ``search.storage``, else the
    SQLite file under ``results_dir``."""
    from rnnbench.search.study import storage_url

    given = dict(a.split("=", 1) for a in argv if "=" in a)
    return storage_url(given.get("search.storage"), given.get("results_dir", "results"))


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if any(a in ("-h", "--help") for a in argv):
        keys = "`python -m rnnbench --cfg job search=greff` shows every search.* key; docs/search.md."
        print(__doc__.replace("``", "").strip() + "\n\n" + keys)
        sys.exit(0)
    quiet_optuna()
    command = argv[0] if argv and argv[0] in ("status", "prepare", "worker") else "run"
    rest = argv[1:] if command != "run" else argv
    try:
        if command == "status":
            from rnnbench.search.status import print_status

            print_status(open_existing(rest[0] if rest else None))
            code = 0
        elif command == "prepare":
            prepare(rest)
            code = 0
        elif command == "worker":
            from rnnbench.search.worker import worker_main

            worker_main(rest)
            code = 0
        else:
            code = run(rest)
    except RunFileError as problem:  # a trial's run file could not be written (disk full, read-only)
        error(problem)
        sys.exit(WRITE_FAILED)
    except ConfigError as problem:
        error(problem)
        sys.exit(2)
    except (KeyboardInterrupt, WorkerStopped) as stop:  # trials in progress were saved and queued again
        name = str(stop) if isinstance(stop, WorkerStopped) else "SIGINT"
        error(f"stopped ({name}); trials in progress were saved: run the same command again to continue")
        sys.exit(128 + getattr(signal.Signals, name, signal.SIGINT).value)
    except Exception as problem:  # the study storage could not be written: one line, the trials are kept
        # (after the clause above: WorkerStopped is an Exception too)
        line = storage_write_error(problem, storage_of(argv))
        if line is None:
            raise
        error(line)
        sys.exit(WRITE_FAILED)
    sys.exit(code)


if __name__ == "__main__":
    main()
