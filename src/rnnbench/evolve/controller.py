"""The search loop: a list of the best architectures, re-evaluated or mutated step by step.

Each step draws p ~ U[0, 1): below ``evolve.reevaluate`` it re-evaluates a listed architecture on K new
draws per task it was scored on; otherwise it mutates a listed one (``rnnbench.cells.genome.mutate``)
and evaluates the mutant in stages: the memorisation filter (``evolve.memorization``: its best accuracy
must reach ``pass``), then each task in order, dropped at the first task where its best falls below
``evolve.drop_below`` of the baseline's best there. A mutant that passes every stage is listed; the list
keeps the ``evolve.list_size`` fittest, fitness being the minimum over the tasks of best(candidate) /
best(baseline) (for a task where lower is better, the ratio is inverted). A mutant whose canonical hash
was seen before is a duplicate and is not trained. The search ends after ``evolve.candidates`` mutants.

Every choice comes from one ``random.Random(evolve.seed)`` and the trials' results, so a run that is
killed and started again makes the same choices and finds the results it already has.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

from rnnbench.cells.genome import canonical_hash, mutate, parse, to_text
from rnnbench.errors import ConfigError
from rnnbench.evolve.settings import Settings, genome_text
from rnnbench.evolve.stages import evaluate, study_prefix
from rnnbench.tasks import TASKS


@dataclass
class Candidate:
    hash: str
    text: str
    origin: str  # a built-in's name, or "mutant"
    parent: str | None = None
    mutation: str | None = None
    rounds: int = 0  # evaluations of K draws per task
    best: dict[str, float] = field(default_factory=dict)  # task -> best validation value
    stage: str = "new"  # "memorization" / a task: where it was dropped; "listed"; "scored" (a reference)


@dataclass
class Funnel:
    generated: int = 0
    duplicates: int = 0
    failed_memorization: int = 0
    dropped: dict[str, int] = field(default_factory=dict)  # task -> mutants dropped there
    listed: int = 0


class Evolution:
    def __init__(self, settings: Settings, argv: list[str], record):
        self.s, self.argv, self.record = settings, argv, record
        self.rng = random.Random(settings.seed)
        self.candidates: dict[str, Candidate] = {}
        self.listed: list[str] = []
        self.funnel = Funnel()
        self.step = 0

    # ---- evaluations ----------------------------------------------------------------------------------
    def score_on(self, c: Candidate, task: str, rounds: int) -> float:
        draws = self.s.draws if task != self.s.memorization_task else self.s.memorization_draws
        args = self.s.task_args.get(task, ())
        value = evaluate(
            self.argv,
            c.text,
            study_prefix(self.s.name, c.hash, task),
            (f"task={task}", *args),
            draws * rounds,
        )
        c.best[task] = value
        self.record.event(
            "evaluated", step=self.step, hash=c.hash, task=task, draws=draws * rounds, best=value
        )
        return value

    def ratio(self, c: Candidate, task: str) -> float:
        """best(candidate) / best(baseline) on ``task``, inverted where lower is better; NaN counts as 0."""
        baseline = self.candidates.get(self.baseline)  # (not yet evaluated while the references are)
        mine, base = c.best.get(task, math.nan), baseline.best.get(task, math.nan) if baseline else math.nan
        if math.isnan(mine) or math.isnan(base) or base == 0 or mine == 0:
            return 0.0
        return mine / base if TASKS[task].higher_is_better else base / mine

    def fitness(self, c: Candidate) -> float:
        return min(self.ratio(c, task) for task in self.s.tasks)

    # ---- the search -----------------------------------------------------------------------------------
    def run(self):
        self.baseline = canonical_hash(to_text(parse(genome_text(self.s.baseline))))
        for entry in dict.fromkeys((*self.s.start, *self.s.score)):  # the references, fully evaluated
            text = to_text(parse(genome_text(entry)))
            c = self.add(Candidate(canonical_hash(text), text, origin=entry))
            c.rounds = 1
            for task in (self.s.memorization_task, *self.s.tasks):  # the filter: recorded, not applied
                self.score_on(c, task, 1)
            self.record.snapshot(self, history=False)  # a report can show a search still at its references
        for task in self.s.tasks:  # every ratio divides by these
            value = self.candidates[self.baseline].best[task]
            if not (math.isfinite(value) and value > 0):
                raise ConfigError(
                    f"the baseline {self.s.baseline} has no usable best on {task} ({value}): no draw of "
                    f"study {study_prefix(self.s.name, self.baseline, task)}-genome trained; "
                    "check the task's training settings (evolve.task_args)"
                )
        for entry in self.s.start:
            self.list(self.candidates[canonical_hash(to_text(parse(genome_text(entry))))])
        for entry in self.s.score:
            self.candidates[canonical_hash(to_text(parse(genome_text(entry))))].stage = "scored"
        self.record.snapshot(self)
        while self.funnel.generated < self.s.candidates:
            self.step += 1
            if self.rng.random() < self.s.reevaluate:
                self.reevaluate(self.candidates[self.rng.choice(self.listed)])
            else:
                self.try_mutant(self.candidates[self.rng.choice(self.listed)])
            self.record.snapshot(self)
        return self

    def add(self, c: Candidate) -> Candidate:
        self.candidates.setdefault(c.hash, c)
        return self.candidates[c.hash]

    def reevaluate(self, c: Candidate):
        c.rounds += 1
        self.record.event("reevaluated", step=self.step, hash=c.hash, rounds=c.rounds)
        for task in self.s.tasks:
            self.score_on(c, task, c.rounds)
        self.sort_list()

    def try_mutant(self, parent: Candidate):
        genome, mutation = mutate(parse(parent.text), self.rng)
        text = to_text(genome)
        h = canonical_hash(genome)
        self.funnel.generated += 1
        duplicate = h in self.candidates
        self.record.event(
            "generated",
            step=self.step,
            hash=h,
            parent=parent.hash,
            mutation=str(mutation),
            duplicate=duplicate,
        )
        if duplicate:
            self.funnel.duplicates += 1
            return
        c = self.add(Candidate(h, text, "mutant", parent.hash, str(mutation), rounds=1))
        memory = self.score_on(c, self.s.memorization_task, 1)
        if not memory >= self.s.memorization_pass:
            c.stage = "memorization"
            self.funnel.failed_memorization += 1
            return
        for task in self.s.tasks:
            value = self.score_on(c, task, 1)
            if not math.isfinite(value) or self.ratio(c, task) < self.s.drop_below:
                c.stage = task
                self.funnel.dropped[task] = self.funnel.dropped.get(task, 0) + 1
                return
        self.funnel.listed += 1
        self.list(c)

    def list(self, c: Candidate):
        c.stage = "listed"
        self.listed.append(c.hash)
        self.sort_list()
        while len(self.listed) > self.s.list_size:
            out = self.candidates[self.listed.pop()]
            out.stage = "removed"
            self.record.event("removed", step=self.step, hash=out.hash)

    def sort_list(self):
        self.listed.sort(key=lambda h: (-self.fitness(self.candidates[h]), h))
