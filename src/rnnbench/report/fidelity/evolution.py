"""The architecture search's two findings (the paper's abstract) for the fidelity table, measured from
``<folder>/data/evolve/<name>/summary.json`` (written by ``rnnbench.evolve``): an evolved architecture
that beats both the LSTM and the GRU on some but not all tasks, and the forget-gate bias of 1 closing
the gap between the LSTM and the GRU. Both compare best-over-draws values, as the paper's search does."""

from __future__ import annotations

import json
import math

from rnnbench.report.fidelity.folder import Folder
from rnnbench.report.fidelity.measure import Measured, plural
from rnnbench.tasks import TASKS

# the paper's search (spec/search.md "Architecture search"): what a comparable run needs
PAPER_CANDIDATES, PAPER_DRAWS, PAPER_TASKS = 10_000, 20, ("arithmetic", "xml", "ptb")
PAPER_BUDGET = 250_000  # the smaller of its two budgets (250K, 1M)


def summary_of(folder: Folder) -> dict | None:
    """The folder's search summary (the first by name where there are several), or None."""
    paths = sorted((folder.path / "data" / "evolve").glob("*/summary.json"))
    try:
        return json.loads(paths[0].read_text()) if paths else None
    except (OSError, ValueError):
        return None


def scale(folder: Folder, summary: dict) -> list[str]:
    """How the search differs from the paper's in what its findings need."""
    s, found = summary["settings"], []
    generated = summary["funnel"]["generated"]
    if generated < PAPER_CANDIDATES:
        found.append(f"{generated} mutants (paper: over {PAPER_CANDIDATES:,})")
    if s["draws"] < PAPER_DRAWS:
        found.append(f"{s['draws']} draws per task and evaluation (paper: {PAPER_DRAWS})")
    if set(PAPER_TASKS) - set(s["tasks"]):
        found.append(f"tasks {', '.join(s['tasks'])} (paper: {', '.join(PAPER_TASKS)})")
    budgets = set()
    if folder.trials is not None:
        for run_dir in folder.trials["run_dir"].dropna():
            budgets.add((folder.config(run_dir).get("model") or {}).get("param_budget"))
    small = sorted(b for b in budgets if isinstance(b, int) and b < PAPER_BUDGET)
    if small:
        found.append(f"model.param_budget={', '.join(map(str, small))} (paper: 250K or 1M)")
    return found


def reference(summary: dict, name: str) -> dict | None:
    return next((c for c in summary["candidates"] if c["origin"] == name), None)


def best(candidate: dict | None, task: str) -> float:
    """A candidate's best on ``task``; NaN where it has none (summary.json writes NaN as null)."""
    value = (candidate or {}).get("best", {}).get(task)
    return math.nan if value is None else float(value)


def usable(value: float) -> bool:
    return math.isfinite(value) and value > 0


def beats_some(folder: Folder) -> Measured:
    summary = summary_of(folder)
    if summary is None:
        return Measured(missing=f"no search summary in {folder.name}/data/evolve/")
    tasks, lstm, gru = summary["settings"]["tasks"], reference(summary, "lstm"), reference(summary, "gru")
    if not all(usable(best(lstm, t)) and usable(best(gru, t)) for t in tasks):
        return Measured(missing="the LSTM and GRU are not scored on every task yet")
    better = {}  # mutant hash -> per task: its best / the better reference's (above 1: beats both)
    for c in summary["candidates"]:  # mutants scored on every task (a mutant dropped at the last one too)
        if c["origin"] == "mutant" and all(usable(best(c, t)) for t in tasks):
            better[c["hash"]] = {t: versus(best(c, t), best(lstm, t), best(gru, t), t) for t in tasks}
    some = {
        h: r
        for h, r in better.items()
        if any(v > 1 for v in r.values()) and not all(v > 1 for v in r.values())
    }
    every = [h for h, r in better.items() if all(v > 1 for v in r.values())]
    shown = f"{len(some)} of {plural(len(better), 'mutant')} scored on every task"
    if some:
        h, r = max(some.items(), key=lambda kv: max(kv[1].values()))
        shown += (
            f" (`{h[:8]}`: " + ", ".join(f"{t} {v:.3f}x" for t, v in r.items()) + " the better of LSTM, GRU)"
        )
    notes = [f"{len(every)} beat both on every task"] if better else []
    draws = summary["settings"]["draws"]
    notes.append(  # a re-evaluated reference's best is over more draws than a new mutant's
        f"bests over {draws * lstm.get('rounds', 1)} draws (LSTM), {draws * gru.get('rounds', 1)} (GRU), "
        f"{draws} per evaluation of a mutant"
    )
    return Measured(
        shown=shown,
        agrees=bool(some) if better else None,
        differs=scale(folder, summary),
        notes=notes,
    )


def versus(mine: float, lstm: float, gru: float, task: str) -> float:
    """``mine`` over the better of the two references' values, inverted where lower is better."""
    if TASKS[task].higher_is_better:
        return mine / max(lstm, gru)
    return min(lstm, gru) / mine


def forget_bias(folder: Folder) -> Measured:
    summary = summary_of(folder)
    if summary is None:
        return Measured(missing=f"no search summary in {folder.name}/data/evolve/")
    lstm, lstm_b = reference(summary, "lstm"), reference(summary, "lstm_b")
    tasks, baseline = summary["settings"]["tasks"], summary["settings"].get("baseline", "gru")
    if not all(usable(best(c, t)) for c in (lstm, lstm_b) for t in tasks) or baseline != "gru":
        return Measured(
            missing="lstm and lstm_b are not both scored against the GRU (evolve.score holds lstm_b)"
        )
    a, b = lstm["fitness"], lstm_b["fitness"]
    per_task = ", ".join(f"{t} {lstm['ratios'][t]:.3f} → {lstm_b['ratios'][t]:.3f}" for t in tasks)
    return Measured(
        shown=f"fitness (min over tasks of best / GRU's best): lstm {a:.3f}, lstm_b {b:.3f} ({per_task})",
        agrees=a < 1 and b > a,  # a gap to the GRU that the bias narrows
        differs=scale(folder, summary),
    )
