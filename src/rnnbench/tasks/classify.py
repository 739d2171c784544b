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
from rnnbench.tasks.base import Batch, Task
from rnnbench.tasks.prompt_answer import PAD, SPLIT_STREAM, chunks

RULES = ("majority", "parity")


def label_of(sequence: str, rule: str, symbols: str) -> int | None:
    """The class of ``sequence``; None for a majority tie (such a sequence is not used)."""
    if rule == "parity":
        return sequence.count("a") % 2
    (top, n), *rest = Counter(sequence).most_common(2)
    return None if rest and rest[0][1] == n else symbols.index(top)


class ClassifyTask(Task):
    name = "classify"
    headline = "acc"
    higher_is_better = True
    metric_names = ("acc", "loss")
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
        for key, value in [
            ("min_length", min_length),
            ("batch_size", batch_size),
            ("batches_per_epoch", batches_per_epoch),
            ("eval_size", eval_size),
        ]:
            check_positive(f"task.{key}", value, integer=True)
        if max_length < min_length:
            raise ConfigError(f"task.max_length={max_length} is below task.min_length={min_length}")
        self.rule, self.lengths = rule, (min_length, max_length)
        self.symbols = string.ascii_lowercase[:num_symbols]
        self.alphabet = PAD + self.symbols
        self.input_size = len(self.alphabet)
        self.output_size = num_symbols if rule == "majority" else 2
        self.seed, self.batch_size, self.batches_per_epoch = seed, batch_size, batches_per_epoch
        self.eval_chunk = 4 * batch_size  # no gradients at evaluation: larger batches fit
        self._eval_sets = {
            s: self._examples(np.random.default_rng([eval_seed, SPLIT_STREAM[s], 0]), eval_size)
            for s in ("valid", "test")
        }

    def make_example(self, rng: np.random.Generator) -> tuple[str, int]:
        while True:
            n = rng.integers(self.lengths[0], self.lengths[1] + 1)
            sequence = "".join(rng.choice(list(self.symbols), size=n))
            label = label_of(sequence, self.rule, self.symbols)
            if label is not None:
                return sequence, label

    def _examples(self, rng, n):
        return [self.make_example(rng) for _ in range(n)]

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

    def train_batches(self, epoch):
        rng = np.random.default_rng([self.seed, SPLIT_STREAM["train"], epoch])
        for _ in range(self.batches_per_epoch):
            yield self.encode(self._examples(rng, self.batch_size))

    def eval_batches(self, split):
        for chunk in chunks(self._eval_sets[split], self.eval_chunk):
            yield self.encode(chunk)

    @torch.no_grad()
    def evaluate(self, model, split, device, max_batches=None):
        total = count = correct = 0.0
        for k, batch in enumerate(self.eval_batches(split)):
            if max_batches is not None and k >= max_batches:
                break
            batch = batch.to(device)
            logits, _ = model(batch.inputs, None, batch.step_mask)
            s, n = self.loss(logits, batch)
            total, count = total + float(s), count + n
            correct += float((logits.argmax(-1) == batch.targets).sum())
        return {"acc": correct / count, "loss": total / count}
