"""One reproduction folder of the fidelity table (``rnnbench.report.fidelity.table``), read once.

A folder is ``<root>/<name>/`` with its run files under ``data/``: an Optuna search (``data/studies.db``
and ``data/studies/<study>/trial-*/``) or plain runs (``data/runs/<task>/<cell>/<name>/``), read by
``rnnbench.report.load``; beside them, ``fidelity.yaml`` holds the human findings (claim id ->
``{status, note}``), checked here.
"""

from __future__ import annotations

import json
from functools import cached_property
from pathlib import Path

import pandas as pd
import yaml

from rnnbench.report.load import ReportError, load

OVERRIDES = ("not comparable", "not reproduced")  # the statuses fidelity.yaml may ask for
HUMAN_FILE = "fidelity.yaml"


class Folder:
    """One reproduction folder, read once (trials, configs, fANOVA). ``claim_ids``: the claims declared
    for it, the only keys its fidelity.yaml may hold."""

    def __init__(self, root: Path, name: str, claim_ids=()):
        self.name, self.path, self.claim_ids = name, Path(root) / name, frozenset(claim_ids)
        self._configs: dict[str, dict] = {}
        self._importance: dict[int, pd.DataFrame] = {}

    @property
    def exists(self) -> bool:
        return self.path.is_dir()

    @cached_property
    def loaded(self):
        """``load``'s Trials of ``data/``, or None when there is no data."""
        data = self.path / "data"
        if not data.is_dir():
            return None
        try:
            return load([str(data)])
        except ReportError as problem:
            if "no trials or runs found" in str(problem):
                return None
            raise

    @property
    def trials(self) -> pd.DataFrame | None:
        return self.loaded.frame if self.loaded is not None else None

    def config(self, run_dir) -> dict:
        key = str(run_dir)
        if key not in self._configs:
            self._configs[key] = read_yaml(Path(run_dir) / "config.yaml") if run_dir else {}
        return self._configs[key]

    def summary(self, run_dir) -> dict:
        path = Path(run_dir) / "summary.json" if run_dir else None
        try:
            return json.loads(path.read_text()) if path and path.is_file() else {}
        except (OSError, ValueError):
            return {}

    @cached_property
    def human(self) -> dict:
        """``fidelity.yaml``: claim id -> {status, note}, checked."""
        path = self.path / HUMAN_FILE
        if not path.is_file():
            return {}
        try:
            entries = yaml.safe_load(path.read_text()) or {}
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
            raise ReportError(f"{path} is not readable YAML ({str(error).splitlines()[0]})") from None
        if not isinstance(entries, dict):
            raise ReportError(f"{path} must map claim ids to {{status, note}}")
        for key, entry in entries.items():
            if key not in self.claim_ids:
                raise ReportError(f"{path}: {key!r} is not a claim id of folder {self.name}")
            if not isinstance(entry, dict) or not set(entry) <= {"status", "note"}:
                raise ReportError(f"{path}: {key} must be a mapping with status and/or note")
            status = entry.get("status")
            if status is not None and status not in OVERRIDES:
                raise ReportError(
                    f"{path}: {key}: status {status!r} is not allowed (only {' or '.join(OVERRIDES)}; "
                    "reproduced comes from the numbers)"
                )
            if status is not None and not str(entry.get("note") or "").strip():
                raise ReportError(f"{path}: {key}: a status override needs a note saying why")
        return entries

    def importance(self, min_trials: int) -> pd.DataFrame:
        """fANOVA main effects of the JSB trials, variants with ``min_trials`` complete trials or more
        (computed once: the forests are slow)."""
        if min_trials not in self._importance:
            from rnnbench.report.importance import fanova

            frame = self.trials
            jsb = frame[frame["task"] == "jsb"] if frame is not None else pd.DataFrame()
            self._importance[min_trials] = (
                fanova(jsb, self.loaded.scales, min_trials=min_trials)
                if not jsb.empty
                else pd.DataFrame(columns=["task", "cell", "param", "importance", "n"])
            )
        return self._importance[min_trials]


def read_yaml(path: Path) -> dict:
    """A run's config.yaml (libyaml's safe loader where present: a search has hundreds); {} when absent."""
    try:
        config = yaml.load(path.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return {}
    return config if isinstance(config, dict) else {}
