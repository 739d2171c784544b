"""Resolving the ``device`` config key: auto | cpu | cuda | cuda:N."""

from __future__ import annotations

import re

import torch

from rnnbench.errors import ConfigError


def resolve_device(name: str) -> torch.device:
    name = str(name)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    match = re.fullmatch(r"cuda(?::(\d+))?", name)
    if not match:
        raise ConfigError(f"device={name!r} is not valid; choose one of: auto, cpu, cuda, cuda:N")
    if not torch.cuda.is_available():
        raise ConfigError(f"device={name!r} but CUDA is not available here; use device=cpu or device=auto")
    index = int(match.group(1) or 0)
    if index >= torch.cuda.device_count():
        raise ConfigError(
            f"device={name!r} but only {torch.cuda.device_count()} CUDA device(s) exist "
            f"(cuda:0..cuda:{torch.cuda.device_count() - 1})"
        )
    return torch.device("cuda", index)
