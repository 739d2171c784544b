"""Run folders: the small trainer settings several tests share, the metrics and weights a run wrote, and a
run folder written with known values (as a finished or failed run leaves it) for the report."""

from __future__ import annotations

import json
from pathlib import Path

import torch

TIMING = ("tokens_per_s", "data_s", "wall_s")
SMALL = [
    "task.max_digits=2",
    "cell.hidden_size=16",
    "trainer.progress=false",
    "model.dropout=0.3",
    "cell.num_layers=2",
    "trainer.eval_batches=2",
    "task.eval_size=64",
]


def metrics(run_dir):
    """metrics.jsonl's records without their timings (which differ between identical runs)."""
    lines = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k not in TIMING} for r in lines]


def weights(run_dir):
    return torch.load(run_dir / "checkpoint.pt", weights_only=True)["model"]


def assert_same_run(a, b):
    assert metrics(a) == metrics(b)
    for (name, x), (_, y) in zip(weights(a).items(), weights(b).items()):
        assert torch.equal(x, y), name


def write_run(run_dir: Path, task, cell, headline, higher, valid, test, status, lr=None, curve=3):
    run_dir.mkdir(parents=True)
    metric = headline.split("/")[1]
    lines = [
        {
            "step": 10 * (k + 1),
            "epoch": k,
            "split": "valid",
            headline: (valid or 0.5) * (0.8 + 0.1 * k),
            "train/loss": 1.0,
            "lr": 0.1,
            "tokens_per_s": 1.0,
            "data_s": 0.0,
            "wall_s": 2.0 * (k + 1),
        }
        for k in range(curve)
    ]
    if status == "completed":
        lines.append({"step": 10, "split": "test", f"test/{metric}": test})
    (run_dir / "metrics.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    summary = {
        "status": status,
        "stop_reason": "max_steps",
        "cell": cell,
        "task": task,
        "headline": headline,
        "higher_is_better": higher,
        "steps": 30,
        "epochs": 3,
        "best_step": 10,
        "best": {headline: valid} if valid is not None else {},
        "final": {},
        "test": {f"test/{metric}": test} if status == "completed" else {},
        "seed": 1,
        "device": "cpu",
        "num_params": 5000,
        "hidden_size": 32,
        "num_layers": 1,
        "wall_s": 6.0,
    }
    (run_dir / "summary.json").write_text(json.dumps(summary))
    (run_dir / "config.yaml").write_text(
        f"cell:\n  name: {cell}\n  hidden_size: 32\ntask:\n  name: {task}\ntrainer:\n  lr: {lr}\n"
    )
