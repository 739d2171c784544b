"""``make_report(inputs, out)``: read the trials, compute the tables, draw the figures, write the report.

Writes into ``out``: ``report.md``, ``report.html`` (self-contained), ``table-*.csv``, and each figure
as ``<name>.png`` and ``<name>.svg``. Returns the paths written. Each file is put in place whole; a file
that cannot be written (disk full, read-only folder) is one line (``render.writing``).
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

from tqdm import tqdm

from rnnbench.report import architectures, document, figures, importance, render, tables
from rnnbench.report.load import ReportError, load
from rnnbench.report.stats import TOP_FRACTION

DEFAULT_BASELINE = "greff_v"
DEFAULT_MIN_TRIALS = 5


def safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)


def make_report(
    inputs: list[str],
    out: str | Path,
    baseline: str = DEFAULT_BASELINE,
    min_trials: int = DEFAULT_MIN_TRIALS,
    fraction: float = TOP_FRACTION,
) -> list[Path]:
    trials = load(list(inputs))
    searches = architectures.find(list(inputs))
    if searches:  # an architecture search's evaluations have their own section
        kept = ~trials.frame["study"].fillna("").str.match(architectures.evaluation_studies(searches))
        trials.frame = trials.frame[kept].reset_index(drop=True)
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ReportError(f"--out {out} cannot be created ({error.strerror})") from None
    if trials.frame.empty:  # only architecture searches
        written, blocks = search_sections(searches, out, set())
        return write_document([document.Heading("rnnbench report", 1), *blocks], out, written)
    frame = trials.frame
    jozefowicz = tables.jozefowicz(frame, min_trials)
    greff = tables.greff(frame, baseline, min_trials, fraction)
    facts = tables.run_facts(frame)
    fanova = importance.fanova(frame, trials.scales, min_trials)
    written = []
    for name, table in (
        ("table-jozefowicz.csv", jozefowicz),
        ("table-greff.csv", greff),
        ("table-run-facts.csv", facts),
        ("table-importance.csv", fanova),
    ):
        render.write(out / name, table.to_csv(index=False))
        written.append(out / name)

    few = {(r.task, r.cell) for r in jozefowicz.itertuples() if r.few_trials}
    drawings = [("heatmap", lambda: figures.heatmap(jozefowicz))]
    for task in tables.tasks_of(frame):
        drawings += [
            (f"boxes-{task}", lambda t=task: figures.boxes(frame, t, few, baseline, fraction)),
            (
                f"importance-{task}",
                lambda t=task: figures.importance(fanova, t) if t in set(fanova["task"]) else None,
            ),
            (f"marginals-{task}", lambda t=task: figures.marginals(frame, t, trials.scales)),
            (f"curves-{task}", lambda t=task: figures.curves(frame, t)),
        ]
    drawn = set()
    with render.writing(out / ".report-figures"):  # figures are drawn here, then renamed into place
        staging = tempfile.TemporaryDirectory(prefix=".report-figures-", dir=out)
    with staging:
        for stem, draw in tqdm(drawings, desc="figures", unit="fig", disable=None, leave=False):
            fig = draw()
            if fig is not None:
                written += [place(path, out) for path in save_figure(fig, Path(staging.name), safe(stem))]
                drawn.add(safe(stem))

    options = {"baseline": baseline, "min_trials": min_trials, "fraction": fraction}
    blocks = document.build(trials, jozefowicz, greff, facts, fanova, drawn, options)
    searched, search_blocks = search_sections(searches, out, drawn)
    return write_document(blocks + search_blocks, out, written + searched)


def write_document(blocks: list, out: Path, written: list[Path]) -> list[Path]:
    render.write(out / "report.md", render.markdown(blocks))
    render.write(out / "report.html", render.html_page(blocks, out))
    return [out / "report.md", out / "report.html", *written]


def search_sections(searches: list[dict], out: Path, drawn: set) -> tuple[list[Path], list]:
    """The files and blocks of each architecture search's section."""
    written, blocks = [], []
    for k, summary in enumerate(searches):
        written += draw_search(summary, k, out, drawn)
        blocks += architectures.blocks(summary, drawn, f"evolve-fitness-{k}")
    return written, blocks


def draw_search(summary: dict, k: int, out: Path, drawn: set) -> list[Path]:
    """The fitness figure of the k-th architecture search, and the CSV of its ranking."""
    render.write(out / f"table-architectures-{k}.csv", architectures.ranking(summary).to_csv(index=False))
    written = [out / f"table-architectures-{k}.csv"]
    fig = architectures.fitness_figure(summary)
    if fig is not None:
        with render.writing(out / ".report-figures"):
            staging = tempfile.TemporaryDirectory(prefix=".report-figures-", dir=out)
        with staging:
            written += [place(p, out) for p in save_figure(fig, Path(staging.name), f"evolve-fitness-{k}")]
        drawn.add(f"evolve-fitness-{k}")
    return written


def save_figure(fig, staging: Path, stem: str) -> list[Path]:
    """The figure's PNG and SVG, drawn in ``staging``; a failure names the file that failed."""
    failing = staging.parent / f"{stem}.png"
    try:
        return figures.save(fig, staging, stem)
    except Exception:
        if (staging / f"{stem}.svg").exists():  # the PNG was written: the SVG failed
            failing = failing.with_suffix(".svg")
        with render.writing(failing, staging / f"{stem}.png", staging / f"{stem}.svg"):
            raise


def place(staged: Path, out: Path) -> Path:
    """Renames a file drawn in the staging folder over its place in ``out``."""
    with render.writing(out / staged.name, staged):
        os.replace(staged, out / staged.name)
    return out / staged.name
