"""Prompt-then-answer tasks (arithmetic, copy, sort): the model reads a prompt, then emits the answer.

One example is a pair (prompt, answer) of symbol sequences (a string, or a list of symbol strings).
In one stream the model reads ``prompt + answer[:-1]`` and predicts the next symbol; only the answer
symbols count (teacher forcing in training)::

    inputs   p0 p1 p2 a0 a1 _  _        (padding ``_`` = id 0, at the end)
    targets  p1 p2 a0 a1 a2 _  _
    mask     .  .  x  x  x  .  .        (x: the target is an answer symbol)

Metrics: ``acc``, per-symbol accuracy on the answer under teacher forcing; ``exact``, the fraction of
whole answers right under greedy free-running decoding after the prompt; ``loss``, cross-entropy per
answer symbol. Examples are generated as ``rnnbench.tasks.generated`` describes.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from rnnbench.tasks.base import Batch
from rnnbench.tasks.generated import GeneratedTask, chunks

__all__ = ["PAD", "PromptAnswerTask", "greedy_decode"]

PAD = "_"
Example = tuple[Sequence[str], Sequence[str]]


class PromptAnswerTask(GeneratedTask):
    """Subclasses set ``alphabet`` (a sequence of symbols, ``PAD`` first) and ``make_example``, then
    call ``super().__init__`` last, which draws the valid and test sets."""

    headline = "acc"
    higher_is_better = True
    alphabet: Sequence[str]

    def __init__(self, seed: int, batch_size: int, batches_per_epoch: int, eval_size: int, eval_seed: int):
        self.index = {c: k for k, c in enumerate(self.alphabet)}
        self.input_size = self.output_size = len(self.alphabet)
        super().__init__(seed, batch_size, batches_per_epoch, eval_size, eval_seed)

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

    def metric_sums(self, logits, batch):
        loss, count = self.loss(logits, batch)
        correct = ((logits.argmax(-1) == batch.targets) & batch.mask).sum().float()
        return {"loss": (loss, count), "acc": (correct, count)}

    def decoded_sums(self, model, split, device, max_batches):
        examples = self.eval_examples(split, max_batches)
        hits = sum(self._decode_hits(model, chunk, device) for chunk in chunks(examples, self.eval_chunk))
        return {"exact": (hits, torch.tensor(float(len(examples)), device=device))}

    def _decode_hits(self, model, examples: Sequence[Example], device) -> torch.Tensor:
        """How many answers greedy decoding gets exactly right (a tensor: no host sync). It runs for
        as many steps as the answer has symbols: an answer that ends with an end symbol is right only
        if the prediction puts the end symbol there too, so what follows it does not matter."""
        steps = max(len(a) for _, a in examples)
        predicted = greedy_decode(model, [self.ids(p) for p, _ in examples], steps, device)  # (B, steps)
        answers = torch.zeros(len(examples), steps, dtype=torch.long)
        counts = torch.zeros(len(examples), steps, dtype=torch.bool)
        for b, (_, answer) in enumerate(examples):
            answers[b, : len(answer)], counts[b, : len(answer)] = torch.tensor(self.ids(answer)), True
        wrong = (predicted != answers.to(device)) & counts.to(device)
        return (~wrong.any(1)).sum().float()


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
    return torch.stack(out, 1)
