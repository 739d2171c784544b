"""How ours is measured from a search's trials, for the fidelity table (``rnnbench.report.fidelity.table``):
Greff et al.'s JSB search (the best 10%, all trials, Welch's t-tests, fANOVA shares) and Jozefowicz et
al.'s searches (the best trial by validation), each checked against the paper's protocol.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import pandas as pd

from rnnbench.report.fidelity.folder import Folder
from rnnbench.report.fidelity.measure import (
    Measured,
    ceilings_note,
    fmt,
    fmt_p,
    no_folder,
    of,
    plural,
    progress,
    protocol,
)
from rnnbench.report.load import dig
from rnnbench.report.paper_results import GREFF_CELLS, GREFF_WELCH, JOZEFOWICZ_PTB_METRIC, lookup
from rnnbench.report.stats import SIGNIFICANCE, best_by_validation, scored, top_fraction, welch

GREFF_BASELINE = "greff_v"
GREFF_DRAWS = 200  # the paper's trials per variant and dataset
NEGLIGIBLE = 0.05  # a fANOVA share this small is "almost none"
GREFF_MIN_TRIALS = 20  # complete trials per variant a best-10% box or a fANOVA needs (a best 10% of >= 2)
# The paper's training protocol (tasks.md): what every trial's config.yaml must hold to compare values.
GREFF_TRAINING = (
    ("trainer.loss_over_time", lambda v: v == "sum", "the loss summed over each sequence"),
    ("trainer.max_epochs", lambda v: v is None or v >= 150, "at most 150 epochs"),
    ("trainer.patience", lambda v: v == 15, "stop after 15 epochs without improvement"),
)
# Jozefowicz et al. do not give the draws per cell behind their table (~220 per architecture on average,
# [secondary]); fewer than the project's search default (configs/search/jozefowicz.yaml) is a reduced budget.
JOZEFOWICZ_DRAWS = 100
JOZEFOWICZ_BUDGETS = {"arithmetic": {250_000, 1_000_000}, "xml": {250_000, 1_000_000}, "ptb": {5_000_000}}
JOZEFOWICZ_TRAINING = (
    ("trainer.loss_over_time", lambda v: v == "sum", "the loss summed over the unrolled steps [inferred]"),
    ("trainer.schedule", lambda v: v == "halving", "the halving schedule"),
    ("trainer.max_epochs", lambda v: v is None or v >= 100, "training until the halving schedule stops"),
)
XML_LAYOUT = (("task.indent", lambda v: v in (0, None), "no indentation (tasks.md)"),)


def greff_top(cell: str) -> Callable[[Folder], Measured]:
    """The median test NLL of the best 10% of ``cell``'s trials by validation."""

    def measure(folder: Folder) -> Measured:
        if (none := no_folder(folder)) is not None:
            return none
        trials = of(folder.trials, "jsb", cell)
        good = scored(trials)
        if good.empty:
            return Measured(missing=f"no complete jsb trial of {cell} in {folder.name}")
        top = top_fraction(good)
        found = Measured(
            value=float(top["test"].median()),
            shown=f"{fmt(float(top['test'].median()), 'nll')} (median of {len(top)})",
            notes=[
                f"best 10%: {fmt(top['test'].min(), 'nll')}–{fmt(top['test'].max(), 'nll')}; "
                f"{progress(trials)}"
            ],
        )
        found.differs = protocol(folder, good, GREFF_TRAINING)
        if len(good) < GREFF_MIN_TRIALS:
            found.differs.append(
                f"{plural(len(good), 'complete trial')} (a best-10% box needs >= {GREFF_MIN_TRIALS})"
            )
        return found

    return measure


