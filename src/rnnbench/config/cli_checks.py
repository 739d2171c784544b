"""Checks of the command line before Hydra runs anything, so that every mistake is one line.

Hydra's own messages span many lines and end with the config search path; users need one line that
names the bad value and lists the valid choices. ``preflight`` composes the config the way Hydra will
(same search path, ``--config-dir`` and ``hydra.searchpath`` included) and checks it against the schema:
all of it for a single run; for a sweep (``-m``) only its keys, since each job's values are checked
when the job starts, so that one bad job fails alone and the sweep goes on.
"""

from __future__ import annotations

import re
import tempfile
from importlib.resources import files
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from rnnbench.errors import ConfigError

GROUPS = ("cell", "task", "trainer", "model", "experiment", "search", "study", "evolve", "debug")
REQUIRED = ("cell", "task", "trainer", "model")  # groups that cannot be null
SKIP = (
    "-h",
    "--help",
    "--hydra-help",
    "-c",
    "--cfg",
    "-i",
    "--info",
    "-sc",
    "--shell-completion",
    "--version",
    "--experimental-rerun",
)
WITH_VALUE = ("--config-dir", "-cd", "--config-name", "-cn", "--config-path", "-cp", "-p", "--package")


def available(group: str, extra_dirs: list[Path]) -> list[str]:
    names = set()
    folders = [files("rnnbench.configs") / group] + [d / group for d in extra_dirs]
    for folder in folders:
        if folder.is_dir():
            names |= {p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml")}
    return sorted(names)


def split_argv(argv: list[str]) -> tuple[list[Path], list[str], bool]:
    """(``--config-dir`` folders, overrides, whether it is a sweep)."""
    dirs, overrides, multirun, k = [], [], False, 0
    while k < len(argv):
        arg = argv[k]
        if arg in WITH_VALUE:
            if arg in ("--config-dir", "-cd") and k + 1 < len(argv):
                dirs.append(Path(argv[k + 1]).absolute())
            k += 2
            continue
        if arg.startswith("--config-dir="):
            dirs.append(Path(arg.split("=", 1)[1]).absolute())
        elif arg in ("-m", "--multirun"):
            multirun = True
        elif not arg.startswith("-"):
            overrides.append(arg)
        k += 1
    return dirs, overrides, multirun


def check_group_choices(overrides: list[str], extra_dirs: list[Path]) -> None:
    if any(o.startswith("hydra.searchpath") for o in overrides):
        return  # the user's own search path: composing will tell
    for arg in overrides:
        key, sep, value = arg.lstrip("+").partition("=")
        if not sep or key not in GROUPS or "(" in value:
            continue
        choices = available(key, extra_dirs)
        for choice in value.split(","):
            if choice in ("", "null") and key not in REQUIRED:
                continue
            if choice not in choices:
                raise ConfigError(f"{key}={choice!r} is not valid; choose one of: {', '.join(choices)}")


def first_of_sweeps(overrides: list[str]) -> list[str]:
    """Each sweep override reduced to its first value: one job that shows the sweep's keys."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
    except HydraException as error:
        raise ConfigError(grammar_error(error, overrides)) from None
    single = []
    for override, text in zip(parsed, overrides):
        if not override.is_sweep_override():
            single.append(text)
            continue
        try:
            single.append(f"{override.get_key_element()}={next(iter(override.sweep_string_iterator()))}")
        except HydraException:  # glob() over a group needs Hydra's loader: the job checks it
            continue
    return single


def one_line(message: str) -> str:
    """Hydra's message without its search-path listing, on one line."""
    message = message.split("Config search path:")[0]
    return "; ".join(line.strip() for line in message.splitlines() if line.strip())


# Hydra's override grammar reads the ' of h' as an opening quote, and stops at a genome's spaces.
GENOME_QUOTING = (
    "give a genome's text in double quotes inside the shell's: "
    r'''"cell.genome=\"h' = tanh(Linear(x, h))\""'''
)


def grammar_error(error: Exception, overrides: list[str]) -> str:
    """Hydra's parse error on one line; for an unquoted ``cell.genome`` text, led by how to quote it."""
    from hydra.errors import OverrideParseException

    message = one_line(str(error)) or type(error).__name__
    unquoted = any(o.startswith("cell.genome=") and o[12:13] not in "'\"" for o in overrides)
    if unquoted and isinstance(error, OverrideParseException):
        return f"{GENOME_QUOTING} ({message})"
    return message


def compose(overrides: list[str], extra_dirs: list[Path]):
    from hydra import compose as hydra_compose
    from hydra import initialize_config_module

    searchpath = [f"hydra.searchpath=[{','.join(f'file://{d}' for d in extra_dirs)}]"] if extra_dirs else []
    job = [o for o in overrides if not o.lstrip("+~").startswith("hydra.") or "searchpath" in o]
    try:
        with initialize_config_module(config_module="rnnbench.configs", version_base="1.3"):
            return hydra_compose(config_name="config", overrides=searchpath + job)
    except Exception as error:  # Hydra's composition and override-grammar errors
        message = grammar_error(error, overrides)
        missing = re.match(r"Could not override '([^']+)'", message)
        if missing:  # name the valid keys, as the schema does for keys in files
            key = missing.group(1)
            cfg = compose([o for o in overrides if o.partition("=")[0] != key], extra_dirs)
            parent = key.rpartition(".")[0]
            while parent and not isinstance(OmegaConf.select(cfg, parent), DictConfig):
                parent = parent.rpartition(".")[0]  # the nearest group that exists
            node = OmegaConf.select(cfg, parent) if parent else cfg
            message = f"{key} is not a config key; valid keys of {parent or 'the config'}: {', '.join(node)}"
        raise ConfigError(message) from None


def check_writable(folder: str, key: str) -> None:
    """The folder a run writes to can be made and written, checked before Hydra makes it."""
    path = Path(folder)
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{key}={folder!r} is a file, not a folder; choose another {key}")
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise ConfigError(f"{key}={folder!r} cannot be written ({reason}); choose another {key}") from None


def preflight(argv: list[str]) -> None:
    if any(a in SKIP for a in argv):
        return
    from rnnbench.config.schema import validate

    extra_dirs, overrides, multirun = split_argv(argv)
    check_group_choices(overrides, extra_dirs)
    cfg = compose(first_of_sweeps(overrides) if multirun else overrides, extra_dirs)
    validate(cfg, values=not multirun)
    run_dir = next((o.split("=", 1)[1] for o in overrides if o.startswith("hydra.run.dir=")), None)
    if run_dir is not None and "${" not in run_dir and not multirun:
        check_writable(run_dir, "hydra.run.dir")
    else:
        check_writable(cfg.results_dir, "results_dir")
