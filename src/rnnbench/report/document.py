"""What the report says, in order: headings, paragraphs, tables formatted for reading, and figures.

The same blocks are written as Markdown and as HTML (``rnnbench.report.render``). Table cells are
strings here; ``**x**`` marks the best value of a column, ``*`` after a p-value marks p < 0.05 and
``†`` after a cell name marks fewer complete trials than ``--min-trials``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from rnnbench.outcome import Outcome
from rnnbench.report import paper_results
from rnnbench.report.figures import FLAG
from rnnbench.report.tables import tasks_of
from rnnbench.report.units import METRICS


@dataclass
class Heading:
    text: str
    level: int = 2


@dataclass
class Text:
    text: str


@dataclass
class Table:
    frame: pd.DataFrame  # strings, as shown
    csv: str | None = None  # the CSV file with the full numbers


@dataclass
class Image:
    stem: str  # <stem>.png and <stem>.svg in the output folder
    caption: str


SHORT_SOURCE = {
    paper_results.JOZEFOWICZ: "Jozefowicz 2015",
    paper_results.GREFF: "Greff 2017",
    paper_results.ZAREMBA: "Zaremba 2014",
    paper_results.CHUNG: "Chung 2015",
}


def fmt(value, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    return f"{value:.{digits}g}"


def fmt_p(p: float) -> str:
    if not math.isfinite(p):
        return "–"
    return f"{p:.2g} *" if p < 0.05 else f"{p:.2g}"


def fmt_span(low, high, digits: int = 4) -> str:
    if not math.isfinite(low):
        return "–"
    return fmt(low, digits) if low == high else f"{fmt(low, digits)}–{fmt(high, digits)}"


def text_or_dash(value) -> str:
    return value if isinstance(value, str) and value else "–"


def cell_name(row) -> str:
    return f"{row['cell']} {FLAG}" if row["few_trials"] else row["cell"]


def test_weights_text(frame: pd.DataFrame) -> str:
    """Which weights the test values are of: the best validation evaluation's, unless runs say
    ``trainer.test_weights=last`` (the weights they ended with)."""
    complete = frame[frame["state"] == "complete"]
    last = int((complete.get("test_weights", pd.Series(dtype=object)) == "last").sum())
    if last == 0:
        return "Test values are those of each run's best validation weights."
    if last == len(complete):
        return "Test values are those of the weights each run ended with (`trainer.test_weights=last`)."
    return (
        f"Test values are those of each run's best validation weights, except for {last} of the "
        f"{len(complete)} complete runs: the weights they ended with (`trainer.test_weights=last`)."
    )


def metric_label(metric: str) -> str:
    known = METRICS.get(metric)
    return known.label if known else metric


def jozefowicz_display(table: pd.DataFrame) -> pd.DataFrame:
    """Rows = cells, for each task: our value, the paper's value with its tag and source, the difference."""
    wide = {}
    for _, row in table.iterrows():
        line = wide.setdefault(row["cell"], {"cell": row["cell"]})
        if row["few_trials"]:
            line["cell"] = f"{row['cell']} {FLAG}"
        value = fmt(row["value"])
        line[f"{row['task']} ({row['metric']})"] = f"**{value}**" if row["best"] else value
        paper = row["paper"]
        paper = (
            f"{paper} {SHORT_SOURCE.get(row['paper_source'], '')}".strip() if isinstance(paper, str) else "–"
        )
        line[f"{row['task']} paper"] = paper
        line[f"{row['task']} Δ"] = fmt(row["difference"], 3)
        if not math.isnan(row.get("oracle", math.nan)):
            ceilings = f"oracle {fmt(row['oracle'])}, memoryless {fmt(row['memoryless'])}"
            line[f"{row['task']} ceilings"] = ceilings
    frame = pd.DataFrame(list(wide.values())).fillna("")
    return frame


def greff_display(table: pd.DataFrame, task: str) -> pd.DataFrame:
    part = table[table["task"] == task]
    rows = []
    for _, row in part.iterrows():
        rows.append(
            {
                "cell": cell_name(row),
                "n": str(row["n_complete"]),
                "mean (all)": fmt(row["mean_all"]),
                "median (all)": fmt(row["median_all"]),
                "p (all)": fmt_p(row["p_all"]),
                "n (top)": str(row["n_top"]),
                "mean (top)": fmt(row["mean_top"]),
                "median (top)": fmt(row["median_top"]),
                "p (top)": fmt_p(row["p_top"]),
                "best": fmt(row["best"]),
                "paper (top)": text_or_dash(row["paper_top"]),
                "paper (all)": text_or_dash(row["paper_all"]),
            }
        )
    frame = pd.DataFrame(rows)
    return frame.drop(columns=[c for c in ("paper (top)", "paper (all)") if (frame[c] == "–").all()])


