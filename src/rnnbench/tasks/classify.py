"""Classify (many-to-one): read a whole sequence, then name a property of its content.

Sequences of ``min_length``..``max_length`` symbols (uniform length) drawn uniformly from the first
``num_symbols`` lowercase letters. The label depends on every symbol (``rule``):

* ``majority``: the most frequent symbol (``num_symbols`` classes); sequences with a tie for the top
  count are drawn again, so every label is unambiguous.
* ``parity``: whether the letter ``a`` occurs an odd number of times (2 classes: 0 even, 1 odd).

Batches are padded at the end: ``step_mask`` marks the real steps (the model's states freeze on
padding). The task is many-to-one: the model predicts once per sequence, from its output at the last
real step (with ``model.bidirectional``, the backward half's output at step 0), so the targets are the
labels, (1, B). Metrics: ``acc`` (the headline) and ``loss``
(cross-entropy per sequence). Training sequences come from the run's seed and the epoch; valid and
test sets from ``eval_seed``.
"""

from __future__ import annotations

import string
from collections import Counter

import numpy as np
import torch

from rnnbench.errors import ConfigError, check_choice, check_positive
from rnnbench.tasks.base import Batch
from rnnbench.tasks.generated import GeneratedTask
from rnnbench.tasks.prompt_answer import PAD

RULES = ("majority", "parity")


def label_of(sequence: str, rule: str, symbols: str) -> int | None:
    """The class of ``sequence``; None for a majority tie (such a sequence is not used)."""
    if rule == "parity":
        return sequence.count("a") % 2
    (top, n), *rest = Counter(sequence).most_common(2)
    return None if rest and rest[0][1] == n else symbols.index(top)


class ClassifyTask(GeneratedTask):
    name = "classify"
    headline = "acc"
    higher_is_better = True
    many_to_one = True

    def __init__(
        self,
        seed: int,
        rule: str = "majority",
        num_symbols: int = 4,
        min_length: int = 5,
        max_length: int = 30,
        batch_size: int = 32,
        batches_per_epoch: int = 100,
        eval_size: int = 1000,
        eval_seed: int = 1234,
    ):
        check_choice("task.rule", rule, RULES)
        if not 2 <= num_symbols <= 26:
            raise ConfigError(f"task.num_symbols={num_symbols!r} is not valid; it must be in 2..26")
        check_positive("task.min_length", min_length, integer=True)
        if max_length < min_length:
            raise ConfigError(f"task.max_length={max_length} is below task.min_length={min_length}")
        self.rule, self.lengths = rule, (min_length, max_length)
        self.symbols = string.ascii_lowercase[:num_symbols]
        self.alphabet = PAD + self.symbols
        self.input_size = len(self.alphabet)
        self.output_size = num_symbols if rule == "majority" else 2
        super().__init__(seed, batch_size, batches_per_epoch, eval_size, eval_seed)

    def make_example(self, rng: np.random.Generator) -> tuple[str, int]:
        while True:
            n = rng.integers(self.lengths[0], self.lengths[1] + 1)
            sequence = "".join(rng.choice(list(self.symbols), size=n))
            label = label_of(sequence, self.rule, self.symbols)
            if label is not None:
                return sequence, label

    def encode(self, examples) -> Batch:
        """Symbols padded at the end, and the labels as targets (1, B)."""
        T = max(len(s) for s, _ in examples)
        inputs = torch.zeros(T, len(examples), dtype=torch.long)
        step_mask = torch.zeros(T, len(examples), dtype=torch.bool)
        for b, (sequence, _) in enumerate(examples):
            inputs[: len(sequence), b] = torch.tensor([self.alphabet.index(c) for c in sequence])
            step_mask[: len(sequence), b] = True
        targets = torch.tensor([[label for _, label in examples]])
        return Batch(inputs, targets, None, step_mask)

    def metric_sums(self, logits, batch):
        loss, count = self.loss(logits, batch)
        return {"loss": (loss, count), "acc": ((logits.argmax(-1) == batch.targets).sum().float(), count)}
