"""The report's figures, drawn with matplotlib's Agg backend and saved as PNG and SVG.

* ``boxes-<task>``: test values per cell over all complete trials and over the best 10% by validation
  (Greff et al. 2017, Fig. 3 style); each trial is a dot over its cell's box.
* ``importance-<task>``: fANOVA main effects per hyperparameter and cell.
* ``marginals-<task>``: the test value against each hyperparameter (log axes for log distributions),
  with the trial's training time beside it (Greff et al.'s marginal plots).
* ``curves-<task>``: the validation headline of each cell's best run against step and wall time.
* ``heatmap``: the Jozefowicz table as cells x tasks, each task normalised to its best cell.
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display; set before anything draws

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter  # noqa: E402

from rnnbench.report.importance import varying_params  # noqa: E402
from rnnbench.report.load import read_curve  # noqa: E402
from rnnbench.report.stats import best_by_validation, scored, top_fraction  # noqa: E402
from rnnbench.report.tables import cells_of, tasks_of  # noqa: E402
from rnnbench.report.units import METRICS  # noqa: E402

HEAT_MIN = 0.5  # heat map colours span [0.5, 1] of the best cell; lower values share the darkest colour
FLAG = "†"  # marks a cell with fewer complete trials than asked for
STYLE = {
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "legend.fontsize": 8,
    "svg.hashsalt": "rnnbench",
}


def colours(cells: list[str]) -> dict[str, tuple]:
    palette = matplotlib.colormaps["tab10" if len(cells) <= 10 else "tab20"]
    return {cell: palette(i % palette.N) for i, cell in enumerate(cells)}


def save(fig: Figure, out: Path, name: str) -> list[Path]:
    paths = [out / f"{name}.png", out / f"{name}.svg"]
    fig.savefig(paths[0], dpi=150, bbox_inches="tight")
    fig.savefig(paths[1], bbox_inches="tight", metadata={"Date": None})  # same figure, same bytes
    return paths


def new_figure(width: float, height: float) -> Figure:
    matplotlib.rcParams.update(STYLE)
    return Figure(figsize=(width, height), layout="constrained")


def legend(fig: Figure, ax) -> None:
    """One legend for the figure, outside the axes so that it hides no point."""
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, title="cell", loc="outside right upper")


def log_axis(ax, values) -> None:
    """Log x axis; over two decades or less the ticks are plain numbers at 1, 2, 5 x 10^k (wider ranges
    keep matplotlib's powers of ten, which stay short)."""
    ax.set_xscale("log")
    values = [v for v in values if v > 0]
    if values and max(values) / min(values) <= 100:
        ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_formatter(NullFormatter())


def x_axis(axes, name: str, values: list, scale: str):
    """Sets up the x axes of one hyperparameter; returns where a value goes on them. A categorical
    parameter with numeric choices (the Jozefowicz grids) is placed at its values, on a log axis when
    they span a factor of 10, with a tick at each choice; other choices are placed in order."""
    numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
    choices = sorted(set(values)) if numeric else sorted({str(v) for v in values})
    log = scale == "log" or (
        scale == "categorical" and numeric and min(choices) > 0 and max(choices) / min(choices) >= 10
    )
    for ax in axes:
        ax.set_xlabel(name + (" (log scale)" if log else ""))
        if log:
            log_axis(ax, values)
        if scale == "categorical":
            ticks = choices if numeric else range(len(choices))
            ax.set_xticks(ticks, [f"{c:g}" if numeric else c for c in choices])
            ax.xaxis.set_minor_formatter(NullFormatter())
    if numeric:
        return lambda v: v
    return lambda v: choices.index(str(v))


def value_label(trials: pd.DataFrame, split: str = "test") -> str:
    return f"{split} {trials['metric_label'].iloc[0]}"


def boxes(frame: pd.DataFrame, task: str, few: set, baseline: str, fraction: float) -> Figure | None:
    trials = frame[frame["task"] == task]
    cells = cells_of(trials)[::-1]  # first cell at the top
    good = scored(trials)
    if good.empty:
        return None
    samples = {
        "all complete trials": [good[good["cell"] == c]["test"].to_numpy() for c in cells],
        f"best {fraction:.0%} by validation": [
            top_fraction(good[good["cell"] == c], fraction)["test"].to_numpy() for c in cells
        ],
    }
    fig = new_figure(10, 1.4 + 0.38 * len(cells))
    axes = fig.subplots(1, 2, sharey=True)
    labels = [f"{c} {FLAG}" if (task, c) in few else c for c in cells]
    rng = np.random.default_rng(0)
    for ax, (title, data) in zip(axes, samples.items()):
        positions = np.arange(len(cells))
        drawn = [d if len(d) else [np.nan] for d in data]
        ax.boxplot(drawn, positions=positions, orientation="horizontal", widths=0.6, showfliers=False)
        for i, values in enumerate(data):
            ax.scatter(values, i + rng.uniform(-0.15, 0.15, len(values)), s=9, alpha=0.6, color="tab:blue")
        ax.set_yticks(positions, labels)
        ax.set_title(f"{task}: {title}")
        ax.set_xlabel(value_label(trials))
        ax.grid(axis="x", alpha=0.3)
        if baseline in cells:
            ax.axhspan(cells.index(baseline) - 0.45, cells.index(baseline) + 0.45, color="0.92", zorder=0)
    return fig


def importance(table: pd.DataFrame, task: str) -> Figure:
    rows = table[table["task"] == task]
    params = sorted(rows["param"].unique())[::-1]
    cells = [c for c in cells_of(rows)]
    colour = colours(cells)
    fig = new_figure(7, 1.2 + 0.25 * len(params) * max(2, len(cells)) ** 0.8)
    ax = fig.subplots()
    height = 0.8 / len(cells)
    for k, cell in enumerate(cells):
        part = rows[rows["cell"] == cell].set_index("param")["importance"]
        y = np.arange(len(params)) + 0.4 - height * (k + 0.5)
        ax.barh(y, [part.get(p, np.nan) for p in params], height=height, color=colour[cell], label=cell)
    ax.set_yticks(np.arange(len(params)), params)
    ax.set_xlim(0, 1)
    ax.set_xlabel("fraction of the test value's variance explained (main effect)")
    ax.set_title(f"{task}: hyperparameter importance (fANOVA)")
    ax.grid(axis="x", alpha=0.3)
    legend(fig, ax)
    return fig


def marginals(frame: pd.DataFrame, task: str, scales: dict) -> Figure | None:
    good = scored(frame[frame["task"] == task])
    params = varying_params(good)
    if not params:
        return None
    cells = cells_of(good)
    colour = colours(cells)
    fig = new_figure(10, 0.6 + 2.4 * len(params))
    axes = np.atleast_2d(fig.subplots(len(params), 2, squeeze=False))
    for row, name in enumerate(params):
        values = [p[name] for p in good["params"]]
        position = x_axis(axes[row], name, values, scales.get(name, "linear"))
        for cell in cells:
            part = good[good["cell"] == cell]
            x = [position(p[name]) for p in part["params"]]
            for ax, y in zip(axes[row], (part["test"], part["wall_s"])):
                ax.scatter(x, y, s=14, alpha=0.75, color=colour[cell], label=cell)
        for ax, ylabel in zip(axes[row], (value_label(good), "training time per trial (s)")):
            ax.set_ylabel(ylabel)
            ax.grid(alpha=0.3)
    axes[0, 0].set_title(f"{task}: test value against each hyperparameter")
    axes[0, 1].set_title(f"{task}: training time")
    legend(fig, axes[0, 0])
    return fig


def curves(frame: pd.DataFrame, task: str) -> Figure | None:
    good = scored(frame[frame["task"] == task])
    cells = cells_of(good)
    colour = colours(cells)
    found = {}
    for cell in cells:
        best = best_by_validation(good[good["cell"] == cell])
        curve = read_curve(best["run_dir"], best["headline"])
        if len(curve):
            found[cell] = (curve, best["trial"])
    if not found:
        return None
    headline = good["headline"].iloc[0]
    metric = METRICS.get(headline.split("/", 1)[-1])
    fig = new_figure(10, 3.6)
    axes = fig.subplots(1, 2, sharey=True)
    for cell, (curve, _) in found.items():
        axes[0].plot(curve["step"], curve["value"], marker=".", color=colour[cell], label=cell)
        axes[1].plot(curve["wall_s"], curve["value"], marker=".", color=colour[cell], label=cell)
    axes[0].set_ylabel(f"validation {metric.label if metric else headline}")
    axes[0].set_xlabel("step (optimiser updates)")
    axes[1].set_xlabel("wall time since the run started (s)")
    axes[0].set_title(f"{task}: best run of each cell (by validation)")
    axes[1].set_title(f"{task}: the same runs against time")
    for ax in axes:
        ax.grid(alpha=0.3)
    legend(fig, axes[0])
    return fig


def heatmap(table: pd.DataFrame) -> Figure | None:
    tasks, cells = tasks_of(table), cells_of(table)
    normalised = np.full((len(cells), len(tasks)), np.nan)
    for j, task in enumerate(tasks):
        part = table[table["task"] == task].set_index("cell")
        values = part["value"]
        best = values.max() if part["higher_is_better"].iloc[0] else values.min()
        for i, cell in enumerate(cells):
            v = values.get(cell, np.nan)
            if math.isfinite(v) and math.isfinite(best) and v != 0 and best != 0:
                normalised[i, j] = v / best if part["higher_is_better"].iloc[0] else best / v
    if np.isnan(normalised).all():
        return None
    fig = new_figure(max(5.5, 2.5 + 1.3 * len(tasks)), 1.4 + 0.42 * len(cells))
    ax = fig.subplots()
    cmap = matplotlib.colormaps["viridis"].with_extremes(bad="0.85")  # grey: no value
    # A fixed scale: a cell at 98% of the best looks nearly as good as the best, not like the worst.
    image = ax.imshow(np.ma.masked_invalid(normalised), cmap=cmap, aspect="auto", vmin=HEAT_MIN, vmax=1)
    for j, task in enumerate(tasks):
        part = table[table["task"] == task].set_index("cell")["value"]
        for i, cell in enumerate(cells):
            v = part.get(cell, np.nan)
            text = f"{v:.4g}" if math.isfinite(v) else "–"
            light = not math.isfinite(normalised[i, j]) or normalised[i, j] > (1 + HEAT_MIN) / 2
            ax.text(j, i, text, ha="center", va="center", fontsize=8, color="black" if light else "white")
    units = [table[table["task"] == t]["metric"].iloc[0] for t in tasks]
    ax.set_xticks(range(len(tasks)), [f"{t}\n({u})" for t, u in zip(tasks, units)])
    ax.set_yticks(range(len(cells)), cells)
    ax.set_title("test value of each cell's best trial (by validation)")
    fig.colorbar(image, ax=ax, extend="min", label="relative to the task's best cell (1 = best)")
    return fig
