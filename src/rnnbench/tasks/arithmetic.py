"""Arithmetic (Jozefowicz et al. 2015): read ``a±b=`` with distractor letters, emit the digits of the result.

An example with its answer (3369 − 13994433)::

    3e36d9-h1h39f94eeh43keg3c=-13991064.

Each operand has a digit count drawn uniformly from [min_digits, max_digits]; the operator is + or −;
between successive input characters (the ``=`` included) sit 0..max_distractors letters drawn from
``distractors``. The answer ends with the end symbol ``.``. The model reads the prompt and then
predicts the answer one character at a time; training uses teacher forcing.

Metrics: ``acc``, per-character accuracy on the answer characters (end symbol included) under
teacher forcing (the paper's accuracy, our reading); ``exact``, the fraction of whole answers right under
greedy decoding; ``loss``, cross-entropy per answer character.
Training batches come from the run's seed; valid and test sets from ``eval_seed`` (separate streams),
so every run of a given task config is scored on the same examples.
"""

from __future__ import annotations

import numpy as np
import torch

from rnnbench.errors import ConfigError, check_positive
from rnnbench.tasks.base import Batch, Task

PAD, END = "_", "."
SPLIT_STREAM = {"train": 0, "valid": 1, "test": 2}


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


class ArithmeticTask(Task):
    name = "arithmetic"
    headline = "acc"
    higher_is_better = True
    metric_names = ("acc", "exact", "loss")

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
        for key, value in [
            ("min_digits", min_digits),
            ("batch_size", batch_size),
            ("batches_per_epoch", batches_per_epoch),
            ("eval_size", eval_size),
        ]:
            check_positive(f"task.{key}", value)
        check_positive("task.max_distractors", max_distractors, allow_zero=True)
        if max_digits < min_digits:
            raise ConfigError(f"task.max_digits={max_digits} is below task.min_digits={min_digits}")
        if set(distractors) & set("0123456789+-=" + PAD + END) or not distractors:
            raise ConfigError(f"task.distractors={distractors!r} must be letters, not digits or symbols")
        self.options = (min_digits, max_digits, max_distractors, distractors)
        self.seed, self.eval_seed = seed, eval_seed
        self.batch_size, self.batches_per_epoch, self.eval_size = (
            batch_size,
            batches_per_epoch,
            eval_size,
        )
        self.alphabet = PAD + "0123456789+-=" + END + "".join(sorted(set(distractors)))
        self.index = {c: k for k, c in enumerate(self.alphabet)}
        self.input_size = self.output_size = len(self.alphabet)
        self.eval_chunk = 4 * batch_size  # no gradients at evaluation: larger batches fit
        self.max_answer = max_digits + 2  # sign, digits (a carry adds one, a sign never with it), END
        self._eval_sets = {
            s: self._examples(eval_seed, SPLIT_STREAM[s], 0, eval_size) for s in ("valid", "test")
        }

    def _examples(self, seed, stream, epoch, n):
        rng = np.random.default_rng([seed, stream, epoch])
        return [make_example(rng, *self.options) for _ in range(n)]

    def encode(self, examples) -> Batch:
        """Teacher-forced batch: input = prompt + answer[:-1], target = the next character,
        counted only where the target is an answer character. Padding at the end."""
        seqs = [p + a for p, a in examples]
        T = max(map(len, seqs)) - 1
        ids = torch.zeros(T + 1, len(seqs), dtype=torch.long)
        mask = torch.zeros(T, len(seqs), dtype=torch.bool)
        for b, ((prompt, _), s) in enumerate(zip(examples, seqs)):
            ids[: len(s), b] = torch.tensor([self.index[c] for c in s])
            mask[len(prompt) - 1 : len(s) - 1, b] = True
        return Batch(ids[:-1], ids[1:], mask)

    def train_batches(self, epoch):
        rng = np.random.default_rng([self.seed, SPLIT_STREAM["train"], epoch])
        for _ in range(self.batches_per_epoch):
            yield self.encode([make_example(rng, *self.options) for _ in range(self.batch_size)])

    def eval_batches(self, split):
        for chunk in _chunks(self._eval_sets[split], self.eval_chunk):
            yield self.encode(chunk)

    @torch.no_grad()
    def evaluate(self, model, split, device, max_batches=None):
        total = count = correct = 0.0
        examples = self._eval_sets[split][: None if max_batches is None else max_batches * self.eval_chunk]
        for chunk in _chunks(examples, self.eval_chunk):
            batch = self.encode(chunk).to(device)
            logits, _ = model(batch.inputs)  # padding is at the end: no step mask needed
            s, n = self.loss(logits, batch)
            total, count = total + float(s), count + n
            correct += float(((logits.argmax(-1) == batch.targets) & batch.mask).sum())
        hits = sum(self._decode_hits(model, chunk, device) for chunk in _chunks(examples, self.eval_chunk))
        return {"acc": correct / count, "exact": hits / len(examples), "loss": total / count}

    def _decode_hits(self, model, examples, device) -> int:
        """Greedy free-running decoding after each prompt; how many answers are exactly right."""
        prompts = [p for p, _ in examples]
        lengths = torch.tensor([len(p) for p in prompts], device=device)
        T = int(lengths.max())
        ids = torch.zeros(T, len(prompts), dtype=torch.long)
        for b, p in enumerate(prompts):
            ids[: len(p), b] = torch.tensor([self.index[c] for c in p])
        ids = ids.to(device)
        mask = torch.arange(T, device=device)[:, None] < lengths[None, :]
        logits, state = model(ids, None, mask)  # the mask freezes each state at its prompt's end
        last = logits[lengths - 1, torch.arange(len(prompts), device=device)]
        out = []
        for _ in range(self.max_answer):
            token = last.argmax(-1)
            out.append(token)
            logits, state = model(token[None], state)
            last = logits[0]
        predicted = torch.stack(out, 1).tolist()
        end = self.index[END]
        hits = 0
        for (_, answer), row in zip(examples, predicted):
            text = "".join(self.alphabet[k] for k in row[: row.index(end) + 1]) if end in row else ""
            hits += text == answer
        return hits


def _chunks(items, n):
    return [items[k : k + n] for k in range(0, len(items), n)]