def greff_all_trials(folder: Folder) -> Measured:
    """The range of test NLL over all complete trials of all variants (the paper's whiskers)."""
    if (none := no_folder(folder)) is not None:
        return none
    trials = of(folder.trials, "jsb")
    good = scored(trials[trials["cell"].isin(GREFF_CELLS)])
    if good.empty:
        return Measured(missing=f"no complete jsb trial in {folder.name}")
    low, high = float(good["test"].min()), float(good["test"].max())
    worst = good.loc[good["test"].idxmax()]
    paper_high = lookup("jsb", GREFF_BASELINE, "nll", "all trials").high
    found = Measured(
        span=(low, high),
        shown=f"{fmt(low, 'nll')}–{fmt(high, 'nll')}",
        notes=[
            f"{plural(len(good), 'complete trial')} of {plural(good['cell'].nunique(), 'variant')}; "
            f"{int((good['test'] > paper_high).sum())} above {paper_high:g}, the highest "
            f"{worst['cell']} {worst['trial']} ({fmt(high, 'nll')})"
        ],
    )
    found.differs = protocol(folder, good, GREFF_TRAINING)
    fewest = int(good.groupby("cell").size().min())
    if fewest < GREFF_DRAWS or good["cell"].nunique() < len(GREFF_CELLS):
        found.differs.append(
            f"{fewest} complete trials per variant at least, {good['cell'].nunique()} of "
            f"{len(GREFF_CELLS)} variants (paper: {GREFF_DRAWS} each)"
        )
    return found


def greff_welch(cell: str) -> Callable[[Folder], Measured]:
    """Welch's t-test of ``cell``'s test NLL (all complete trials) against the vanilla LSTM's."""
    expected = GREFF_WELCH[cell]

    def measure(folder: Folder) -> Measured:
        if (none := no_folder(folder)) is not None:
            return none
        good, base = scored(of(folder.trials, "jsb", cell)), scored(of(folder.trials, "jsb", GREFF_BASELINE))
        if good.empty or base.empty:
            absent = cell if good.empty else GREFF_BASELINE
            return Measured(missing=f"no complete jsb trial of {absent} in {folder.name}")
        t, p = welch(good["test"], base["test"])
        higher = bool(good["higher_is_better"].iloc[0])
        worse = (t < 0) if higher else (t > 0)
        found = Measured(
            shown=f"t = {t:+.2f}, p = {fmt_p(p)}" if math.isfinite(p) else "–",
            notes=[
                f"Welch, all complete trials: {len(good)} vs {len(base)}; mean "
                f"{fmt(good['test'].mean(), 'nll')} vs {fmt(base['test'].mean(), 'nll')}"
            ],
        )
        found.differs = protocol(folder, pd.concat([good, base]), GREFF_TRAINING)
        if not math.isfinite(p):
            found.differs.append("fewer than 2 complete trials in a sample: no test")
            return found
        significant = p < SIGNIFICANCE
        if expected == "same" and not significant and min(len(good), len(base)) < GREFF_MIN_TRIALS:
            found.differs.append(  # any small sample is "not significantly different": no evidence
                f"{min(len(good), len(base))} trials per variant (a no-difference finding needs >= "
                f"{GREFF_MIN_TRIALS})"
            )
        elif expected == "same":
            found.agrees = not significant
        elif significant:
            found.agrees = worse
        elif min(len(good), len(base)) < GREFF_DRAWS:
            found.differs.append(
                f"not significant with {min(len(good), len(base))} trials per variant "
                f"(paper: {GREFF_DRAWS}): too few to show the difference"
            )
        else:
            found.agrees = False
        return found

    return measure


