"""Prompt-then-answer tasks (arithmetic, copy, sort): the model reads a prompt, then emits the answer.

One example is a pair (prompt, answer) of symbol sequences (a string, or a list of symbol strings).
In one stream the model reads ``prompt + answer[:-1]`` and predicts the next symbol; only the answer
symbols count (teacher forcing in training)::

    inputs   p0 p1 p2 a0 a1 _  _        (padding ``_`` = id 0, at the end)
    targets  p1 p2 a0 a1 a2 _  _
    mask     .  .  x  x  x  .  .        (x: the target is an answer symbol)

Metrics: ``acc``, per-symbol accuracy on the answer under teacher forcing; ``exact``, the fraction of
whole answers right under greedy free-running decoding after the prompt; ``loss``, cross-entropy per
answer symbol. Training examples come from the run's seed and the epoch; valid and test sets from
``eval_seed`` (separate streams), so every run of a given task config is scored on the same examples.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from rnnbench.errors import check_positive
from rnnbench.tasks.base import Batch, Task

PAD = "_"
SPLIT_STREAM = {"train": 0, "valid": 1, "test": 2}
Example = tuple[Sequence[str], Sequence[str]]


class PromptAnswerTask(Task):
    """Subclasses set ``alphabet`` (a sequence of symbols, ``PAD`` first) and ``make_example``, then
    call ``super().__init__`` last, which draws the valid and test sets."""

    headline = "acc"
    higher_is_better = True
    metric_names = ("acc", "exact", "loss")
    alphabet: Sequence[str]

    def __init__(self, seed: int, batch_size: int, batches_per_epoch: int, eval_size: int, eval_seed: int):
        for key, value in [
            ("batch_size", batch_size),
            ("batches_per_epoch", batches_per_epoch),
            ("eval_size", eval_size),
        ]:
            check_positive(f"task.{key}", value, integer=True)
        self.seed, self.eval_seed = seed, eval_seed
        self.batch_size, self.batches_per_epoch, self.eval_size = batch_size, batches_per_epoch, eval_size
        self.index = {c: k for k, c in enumerate(self.alphabet)}
        self.input_size = self.output_size = len(self.alphabet)
        self.eval_chunk = 4 * batch_size  # no gradients at evaluation: larger batches fit
        self._eval_sets = {
            s: self._examples(eval_seed, SPLIT_STREAM[s], 0, eval_size) for s in ("valid", "test")
        }

    def make_example(self, rng: np.random.Generator) -> Example:
        raise NotImplementedError

    def _examples(self, seed, stream, epoch, n) -> list[Example]:
        rng = np.random.default_rng([seed, stream, epoch])
        return [self.make_example(rng) for _ in range(n)]

    def ids(self, symbols: Sequence[str]) -> list[int]:
        return [self.index[c] for c in symbols]

    def encode(self, examples: Sequence[Example]) -> Batch:
        """Teacher-forced batch (see the module docstring); padding at the end."""
        seqs = [self.ids(p) + self.ids(a) for p, a in examples]
        T = max(map(len, seqs)) - 1
        ids = torch.zeros(T + 1, len(seqs), dtype=torch.long)
        mask = torch.zeros(T, len(seqs), dtype=torch.bool)
        for b, ((prompt, _), s) in enumerate(zip(examples, seqs)):
            ids[: len(s), b] = torch.tensor(s)
            mask[len(prompt) - 1 : len(s) - 1, b] = True
        return Batch(ids[:-1], ids[1:], mask)

    def train_batches(self, epoch):
        rng = np.random.default_rng([self.seed, SPLIT_STREAM["train"], epoch])
        for _ in range(self.batches_per_epoch):
            yield self.encode([self.make_example(rng) for _ in range(self.batch_size)])

    def eval_batches(self, split):
        for chunk in chunks(self._eval_sets[split], self.eval_chunk):
            yield self.encode(chunk)

    @torch.no_grad()
    def evaluate(self, model, split, device, max_batches=None):
        total = count = correct = hits = 0.0
        examples = self._eval_sets[split][: None if max_batches is None else max_batches * self.eval_chunk]
        for chunk in chunks(examples, self.eval_chunk):
            batch = self.encode(chunk).to(device)
            logits, _ = model(batch.inputs)  # padding is at the end: no step mask needed
            s, n = self.loss(logits, batch)
            total, count = total + float(s), count + n
            correct += float(((logits.argmax(-1) == batch.targets) & batch.mask).sum())
            hits += self._decode_hits(model, chunk, device)
        return {"acc": correct / count, "exact": hits / len(examples), "loss": total / count}

    def _decode_hits(self, model, examples: Sequence[Example], device) -> int:
        """How many answers greedy decoding gets exactly right. It runs for as many steps as the
        answer has symbols: an answer that ends with an end symbol is right only if the prediction
        puts the end symbol there too, so what follows it does not matter."""
        predicted = greedy_decode(
            model, [self.ids(p) for p, _ in examples], max(len(a) for _, a in examples), device
        )
        return sum(row[: len(answer)] == self.ids(answer) for (_, answer), row in zip(examples, predicted))


@torch.no_grad()
def greedy_decode(model, prompts: Sequence[Sequence[int]], steps: int, device) -> list[list[int]]:
    """Reads each prompt (padded at the end), then feeds back its own argmax for ``steps`` steps."""
    lengths = torch.tensor([len(p) for p in prompts], device=device)
    T = int(lengths.max())
    ids = torch.zeros(T, len(prompts), dtype=torch.long)
    for b, p in enumerate(prompts):
        ids[: len(p), b] = torch.tensor(p)
    ids = ids.to(device)
    step_mask = torch.arange(T, device=device)[:, None] < lengths[None, :]
    logits, state = model(ids, None, step_mask)  # the mask freezes each state at its prompt's end
    last = logits[lengths - 1, torch.arange(len(prompts), device=device)]
    out = []
    for _ in range(steps):
        token = last.argmax(-1)
        out.append(token)
        logits, state = model(token[None], state)
        last = logits[0]
    return torch.stack(out, 1).tolist()


def chunks(items, n):
    return [items[k : k + n] for k in range(0, len(items), n)]
