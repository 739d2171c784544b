"""The arithmetic generator, checked by parsing its strings and evaluating them in Python."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from rnnbench.tasks.arithmetic import END, ArithmeticTask, make_example

OPTIONS = dict(min_digits=1, max_digits=8, max_distractors=3, distractors="abcdefghijk")


def test_answers_are_right_and_distractors_only_between_characters():
    rng = np.random.default_rng(0)
    counts, digit_counts = [], set()
    for _ in range(2000):
        prompt, answer = make_example(rng, *OPTIONS.values())
        assert prompt[0].isdigit(), "no distractor before the first character"
        assert prompt.endswith("=")
        clean = re.sub("[a-k]", "", prompt)
        match = re.fullmatch(r"(\d+)([+-])(\d+)=", clean)
        assert match, prompt
        a, op, b = int(match[1]), match[2], int(match[3])
        assert len(match[1]) == len(str(a)), "no leading zeros"
        digit_counts |= {len(match[1]), len(match[3])}
        assert answer == str(a + b if op == "+" else a - b) + END
        assert set(prompt) <= set("0123456789+-=abcdefghijk")
        counts += [len(gap) for gap in re.split(r"[\d+=-]", prompt)[1:-1]]  # the gaps between chars
    assert digit_counts == set(range(1, 9))
    assert max(counts) == 3 and min(counts) == 0
    assert abs(np.mean(counts) - 1.5) < 0.1  # uniform on 0..3


def test_splits_are_fixed_and_separate():
    a = ArithmeticTask(seed=1, eval_size=50)
    b = ArithmeticTask(seed=2, eval_size=50)
    assert a._eval_sets["test"] == b._eval_sets["test"], "test set does not depend on the run seed"
    assert a._eval_sets["test"] != a._eval_sets["valid"]
    first_a, first_b = next(a.train_batches(0)), next(b.train_batches(0))
    assert not torch.equal(first_a.inputs[:5], first_b.inputs[:5])
    assert torch.equal(next(a.train_batches(0)).inputs, first_a.inputs), "deterministic per epoch"


def test_batch_layout_masks_only_answer_characters():
    task = ArithmeticTask(seed=0, batch_size=4)
    examples = [("1+2=", "3."), ("12a-3=", "9.")]
    batch = task.encode(examples)
    for b, (prompt, answer) in enumerate(examples):
        predicted_at = batch.mask[:, b].nonzero().flatten().tolist()
        assert predicted_at == list(range(len(prompt) - 1, len(prompt) + len(answer) - 1))
        targets = "".join(task.alphabet[k] for k in batch.targets[predicted_at, b])
        assert targets == answer
        inputs = "".join(task.alphabet[k] for k in batch.inputs[: len(prompt) + len(answer) - 1, b])
        assert inputs == (prompt + answer)[:-1]


def test_accuracy_with_and_without_the_end_symbol():
    """A predictor that is right exactly on the end symbols and on the first answer digit: ``acc``
    counts both, ``acc_no_end`` only the digits (and the sign)."""
    task = ArithmeticTask(seed=0, batch_size=2)
    examples = [("1+2=", "3."), ("12a-30=", "-18.")]
    batch = task.encode(examples)
    logits = torch.zeros(*batch.targets.shape, task.output_size)
    wrong = task.index["7"]
    for b, (prompt, answer) in enumerate(examples):
        for k, symbol in enumerate(answer):
            t = len(prompt) - 1 + k
            right = symbol == END or k == 0
            logits[t, b, batch.targets[t, b] if right else wrong] = 1.0
    sums = task.metric_sums(logits, batch)
    acc, acc_no_end = (float(s / n) for s, n in (sums["acc"], sums["acc_no_end"]))
    assert acc == pytest.approx((2 + 2) / 6)  # "3." and "-18.": 2 first symbols and 2 end symbols of 6
    assert acc_no_end == pytest.approx(2 / 4)  # "3" and "-18": the 2 first symbols of 4
