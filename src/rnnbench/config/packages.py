"""The optional packages a config needs (``trainer.logger=tensorboard`` needs tensorboard), checked when
the config is, so that a run or a search stops before it starts, with one line saying what to install."""

from __future__ import annotations

import importlib.util

from rnnbench.errors import ConfigError

LOGGER_PACKAGES = {"tensorboard": "tensorboard"}  # trainer.logger -> the package it needs


def installed(package: str) -> bool:
    try:
        return importlib.util.find_spec(package) is not None
    except (ImportError, ValueError):
        return False


def check_logger(name: str | None) -> None:
    """A one-line ConfigError when ``trainer.logger=name`` needs a package that is not installed."""
    if name is None:
        return
    package = LOGGER_PACKAGES[name]
    if not installed(package):
        raise ConfigError(
            f"trainer.logger={name} needs the {package} package: pip install {package} "
            f"(or pip install 'rnnbench[{name}]')"
        )
