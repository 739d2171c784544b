"""The claims of the fidelity table (``rnnbench.report.fidelity.table``), declared once, as data.

A claim has an id, the paper, the claim in words, the reproduction folder that can hold ours, how ours
is measured from that folder (a function of ``searches`` or ``runs``), the published
value (from ``paper_results``; a finding's published result in words), and what a run would cost here
when no folder has the data (``COST``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from rnnbench.report import paper_results
from rnnbench.report.fidelity.evolution import beats_some, forget_bias
from rnnbench.report.fidelity.folder import Folder
from rnnbench.report.fidelity.measure import Measured
from rnnbench.report.fidelity.runs import ZAREMBA, chung, ptb_dropout, zaremba
from rnnbench.report.fidelity.searches import (
    GREFF_BASELINE,
    greff_all_trials,
    greff_importance,
    greff_top,
    greff_welch,
    jozefowicz_search,
)
from rnnbench.report.paper_results import GREFF_CELLS, GREFF_WELCH, JOZEFOWICZ_PTB_METRIC, PaperValue, lookup

JOZEFOWICZ_CELLS = ("tanh", "lstm", "lstm_f", "lstm_i", "lstm_o", "lstm_b", "gru", "mut1", "mut2", "mut3")

# Rough costs here (2 CPU cores) of the runs no folder has, from the runs that did run: a Greff JSB trial
# ~70 s to its early stop, a Zaremba small epoch ~3.6 min, a 250K-parameter XML trial ~1.5 min at 10 epochs.
COST = {
    "greff-jsb": "about 5 h here for 50 paired draws per variant (2 workers, ~70 s a trial); "
    "the paper's 200: ~18 h",
    "jozefowicz-xml": "about 40 min here for 8 draws per cell at 10 epochs; 100 draws per cell at both "
    "budgets until the schedule stops: hundreds of CPU-hours, a few GPU-hours",
    "jozefowicz-arith": "about 1 h here for 8 draws per cell at 10 epochs; 100 draws per cell at both "
    "budgets until the schedule stops: hundreds of CPU-hours, a few GPU-hours",
    "jozefowicz-ptb": "a 5M-parameter trial is ~1 CPU-hour here (~15 epochs at Zaremba small's speed); "
    "10 cells x 100 draws: ~1,000 CPU-hours, tens of GPU-hours",
    "jozefowicz-ptb-dropout": "7 runs of ~20M parameters: about a day each here, an hour or two each on "
    "one GPU",
    "jozefowicz-evolve": "the paper's search (over 10,000 architectures, ~230,000 trials at 250K-1M "
    "parameters): GPU-months; at CPU scale (evolve=jozefowicz_cpu, 200 mutants, 20K parameters): about 5 h",
    "zaremba-small": "about 50 min here (13 epochs of ~3.6 min)",
    "zaremba-medium": "about a day here (39 epochs of 2x650 at ~10x the small model's work); ~1 h on one GPU",
    "zaremba-large": "about a week here (55 epochs of 2x1500 at ~50x the small model's work); "
    "a few GPU-hours",
    "chung-gfrnn": "enwik8 is not in the data folder (a 100 MB download; offline here); the paper's larger "
    "models and longer training: GPU-days",
}


@dataclass(frozen=True)
class Claim:
    id: str
    source: str  # the paper (paper_results' source constant)
    claim: str
    folder: str  # the reproduction folder that holds ours
    measure: Callable[[Folder], Measured]
    paper: PaperValue | None = None  # a published number or range
    finding: str = ""  # a published finding, in words (shown as the paper's value)
    evidence: str = "untagged"  # a finding's evidence tag
    metric: str = ""  # how numbers are formatted
    cost: str = ""  # a rough estimate of what ours would cost here, shown when not run

    @property
    def paper_text(self) -> str:
        return self.paper.text if self.paper else f"{self.finding} [{self.evidence}]"


def declare() -> list[Claim]:
    """Every claim, in the order of the table's rows."""
    claims = []
    for cell in GREFF_CELLS:
        claims.append(
            Claim(
                f"greff.jsb.top10.{cell}",
                paper_results.GREFF,
                f"JSB, {cell}: median test NLL of the best 10% of trials by validation",
                "greff-jsb",
                greff_top(cell),
                paper=lookup("jsb", cell, "nll", "best 10%"),
                metric="nll",
            )
        )
    claims.append(
        Claim(
            "greff.jsb.all-trials",
            paper_results.GREFF,
            "JSB: test NLL of all trials, range over the variants",
            "greff-jsb",
            greff_all_trials,
            paper=lookup("jsb", GREFF_BASELINE, "nll", "all trials"),
            metric="nll",
        )
    )
    for cell, expected in sorted(GREFF_WELCH.items(), key=lambda kv: (kv[1] == "same", kv[0])):
        words = "significantly worse than" if expected == "worse" else "not significantly different from"
        claims.append(
            Claim(
                f"greff.jsb.welch.{cell}",
                paper_results.GREFF,
                f"JSB: {cell} {words} V (test NLL, Welch)",
                "greff-jsb",
                greff_welch(cell),
                finding=f"{words} V" + (" (p < 0.05)" if expected == "worse" else " (p ≥ 0.05)"),
            )
        )
    claims.append(
        Claim(
            "greff.jsb.fanova.lr",
            paper_results.GREFF,
            "JSB: the learning rate explains most of the variance",
            "greff-jsb",
            greff_importance("learning rate", "largest"),
            finding="largest fANOVA share",
        )
    )
    claims.append(
        Claim(
            "greff.jsb.fanova.momentum",
            paper_results.GREFF,
            "JSB: momentum explains almost none of the variance",
            "greff-jsb",
            greff_importance("momentum", "smallest"),
            finding="smallest fANOVA share",
        )
    )
    for task, folder, metric in (
        ("arithmetic", "jozefowicz-arith", "acc"),
        ("xml", "jozefowicz-xml", "acc"),
        ("ptb", "jozefowicz-ptb", JOZEFOWICZ_PTB_METRIC),
    ):
        for cell in JOZEFOWICZ_CELLS:
            claims.append(
                Claim(
                    f"jozefowicz.{task}.{cell}",
                    paper_results.JOZEFOWICZ,
                    f"{task}, {cell}: best test {metric} over the search",
                    folder,
                    jozefowicz_search(task, cell),
                    paper=lookup(task, cell, metric, "search"),
                    metric=metric,
                )
            )
    for claim_id, words, measure in (
        (
            "beats-some",
            "an evolved architecture outperforms both the LSTM and the GRU on some but not all tasks",
            beats_some,
        ),
        (
            "forget-bias",
            "adding a bias of 1 to the LSTM's forget gate closes the gap between the LSTM and the GRU",
            forget_bias,
        ),
    ):  # the abstract's findings (spec/search.md "Architecture search")
        claims.append(
            Claim(
                f"jozefowicz.evolve.{claim_id}",
                paper_results.JOZEFOWICZ,
                f"architecture search: {words}",
                "jozefowicz-evolve",
                measure,
                finding=words,
                evidence="primary",
            )
        )
    for value in paper_results.PAPER_VALUES:
        if value.source == paper_results.JOZEFOWICZ and value.setting.startswith("PTB with dropout"):
            claims.append(
                Claim(
                    f"jozefowicz.ptb-dropout.{value.cell}",
                    value.source,
                    f"PTB, {value.cell}: test perplexity, ~20M parameters with dropout",
                    "jozefowicz-ptb-dropout",
                    ptb_dropout(value.cell),
                    paper=value,
                    metric="ppl",
                )
            )
    for size in ZAREMBA:
        claims.append(
            Claim(
                f"zaremba.{size}",
                paper_results.ZAREMBA,
                f"PTB, {size} LSTM: test perplexity",
                f"zaremba-{size}",
                zaremba(size),
                paper=lookup("ptb", "lstm", "ppl", size),
                metric="ppl",
            )
        )
    for cell, name in (("gf_lstm", "GF-LSTM"), ("lstm", "stacked LSTM")):
        claims.append(
            Claim(
                f"chung.enwik8.{cell}",
                paper_results.CHUNG,
                f"enwik8, {name}: test bits per character",
                "chung-gfrnn",
                chung(cell),
                paper=lookup("enwik8", cell, "bpc", ""),
                metric="bpc",
            )
        )
    return [replace(claim, cost=COST[claim.folder]) for claim in claims]


CLAIMS: list[Claim] = declare()
FOLDERS = tuple(dict.fromkeys(claim.folder for claim in CLAIMS))
