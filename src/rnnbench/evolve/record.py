"""What an architecture search decided, as data: ``<results_dir>/evolve/<name>/events.jsonl`` (one line per
evaluation, mutant, re-evaluation and removal, in order) and ``summary.json`` (the funnel, the list
with fitness, every candidate with its genome, equations, lineage and per-task bests, and fitness over
the search). Both are written anew by every run of the same command: the controller replays its choices,
so a rerun writes the same lines. The report's architectures section reads ``summary.json``."""

from __future__ import annotations

import os
from dataclasses import asdict
from pathlib import Path

from rnnbench.cells.genome import equations, parse
from rnnbench.errors.write import writing
from rnnbench.training.runfiles import to_json

FOLDER = "evolve"


class Record:
    def __init__(self, results_dir: str, name: str, settings: dict):
        self.dir = Path(results_dir) / FOLDER / name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.settings, self.history, self.equations = settings, [], {}
        self.events_path = self.dir / "events.jsonl"
        with writing(self.events_path):
            self.events = self.events_path.open("w")

    def event(self, kind: str, **fields) -> None:
        with writing(self.events_path):
            self.events.write(to_json({"event": kind, **fields}) + "\n")
            self.events.flush()

    def snapshot(self, evolution, history: bool = True) -> None:
        """Writes summary.json; ``history``: also adds a point to fitness over the search."""
        listed = [evolution.candidates[h] for h in evolution.listed]
        mutants = [c for c in listed if c.origin == "mutant"]
        if history:
            self.history.append(
                {
                    "step": evolution.step,
                    "generated": evolution.funnel.generated,
                    "best": max((evolution.fitness(c) for c in listed), default=None),
                    "best_mutant": max((evolution.fitness(c) for c in mutants), default=None),
                }
            )
        candidates = []
        for c in evolution.candidates.values():
            if c.hash not in self.equations:  # a genome's equations do not change: written out once
                self.equations[c.hash] = equations(parse(c.text))
            row = asdict(c) | {"equations": self.equations[c.hash]}
            if c.stage in ("listed", "scored", "removed") or c.origin != "mutant":
                row |= {
                    "fitness": evolution.fitness(c),
                    "ratios": {t: evolution.ratio(c, t) for t in evolution.s.tasks},
                }
            candidates.append(row)
        summary = {
            "settings": self.settings,
            "baseline": evolution.baseline,
            "steps": evolution.step,
            "funnel": asdict(evolution.funnel),
            "listed": list(evolution.listed),
            "candidates": candidates,
            "history": self.history,
        }
        path, tmp = self.dir / "summary.json", self.dir / "summary.json.tmp"
        with writing(path):
            tmp.write_text(to_json(summary, indent=1))
            os.replace(tmp, path)

    def close(self) -> None:
        self.events.close()
