"""Sizing a model by its parameter count (config ``model.param_budget``), as Jozefowicz et al. compare cells.

The budget counts EVERY trainable parameter of the model the task trains: embedding (or input
projection), all recurrent layers, readout. The hidden size per layer is the largest H whose model
has at most ``budget`` parameters, found by bisection on a count taken from the built model (built on
the ``meta`` device: shapes only, no memory), so the count is exact for every cell without a formula.
The number of layers (``cell.num_layers``) and the embedding width (``model.embed_size``, or H when
null) stay as configured.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from rnnbench.errors import ConfigError

SUFFIXES = {"k": 1_000, "m": 1_000_000}


def parse_budget(value) -> int:
    """An integer, or a string such as ``250K`` or ``1M``."""
    if isinstance(value, str):
        match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kKmM]?)\s*", value)
        if match:
            value = float(match.group(1)) * SUFFIXES.get(match.group(2).lower(), 1)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0 or value != int(value):
        raise ConfigError(
            f"model.param_budget={value!r} is not valid; give a positive integer such as 1000000 or 1M"
        )
    return int(value)


def configured_budget(model_cfg) -> int | None:
    """``model.param_budget`` as an integer, or None when the hidden size comes from ``cell.hidden_size``."""
    value = model_cfg.get("param_budget")
    return None if value is None else parse_budget(value)


def solve_hidden_size(count_at: Callable[[int], int], budget: int, what: str) -> int:
    """The largest hidden size H >= 1 with ``count_at(H) <= budget``; ``count_at`` must grow with H."""
    smallest = count_at(1)
    if smallest > budget:
        raise ConfigError(
            f"model.param_budget={budget} is too small: {what} has {smallest} parameters at hidden size 1"
        )
    low, high = 1, 2  # count_at(low) <= budget < count_at(high) once the doubling stops
    while count_at(high) <= budget:
        low, high = high, high * 2
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (mid, high) if count_at(mid) <= budget else (low, mid)
    return low
