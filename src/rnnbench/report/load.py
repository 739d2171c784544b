"""Runs and studies -> one table of trials (one row per trial), the input of every table and figure.

An input is a results folder (every run directory below it, and the Optuna studies of any ``*.db`` or
journal file at its top), a study storage (``sqlite:///...``, a ``.db`` file, a journal ``.log`` /
``.jsonl`` file, or any SQLAlchemy URL), or several of these. A run that a study trial points to is
read once, as that trial. Task and cell come from the run's summary or the study's user attributes,
never from names. Inputs are only read: a storage that is not already an Optuna storage is refused
before Optuna could create tables in it.

Columns of ``Trials.frame``:

* ``source``, ``study``, ``search``, ``trial``: where the trial comes from (``study`` is None for
  plain runs);
* ``task``, ``cell``: from the summary or the study's user attributes;
* ``state``: ``complete``, ``pruned``, ``failed``, ``incomplete`` (running, interrupted) or ``waiting``
  (a queued draw that has not started);
* ``outcome``: ``completed``, ``pruned``, ``diverged``, ``rejected``, ``error``, ``killed`` (a worker
  stopped or lost; the search queues the draw again), ``interrupted``, ``running`` or ``waiting``;
* ``headline``, ``headline_higher``: the validation metric that selects (e.g. ``valid/ppl``), its direction;
* ``valid``: the best validation headline value, the selection key;
* ``metric``, ``metric_label``, ``higher_is_better``: the metric shown (``rnnbench.report.units``);
* ``test``: the test value in the shown metric (NaN unless complete), of the weights ``test_weights``
  names: ``best`` (the best validation evaluation's) or ``last`` (those the run ended with);
* ``num_params``, ``hidden_size``, ``num_layers``, ``wall_s``, ``steps``, ``device``, ``run_dir``;
* ``params``: dict of hyperparameter name -> value (Optuna's names, or config keys for plain runs).
"""

from __future__ import annotations

import json
import logging
import math
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import yaml

from rnnbench.errors import ConfigError
from rnnbench.outcome import run_outcome, trial_outcome
from rnnbench.report.units import read_value, report_metric

# Config keys a search varies (the contract's Optuna parameter names); plain runs report those that differ.
SEARCH_KEYS = (
    "cell.hidden_size",
    "cell.num_layers",
    "trainer.lr",
    "trainer.momentum",
    "trainer.clip_norm",
    "model.input_noise_std",
    "model.init_scale",
    "model.param_budget",
)
JOURNAL_SUFFIXES = (".log", ".jsonl")
SQLITE_SUFFIXES = (".db", ".sqlite", ".sqlite3")


class ReportError(ConfigError):
    """An input that cannot be reported on: a one-line error."""


@dataclass
class Trials:
    frame: pd.DataFrame
    scales: dict[str, str] = field(default_factory=dict)  # param -> "log" | "linear" | "categorical"
    notes: list[str] = field(default_factory=list)  # inputs skipped, with the reason


def load(inputs: list[str]) -> Trials:
    """Every trial of ``inputs``; a storage or run directory reached twice (a folder and its own
    studies.db, nested folders) is read once."""
    rows, scales, notes, folders, storages = [], {}, [], [], set()

    def add_storage(target: str, shown: str, folder: Path | None = None) -> None:
        if storage_key(target) in storages:
            return
        storages.add(storage_key(target))
        found = read_storage(target, shown, scales, notes)
        rows.extend(relocate(found, folder) if folder else found)

    for text in inputs:
        kind, target = classify(text)
        if kind == "folder":
            folders.append(target)
            for storage in storages_in(target):
                add_storage(storage, text, Path(target))
        else:
            add_storage(target, text)
    seen = {str(Path(r["run_dir"]).resolve()) for r in rows if r.get("run_dir")}
    study_names = {r["study"] for r in rows}
    for folder in folders:
        rows += read_run_folders(folder, seen, study_names, notes)
    if not rows:
        raise ReportError(
            f"no trials or runs found in {', '.join(inputs)}" + (f" ({notes[0]})" if notes else "")
        )
    frame = pd.DataFrame(rows)
    for name in {name for params in frame["params"] for name in params}:
        scales.setdefault(name, infer_scale([p[name] for p in frame["params"] if name in p]))
    return Trials(frame.reset_index(drop=True), scales, notes)


def classify(text: str) -> tuple[str, str]:
    """("folder", path) or ("storage", URL or journal path); anything else is a one-line error."""
    if "://" in text:
        if text.startswith("sqlite:///"):
            check_sqlite(Path(text[len("sqlite:///") :]), text)
        return "storage", text
    path = Path(text)
    if path.is_dir():
        return "folder", str(path)
    if not path.exists():
        raise ReportError(f"{text} does not exist; give a results folder or a study storage")
    if path.suffix in SQLITE_SUFFIXES:
        check_sqlite(path, text)
        return "storage", f"sqlite:///{path.resolve()}"
    if path.suffix in JOURNAL_SUFFIXES:
        check_journal(path, text)
        return "storage", str(path)
    raise ReportError(
        f"{text} is not a results folder or a study storage (sqlite:///..., a .db file, "
        "a journal .log/.jsonl file, or an SQLAlchemy URL)"
    )


