"""The search loop's decisions on given evaluation results (the evaluations replaced by a table of bests):
which mutants are dropped where, what a baseline without a usable best does, and that the report leaves
out only the search's own studies."""

from __future__ import annotations

import math
import re
from dataclasses import asdict

import pytest

from rnnbench.cells.genome import parse, to_text
from rnnbench.errors import ConfigError
from rnnbench.evolve import controller
from rnnbench.evolve.controller import Evolution
from rnnbench.evolve.record import Record
from rnnbench.evolve.settings import Settings, genome_text
from rnnbench.report.architectures import evaluation_studies


def settings(**changes) -> Settings:
    values = dict(
        name="s",
        start=("lstm", "gru"),
        baseline="gru",
        score=(),
        list_size=5,
        draws=1,
        memorization_task="copy",
        memorization_draws=1,
        memorization_pass=0.95,
        tasks=("arithmetic", "xml"),
        task_args={},
        drop_below=0.9,
        reevaluate=0.0,
        candidates=3,
        seed=0,
    )
    return Settings(**(values | changes))


def run(tmp_path, monkeypatch, s: Settings, best):
    """Runs the loop with ``best(origin_or_text, task)`` as every evaluation's result."""
    monkeypatch.setattr(
        controller, "evaluate", lambda argv, text, prefix, task_args, n: best(text, task_args[0])
    )
    config = {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(s).items()}  # as evolve.* reads
    record = Record(str(tmp_path), s.name, config)
    try:
        return Evolution(s, [], record).run()
    finally:
        record.close()


def task_of(arg: str) -> str:
    return arg.removeprefix("task=")


def test_a_mutant_without_a_value_on_a_task_is_dropped_there_even_with_no_threshold(tmp_path, monkeypatch):
    references = {to_text(parse(genome_text(name))) for name in ("lstm", "gru")}

    def best(text, task):  # the references score 0.5; mutants pass the filter and have no arithmetic value
        task = task_of(task)
        if task == "copy":
            return 1.0
        return math.nan if task == "arithmetic" and text not in references else 0.5

    evolution = run(tmp_path, monkeypatch, settings(drop_below=0.0), best)
    mutants = [c for c in evolution.candidates.values() if c.origin == "mutant"]
    assert mutants and all(c.stage == "arithmetic" for c in mutants)
    assert evolution.funnel.dropped == {"arithmetic": len(mutants)} and evolution.funnel.listed == 0


def test_a_baseline_without_a_usable_best_stops_the_search_with_one_line(tmp_path, monkeypatch):
    def best(text, task):
        return 0.0 if task_of(task) == "xml" else 0.5  # every draw of every cell at 0 on xml

    with pytest.raises(ConfigError, match=r"the baseline gru has no usable best on xml \(0\.0\)"):
        run(tmp_path, monkeypatch, settings(), best)


def test_the_report_leaves_out_the_search_s_studies_only():
    pattern = evaluation_studies([{"settings": {"name": "jozefowicz"}}])
    assert re.match(pattern, "jozefowicz-0123456789abcdef-arithmetic-genome")
    assert not re.match(pattern, "jozefowicz-arithmetic-lstm")  # a plain search=jozefowicz study
    assert not re.match(pattern, "jozefowicz-cpu-0123456789abcdef-xml-genome")  # another search's


def test_a_search_stopped_among_its_references_has_a_summary_the_report_reads(tmp_path, monkeypatch):
    from rnnbench.report import architectures

    calls = []

    def best(text, task):  # stopped while the GRU (the second reference) trains
        calls.append(task)
        if len(calls) > 3:
            raise KeyboardInterrupt
        return 0.5

    with pytest.raises(KeyboardInterrupt):
        run(tmp_path, monkeypatch, settings(), best)
    (summary,) = architectures.find([str(tmp_path)])
    (lstm,) = summary["candidates"]
    assert lstm["origin"] == "lstm" and lstm["best"] == {"copy": 0.5, "arithmetic": 0.5, "xml": 0.5}
    assert summary["history"] == [] and summary["listed"] == []
    texts = [getattr(b, "text", "") for b in architectures.blocks(summary, set(), "x")]
    assert any("0 steps, 0 mutants generated" in t for t in texts)
