"""How ours is measured from plain runs (not a search's trials), for the fidelity table
(``rnnbench.report.fidelity.table``): Zaremba et al.'s three PTB models, Jozefowicz et al.'s PTB runs with
dropout (test perplexity from each run's summary.json) and Chung et al.'s enwik8 runs (bits per character).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import pandas as pd

from rnnbench.report.fidelity.folder import Folder
from rnnbench.report.fidelity.measure import Measured, fmt, no_folder, number, of, settings
from rnnbench.report.load import dig, valid_lines
from rnnbench.report.stats import best_by_validation, scored

# Zaremba et al.'s three models: the settings a run must have (configs/experiment/zaremba_*.yaml).
ZAREMBA = {
    "small": {
        "cell.hidden_size": 200,
        "cell.num_layers": 2,
        "model.dropout": 0.0,
        "task.bptt": 20,
        "trainer.max_epochs": 13,
    },
    "medium": {
        "cell.hidden_size": 650,
        "cell.num_layers": 2,
        "model.dropout": 0.5,
        "task.bptt": 35,
        "trainer.max_epochs": 39,
    },
    "large": {
        "cell.hidden_size": 1500,
        "cell.num_layers": 2,
        "model.dropout": 0.65,
        "task.bptt": 35,
        "trainer.max_epochs": 55,
    },
}
TEST_WEIGHTS = "test scored with the best validation evaluation's weights (their code: the last)"
PTB_DROPOUT_PARAMS = 20e6  # Jozefowicz et al.'s final PTB models: ~20M parameters


def completed(trials: pd.DataFrame) -> pd.DataFrame:
    """Complete runs, whatever their value in the report's metric (perplexity claims read summaries)."""
    return trials[trials["state"] == "complete"] if len(trials) else trials


def best_run_ppl(folder: Folder, trials: pd.DataFrame) -> tuple[pd.Series, dict]:
    """The complete run with the best validation headline and its summary.json."""
    best = best_by_validation(completed(trials))
    return best, folder.summary(best["run_dir"])


def zaremba(size: str) -> Callable[[Folder], Measured]:
    """Test perplexity of the run (the best by validation, if several) of Zaremba's ``size`` model."""
    wanted = ZAREMBA[size]

    def measure(folder: Folder) -> Measured:
        if (none := no_folder(folder)) is not None:
            return none
        trials = of(folder.trials, "ptb", "lstm")
        if completed(trials).empty:
            return Measured(missing=f"no completed ptb lstm run ({running(folder, trials)})")
        best, summary = best_run_ppl(folder, trials)
        ppl = float((summary.get("test") or {}).get("test/ppl", math.nan))
        found = Measured(value=ppl, shown=fmt(ppl, "ppl"), differs=settings(folder, best["run_dir"], wanted))
        epochs = summary.get("epochs")
        if epochs is not None and epochs < wanted["trainer.max_epochs"]:
            found.differs.append(f"stopped after {epochs} epochs ({summary.get('stop_reason')})")
        if summary.get("test_weights", "best") != "last":  # their main.lua tests once, after the last epoch
            found.differs.append(TEST_WEIGHTS)
        return found

    return measure


def running(folder: Folder, trials: pd.DataFrame) -> str:
    """What an unfinished run has reached: "in progress: epoch k, valid ppl x"."""
    for run_dir in trials["run_dir"].dropna():
        last = valid_lines(run_dir)[-1:]
        if last:
            ppl = fmt(number(last[0].get("valid/ppl")), "ppl")
            return f"in progress: epoch {last[0].get('epoch')}, valid ppl {ppl}"
    return "nothing completed"


def ptb_dropout(cell: str) -> Callable[[Folder], Measured]:
    """Test perplexity of ``cell``'s best run by validation among ~20M-parameter PTB runs with dropout."""

    def measure(folder: Folder) -> Measured:
        if (none := no_folder(folder)) is not None:
            return none
        trials = of(folder.trials, "ptb", cell)
        if completed(trials).empty:
            return Measured(
                missing=f"no completed ptb {cell} run" if trials.empty else running(folder, trials)
            )
        best, summary = best_run_ppl(folder, trials)
        ppl = float((summary.get("test") or {}).get("test/ppl", math.nan))
        found = Measured(value=ppl, shown=fmt(ppl, "ppl"))
        size = float(best["num_params"])
        if not (0.75 * PTB_DROPOUT_PARAMS <= size <= 1.25 * PTB_DROPOUT_PARAMS):
            found.differs.append(f"{size / 1e6:.1f}M parameters (paper: ~20M)")
        if not float(dig(folder.config(best["run_dir"]), "model.dropout") or 0) > 0:
            found.differs.append("no dropout (paper: dropout on non-recurrent connections)")
        return found

    return measure


def chung(cell: str) -> Callable[[Folder], Measured]:
    """Test bits per character of ``cell``'s best run on enwik8 (a PTB-character stand-in is shown,
    not compared)."""

    def measure(folder: Folder) -> Measured:
        if (none := no_folder(folder)) is not None:
            return none
        for task in ("enwik8", "ptb_char"):
            good = scored(of(folder.trials, task, cell))
            if not good.empty:
                best = best_by_validation(good)
                found = Measured(
                    value=float(best["test"]), shown=f"{fmt(float(best['test']), 'bpc')} ({task})"
                )
                if task != "enwik8":
                    found.differs.append(f"{task} instead of enwik8")
                return found
        return Measured(missing=f"no completed enwik8 {cell} run")

    return measure
