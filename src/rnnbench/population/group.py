"""Members run by one vmapped forward and backward, their weights stacked and padded to one size."""

from __future__ import annotations

import copy

import torch
from torch.func import functional_call, vmap

from rnnbench.population.member import Member
from rnnbench.population.member_layer import wrap_layers
from rnnbench.population.padding import pad, unpad
from rnnbench.population.stacked_optim import StackedOptimizer, clip_per_member, member_norms
from rnnbench.tasks.base import Batch
from rnnbench.training.trainer import detach


def stack_batches(batches: list[Batch], device):
    """K batches -> (inputs, targets, mask, step_mask) with a leading K dimension, padded in time to the
    longest; padded steps are masked out (they never count), and each member's sequence count (K,)."""
    T = max(b.inputs.shape[0] for b in batches)
    T_out = max(b.targets.shape[0] for b in batches)
    ragged = len({(b.inputs.shape[0], b.targets.shape[0]) for b in batches}) > 1

    def padded(t, length):
        return torch.cat([t, t.new_zeros(length - t.shape[0], *t.shape[1:])])

    def stacked(ts, length):
        return torch.stack([padded(t, length) for t in ts]).to(device)

    inputs = stacked([b.inputs for b in batches], T)
    targets = stacked([b.targets for b in batches], T_out)
    mask = step_mask = None
    if ragged or any(b.mask is not None for b in batches):
        real = [
            b.mask if b.mask is not None else torch.ones(b.targets.shape[:2], dtype=torch.bool)
            for b in batches
        ]
        mask = stacked(real, T_out)
    if ragged or any(b.step_mask is not None for b in batches):
        real = [
            b.step_mask if b.step_mask is not None else torch.ones(b.inputs.shape[:2], dtype=torch.bool)
            for b in batches
        ]
        step_mask = stacked(real, T)
    sequences = torch.tensor([float(b.targets.shape[1]) for b in batches], device=device)
    return inputs, targets, mask, step_mask, sequences


def member_slice(state, k: int):
    if state is None or isinstance(state, torch.Tensor):
        return None if state is None else state[k]
    return tuple(member_slice(s, k) for s in state)


def stack_states(states):
    if states[0] is None or isinstance(states[0], torch.Tensor):
        return None if states[0] is None else torch.stack(states)
    return tuple(stack_states([s[i] for s in states]) for i in range(len(states[0])))


class Group:
    """Members run by one vmapped forward and backward: weights stacked with a leading member
    dimension, padded to the group's largest hidden size (``rnnbench.population.padding``)."""

    def __init__(self, members: list[Member], task, device, tc):
        self.members, self.task, self.device, self.tc = members, task, device, tc
        self.sizes = [m.trainer.model.hidden_size for m in members]
        self.hidden = max(self.sizes)
        self.template = copy.deepcopy(members[self.sizes.index(self.hidden)].trainer.model)
        self.template.input_noise_std = max(m.trainer.model.input_noise_std for m in members)
        wrap_layers(self.template, [m.trainer.model for m in members])  # all members at once, under vmap
        self.carried = None

    def stack(self, saved_optimizer: list[dict] | None):
        self.params = {}
        for name, _ in self.template.named_parameters():
            own = [
                self.padded(j, m.trainer.model.get_parameter(name), name) for j, m in enumerate(self.members)
            ]
            self.params[name] = torch.stack(own).requires_grad_()
        self.buffers = {"noise_scale": torch.stack([self.noise_scale(j) for j in range(len(self.members))])}
        nesterov = bool(self.tc.get("nesterov"))
        self.optimizer = StackedOptimizer(
            self.tc.optimizer, self.params, self.values("momentum"), self.values("weight_decay"), nesterov
        )
        clip = self.values("clip_norm", missing=float("inf"))
        self.clip_norm = torch.tensor(clip, device=self.device) if min(clip) < float("inf") else None
        for j, saved in enumerate(saved_optimizer or []):
            padded = {
                n: {key: self.padded(j, v.to(self.device), n) for key, v in s.items()}
                for n, s in saved["state"].items()
            }
            self.optimizer.load_member_state(j, {"steps": saved["steps"], "state": padded})

    def padded(self, j: int, t: torch.Tensor, name: str) -> torch.Tensor:
        return pad(t.detach(), self.template.get_parameter(name).shape, self.sizes[j], self.hidden)

    def noise_scale(self, j: int) -> torch.Tensor:
        """Member j's noise std per input feature: its own std on real features, 0 on padded ones."""
        model = self.members[j].trainer.model
        real = torch.full((self.input_width(model),), model.input_noise_std, device=self.device)
        return pad(real, (self.input_width(self.template),), self.sizes[j], self.hidden)

    def input_width(self, model) -> int:
        """The width of the first recurrent layer's input, where the noise is added."""
        encoder = model.encoder
        if isinstance(encoder, torch.nn.Embedding):
            return encoder.embedding_dim
        if isinstance(encoder, torch.nn.Linear):
            return encoder.out_features
        return self.task.input_size

    def load_member(self, j: int) -> None:
        """Member j's weights (unpadded) into its own model; its optimiser state and carried state into
        what its checkpoint saves."""
        m = self.members[j]
        own = dict(m.trainer.model.named_parameters())
        with torch.no_grad():
            for name, p in own.items():
                p.copy_(unpad(self.params[name][j], p.shape, self.sizes[j], self.hidden))
        mine = self.optimizer.member_state(j)
        mine["state"] = {
            n: {key: unpad(v, own[n].shape, self.sizes[j], self.hidden).cpu() for key, v in s.items()}
            for n, s in mine["state"].items()
        }
        m.stacked_state = mine
        m.trainer.carried = member_slice(self.carried, j)

    def member_loss(self, params, buffers, inputs, targets, mask, step_mask, carried):
        logits, state = functional_call(self.template, (params, buffers), (inputs, carried, step_mask))
        loss_sum, count = self.task.loss(logits.float(), Batch(inputs, targets, mask, step_mask))
        return loss_sum, count, state

    def forward(self, batches: list[Batch]):
        """(loss sums, counts, sequence counts), each (G,), of the group's batches; the new state is kept."""
        inputs, targets, mask, step_mask, sequences = stack_batches(batches, self.device)
        self.template.train()
        args = (self.params, self.buffers, inputs, targets, mask, step_mask, self.carried)
        batched = vmap(
            self.member_loss, in_dims=tuple(None if a is None else 0 for a in args), randomness="different"
        )
        loss_sum, count, self.state = batched(*args)
        return loss_sum, count, sequences

    def update(self, active: torch.Tensor, everyone: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """Clips and steps every active member with its own values (``everyone``: all are active);
        carries the state on. Returns each member's gradient norm before clipping and whether clipping
        scaled it down, (K,) each."""
        grads = [p.grad for p in self.params.values() if p.grad is not None]
        norms = member_norms(grads)
        clipped = torch.zeros_like(norms, dtype=torch.bool)
        if self.clip_norm is not None:
            clip_per_member(grads, norms, self.clip_norm)
            clipped = norms > self.clip_norm
        lr = torch.tensor(
            [m.trainer.optimizer.param_groups[0]["lr"] for m in self.members], device=self.device
        )
        self.optimizer.step(lr, active, everyone)
        for p in self.params.values():
            p.grad = None
        self.carried = detach(self.state) if self.task.carries_state else None
        return norms, clipped

    def values(self, key: str, missing: float = 0.0) -> list[float]:
        """Each member's ``trainer.<key>``."""
        return [
            missing if m.trainer.tc.get(key) is None else float(m.trainer.tc.get(key)) for m in self.members
        ]
