"""The number a report shows for each task, in the papers' units, and how to read it from run files.

Jozefowicz et al. report accuracy for arithmetic and XML and 1/perplexity ("score", higher is better)
for PTB; Greff et al. report the negative log-likelihood per time step for music. Every other task is
shown in its own headline metric. Selection always uses the run's validation headline (the value the
search optimised); only the number shown is converted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

MUSIC = ("jsb", "nottingham", "musedata", "piano_midi")


@dataclass(frozen=True)
class Metric:
    name: str  # key suffix in run files: test/<name>, valid/<name>
    label: str  # axis and column label, with its unit
    higher_is_better: bool


METRICS = {
    "acc": Metric("acc", "accuracy (fraction of symbols)", True),
    "score": Metric("score", "1/perplexity (per word)", True),
    "ppl": Metric("ppl", "perplexity (per word)", False),
    "nll": Metric("nll", "NLL (nats per time step)", False),
    "bpc": Metric("bpc", "bits per character", False),
    "exact": Metric("exact", "exact answers (fraction)", True),
    "loss": Metric("loss", "loss (nats per token)", False),
}


def report_metric(task: str, headline: str, headline_higher: bool) -> Metric:
    """The metric a report shows for ``task``; ``headline`` is e.g. ``valid/ppl``."""
    if task == "ptb":
        return METRICS["score"]
    name = headline.split("/", 1)[-1]
    known = METRICS.get(name)
    return known if known else Metric(name, name, bool(headline_higher))


def read_value(values: dict, split: str, metric: Metric) -> float:
    """``values`` holds ``<split>/<metric>`` keys (a summary's ``test`` or ``best``); NaN when absent.
    PTB's score is 1/perplexity, computed from ``ppl`` when a run file has no ``score``."""
    value = values.get(f"{split}/{metric.name}")
    if value is None and metric.name == "score" and values.get(f"{split}/ppl"):
        value = 1.0 / values[f"{split}/ppl"]
    try:
        value = float(value)
    except (TypeError, ValueError):
        return math.nan
    return value if math.isfinite(value) else math.nan
