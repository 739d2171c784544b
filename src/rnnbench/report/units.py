"""The number a report shows for each task, in the papers' units, and how to read it from run files.

Jozefowicz et al. report accuracy for arithmetic and XML and an undefined "higher is better" number for
PTB, compared through the run metric ``paper_results.JOZEFOWICZ_PTB_METRIC`` (``mean_p``, the mean
probability given to the correct next word; the choice is inferred, see tasks.md; PTB runs also write
``acc``, next-word accuracy, and ``ppl``); Greff et al. report the negative log-likelihood per time step
for music. Every other task is shown in its own headline metric. Selection always uses the run's
validation headline (the value the search optimised); only the number shown is converted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from rnnbench.report.paper_results import JOZEFOWICZ_PTB_METRIC

MUSIC = ("jsb", "nottingham", "musedata", "piano_midi")


@dataclass(frozen=True)
class Metric:
    name: str  # key suffix in run files: test/<name>, valid/<name>
    label: str  # axis and column label, with its unit
    higher_is_better: bool


METRICS = {
    "acc": Metric("acc", "accuracy (fraction of symbols)", True),
    "mean_p": Metric("mean_p", "mean probability of the correct word", True),
    "ppl": Metric("ppl", "perplexity (per word)", False),
    "nll": Metric("nll", "NLL (nats per time step)", False),
    "bpc": Metric("bpc", "bits per character", False),
    "exact": Metric("exact", "exact answers (fraction)", True),
    "loss": Metric("loss", "loss (nats per token)", False),
}


def report_metric(task: str, headline: str, headline_higher: bool) -> Metric:
    """The metric a report shows for ``task``; ``headline`` is e.g. ``valid/ppl``."""
    if task == "ptb":
        return METRICS[JOZEFOWICZ_PTB_METRIC]
    name = headline.split("/", 1)[-1]
    known = METRICS.get(name)
    return known if known else Metric(name, name, bool(headline_higher))


def read_value(values: dict, split: str, metric: Metric) -> float:
    """``values`` holds ``<split>/<metric>`` keys (a summary's ``test`` or ``best``); NaN when absent
    (a PTB run from before ``mean_p`` was written has none: it is not computed from ``ppl``)."""
    value = values.get(f"{split}/{metric.name}")
    try:
        value = float(value)
    except (TypeError, ValueError):
        return math.nan
    return value if math.isfinite(value) else math.nan
