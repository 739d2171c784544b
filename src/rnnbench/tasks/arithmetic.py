"""Arithmetic (Jozefowicz et al. 2015): read ``a±b=`` with distractor letters, emit the digits of the result.

An example with its answer (3369 − 13994433)::

    3e36d9-h1h39f94eeh43keg3c=-13991064.

Each operand has a digit count drawn uniformly from [min_digits, max_digits]; the operator is + or −;
between successive input characters (the ``=`` included) sit 0..max_distractors letters drawn from
``distractors``. The answer ends with the end symbol ``.``. The model reads the prompt and then
predicts the answer one character at a time; training uses teacher forcing.

Metrics: ``acc``, per-character accuracy on the answer characters (end symbol included) under
teacher forcing (the headline: the paper's accuracy, our reading; the paper does not say whether it
counted an end symbol); ``acc_no_end``, the same without the end symbol; ``exact``, the fraction of
whole answers right under greedy decoding; ``loss``, cross-entropy per answer character. Batching,
splits and metrics are those of every prompt-then-answer task (``rnnbench.tasks.prompt_answer``).
"""

from __future__ import annotations

import numpy as np

from rnnbench.errors import ConfigError, check_positive
from rnnbench.tasks.prompt_answer import PAD, PromptAnswerTask

END = "."


def make_example(rng: np.random.Generator, min_digits, max_digits, max_distractors, distractors):
    """Returns (prompt, answer), e.g. ("3e36d9-h1h3=", "-13991064.")."""

    def number():
        n = rng.integers(min_digits, max_digits + 1)
        first = rng.integers(1, 10) if n > 1 else rng.integers(0, 10)
        rest = rng.integers(0, 10, size=n - 1)
        return int("".join(map(str, [first, *rest])))

    a, b, op = number(), number(), "+-"[rng.integers(0, 2)]
    chars = [*str(a), op, *str(b), "="]
    prompt = chars[0]
    for c in chars[1:]:
        k = rng.integers(0, max_distractors + 1)
        prompt += "".join(rng.choice(list(distractors), size=k)) + c
    return prompt, str(a + b if op == "+" else a - b) + END


class ArithmeticTask(PromptAnswerTask):
    name = "arithmetic"

    def __init__(
        self,
        seed: int,
        min_digits: int = 1,
        max_digits: int = 8,
        max_distractors: int = 3,
        distractors: str = "abcdefghijk",
        batch_size: int = 32,
        batches_per_epoch: int = 100,
        eval_size: int = 1000,
        eval_seed: int = 1234,
    ):
        check_positive("task.min_digits", min_digits, integer=True)
        check_positive("task.max_distractors", max_distractors, allow_zero=True, integer=True)
        if max_digits < min_digits:
            raise ConfigError(f"task.max_digits={max_digits} is below task.min_digits={min_digits}")
        if set(distractors) & set("0123456789+-=" + PAD + END) or not distractors:
            raise ConfigError(f"task.distractors={distractors!r} must be letters, not digits or symbols")
        self.options = (min_digits, max_digits, max_distractors, distractors)
        self.alphabet = PAD + "0123456789+-=" + END + "".join(sorted(set(distractors)))
        super().__init__(seed, batch_size, batches_per_epoch, eval_size, eval_seed)

    def make_example(self, rng):
        return make_example(rng, *self.options)

    def metric_sums(self, logits, batch):
        sums = super().metric_sums(logits, batch)
        digits = batch.mask & (batch.targets != self.index[END])  # answer characters but the end symbol
        hits = (logits.argmax(-1) == batch.targets) & digits
        return sums | {"acc_no_end": (hits.sum().float(), digits.sum().float())}
