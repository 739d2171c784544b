"""How ours is measured for the fidelity table (``rnnbench.report.fidelity.table``): what a measurement
function returns (``Measured``), how numbers are printed, and the helpers the measurement functions of
``searches`` (a search's trials) and ``runs`` (plain runs) share.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import pandas as pd

from rnnbench.report.fidelity.folder import Folder
from rnnbench.report.load import dig
from rnnbench.tasks.ceilings import ceilings

DIGITS = {"acc": 4, "mean_p": 4, "ppl": 1, "nll": 2, "bpc": 2}


@dataclass
class Measured:
    """Ours for one claim, as a measurement function finds it in a folder."""

    value: float | None = None  # compared with the paper's number or range
    span: tuple[float, float] | None = None  # ours as a range (all trials), compared end to end
    shown: str = ""  # ours as printed
    agrees: bool | None = None  # a finding: whether ours agrees with it
    differs: list[str] = field(default_factory=list)  # protocol differences: not comparable
    missing: str | None = None  # why there is no data: not run
    notes: list[str] = field(default_factory=list)  # measured facts shown beside


def plural(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def fmt(value: float, metric: str = "") -> str:
    if value is None or not math.isfinite(value):
        return "–"
    return f"{value:.{DIGITS.get(metric, 4)}f}"


def fmt_p(p: float) -> str:
    return "–" if not math.isfinite(p) else f"{p:.1e}" if p < 0.001 else f"{p:.3f}"


def of(frame: pd.DataFrame | None, task: str, cell: str | None = None) -> pd.DataFrame:
    if frame is None:
        return pd.DataFrame()
    chosen = frame["task"] == task
    if cell is not None:
        chosen &= frame["cell"] == cell
    return frame[chosen]


def protocol(folder: Folder, trials: pd.DataFrame, checks) -> list[str]:
    """The checks that some trial's config.yaml fails: "key=values (paper: ...)"."""
    found = []
    for key, ok, paper in checks:
        values = {dig(folder.config(run_dir), key) for run_dir in trials["run_dir"].dropna()}
        wrong = sorted((v for v in values if not passes(ok, v)), key=repr)
        if wrong:
            found.append(f"{key}={', '.join(map(str, wrong))} (paper: {paper})")
    return found


def passes(ok, value) -> bool:
    try:
        return bool(ok(value))
    except TypeError:  # a string where a number belongs
        return False


def settings(folder: Folder, run_dir, wanted: dict) -> list[str]:
    config = folder.config(run_dir)
    found = []
    for key, value in wanted.items():
        ours = dig(config, key)
        try:
            same = math.isclose(float(ours), float(value), rel_tol=1e-6)
        except (TypeError, ValueError):
            same = False
        if not same:
            found.append(f"{key}={ours} (paper: {value})")
    return found


def progress(trials: pd.DataFrame) -> str:
    counts = trials["state"].value_counts()
    others = [f"{int(counts[s])} {s}" for s in ("incomplete", "waiting", "pruned", "failed") if s in counts]
    return f"{int(counts.get('complete', 0))} complete" + (f", {', '.join(others)}" if others else "")


def no_folder(folder: Folder) -> Measured | None:
    if not folder.exists:
        return Measured(missing=f"no folder {folder.name}/")
    if folder.trials is None:
        return Measured(missing=f"{folder.name}/data/ holds no run files")
    return None


def ceilings_note(task: str, options: dict) -> str | None:
    """For XML and arithmetic rows: "oracle X, memoryless Y" from ``rnnbench.tasks.ceilings`` (the
    accuracy bounds of the task's generator: knowing the open-tag stack and the generator's
    probabilities; remembering nothing)."""
    options = {k: v for k, v in (options or {}).items() if k != "name"}
    try:
        values = ceilings(task, options)
        parts = [f"{name} {float(values[name]):.4f}" for name in ("oracle", "memoryless") if name in values]
    except Exception as error:  # a ceiling that cannot be computed is a note, not a failed table
        return f"ceilings not computed ({type(error).__name__}: {(str(error).splitlines() or [''])[0][:80]})"
    return ", ".join(parts) or None


def number(value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan
