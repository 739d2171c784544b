"""One-line errors for config-group choices that do not exist, before Hydra composes anything.

Hydra's own message spans many lines and ends with the config search path; users need one line that
names the bad value and lists the valid choices.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from rnnbench.errors import ConfigError

GROUPS = ("cell", "task", "trainer", "model", "experiment", "debug")


def available(group: str, extra_dirs: list[Path]) -> list[str]:
    names = set()
    folders = [files("rnnbench.configs") / group] + [d / group for d in extra_dirs]
    for folder in folders:
        if folder.is_dir():
            names |= {p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml")}
    return sorted(names)


def check_group_choices(argv: list[str]) -> None:
    extra_dirs, args = [], list(argv)
    for k, arg in enumerate(args):
        if arg in ("--config-dir", "-cd") and k + 1 < len(args):
            extra_dirs.append(Path(args[k + 1]))
        elif arg.startswith("--config-dir="):
            extra_dirs.append(Path(arg.split("=", 1)[1]))
        elif arg.startswith("hydra.searchpath"):
            return  # the user's own search path: leave the check to Hydra
    for arg in args:
        key, sep, value = arg.lstrip("+").partition("=")
        if not sep or key not in GROUPS or "(" in value or value in ("null", ""):
            continue
        choices = available(key, extra_dirs)
        for choice in value.split(","):
            if choice not in choices:
                raise ConfigError(f"{key}={choice!r} is not valid; choose one of: {', '.join(choices)}")
