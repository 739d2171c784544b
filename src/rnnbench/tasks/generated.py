"""Tasks whose examples are generated from a seed: arithmetic, copy, sort, classify.

Training batches are drawn from (run seed, epoch), so an epoch is the same whenever it is replayed;
valid and test sets from ``eval_seed`` (separate streams), so every run of a task config is scored on
the same examples. Subclasses give ``make_example(rng)`` and ``encode(examples) -> Batch``.
Generated training examples are not filtered against the valid and test sets: on small example
spaces (short sorts, few-digit sums) they overlap, as they do in the papers' generators.
"""

from __future__ import annotations

import numpy as np

from rnnbench.errors import check_positive
from rnnbench.tasks.base import Batch, Task

SPLIT_STREAM = {"train": 0, "valid": 1, "test": 2}


class GeneratedTask(Task):
    """Subclasses set what ``make_example`` needs, then call ``super().__init__`` last: it draws the
    valid and test sets."""

    def __init__(self, seed: int, batch_size: int, batches_per_epoch: int, eval_size: int, eval_seed: int):
        for key, value in [
            ("batch_size", batch_size),
            ("batches_per_epoch", batches_per_epoch),
            ("eval_size", eval_size),
        ]:
            check_positive(f"task.{key}", value, integer=True)
        self.seed, self.eval_seed = seed, eval_seed
        self.batch_size, self.batches_per_epoch, self.eval_size = batch_size, batches_per_epoch, eval_size
        self.eval_chunk = 4 * batch_size  # no gradients at evaluation: larger batches fit
        self._eval_sets = {
            s: self._examples(eval_seed, SPLIT_STREAM[s], 0, eval_size) for s in ("valid", "test")
        }

    def make_example(self, rng: np.random.Generator):
        raise NotImplementedError

    def encode(self, examples) -> Batch:
        raise NotImplementedError

    def _examples(self, seed, stream, epoch, n) -> list:
        rng = np.random.default_rng([seed, stream, epoch])
        return [self.make_example(rng) for _ in range(n)]

    def eval_examples(self, split: str, max_batches: int | None = None) -> list:
        return self._eval_sets[split][: None if max_batches is None else max_batches * self.eval_chunk]

    def train_batches(self, epoch):
        rng = np.random.default_rng([self.seed, SPLIT_STREAM["train"], epoch])
        for _ in range(self.batches_per_epoch):
            yield self.encode([self.make_example(rng) for _ in range(self.batch_size)])

    def eval_batches(self, split):
        for chunk in chunks(self._eval_sets[split], self.eval_chunk):
            yield self.encode(chunk)


def chunks(items, n):
    return [items[k : k + n] for k in range(0, len(items), n)]
