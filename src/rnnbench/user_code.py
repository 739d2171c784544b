"""Classes that users name in configs (``_target_: package.module.Name``, for cells and tasks): imported
with a one-line error when the name cannot be, never with a traceback from inside importlib."""

from __future__ import annotations

import importlib

from rnnbench.errors import ConfigError


def import_target(key: str, path: str):
    module_name, _, attribute = str(path).rpartition(".")
    try:
        return getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError, ValueError) as error:
        raise ConfigError(
            f"{key}={path!r} cannot be imported ({error}); give package.module.Name and put its folder "
            f"on PYTHONPATH"
        ) from None
