"""A short fixed-seed run learns: accuracy rises well above what the answer statistics alone give."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from helpers.configs import compose_config
from rnnbench.tasks import build_task
from rnnbench.training.trainer import train


def majority_baseline(task) -> float:
    """Accuracy of always predicting the most common character at each answer position."""
    at = {}
    for _, answer in task._eval_sets["valid"]:
        for k, c in enumerate(answer):
            at.setdefault(k, Counter())[c] += 1
    return sum(c.most_common(1)[0][1] for c in at.values()) / sum(sum(c.values()) for c in at.values())


@pytest.mark.slow
def test_lstm_learns_small_arithmetic(tmp_path):
    cfg = compose_config(
        "task.max_digits=2",
        "task.max_distractors=1",
        "task.eval_size=300",
        "cell.hidden_size=64",
        "trainer.lr=0.01",
        "trainer.max_steps=800",
        "trainer.eval_every=200",
        "trainer.progress=false",
        "seed=0",
    )
    baseline = majority_baseline(build_task(cfg.task, cfg.seed))
    summary = train(cfg, tmp_path)
    records = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    best = summary["best"]["valid/acc"]
    assert 0.3 < baseline < 0.5
    assert best > baseline + 0.15, records
    assert best > records[0]["valid/acc"] + 0.05, "still improving after the first evaluation"
    assert summary["best"]["valid/exact"] > 0.1
    assert summary["test"]["test/acc"] > baseline + 0.1
