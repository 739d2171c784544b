"""A search space written in YAML, as Optuna distributions, and the draws a study trains.

The space mirrors the config it changes: ``search.space.trainer.lr: {low: 1e-6, high: 1e-2, log: true}``
searches ``trainer.lr``. A leaf is one of

* ``{low, high}`` with optional ``log: true`` (log-uniform) and ``int: true`` (integers);
* ``{choices: [...]}`` (one of the listed values, uniformly; Jozefowicz et al.'s grids);

and ``one_minus: true`` searches ``1 - value`` instead of the key (Greff et al.'s momentum, log-uniform
in 1 - momentum); such a parameter is named ``1-<key>`` in the study. A dimension set to ``null`` is not
searched (``debug=fast`` so pins the model's size). Because leaves are ordinary
config nodes, the command line edits a space: ``search.space.cell.hidden_size.high=100``,
``~search.space.model.input_noise_std`` (drop a dimension), ``+search.space.model.dropout={low:0,high:0.5}``.

``draws(space, n, seed)`` is the list of the first ``n`` draws of Optuna's ``RandomSampler`` seeded with
``seed``: the same seed gives the same draws, whatever the number of workers, restarts or cells, which
is what makes a paired design (every cell trains the same draws) possible.
"""

from __future__ import annotations

import math

import optuna
from omegaconf import DictConfig, OmegaConf

from rnnbench.errors import ConfigError

SPEC_KEYS = {"low", "high", "log", "int", "choices", "one_minus"}


def parse_space(space) -> dict[str, optuna.distributions.BaseDistribution]:
    """``{parameter name: distribution}`` of a ``search.space`` node; a typo is a one-line error."""
    plain = OmegaConf.to_container(space, resolve=True) if isinstance(space, DictConfig) else space
    found: dict[str, optuna.distributions.BaseDistribution] = {}
    walk(plain or {}, "", found)
    return found


def walk(node, prefix: str, found: dict) -> None:
    if node is None and prefix:  # a dimension switched off
        return
    if not isinstance(node, dict):
        raise ConfigError(
            f"search.space.{prefix}={node!r} is not valid; a dimension is "
            "{low: .., high: .. [, log: true, int: true]} or {choices: [..]}"
        )
    if node.keys() & SPEC_KEYS or any(
        isinstance(v, list) for v in node.values()
    ):  # a list: misspelled choices
        name, distribution = leaf(prefix, node)
        found[name] = distribution
        return
    for key, child in node.items():
        walk(child, f"{prefix}.{key}" if prefix else str(key), found)


def leaf(key: str, spec: dict) -> tuple[str, optuna.distributions.BaseDistribution]:
    where = f"search.space.{key}"
    extra = set(spec) - SPEC_KEYS
    if extra:
        raise ConfigError(
            f"{where}.{sorted(extra)[0]} is not a search-space key; valid keys: "
            f"{', '.join(sorted(SPEC_KEYS))}"
        )
    name = f"1-{key}" if spec.get("one_minus") else key
    if not spec.keys() & {"low", "high", "choices"}:
        raise ConfigError(
            f"{where} is not valid; a dimension is "
            "{low: .., high: .. [, log: true, int: true]} or {choices: [..]}"
        )
    if "choices" in spec:
        choices = spec["choices"]
        if not isinstance(choices, list) or not choices or set(spec) - {"choices", "one_minus"}:
            raise ConfigError(f"{where}: choices must be a non-empty list, without low/high/log/int")
        if any(not isinstance(c, bool | int | float | str) and c is not None for c in choices):
            raise ConfigError(f"{where}: choices must be plain values (numbers, strings, true/false, null)")
        return name, optuna.distributions.CategoricalDistribution(choices)
    low, high, log, integer = (
        spec.get("low"),
        spec.get("high"),
        spec.get("log", False),
        spec.get("int", False),
    )
    numbers = all(
        isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in (low, high)
    )
    if not numbers or low > high:
        raise ConfigError(
            f"{where}: low={low!r}, high={high!r} is not valid; both must be numbers, low <= high"
        )
    if not isinstance(log, bool) or not isinstance(integer, bool):
        raise ConfigError(f"{where}: log and int must be true or false")
    if log and low <= 0:
        raise ConfigError(f"{where}: low={low!r} is not valid with log: true; it must be > 0")
    if integer:
        if int(low) != low or int(high) != high:
            raise ConfigError(f"{where}: low and high must be integers with int: true")
        return name, optuna.distributions.IntDistribution(int(low), int(high), log=log)
    return name, optuna.distributions.FloatDistribution(float(low), float(high), log=log)


def draws(distributions: dict, n: int, seed: int) -> list[dict]:
    """The first ``n`` draws of a seeded ``RandomSampler`` over the space, in order."""
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    found = []
    for _ in range(n):
        trial = study.ask()
        found.append({name: suggest(trial, name, dist) for name, dist in distributions.items()})
        study.tell(trial, 0.0)
    return found


def suggest(trial: optuna.Trial, name: str, dist: optuna.distributions.BaseDistribution):
    """The trial's value of one dimension (a queued trial's fixed value; its distribution is recorded)."""
    if isinstance(dist, optuna.distributions.CategoricalDistribution):
        return trial.suggest_categorical(name, dist.choices)
    if isinstance(dist, optuna.distributions.IntDistribution):
        return trial.suggest_int(name, dist.low, dist.high, log=dist.log)
    return trial.suggest_float(name, dist.low, dist.high, log=dist.log)


def config_values(params: dict) -> dict:
    """``{dotted config key: value}`` of a draw (``1-<key>`` parameters become ``<key> = 1 - value``)."""
    values = {}
    for name, value in params.items():
        if name.startswith("1-"):
            values[name[2:]] = 1.0 - value
        else:
            values[name] = value
    return values