def facts_display(facts: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for _, row in facts.iterrows():
        rows.append(
            {
                "task": row["task"],
                "cell": row["cell"],
                "trials": str(row["trials"]),
                "complete": str(row["complete"]),
                "pruned": str(row["pruned"]),
                "diverged": str(row["diverged"]),
                "failed": str(row["failed"]),
                "killed": str(row["killed"]),
                "incomplete": str(row["incomplete"]),
                "waiting": str(row["waiting"]),
                "parameters": fmt_span(row["params_min"], row["params_max"], 6),
                "hidden size": fmt_span(row["hidden_min"], row["hidden_max"], 6),
                "layers": row["layers"] or "–",
                "s per trial (median)": fmt(row["wall_s_median"], 3),
                "total h": fmt(row["wall_s_total"] / 3600, 3),
                "device": row["device"] or "–",
            }
        )
    return pd.DataFrame(rows)


def build(trials, jozefowicz, greff, facts, fanova, figures: set, options: dict) -> list:
    """The report's blocks; ``figures`` holds the stems of the figures that were drawn."""
    frame, tasks = trials.frame, tasks_of(trials.frame)
    baseline, min_trials, fraction = options["baseline"], options["min_trials"], options["fraction"]
    sources = sorted(frame["source"].unique())
    counts = frame["state"].value_counts()
    started = len(frame) - counts.get("waiting", 0)
    killed = int((frame["outcome"] == Outcome.KILLED.value).sum()) if "outcome" in frame else 0
    counts["failed"] = counts.get("failed", 0) - killed  # a killed worker's trial is retried, not a result
    counts["killed (retried)"] = killed
    blocks: list = [
        Heading("rnnbench report", 1),
        Text(
            f"{started} trials of {frame['cell'].nunique()} cells on {len(tasks)} tasks "
            f"({', '.join(tasks)}), read from {', '.join(sources)}. "
            + ", ".join(
                f"{counts.get(s, 0)} {s}"
                for s in ("complete", "pruned", "failed", "killed (retried)", "incomplete", "waiting")
            )
            + ". Statistics use complete trials only; the others are counted in the run facts."
        ),
        Text(
            f"{test_weights_text(frame)} Whenever trials are selected "
            "(the best trial, the best 10%), they are ranked by the validation headline metric, never by the "
            f"test value. {FLAG} marks a cell with fewer than {min_trials} complete trials: shown, "
            "but its numbers are not reliable yet."
        ),
    ]
    blocks += [Text(f"Skipped: {note}") for note in trials.notes]
    blocks += [
        Heading("Best cell per task (Jozefowicz et al. style)"),
        Text(
            "The test value of the trial with the best validation value, per cell and task, in the papers' "
            "units: "
            + "; ".join(f"{t}: {metric_label(frame[frame['task'] == t]['metric'].iloc[0])}" for t in tasks)
            + ". Bold: the best cell of the task. `paper`: the published value with its evidence tag "
            "([secondary]: a faithful public summary; [approx]: read off a figure) and source; "
            "Δ = ours − paper (for a range, the distance outside it; 0 inside)."
        ),
        Table(jozefowicz_display(jozefowicz), "table-jozefowicz.csv"),
        Text(sources_text(jozefowicz["paper_source"])),
    ]
    if "heatmap" in figures:
        blocks.append(
            Image("heatmap", "The table above as a heat map: each task's values divided by its best cell's.")
        )
    blocks += [
        Heading(f"All trials and the best {fraction:.0%} per cell (Greff et al. style)"),
        Text(
            f"Mean and median test value over all complete trials and over the best {fraction:.0%} of them "
            "(at least one; ranked by validation). `best`: the test value of the best trial by validation. "
            f"p: Welch's t-test (scipy.stats.ttest_ind, equal_var=False) of the cell's test values against "
            f"those of the baseline cell `{baseline}` on the same task, over the same selection; "
            "* marks p < 0.05; – where a sample has fewer than two trials or the baseline is missing."
        ),
    ]
    for task in tasks:
        blocks.append(
            Heading(f"{task}: test {metric_label(frame[frame['task'] == task]['metric'].iloc[0])}", 3)
        )
        if baseline not in set(frame[frame["task"] == task]["cell"]):
            blocks.append(
                Text(f"No trials of the baseline cell `{baseline}` on {task}: choose one with --baseline.")
            )
        blocks.append(Table(greff_display(greff, task), "table-greff.csv"))
        if f"boxes-{task}" not in figures:
            blocks.append(Text(f"{task}: no complete trials yet."))
        else:
            blocks.append(
                Image(
                    f"boxes-{task}",
                    f"{task}: test values per cell over all complete trials (left) and the best "
                    f"{fraction:.0%} by validation (right); dots are trials, the shaded row is the baseline.",
                )
            )
    if any(t == "jsb" for t in tasks):
        blocks.append(Text(paper_results.GREFF_FINDINGS))
    blocks += [
        Heading("Hyperparameters"),
        Text(
            "fANOVA (Optuna's FanovaImportanceEvaluator) per task and cell with at least "
            f"{max(min_trials, 2)} complete trials: the fraction of the test value's variance explained by "
            "each hyperparameter alone, over the distribution the search drew from (a log-drawn value on a "
            "log axis). Only main effects are shown: Optuna's evaluator gives no pairwise "
            "interactions; what the bars leave to 1 is interactions and noise. The marginal plots show "
            "every complete trial's test value and training time against each hyperparameter."
        ),
    ]
    for task in tasks:
        if f"importance-{task}" in figures:
            blocks.append(
                Image(f"importance-{task}", f"{task}: hyperparameter importance (fANOVA main effects).")
            )
        else:
            blocks.append(Text(f"{task}: too few complete trials or no varying hyperparameter for fANOVA."))
        if f"marginals-{task}" in figures:
            blocks.append(
                Image(f"marginals-{task}", f"{task}: test value (left) and training time (right) per trial.")
            )
    if len(fanova):
        blocks.append(Table(importance_display(fanova), "table-importance.csv"))
    blocks.append(Heading("Learning curves"))
    for task in tasks:
        if f"curves-{task}" in figures:
            blocks.append(
                Image(
                    f"curves-{task}",
                    f"{task}: validation headline of each cell's best run against step and wall time.",
                )
            )
        else:
            blocks.append(Text(f"{task}: no metrics.jsonl found for the best runs."))
    blocks += [
        Heading("Run facts"),
        Text(
            "Trials by outcome: `trials` = those that started; `diverged` apart from other failures "
            "(`failed`: rejected configurations and errors); `killed`: a worker stopped or lost, the search "
            "queues the draw again; `incomplete`: still running or interrupted; `waiting`: queued draws not "
            "started. Model sizes as built, wall time per trial and in total, devices."
        ),
        Table(facts_display(facts), "table-run-facts.csv"),
        Heading("Published numbers for these tasks and cells"),
        Table(published_display(tasks, set(frame["cell"]))),
        Text(sources_text(p.source for p in paper_results.for_tasks(tasks))),
    ]
    return blocks


def importance_display(fanova: pd.DataFrame) -> pd.DataFrame:
    wide = fanova.pivot_table(index=["task", "cell", "n"], columns="param", values="importance", sort=False)
    wide = wide.reset_index()
    return wide.map(lambda v: fmt(v, 2) if isinstance(v, float) else str(v))


def published_display(tasks, cells) -> pd.DataFrame:
    """One row per published number; cells that share a number (Greff et al.'s ranges) share a row."""
    rows = {}
    for v in paper_results.for_tasks(tasks):
        if v.cell in cells:
            key = (v.task, v.metric, v.text, v.setting, v.source)
            rows.setdefault(key, []).append(v.cell)
    columns = ["task", "cells", "metric", "value", "setting", "source"]
    return pd.DataFrame(
        [
            (task, ", ".join(names), metric, text, setting, SHORT_SOURCE.get(source, source))
            for (task, metric, text, setting, source), names in rows.items()
        ],
        columns=columns,
    )


def sources_text(sources) -> str:
    found = sorted({s for s in sources if isinstance(s, str)})
    if not found:
        return "The papers give no number for these cells and tasks."
    return "Sources: " + "; ".join(f"{SHORT_SOURCE.get(s, s)}: {s}" for s in found) + "."
