"""The task protocol: what the trainer needs from a task, and nothing about which task it is.

A task gives sizes (``input_size``, ``output_size``, ``input_kind``), batches for each split, the loss
as a (sum, count) pair so that averages are exact per token, its metric names, and whether the hidden
state is carried from one training batch to the next (truncated BPTT).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass
class Batch:
    inputs: torch.Tensor  # (T, B) token ids, or (T, B, D) floats
    targets: torch.Tensor  # (T, B) token ids, or (T, B, D) floats
    mask: torch.Tensor | None = None  # (T, B) bool: True where the target counts in loss and metrics
    step_mask: torch.Tensor | None = None  # (T, B) bool: True at real input steps (None: all are)

    def to(self, device) -> Batch:
        def move(t):
            return None if t is None else t.to(device)

        return Batch(self.inputs.to(device), self.targets.to(device), move(self.mask), move(self.step_mask))

    @property
    def num_tokens(self) -> int:
        """Real (unpadded) positions that count in the loss."""
        return (
            int(self.mask.sum()) if self.mask is not None else self.targets.shape[0] * self.targets.shape[1]
        )


class Task:
    """Base class with the categorical loss; subclasses set the attributes and the batch methods."""

    name: str
    input_kind = "tokens"  # "tokens" (ids into an embedding) or "dense" (float vectors)
    input_size: int  # vocabulary size for tokens, vector width for dense
    output_size: int
    carries_state = False  # True: the final state of one training batch starts the next
    many_to_one = False  # True: one prediction per sequence, from its last real step (targets (1, B))
    headline = "loss"  # the metric that selects the best evaluation
    higher_is_better = False
    metric_names: tuple[str, ...] = ("loss",)

    def train_batches(self, epoch: int) -> Iterator[Batch]:
        """The batches of one training epoch, a deterministic function of the seed and ``epoch``."""
        raise NotImplementedError

    def eval_batches(self, split: str) -> Iterator[Batch]:
        raise NotImplementedError

    def loss(self, logits: torch.Tensor, batch: Batch) -> tuple[torch.Tensor, int]:
        """Summed cross-entropy over the positions that count, and how many there are."""
        flat = F.cross_entropy(logits.flatten(0, 1), batch.targets.flatten(), reduction="none")
        if batch.mask is None:
            return flat.sum(), flat.numel()
        m = batch.mask.flatten()
        return flat[m].sum(), int(m.sum())

    @torch.no_grad()
    def evaluate(self, model, split: str, device, max_batches: int | None = None) -> dict[str, float]:
        """Exact per-token averages over the split (its first ``max_batches`` batches if set)."""
        total, count = 0.0, 0
        state = None
        for k, batch in enumerate(self.eval_batches(split)):
            if max_batches is not None and k >= max_batches:
                break
            batch = batch.to(device)
            logits, state = model(batch.inputs, state if self.carries_state else None, batch.step_mask)
            s, n = self.loss(logits, batch)
            total, count = total + float(s), count + n
        return {"loss": total / max(count, 1)}
