"""User errors: reported as one line naming the bad value and the valid choices, never a traceback."""

from __future__ import annotations


class ConfigError(ValueError):
    """A bad value in the configuration or the command line."""


def check_choice(key: str, value, choices) -> None:
    if value not in choices:
        raise ConfigError(f"{key}={value!r} is not valid; choose one of: {', '.join(map(str, choices))}")


def check_positive(key: str, value, allow_zero: bool = False, integer: bool = False) -> None:
    number = isinstance(value, int | float) and not isinstance(value, bool)
    ok = number and (value >= 0 if allow_zero else value > 0) and (not integer or isinstance(value, int))
    if not ok:
        bound = ">= 0" if allow_zero else "> 0"
        kind = "an integer" if integer else "a number"
        raise ConfigError(f"{key}={value!r} is not valid; it must be {kind} {bound}")
