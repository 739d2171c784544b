"""The task protocol: what the trainer needs from a task, and nothing about which task it is.

A task gives sizes (``input_size``, ``output_size``, ``input_kind``), batches for each split, the loss
as a (sum, count) pair of tensors so that averages are exact per token, and whether the hidden state
is carried from one training batch to the next (truncated BPTT).

Metrics follow one protocol. For each evaluation batch a task returns ``metric_sums``: a dict of
on-device (sum, count) tensor pairs, ``loss`` always among them (the divergence check reads it).
``evaluate`` runs the one shared loop below over a split, adds the pairs up on the device and reads
them all to the host at once, then adds the metrics that are functions of those averages
(``derived``: perplexity, bits per character). Greedy decoding is an optional extra
(``decoded_sums``) of the tasks that have it. Every metric is an average over the split, so a
population of runs can later report one tensor per metric.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from itertools import islice

import torch
import torch.nn.functional as F


@dataclass
class Batch:
    inputs: torch.Tensor  # (T, B) token ids, or (T, B, D) floats
    targets: torch.Tensor  # (T, B) token ids, or (T, B, D) floats
    mask: torch.Tensor | None = None  # (T, B) bool: True where the target counts in loss and metrics
    step_mask: torch.Tensor | None = None  # (T, B) bool: True at real input steps (None: all are)
    marks: torch.Tensor | None = None  # (T, B) bool: targets a task also scores apart (xml: closing tags)

    def to(self, device) -> Batch:
        def move(t):
            return None if t is None else t.to(device)

        return Batch(
            self.inputs.to(device),
            self.targets.to(device),
            move(self.mask),
            move(self.step_mask),
            move(self.marks),
        )

    @property
    def num_tokens(self) -> int:
        """Real (unpadded) positions that count in the loss."""
        return (
            int(self.mask.sum()) if self.mask is not None else self.targets.shape[0] * self.targets.shape[1]
        )


Sums = dict[str, tuple[torch.Tensor, torch.Tensor]]  # metric -> (sum, count), on the device


class Task:
    """Base class with the categorical loss; subclasses set the attributes and the batch methods."""

    name: str  # set from the config by ``build_task``
    input_kind = "tokens"  # "tokens" (ids into an embedding) or "dense" (float vectors)
    input_size: int  # vocabulary size for tokens, vector width for dense
    output_size: int
    carries_state = False  # True: the final state of one training batch starts the next
    many_to_one = False  # True: one prediction per sequence, from its last real step (targets (1, B))
    headline = "loss"  # the metric that selects the best evaluation
    higher_is_better = False

    def train_batches(self, epoch: int) -> Iterator[Batch]:
        """The batches of one training epoch, a deterministic function of the seed and ``epoch``."""
        raise NotImplementedError

    def eval_batches(self, split: str) -> Iterator[Batch]:
        raise NotImplementedError

    def loss(self, logits: torch.Tensor, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """Summed cross-entropy over the positions that count, and how many there are (both tensors,
        so no host sync)."""
        flat = F.cross_entropy(logits.flatten(0, 1), batch.targets.flatten(), reduction="none")
        if batch.mask is None:
            return flat.sum(), torch.tensor(float(flat.numel()), device=flat.device)
        m = batch.mask.flatten()
        return (flat * m).sum(), m.sum().float()

    def metric_sums(self, logits: torch.Tensor, batch: Batch) -> Sums:
        """This batch's (sum, count) per metric; the base class has the loss only."""
        return {"loss": self.loss(logits, batch)}

    def decoded_sums(self, model, split: str, device, max_batches: int | None) -> Sums:
        """Metrics of free-running (greedy) decoding, for the tasks that have them."""
        return {}

    def derived(self, means: dict[str, float]) -> dict[str, float]:
        """Metrics that are functions of the averages (perplexity, bits per character)."""
        return {}

    def evaluate(self, model, split: str, device, max_batches: int | None = None) -> dict[str, float]:
        return evaluate(self, model, split, device, max_batches)


@torch.no_grad()
def evaluate(task: Task, model, split: str, device, max_batches: int | None = None) -> dict[str, float]:
    """The shared evaluation loop: exact averages over the split (its first ``max_batches`` batches if
    set), summed on the device and read back in one host sync."""
    totals: dict[str, list[torch.Tensor]] = {}
    state = None
    for batch in islice(task.eval_batches(split), max_batches):
        batch = batch.to(device)
        logits, state = model(batch.inputs, state if task.carries_state else None, batch.step_mask)
        logits = logits.to(torch.promote_types(logits.dtype, torch.float32))  # amp's half logits -> float32
        for name, (s, n) in task.metric_sums(logits, batch).items():
            if name in totals:
                totals[name][0] += s
                totals[name][1] += n
            else:
                totals[name] = [s.double(), n.double()]  # float64 sums: exact over long splits
    for name, (s, n) in task.decoded_sums(model, split, device, max_batches).items():
        totals[name] = [s.double(), n.double()]
    names = list(totals)
    means = torch.stack([s / n.clamp(min=1) for s, n in totals.values()]).tolist()  # the one host sync
    metrics = dict(zip(names, means))
    return metrics | task.derived(metrics)
