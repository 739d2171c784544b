"""The architectures section: what an architecture search (``python -m rnnbench.evolve``) found, read
from its ``evolve/<name>/summary.json`` in a report's input folders. Its evaluations are studies of the
same storage; the report shows them here, by architecture, and leaves them out of the tables of cells."""

from __future__ import annotations

import contextlib
import json
import math
import re
import sqlite3
from pathlib import Path

import pandas as pd

from rnnbench.report.document import Heading, Image, Table, Text
from rnnbench.report.figures import new_figure

SHOWN = 10  # architectures listed with their equations


def find(inputs: list[str]) -> list[dict]:
    """Every search summary below the input folders, each with its ``folder``."""
    found = []
    for text in inputs:
        folder = Path(text)
        if folder.is_dir():
            for path in sorted(folder.glob("evolve/*/summary.json")):
                found.append(json.loads(path.read_text()) | {"folder": str(path.parent)})
    return found


def evaluation_studies(summaries: list[dict]) -> str:
    """A pattern that the study names of the searches' evaluations match (``<name>-<hash>-<task>-<cell>``,
    ``rnnbench.evolve.stages``), and no other study: a plain search named like the evolve search stays."""
    names = "|".join(re.escape(s["settings"]["name"]) for s in summaries)
    return rf"^(?:{names})-[0-9a-f]{{16}}-.+$"


def short(mutation: str | None, changes: int = 3) -> str:
    """A mutation's description cut to its first few changes (the CSV keeps all of them)."""
    if not mutation:
        return ""
    parts = mutation.split("; ")
    head, rest = parts[: changes + 1], len(parts) - changes - 1
    return "; ".join(head) + (f"; ... ({rest} more)" if rest > 0 else "")


def label(c: dict) -> str:
    return c["origin"] if c["origin"] != "mutant" else c["hash"][:8]


def first_draws(summary: dict) -> dict[tuple[str, str], float]:
    """(genome hash, task) -> best validation value over the draws every architecture got, the first
    ``evolve.draws`` (paired: the same hyperparameters and seeds for all), read from the search's SQLite
    storage beside its folder (<results_dir>/studies.db); empty where there is none."""
    path = Path(summary["folder"]).parents[1] / "studies.db"
    if not path.exists():
        return {}
    query = """
        SELECT s.study_name, d.direction, v.value FROM trials t
        JOIN studies s ON s.study_id = t.study_id
        JOIN study_directions d ON d.study_id = s.study_id
        JOIN trial_values v ON v.trial_id = t.trial_id
        JOIN trial_user_attributes a ON a.trial_id = t.trial_id AND a.key = 'draw'
        WHERE t.state = 'COMPLETE' AND CAST(a.value_json AS INTEGER) < ?"""
    prefix = re.compile(rf"^{re.escape(summary['settings']['name'])}-([0-9a-f]{{16}})-(.+)-genome$")
    best: dict[tuple[str, str], float] = {}
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
        for name, direction, value in db.execute(query, (summary["settings"]["draws"],)):
            found = prefix.match(name)
            if found is None or value is None or not math.isfinite(value):
                continue
            key, sign = found.groups(), 1 if direction == "MAXIMIZE" else -1
            best[key] = value if key not in best else sign * max(sign * best[key], sign * value)
    return best


def paired_fitness(summary: dict, best: dict, c: dict) -> float | None:
    """Fitness over the first draws only: min over tasks of best / the baseline's best on those draws."""
    ratios = []
    for task in summary["settings"]["tasks"]:
        ours, base = best.get((c["hash"], task)), best.get((summary["baseline"], task))
        if ours is None or not base:
            return None
        ratios.append(ours / base if ours >= 0 and base > 0 else math.nan)
    return min(ratios) if ratios else None


