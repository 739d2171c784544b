"""Polyphonic music (Boulanger-Lewandowski et al. 2012): jsb, nottingham, musedata, piano_midi.

Each sequence is a piano roll: one 88-dim binary vector per time step, note n (MIDI 21..108) at
index n - 21. The model reads steps 1..L-1 of a sequence and predicts steps 2..L, each note an
independent Bernoulli (sigmoid outputs). The loss of a step is the Bernoulli negative log-likelihood
summed over the 88 notes; ``nll`` (the headline, lower is better) is its mean over every predicted
time step of the split, the number the papers report (Greff et al. 2017: about 8.5 on JSB).

Sequences of different lengths share a batch with padding at the end; ``mask`` keeps padded targets
out of the loss and ``step_mask`` freezes the state on padded inputs. Training visits the sequences in
an order shuffled per epoch from (seed, epoch); ``batch_size=1`` is Greff's online updates.
Greff et al.'s Gaussian input noise is ``model.input_noise_std`` (it applies to every task).
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from rnnbench.data import DATASETS, DataError, locate, safe_pickle
from rnnbench.errors import check_choice, check_positive
from rnnbench.tasks.base import Batch, Task

LOWEST, KEYS = 21, 88  # MIDI note of the piano's lowest key; number of keys
SPLITS = ("train", "valid", "test")
MUSIC = [name for name, files in DATASETS.items() if files[0].path.startswith("music/")]


@functools.lru_cache(maxsize=4)
def load_rolls(path: Path) -> dict[str, list[torch.Tensor]]:
    """{split: [bool (L, 88) piano roll per sequence]}; cached for sweeps run in one process."""
    music = safe_pickle.load(path)
    rolls = {}
    for split in SPLITS:
        rolls[split] = []
        for sequence in music[split]:
            steps = [t for t, notes in enumerate(sequence) for _ in notes]
            keys = torch.tensor([int(n) - LOWEST for notes in sequence for n in notes], dtype=torch.long)
            if len(keys) and (int(keys.min()) < 0 or int(keys.max()) >= KEYS):
                raise DataError(f"{path}: a {split} sequence has notes outside the 88 piano keys")
            roll = torch.zeros(len(sequence), KEYS, dtype=torch.bool)
            roll[steps, keys] = True
            rolls[split].append(roll)
    return rolls


def pad(rolls: list[torch.Tensor]) -> Batch:
    """Next-step batch of sequences, padded at the end: inputs steps 1..L-1, targets steps 2..L."""
    T = max(len(r) for r in rolls) - 1
    inputs = torch.zeros(T, len(rolls), KEYS)
    targets = torch.zeros(T, len(rolls), KEYS)
    mask = torch.zeros(T, len(rolls), dtype=torch.bool)
    for b, roll in enumerate(rolls):
        n = len(roll) - 1
        inputs[:n, b], targets[:n, b], mask[:n, b] = roll[:-1], roll[1:], True
    padded = len({len(r) for r in rolls}) > 1  # batch_size=1 never pads: skip the per-step masking cost
    return Batch(inputs, targets, mask, step_mask=mask if padded else None)


def bernoulli_nll(logits: torch.Tensor, batch: Batch) -> tuple[torch.Tensor, int]:
    """Bernoulli NLL summed over the notes of each counted step, and the number of counted steps.

    -log p(y | σ(a)) = softplus(a) − a·y, binary cross-entropy with logits written out: under vmap (a
    population) torch's fused op ran 8× slower than these two batched ops."""
    per_step = (F.softplus(logits) - logits * batch.targets).sum(-1)
    return (per_step * batch.mask).sum(), batch.mask.sum().float()


class MusicTask(Task):
    input_kind = "dense"
    input_size = output_size = KEYS
    headline = "nll"
    higher_is_better = False

    def __init__(
        self,
        seed: int,
        dataset: str,
        batch_size: int = 1,
        eval_batch_size: int = 32,
        data_dir: str | None = None,
    ):
        check_choice(
            "task.dataset", dataset, [k for k, f in DATASETS.items() if f[0].path.startswith("music/")]
        )
        check_positive("task.batch_size", batch_size, integer=True)
        check_positive("task.eval_batch_size", eval_batch_size, integer=True)
        self.name, self.seed = dataset, seed
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size
        self.rolls = load_rolls(locate(DATASETS[dataset][0].path, data_dir))
        # Evaluation order does not change the sums; sorting by length keeps padding small.
        self.eval_order = {s: sorted(self.rolls[s], key=len) for s in ("valid", "test")}

    def epoch_order(self, epoch: int) -> np.ndarray:
        """The training sequences' order in ``epoch``: a permutation drawn from (seed, epoch)."""
        return np.random.default_rng([self.seed, epoch]).permutation(len(self.rolls["train"]))

    def train_batches(self, epoch):
        order = self.epoch_order(epoch)
        for k in range(0, len(order), self.batch_size):
            chosen = [self.rolls["train"][i] for i in order[k : k + self.batch_size]]
            yield pad(chosen)

    def eval_batches(self, split):
        rolls = self.eval_order[split]
        for k in range(0, len(rolls), self.eval_batch_size):
            yield pad(rolls[k : k + self.eval_batch_size])

    def loss(self, logits, batch):
        return bernoulli_nll(logits, batch)

    def derived(self, means):
        return {"nll": means["loss"]}  # the papers' name for the same number
