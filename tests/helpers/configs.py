"""A config composed from the real configs, as the command line composes it."""

from __future__ import annotations

from hydra import compose, initialize_config_module


def compose_config(*overrides):
    with initialize_config_module(config_module="rnnbench.configs", version_base="1.3"):
        return compose(config_name="config", overrides=list(overrides))
