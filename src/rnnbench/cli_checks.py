"""One-line errors for config-group choices and keys that do not exist, before Hydra runs anything.

Hydra's own messages span many lines and end with the config search path; users need one line that
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


def check_keys(argv: list[str]) -> None:
    """``a.b=v`` must name an existing key (``+a.b=v`` adds one). Single runs without a user config
    folder only: sweeps and ``--config-dir`` keep Hydra's own checks."""
    if any(a in ("-m", "--multirun") or a.startswith(("--config-dir", "-cd", "hydra.")) for a in argv):
        return
    overrides = [a for a in argv if "=" in a and not a.startswith(("-", "+", "~"))]
    dotted = [o for o in overrides if "." in o.partition("=")[0]]
    if not dotted:
        return
    from hydra import compose, initialize_config_module
    from omegaconf import DictConfig, OmegaConf

    with initialize_config_module(config_module="rnnbench.configs", version_base="1.3"):
        cfg = compose(config_name="config", overrides=[o for o in overrides if o not in dotted])
    for override in dotted:
        key = override.partition("=")[0]
        parent, _, leaf = key.rpartition(".")
        node = OmegaConf.select(cfg, parent)
        if not isinstance(node, DictConfig):
            raise ConfigError(f"{key} is not a config key; top-level keys: {', '.join(cfg.keys())}")
        if leaf not in node:
            raise ConfigError(
                f"{key} is not a config key; keys of {parent}: {', '.join(map(str, node.keys()))} "
                f"(+{override} adds a new one)"
            )
