"""``python -m rnnbench.evolve [evolve=jozefowicz] [key=value ...]``: the architecture search.

    python -m rnnbench.evolve evolve=jozefowicz                      # the paper's procedure
    python -m rnnbench.evolve evolve=jozefowicz evolve.candidates=200 search.workers=2
    python -m rnnbench.evolve evolve=jozefowicz debug=fast           # every evaluation a few seconds

Every override of ``python -m rnnbench.search`` works here (the evaluations are its studies, in the same
storage). Running the same command again continues the search: it replays its choices, reads the
results it has, and trains only what is new. Writes ``<results_dir>/evolve/<evolve.name>/`` (summary.json,
events.jsonl); ``python -m rnnbench.report <results_dir>`` shows the architectures it found.
"""

from __future__ import annotations

import signal
import sys

from omegaconf import OmegaConf

from rnnbench.errors import ConfigError
from rnnbench.errors.write import EXIT_CODE as WRITE_FAILED
from rnnbench.errors.write import RunFileError


def error(message) -> None:
    print(f"rnnbench.evolve: error: {message}", file=sys.stderr)


def run(argv: list[str]) -> int:
    from rnnbench.config.cli_checks import check_group_choices, compose, split_argv
    from rnnbench.config.schema import validate
    from rnnbench.evolve.controller import Evolution
    from rnnbench.evolve.record import Record
    from rnnbench.evolve.settings import read_settings
    from rnnbench.search.__main__ import quiet_optuna

    quiet_optuna()
    extra_dirs, overrides, multirun = split_argv(argv)
    if multirun:
        raise ConfigError("-m is not needed: the search runs its evaluations itself")
    check_group_choices(overrides, extra_dirs)
    cfg = compose(overrides, extra_dirs)
    validate(cfg)
    settings = read_settings(cfg)
    if not cfg.search.space:
        raise ConfigError("search.space is empty; choose evolve=jozefowicz (or search=jozefowicz)")
    if cfg.search.pruner != "none":  # a pruned draw's outcome depends on which trials finished first
        raise ConfigError(
            f"search.pruner={cfg.search.pruner}: an architecture search needs every draw trained to its end "
            "(search.pruner=none) to replay the same choices"
        )
    record = Record(cfg.results_dir, settings.name, OmegaConf.to_container(cfg.evolve, resolve=True))
    try:
        evolution = Evolution(settings, list(argv), record).run()
    finally:
        record.close()
    f = evolution.funnel
    print(
        f"{f.generated} mutants: {f.duplicates} duplicates, {f.failed_memorization} failed memorization, "
        f"dropped {f.dropped or 0}, {f.listed} listed; best listed:"
    )
    for h in evolution.listed[:5]:
        c = evolution.candidates[h]
        print(
            f"  {h} {c.origin:8s} fitness {evolution.fitness(c):.3f}  {c.text.strip().replace(chr(10), '; ')}"
        )
    print(f"written: {record.dir}")
    return 0


def main(argv: list[str] | None = None) -> None:
    from rnnbench.errors.write import storage_write_error
    from rnnbench.evolve.stages import Unfinished
    from rnnbench.search.__main__ import storage_of
    from rnnbench.search.trial import WorkerStopped

    argv = sys.argv[1:] if argv is None else argv
    if any(a in ("-h", "--help") for a in argv):
        print(__doc__.replace("``", "").strip())
        sys.exit(0)
    try:
        code = run(argv)
    except RunFileError as problem:
        error(problem)
        sys.exit(WRITE_FAILED)
    except ConfigError as problem:
        error(problem)
        sys.exit(2)
    except Unfinished as left:
        error(left)
        sys.exit(1)
    except (KeyboardInterrupt, WorkerStopped) as stop:
        name = str(stop) if isinstance(stop, WorkerStopped) else "SIGINT"
        error(f"stopped ({name}); trials in progress were saved: run the same command again to continue")
        sys.exit(128 + getattr(signal.Signals, name, signal.SIGINT).value)
    except Exception as problem:  # the study storage could not be written: one line, as the search says it
        line = storage_write_error(problem, storage_of(argv), "the architecture search")
        if line is None:
            raise
        error(line)
        sys.exit(WRITE_FAILED)
    sys.exit(code)


if __name__ == "__main__":
    main()