def greff_importance(param: str, rank: str) -> Callable[[Folder], Measured]:
    """fANOVA: whether ``param``'s median share over the variants is the ``rank`` ("largest" or
    "smallest") of the hyperparameters' median shares (main effects on the test NLL). "Smallest" also
    holds below ``NEGLIGIBLE``: among shares of almost nothing, the order is the forest's noise."""

    def measure(folder: Folder) -> Measured:
        if (none := no_folder(folder)) is not None:
            return none
        trials = of(folder.trials, "jsb")
        good = scored(trials)
        if good.empty:
            return Measured(missing=f"no complete jsb trial in {folder.name}")
        found = Measured(differs=protocol(folder, good, GREFF_TRAINING))
        shares = folder.importance(GREFF_MIN_TRIALS)
        if shares.empty:
            most = int(good.groupby("cell").size().max())
            found.differs.append(
                f"at most {plural(most, 'complete trial')} per variant (fANOVA needs >= {GREFF_MIN_TRIALS})"
            )
            return found
        shares = shares.assign(name=shares["param"].map(short_param))
        table = shares.pivot_table(index="cell", columns="name", values="importance")
        medians = table.median()
        if param not in medians:
            found.differs.append(f"{param} was not searched")
            return found
        pick = medians.idxmax() if rank == "largest" else medians.idxmin()
        per_variant = (table.idxmax(axis=1) if rank == "largest" else table.idxmin(axis=1)) == param
        found.agrees = pick == param or (rank == "smallest" and medians[param] < NEGLIGIBLE)
        found.shown = (
            f"{param} {medians[param]:.2f} ({rank} in {int(per_variant.sum())}/{len(table)} variants)"
        )
        others = ", ".join(
            f"{name} {value:.2f}" for name, value in medians.sort_values(ascending=False).items()
        )
        found.notes.append(
            f"median share over variants: {others}; main effects over the drawn distribution (log-drawn "
            f"hyperparameters on a log axis), {int(shares['n'].min())}+ trials"
        )
        return found

    return measure


def short_param(name: str) -> str:
    """Optuna's or a config's name -> the paper's word (``1-trainer.momentum`` -> ``momentum``)."""
    for word, key in (
        ("learning rate", "lr"),
        ("momentum", "momentum"),
        ("hidden size", "hidden_size"),
        ("input noise", "input_noise"),
    ):
        if name.split(".")[-1].startswith(key):
            return word
    return name


def jozefowicz_search(task: str, cell: str) -> Callable[[Folder], Measured]:
    """The test value of ``cell``'s best trial by validation (the paper's "best result over the search")."""

    def measure(folder: Folder) -> Measured:
        if (none := no_folder(folder)) is not None:
            return none
        trials = of(folder.trials, task, cell)
        good = scored(trials)
        if good.empty:
            return Measured(
                missing=f"{cell} not in {folder.name}" if trials.empty else f"no complete {cell} trial"
            )
        best = best_by_validation(good)
        metric = str(best["metric"])
        found = Measured(
            value=float(best["test"]), shown=f"{fmt(float(best['test']), metric)} (best of {len(good)})"
        )
        checks = JOZEFOWICZ_TRAINING + (XML_LAYOUT if task == "xml" else ())
        found.differs = protocol(folder, good, checks)
        if len(good) < JOZEFOWICZ_DRAWS:
            found.differs.append(
                f"{plural(len(good), 'complete draw')} (a best-of-search needs >= {JOZEFOWICZ_DRAWS})"
            )
        budgets = {int(v) for v in good["params"].map(lambda p: p.get("model.param_budget")).dropna()}
        budgets |= {
            int(dig(folder.config(d), "model.param_budget") or 0) for d in good["run_dir"].dropna()
        } - {0}
        if budgets != JOZEFOWICZ_BUDGETS[task]:
            found.differs.append(
                f"budgets {', '.join(f'{b:,}' for b in sorted(budgets)) or 'none'} "
                f"(paper: {', '.join(f'{b:,}' for b in sorted(JOZEFOWICZ_BUDGETS[task]))})"
            )
        if task == "ptb":
            found.notes.append(f"{JOZEFOWICZ_PTB_METRIC}: the paper's PTB unit is inferred (tasks.md)")
        if task in ("xml", "arithmetic"):
            ceiling = ceilings_note(task, dig(folder.config(best["run_dir"]), "task") or {})
            if ceiling:
                found.notes.append(ceiling)
        return found

    return measure
