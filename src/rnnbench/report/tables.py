"""The report's tables as pandas DataFrames, one row per (task, cell); numbers stay numbers here (the
writers format them) so that the CSV files hold full precision.

* ``jozefowicz``: the test value of the trial with the best validation headline, beside the published
  value, the difference and the best cell of each task (Jozefowicz et al. 2015, their search tables);
  for the synthetic tasks the ceilings computed from the generator at the runs' task options
  (``rnnbench.tasks.ceilings``: the oracle and the memoryless predictor's accuracy).
* ``greff``: mean, median over all complete trials and over the best 10% by validation; the
  validation-selected best; Welch's t-test of both samples against a baseline cell (Greff et al. 2017).
* ``run_facts``: sizes, trial counts by outcome, wall time, devices. ``trials`` counts those that
  started; ``killed`` ones (a worker stopped or lost) are queued again by the search, so their draw
  usually appears a second time.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from rnnbench.report import paper_results
from rnnbench.report.load import read_config
from rnnbench.report.paper_results import GREFF_CELLS
from rnnbench.report.stats import SIGNIFICANCE, best_by_validation, scored, top_fraction, welch
from rnnbench.tasks.ceilings import ceilings

JOZEFOWICZ_ORDER = ("tanh", "lstm", "lstm_f", "lstm_i", "lstm_o", "lstm_b", "gru", "mut1", "mut2", "mut3")
CELL_ORDER = JOZEFOWICZ_ORDER + GREFF_CELLS + ("gf_tanh", "gf_gru", "gf_lstm")
TASK_ORDER = ("arithmetic", "xml", "ptb", "ptb_char", "copy", "sort", "classify", "jsb", "nottingham")


def order(names, known) -> list:
    """Papers' order first, then the rest alphabetically."""
    names = set(names)
    return [n for n in known if n in names] + sorted(names - set(known))


def cells_of(frame: pd.DataFrame) -> list[str]:
    return order(frame["cell"], CELL_ORDER)


def tasks_of(frame: pd.DataFrame) -> list[str]:
    return order(frame["task"], TASK_ORDER)


def groups(frame: pd.DataFrame):
    """(task, cell, all trials of the pair) in the papers' order; pairs without trials are left out."""
    for task in tasks_of(frame):
        in_task = frame[frame["task"] == task]
        for cell in cells_of(in_task):
            yield task, cell, in_task[in_task["cell"] == cell]


def task_ceilings(task: str, metric: str, trials: pd.DataFrame) -> dict:
    """The ceilings of ``metric`` on a synthetic task, for the task options of the first of ``trials``
    whose run folder is at hand; {} for other tasks and metrics."""
    for run_dir in trials["run_dir"].dropna():
        config = read_config(Path(run_dir) / "config.yaml")
        if config.get("task"):
            found = ceilings(task, config["task"])
            return {k: found[k] for k in ("oracle", "memoryless") if metric == "acc" and k in found}
    return {}


def jozefowicz(frame: pd.DataFrame, min_trials: int) -> pd.DataFrame:
    rows = []
    for task, cell, trials in groups(frame):
        good = scored(trials)
        best = best_by_validation(good) if len(good) else None
        metric = trials["metric"].iloc[0]
        paper = paper_results.lookup(task, cell, metric, "search") or paper_results.lookup(
            task, cell, metric, "best 10%"
        )
        value = float(best["test"]) if best is not None else math.nan
        ceiling = task_ceilings(task, metric, trials)
        rows.append(
            {
                "task": task,
                "cell": cell,
                "metric": metric,
                "higher_is_better": bool(trials["higher_is_better"].iloc[0]),
                "value": value,
                "valid": float(best["valid"]) if best is not None else math.nan,
                "trial": best["trial"] if best is not None else None,
                "n_complete": len(good),
                "few_trials": len(good) < min_trials,
                "paper": paper.text if paper else None,
                "paper_low": paper.low if paper else math.nan,
                "paper_high": paper.high if paper else math.nan,
                "paper_setting": paper.setting if paper else None,
                "paper_source": paper.source if paper else None,
                "difference": paper.difference(value) if paper and not math.isnan(value) else math.nan,
                "oracle": ceiling.get("oracle", math.nan),
                "memoryless": ceiling.get("memoryless", math.nan),
            }
        )
    table = pd.DataFrame(rows)
    table["best"] = False
    for _, part in table.groupby("task", sort=False):
        values = part["value"].dropna()
        if len(values):
            target = values.max() if part["higher_is_better"].iloc[0] else values.min()
            table.loc[part.index, "best"] = part["value"] == target
    return table


def greff(frame: pd.DataFrame, baseline: str, min_trials: int, fraction: float) -> pd.DataFrame:
    rows = []
    for task, cell, trials in groups(frame):
        good = scored(trials)
        top = top_fraction(good, fraction) if len(good) else good
        base = scored(frame[(frame["task"] == task) & (frame["cell"] == baseline)])
        base_top = top_fraction(base, fraction) if len(base) else base
        compare = cell != baseline and len(base) > 0
        t_all, p_all = welch(good["test"], base["test"]) if compare else (math.nan, math.nan)
        t_top, p_top = welch(top["test"], base_top["test"]) if compare else (math.nan, math.nan)
        metric = trials["metric"].iloc[0]
        paper_top = paper_results.lookup(task, cell, metric, "best 10%")
        paper_all = paper_results.lookup(task, cell, metric, "all trials")
        rows.append(
            {
                "task": task,
                "cell": cell,
                "metric": metric,
                "higher_is_better": bool(trials["higher_is_better"].iloc[0]),
                "n_complete": len(good),
                "few_trials": len(good) < min_trials,
                "mean_all": good["test"].mean(),
                "median_all": good["test"].median(),
                "n_top": len(top),
                "mean_top": top["test"].mean(),
                "median_top": top["test"].median(),
                "best": float(best_by_validation(good)["test"]) if len(good) else math.nan,
                "baseline": baseline,
                "t_all": t_all,
                "p_all": p_all,
                "significant_all": bool(p_all < SIGNIFICANCE),
                "t_top": t_top,
                "p_top": p_top,
                "significant_top": bool(p_top < SIGNIFICANCE),
                "paper_top": paper_top.text if paper_top else None,
                "paper_all": paper_all.text if paper_all else None,
            }
        )
    return pd.DataFrame(rows)


def run_facts(frame: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for task, cell, trials in groups(frame):
        state, outcome = trials["state"], trials["outcome"]
        ran = trials["wall_s"].dropna()
        rows.append(
            {
                "task": task,
                "cell": cell,
                "trials": int((state != "waiting").sum()),
                "complete": int((state == "complete").sum()),
                "pruned": int((state == "pruned").sum()),
                "diverged": int((outcome == "diverged").sum()),
                "failed": int(outcome.isin(["rejected", "error"]).sum()),
                "killed": int((outcome == "killed").sum()),
                "incomplete": int((state == "incomplete").sum()),
                "waiting": int((state == "waiting").sum()),
                "params_min": trials["num_params"].min(),
                "params_max": trials["num_params"].max(),
                "hidden_min": trials["hidden_size"].min(),
                "hidden_max": trials["hidden_size"].max(),
                "layers": ", ".join(str(int(v)) for v in sorted(trials["num_layers"].dropna().unique())),
                "wall_s_median": ran.median() if len(ran) else math.nan,
                "wall_s_total": ran.sum(),
                "device": ", ".join(sorted({str(d) for d in trials["device"].dropna()})),
            }
        )
    return pd.DataFrame(rows)