def ranking(summary: dict) -> pd.DataFrame:
    """The listed architectures and the scored built-in cells, fittest first, with per-task ratios and
    the fitness on the draws all of them got (a listed architecture's best over more draws is higher)."""
    tasks = summary["settings"]["tasks"]
    memory = (summary["settings"].get("memorization") or {}).get("task", "copy")
    paired = first_draws(summary)
    draws = summary["settings"]["draws"]
    first = f"fitness, first {draws} draw{'s' if draws != 1 else ''}"
    rows = []
    for c in summary["candidates"]:
        if c.get("fitness") is None or c["stage"] not in ("listed", "scored"):
            continue
        rows.append(
            {
                "architecture": label(c),
                "kind": "listed" if c["stage"] == "listed" else "built-in",
                "fitness": c["fitness"],
                **({first: paired_fitness(summary, paired, c)} if paired else {}),
                f"{memory} (filter)": c["best"].get(memory),  # the built-in cells' too: recorded, not applied
                **{f"{t} best": c["best"].get(t) for t in tasks},
                **{f"{t} / baseline": (c.get("ratios") or {}).get(t) for t in tasks},
                "parent": "" if c["parent"] is None else c["parent"][:8],
                "mutation": c["mutation"] or "",
                "draws per task": summary["settings"]["draws"] * c["rounds"],
            }
        )
    frame = pd.DataFrame(rows)
    return frame.sort_values("fitness", ascending=False, kind="stable") if len(frame) else frame


def funnel(summary: dict) -> pd.DataFrame:
    f, tasks = summary["funnel"], summary["settings"]["tasks"]
    steps = [
        ("generated", f["generated"]),
        ("duplicates (not trained)", f["duplicates"]),
        ("failed memorization", f["failed_memorization"]),
        *((f"dropped at {t}", f["dropped"].get(t, 0)) for t in tasks),
        ("listed", f["listed"]),
    ]
    return pd.DataFrame(steps, columns=["mutants", "count"])


def fitness_figure(summary: dict):
    history = pd.DataFrame(summary["history"])
    if history.empty:
        return None
    fig = new_figure(6, 3)
    ax = fig.add_subplot()
    ax.plot(history["generated"], history["best"], label="best listed")
    ax.plot(history["generated"], history["best_mutant"], "--", label="best listed mutant")  # on top
    ax.axhline(1.0, color="grey", lw=0.8, ls="--")
    ax.set_xlabel("mutants generated")
    ax.set_ylabel(f"fitness (min over tasks of best / {summary['settings']['baseline']})")
    ax.legend()
    return fig


def shown(frame: pd.DataFrame) -> pd.DataFrame:
    if "mutation" in frame:
        frame = frame.assign(mutation=frame["mutation"].map(short))
    return frame.map(lambda v: f"{v:.4g}" if isinstance(v, float) else ("" if v is None else str(v)))


def blocks(summary: dict, figures: set[str], stem: str) -> list:
    s = summary["settings"]
    by_hash = {c["hash"]: c for c in summary["candidates"]}
    top = [by_hash[h] for h in summary["listed"][:SHOWN]]
    out = [
        Heading(f"Architectures: {s['name']}", 2),
        Text(
            f"An architecture search (python -m rnnbench.evolve, {summary['folder']}): "
            f"{summary['steps']} steps, {summary['funnel']['generated']} mutants generated from "
            f"{', '.join(s['start'])}; fitness = min over {', '.join(s['tasks'])} of best(candidate) / "
            f"best({s['baseline']}) (inverted where lower is better), {s['draws']} draws per task and "
            f"evaluation. Built-in cells scored by the same procedure: "
            f"{', '.join(s['score']) or 'none'}."
        ),
        Heading("Funnel", 3),
        Table(shown(funnel(summary))),
        Heading("Ranking", 3),
        Table(shown(ranking(summary))),
        Heading(f"The {len(top)} fittest, as equations", 3),
    ]
    for c in top:
        lineage = (
            f"from {label(by_hash[c['parent']])} by {short(c['mutation'])}"
            if c["parent"]
            else "a starting cell"
        )
        out.append(
            Text(
                f"**{label(c)}** (fitness {c.get('fitness', float('nan')):.4g}; {lineage}):\n\n"
                + "\n".join(f"    {line}" for line in c["equations"].splitlines())
            )
        )
    if stem in figures:
        out.append(Image(stem, "Fitness of the best listed architecture as mutants are generated."))
    return out