def storage_key(target: str) -> str:
    if target.startswith("sqlite:///"):
        return "sqlite:///" + str(Path(target[len("sqlite:///") :]).resolve())
    return target if "://" in target else str(Path(target).resolve())


def check_sqlite(path: Path, text: str) -> None:
    if not path.is_file():
        raise ReportError(f"{text}: no such file")
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
            tables = {row[0] for row in db.execute("select name from sqlite_master where type='table'")}
    except sqlite3.Error as error:
        raise ReportError(f"{text} is not a readable SQLite file ({error})") from None
    if "studies" not in tables:
        raise ReportError(f"{text} is not an Optuna study storage (it has no studies table)")


def check_journal(path: Path, text: str) -> None:
    if not is_journal(path):
        raise ReportError(f"{text} is not an Optuna journal file")


def is_journal(path: Path) -> bool:
    try:
        with path.open("rb") as f:
            first = json.loads(f.readline())
    except (OSError, ValueError):
        return False
    return isinstance(first, dict) and "op_code" in first


def storages_in(folder: str) -> list[str]:
    found = []
    for path in sorted(Path(folder).iterdir()):
        if path.is_file() and path.suffix in SQLITE_SUFFIXES:
            check_sqlite(path, str(path))
            found.append(f"sqlite:///{path.resolve()}")
        elif path.is_file() and path.suffix in JOURNAL_SUFFIXES and is_journal(path):
            found.append(str(path))
    return found


def open_storage(target: str):
    import optuna

    optuna.logging.set_verbosity(logging.WARNING)
    if "://" not in target:
        from optuna.storages import JournalStorage
        from optuna.storages.journal import JournalFileBackend

        return JournalStorage(JournalFileBackend(target))
    return optuna.storages.RDBStorage(target)


def read_storage(target: str, shown: str, scales: dict, notes: list) -> list[dict]:
    import optuna

    try:
        storage = open_storage(target)
        names = optuna.get_all_study_names(storage)
        studies = [optuna.load_study(study_name=name, storage=storage) for name in names]
    except Exception as error:  # a wrong URL, a server that does not answer, a foreign database
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0][:200]
        raise ReportError(f"{shown} cannot be read as an Optuna storage ({reason})") from None
    rows = []
    for study in studies:
        attrs = study.user_attrs
        if not {"task", "cell"} <= attrs.keys():
            notes.append(f"study {study.study_name} in {shown} skipped: it has no task/cell user attributes")
            continue
        for trial in study.get_trials(deepcopy=False):
            rows.append(study_trial_row(study, trial, shown))
            for name, dist in trial.distributions.items():
                scales.setdefault(name, distribution_scale(dist))
    return rows


def distribution_scale(dist) -> str:
    if hasattr(dist, "log"):
        return "log" if dist.log else "linear"
    return "categorical"


def study_trial_row(study, trial, source: str) -> dict:
    from optuna.trial import TrialState

    attrs, user = study.user_attrs, trial.user_attrs
    headline = attrs.get("headline") or user.get("headline") or ""
    higher = bool(attrs.get("higher_is_better", False))
    metric = report_metric(attrs["task"], headline, higher)
    state = {
        TrialState.COMPLETE: "complete",
        TrialState.PRUNED: "pruned",
        TrialState.FAIL: "failed",
        TrialState.WAITING: "waiting",
    }.get(trial.state, "incomplete")
    outcome = trial_outcome(trial.state.name, user).value
    valid = (
        trial.value
        if state == "complete" and trial.value is not None
        else user.get("valid", {}).get(headline)
    )
    wall = user.get("wall_s")
    if wall is None and trial.datetime_start and trial.datetime_complete:
        wall = (trial.datetime_complete - trial.datetime_start).total_seconds()
    return {
        "source": source,
        "study": study.study_name,
        "search": attrs.get("search"),
        "trial": f"{study.study_name}#{trial.number}",
        "task": attrs["task"],
        "cell": attrs["cell"],
        "state": state,
        "outcome": outcome,
        "headline": headline,
        "headline_higher": higher,
        "valid": number(valid),
        "metric": metric.name,
        "metric_label": metric.label,
        "higher_is_better": metric.higher_is_better,
        "test": read_value(user.get("test") or {}, "test", metric) if state == "complete" else math.nan,
        **sizes(user),
        "wall_s": number(wall),
        "run_dir": user.get("run_dir"),
        "params": dict(trial.params),
    }


def relocate(rows: list[dict], folder: Path) -> list[dict]:
    """A results folder copied from another machine: a trial's run_dir is found again under
    ``<folder>/studies/<study>/`` by its last name."""
    for row in rows:
        if row["run_dir"] and not Path(row["run_dir"]).is_dir():
            moved = folder / "studies" / row["study"] / Path(row["run_dir"]).name
            if moved.is_dir():
                row["run_dir"] = str(moved)
    return rows


