"""Copy, sort and classify: targets and labels recomputed from the inputs, masks, padded losses, runs."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from helpers.cli import rnnbench, run_dir
from helpers.configs import compose_config
from rnnbench.errors import ConfigError
from rnnbench.model.network import build_model
from rnnbench.tasks.classify import ClassifyTask
from rnnbench.tasks.copy import CopyTask
from rnnbench.tasks.sort import SortTask


def columns(task, batch):
    """Per example: (input symbols, counted positions, target symbols at those positions)."""
    out = []
    for b in range(batch.inputs.shape[1]):
        at = batch.mask[:, b].nonzero().flatten().tolist()
        inputs = [task.alphabet[k] for k in batch.inputs[:, b]]
        out.append((inputs, at, [task.alphabet[k] for k in batch.targets[at, b]]))
    return out


def test_copy_targets_are_the_symbols_before_the_delimiter():
    task = CopyTask(seed=0, num_symbols=7, batch_size=64)
    seen = set()
    for inputs, at, targets in columns(task, next(task.train_batches(0))):
        assert len(inputs) == 10 and inputs[5] == "|"
        assert at == [5, 6, 7, 8, 9], "only the five answer positions count"
        assert targets == inputs[:5] and inputs[6:] == inputs[:4], "teacher forcing feeds the answer"
        seen |= set(inputs[:5])
    assert seen == set("abcdefg")


def test_sort_targets_are_the_numbers_sorted():
    task = SortTask(seed=0, num_values=20, min_length=1, max_length=12, batch_size=200)
    lengths = set()
    for inputs, at, targets in columns(task, next(task.train_batches(0))):
        n = inputs.index("|")
        numbers = [int(s) for s in inputs[:n]]
        lengths.add(n)
        assert at == list(range(n, 2 * n)), "only the answer positions count"
        assert [int(t) for t in targets] == sorted(numbers)  # numeric order: 2 before 10
        assert inputs[n + 1 : 2 * n] == targets[:-1], "teacher forcing feeds the answer"
        assert all(s == "_" for s in inputs[2 * n + 1 :]), "padding only at the end"
    assert lengths == set(range(1, 13))


def majority(symbols):
    counts = np.bincount(symbols)
    return int(counts.argmax()) if (counts == counts.max()).sum() == 1 else None


@pytest.mark.parametrize("rule", ["majority", "parity"])
def test_classify_labels_and_step_masks(rule):
    task = ClassifyTask(seed=0, rule=rule, num_symbols=3, min_length=2, max_length=9, batch_size=300)
    batch = next(task.train_batches(0))
    labels = []
    for b in range(batch.inputs.shape[1]):
        n = int(batch.step_mask[:, b].sum())
        assert batch.step_mask[:n, b].all() and not batch.step_mask[n:, b].any()
        symbols = (batch.inputs[:n, b] - 1).tolist()  # id 0 is padding, then a, b, c
        assert min(symbols) >= 0 and (batch.inputs[n:, b] == 0).all()
        label = majority(symbols) if rule == "majority" else symbols.count(0) % 2
        assert label is not None, "ties are redrawn"
        assert int(batch.targets[0, b]) == label  # many-to-one: one target per sequence
        labels.append(label)
    assert set(labels) == set(range(task.output_size))


def tiny_model(task_name, task):
    torch.manual_seed(0)
    return build_model(compose_config(f"task={task_name}", "debug=fast"), task).eval()


def test_classify_padded_loss_equals_each_sequence_alone():
    task = ClassifyTask(seed=0)
    model = tiny_model("classify", task)
    examples = [("abca", 0), ("dd", 3), ("abcdbb", 1)]
    batch = task.encode(examples)
    with torch.no_grad():
        logits, _ = model(batch.inputs, None, batch.step_mask)
        total, count = task.loss(logits, batch)
        direct = 0.0
        for sequence, label in examples:
            alone, _ = model(torch.tensor([[task.alphabet.index(c)] for c in sequence]))
            direct += float(F.cross_entropy(alone[0], torch.tensor([label])))
    assert count == 3 and float(total) == pytest.approx(direct, rel=1e-5)


def test_sort_padded_loss_equals_each_example_alone():
    task = SortTask(seed=0)
    model = tiny_model("sort", task)
    examples = [
        (["3", "1", "|"], ["1", "3"]),
        (["9", "|"], ["9"]),
        (["5", "0", "5", "2", "|"], ["0", "2", "5", "5"]),
    ]
    with torch.no_grad():
        logits, _ = model(task.encode(examples).inputs)
        total, count = task.loss(logits, task.encode(examples))
        direct = 0.0
        for prompt, answer in examples:
            ids = torch.tensor(task.ids(prompt + answer))
            alone, _ = model(ids[:-1, None])
            direct += float(F.cross_entropy(alone[len(prompt) - 1 :, 0], ids[len(prompt) :], reduction="sum"))
    assert count == 7 and float(total) == pytest.approx(direct, rel=1e-5)


class CopyOracle(nn.Module):
    """Predicts the input ``lag`` steps back; its state is the whole input history."""

    def __init__(self, vocab, lag):
        super().__init__()
        self.vocab, self.lag = vocab, lag

    def forward(self, inputs, state=None, step_mask=None):
        history = inputs if state is None else torch.cat([state, inputs])
        new = torch.arange(len(history) - len(inputs), len(history))
        logits = F.one_hot(history[(new - self.lag).clamp(min=0)], self.vocab).float()
        return logits, history


@pytest.mark.parametrize("lag, passes", [(5, 1.0), (4, 0.0)])
def test_copy_metrics_of_an_oracle(lag, passes):
    task = CopyTask(seed=0, eval_size=100)
    metrics = task.evaluate(CopyOracle(task.output_size, lag), "valid", "cpu")
    assert metrics["pass"] == passes
    if passes:
        assert metrics["acc"] == 1.0 and metrics["exact"] == 1.0, "teacher forcing and greedy decoding agree"
    else:
        assert metrics["acc"] < 0.2 and metrics["exact"] == 0.0


@pytest.mark.parametrize(
    "task, metrics",
    [
        ("copy", {"acc", "exact", "loss", "pass"}),
        ("sort", {"acc", "exact", "loss"}),
        ("classify", {"acc", "loss"}),
    ],
)
def test_debug_fast_run(tmp_path, task, metrics):
    result = rnnbench(f"task={task}", "debug=fast", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    summary = json.loads((run_dir(tmp_path) / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["headline"] == "valid/acc"
    assert set(summary["test"]) == {f"test/{m}" for m in metrics}


@pytest.mark.parametrize(
    "task, option, named",
    [
        (ClassifyTask, {"rule": "nope"}, "task.rule='nope'"),
        (ClassifyTask, {"num_symbols": 1}, "task.num_symbols=1"),
        (SortTask, {"max_length": 1}, "task.max_length=1"),
        (CopyTask, {"length": 0}, "task.length=0"),
    ],
)
def test_bad_options_name_the_value(task, option, named):
    with pytest.raises(ConfigError, match=re.escape(named)):
        task(seed=0, **option)
