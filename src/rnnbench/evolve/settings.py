"""The ``evolve`` config: what the search compares, how long it runs, and its stages."""

from __future__ import annotations

from dataclasses import dataclass

from omegaconf import DictConfig, OmegaConf

from rnnbench.cells.genome import NAMED_GENOMES
from rnnbench.errors import ConfigError

KEYS = {
    "name",
    "start",
    "baseline",
    "score",
    "list_size",
    "draws",
    "memorization",
    "tasks",
    "task_args",
    "drop_below",
    "reevaluate",
    "candidates",
    "seed",
}


@dataclass(frozen=True)
class Settings:
    name: str
    start: tuple[str, ...]  # genome names or texts the list starts from
    baseline: str  # fitness = min over tasks of best(candidate) / best(baseline)
    score: tuple[str, ...]  # other built-in genomes scored by the same procedure, not listed
    list_size: int
    draws: int
    memorization_task: str
    memorization_draws: int
    memorization_pass: float
    tasks: tuple[str, ...]
    task_args: dict[str, tuple[str, ...]]
    drop_below: float
    reevaluate: float
    candidates: int
    seed: int


def read_settings(cfg: DictConfig) -> Settings:
    e = OmegaConf.to_container(cfg.evolve, resolve=True)
    unknown = set(e) - KEYS
    if unknown:
        raise ConfigError(
            f"evolve.{sorted(unknown)[0]} is not a config key; valid keys: {', '.join(sorted(KEYS))}"
        )
    memorization = e["memorization"] or {}
    settings = Settings(
        name=str(e["name"]),
        start=tuple(e["start"]),
        baseline=str(e["baseline"]),
        score=tuple(e["score"] or ()),
        list_size=int(e["list_size"]),
        draws=int(e["draws"]),
        memorization_task=str(memorization.get("task", "copy")),
        memorization_draws=int(memorization.get("draws", 1)),
        memorization_pass=float(memorization.get("pass", 0.95)),
        tasks=tuple(e["tasks"]),
        task_args={k: tuple(v) for k, v in (e["task_args"] or {}).items()},
        drop_below=float(e["drop_below"]),
        reevaluate=float(e["reevaluate"]),
        candidates=int(e["candidates"]),
        seed=int(e["seed"]),
    )
    if settings.baseline not in settings.start:
        raise ConfigError(
            f"evolve.baseline={settings.baseline} must be one of evolve.start ({', '.join(settings.start)})"
        )
    for key in ("list_size", "draws", "memorization_draws"):
        if getattr(settings, key) < 1:
            raise ConfigError(
                f"evolve.{key.replace('_', '.', 1) if key.startswith('memo') else key} must be >= 1"
            )
    if not 0 <= settings.reevaluate < 1 or not 0 <= settings.drop_below <= 1:
        raise ConfigError("evolve.reevaluate must be in [0, 1) and evolve.drop_below in [0, 1]")
    if not settings.tasks:
        raise ConfigError(
            "evolve.tasks is empty; give the tasks a candidate is scored on, e.g. [arithmetic, xml]"
        )
    return settings


def genome_text(entry: str) -> str:
    """A named genome's text (the built-in cells, and lstm_b), or the entry itself (a genome's text)."""
    return NAMED_GENOMES.get(entry, entry)
