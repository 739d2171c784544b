"""``python -m rnnbench [group=choice ...] [key=value ...]``: compose the configs and train one run.

Hydra composes ``configs/config.yaml`` with the chosen groups; ``--help`` lists them, ``-m`` sweeps.
The command line is checked first (``rnnbench.config.cli_checks``): a mistake is one line on stderr and exit
code 2. In a sweep, a job whose values are bad fails in one line and the sweep goes on. A run file that
cannot be written (disk full, quota, read-only folder; ``rnnbench.errors.write``) is one line too, with
exit code 74, Hydra's own files in the run directory included.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import signal
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from rnnbench.config.cli_checks import preflight
from rnnbench.errors import ConfigError
from rnnbench.errors.write import EXIT_CODE, RunFileError, hydra_write_failure

# A genome's text in a folder name would be long and full of quotes: the folder names it by a hash.
GENOME_TEXT = re.compile(r"(cell\.genome=)(.+?)(?=,[a-z_]+(?:\.[a-z_]+)*=|$)")


def genome_digest(match: re.Match) -> str:
    return match.group(1) + "g" + hashlib.sha256(match.group(2).encode()).hexdigest()[:12]


# A genome file is named by what it holds: a run of the file edited since is another run.
GENOME_FILE = re.compile(r"(cell\.genome_file=)(.+?)(?=,[a-z_]+(?:\.[a-z_]+)*=|$)")


def genome_file_digest(match: re.Match) -> str:
    path = Path(match.group(2))
    try:
        text = path.read_bytes()
    except OSError:  # the run names the unreadable file in one line
        return match.group(0)
    return f"{match.group(1)}{path.stem}-g{hashlib.sha256(text).hexdigest()[:12]}"


def run_name(overrides: str) -> str:
    """A run directory's name: its overrides (a genome's text as g<hash>, a genome file as
    <stem>-g<hash of its text>); no overrides: "default"."""
    return GENOME_FILE.sub(genome_file_digest, GENOME_TEXT.sub(genome_digest, overrides)) or "default"


OmegaConf.register_new_resolver("run_name", run_name, replace=True)


def error(message) -> None:
    print(f"rnnbench: error: {message}", file=sys.stderr)


@hydra.main(version_base="1.3", config_path="pkg://rnnbench.configs", config_name="config")
def hydra_main(cfg: DictConfig):
    hydra_cfg = HydraConfig.get()
    try:
        summary = train_one_or_population(cfg, Path(hydra_cfg.runtime.output_dir))
    except ConfigError as problem:
        if hydra_cfg.mode == RunMode.MULTIRUN:  # this job fails; the sweep goes on
            error(f"job {hydra_cfg.job.num} ({hydra_cfg.job.override_dirname}): {problem}")
            return None
        error(problem)
        sys.exit(EXIT_CODE if isinstance(problem, RunFileError) else 2)
    if summary["status"] == "interrupted":  # a scheduler sees the run did not finish
        for sig in (signal.SIGINT, signal.SIGTERM):  # the run is saved: a further Ctrl-C changes nothing
            signal.signal(sig, signal.SIG_IGN)
        sys.exit(128 + getattr(signal.Signals, summary["stop_reason"], signal.SIGTERM).value)
    return summary["best"].get(summary["headline"])  # the value a sweep optimises


def train_one_or_population(cfg: DictConfig, run_dir: Path) -> dict:
    """The run's summary; with ``trainer.population=K``, that of the member with the best headline
    (every member's summary is in its own ``member-<k>`` directory)."""
    from rnnbench.training.trainer import train  # imported here so that --help answers quickly

    if cfg.trainer.get("population", 1) == 1:
        return train(cfg, run_dir)
    from rnnbench.population import member_configs, train_population

    summaries = train_population(*member_configs(cfg, run_dir))
    interrupted = [s for s in summaries if s["status"] == "interrupted"]
    if interrupted:
        return interrupted[0]
    scored = [s for s in summaries if s["best"].get(s["headline"]) is not None] or summaries
    sign = -1 if scored[0]["higher_is_better"] else 1
    return min(scored, key=lambda s: sign * s["best"].get(s["headline"], 0.0))


def main() -> None:
    try:
        preflight(sys.argv[1:])
    except ConfigError as problem:
        error(problem)
        sys.exit(2)
    try:
        with hydra_writes_reported():
            hydra_main()
    except KeyboardInterrupt:  # a second Ctrl-C: stop now, the last checkpoint is intact
        error("interrupted; the last checkpoint is kept: run the same command again to resume")
        sys.exit(128 + signal.SIGINT)


@contextlib.contextmanager
def hydra_writes_reported():
    """Hydra writes the run directory, its job log and ``.hydra/*.yaml`` before the run starts, and
    reports a failure there as a traceback. Such a write failure is one line and exit code 74, like one
    of the run's own files; any other error is Hydra's to report, as before."""
    import hydra._internal.utils as hydra_utils

    original = getattr(hydra_utils, "run_and_report", None)
    if original is None:  # another Hydra: its own report
        yield
        return

    def run_and_report(func):
        def guarded():
            try:
                return func()
            except Exception as problem:
                failure = hydra_write_failure(problem)
                if failure is None:
                    raise
                error(failure)
                sys.exit(EXIT_CODE)  # SystemExit passes Hydra's report of exceptions

        return original(guarded)

    hydra_utils.run_and_report = run_and_report
    try:
        yield
    finally:
        hydra_utils.run_and_report = original


if __name__ == "__main__":
    main()
