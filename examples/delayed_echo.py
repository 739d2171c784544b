"""A task from the user's own module: repeat the symbol seen ``delay`` steps earlier.

Used as ``python -m rnnbench --config-dir examples/my_tasks task=delayed_echo`` with ``examples/`` on
``PYTHONPATH`` (docs/tasks.md, "Your own task"). A task is a ``rnnbench.tasks.Task``; a generated one
subclasses ``GeneratedTask`` and writes ``make_example`` and ``encode``; ``metric_sums`` adds metrics.
"""

from __future__ import annotations

import numpy as np
import torch

from rnnbench.errors import ConfigError
from rnnbench.tasks import Batch
from rnnbench.tasks.generated import GeneratedTask


class DelayedEcho(GeneratedTask):
    headline = "acc"  # selects the best evaluation
    higher_is_better = True

    def __init__(
        self,
        seed: int,
        delay: int = 3,
        num_symbols: int = 8,
        length: int = 20,
        batch_size: int = 32,
        batches_per_epoch: int = 50,
        eval_size: int = 256,
        eval_seed: int = 1234,
    ):
        if not 0 < delay < length:
            raise ConfigError(f"task.delay={delay!r} is not valid; it must be in 1..{length - 1}")
        self.delay, self.num_symbols, self.length = delay, num_symbols, length
        self.input_size = self.output_size = num_symbols
        super().__init__(seed, batch_size, batches_per_epoch, eval_size, eval_seed)

    def make_example(self, rng: np.random.Generator):
        return rng.integers(0, self.num_symbols, self.length)

    def encode(self, examples) -> Batch:
        inputs = torch.as_tensor(np.stack(examples).T)  # (T, B) symbol ids
        targets = torch.roll(inputs, self.delay, 0)  # the symbol `delay` steps back
        mask = (torch.arange(self.length) >= self.delay)[:, None].expand_as(inputs)  # nothing to echo yet
        return Batch(inputs, targets, mask)

    def metric_sums(self, logits, batch):
        correct = (logits.argmax(-1) == batch.targets) & batch.mask
        return super().metric_sums(logits, batch) | {"acc": (correct.sum().float(), batch.mask.sum().float())}