def read_run_folders(folder: str, seen: set[str], studies: set[str], notes: list) -> list[dict]:
    """Every run directory below ``folder`` (a directory holding summary.json or metrics.jsonl) that is
    not a study's trial (those are read from the study) and not ``seen`` before; adds those it reads."""
    rows = []
    run_dirs = sorted(
        {p.parent for name in ("summary.json", "metrics.jsonl") for p in Path(folder).rglob(name)}
    )
    for run_dir in run_dirs:
        if str(run_dir.resolve()) in seen or (
            run_dir.parent.parent.name == "studies" and run_dir.parent.name in studies
        ):
            continue
        seen.add(str(run_dir.resolve()))
        try:
            rows.append(run_row(run_dir, folder))
        except ReportError as problem:
            notes.append(str(problem))
    return rows


def run_row(run_dir: Path, source: str) -> dict:
    summary = read_json(run_dir / "summary.json") if (run_dir / "summary.json").exists() else None
    config = read_config(run_dir / "config.yaml")
    if summary is None:  # still running: no summary yet
        summary = {"status": "running", "cell": dig(config, "cell.name"), "task": dig(config, "task.name")}
    if not summary.get("task") or not summary.get("cell"):
        raise ReportError(f"{run_dir} skipped: its summary and config name no task or cell")
    status = summary.get("status")
    outcome = run_outcome(status).value
    state = {"completed": "complete", "pruned": "pruned", "diverged": "failed"}.get(outcome, "incomplete")
    headline = summary.get("headline") or ""
    higher = bool(summary.get("higher_is_better", False))
    metric = report_metric(summary["task"], headline, higher)
    params = {key: dig(config, key) for key in SEARCH_KEYS if dig(config, key) is not None}
    return {
        "source": source,
        "study": None,
        "search": None,
        "trial": str(run_dir.relative_to(source)) if run_dir.is_relative_to(source) else str(run_dir),
        "task": summary["task"],
        "cell": summary["cell"],
        "state": state,
        "outcome": outcome,
        "headline": headline,
        "headline_higher": higher,
        "valid": number((summary.get("best") or {}).get(headline)),
        "metric": metric.name,
        "metric_label": metric.label,
        "higher_is_better": metric.higher_is_better,
        "test": read_value(summary.get("test") or {}, "test", metric) if state == "complete" else math.nan,
        **sizes(summary),
        "wall_s": number(summary.get("wall_s")),
        "run_dir": str(run_dir),
        "params": params,
    }


def read_json(path: Path) -> dict:
    try:
        value = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise ReportError(f"{path} skipped: not readable JSON ({str(error).splitlines()[0]})") from None
    if not isinstance(value, dict):
        raise ReportError(f"{path} skipped: not an rnnbench summary")
    return value


def read_config(path: Path) -> dict:
    try:
        config = yaml.safe_load(path.read_text()) if path.exists() else {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return {}
    return config if isinstance(config, dict) else {}


def dig(config: dict, dotted: str):
    value = config
    for part in dotted.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def sizes(facts: dict) -> dict:
    """The model's size and the run's length and device, from a summary or a trial's attributes (the
    search stores them under the same names)."""
    named = {key: number(facts.get(key)) for key in ("num_params", "hidden_size", "num_layers", "steps")}
    return {**named, "device": facts.get("device"), "test_weights": facts.get("test_weights") or "best"}


def number(value) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return math.nan
    return value if math.isfinite(value) else math.nan


def infer_scale(values: list) -> str:
    """Plain runs carry no distributions: log when positive numbers span a factor of 10 or more."""
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        return "categorical"
    positive = [v for v in values if v > 0]
    if len(positive) == len(values) and positive and max(positive) / min(positive) >= 10:
        return "log"
    return "linear"


def valid_lines(run_dir) -> list[dict]:
    """The validation lines of a run's metrics.jsonl; [] when the file is missing. A line cut short by
    a kill is skipped."""
    path = Path(run_dir) / "metrics.jsonl" if run_dir else None
    if path is None or not path.is_file():
        return []
    lines = []
    for text in path.read_text(errors="replace").splitlines():
        try:
            record = json.loads(text)
        except ValueError:
            continue
        if isinstance(record, dict) and record.get("split") == "valid":
            lines.append(record)
    return lines


def read_curve(run_dir: str | None, headline: str) -> pd.DataFrame:
    """The validation lines of a run's metrics.jsonl: step, wall_s, value (of ``headline``); empty when
    the file is missing."""
    columns = ["step", "wall_s", "value"]
    records = [(r.get("step"), r.get("wall_s"), r.get(headline)) for r in valid_lines(run_dir)]
    frame = pd.DataFrame(records, columns=columns).astype(float)
    return frame.dropna(subset=["step"])
