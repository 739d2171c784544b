"""Population training: K runs of one cell and task (different seeds and hyperparameters) trained at
once as one batched model, ``train_population(cfgs, run_dirs, on_eval=None) -> [summary, ...]``.

Each member is a ``Trainer`` (``rnnbench.trainer``) that keeps all of a run's bookkeeping: its own task
and data order, seeds, schedule, progress, early stopping, divergence, best weights, evaluation hook and
run directory with the same run files as a single run (model.pt holds its unpadded weights). Only its
weights live elsewhere: sorted by hidden size into groups of at most ``MAX_GROUP``, stacked with a
leading member dimension (padded to the group's largest hidden size, ``rnnbench.padding``) and run by
``torch.func.vmap`` over ``functional_call`` of one template model per group, so the same cells and
tasks do one forward per group and one backward for all members. Inside it, each recurrent layer runs
a cell's kernel on each member's own size and steps (the LSTM family's fused kernel all members in one
call), or the cell's step loop once for all members (``rnnbench.member_steps``): under vmap alone,
every op of every step would pay vmap's and autograd's per-op cost for a few microseconds of
arithmetic. ``rnnbench.stacked_optim`` updates every member with its own learning rate, momentum and
clipping. A stopped member no longer changes; the others go on. Evaluation copies a member's weights
into its own model and runs the task's shared ``evaluate``, exactly as a single run does.

Per-member values (``PER_MEMBER``): seeds, lr, momentum, weight decay, clip_norm, patience,
divergence_factor, init scale/std, input noise, hidden size or parameter budget, forget bias. Any other
difference is a one-line ConfigError. Dropout must be equal (vmap draws per member, but the rate is a
property of the shared template). Draws of dropout and noise come from one stream split per member
(``randomness="different"``): reproducible, independent between members, but not the draws a member
gets alone; with dropout and noise at 0 a member equals its single run.

On the command line, ``trainer.population=K`` trains seeds seed, seed+1, ..., seed+K-1 of one config in
``<run_dir>/member-<k>``.
"""

from __future__ import annotations

import copy
import time
from contextlib import ExitStack
from itertools import islice
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf
from torch.func import functional_call, vmap
from tqdm import tqdm

from rnnbench import checkpoint
from rnnbench.cells import CELLS, GATED_FEEDBACK
from rnnbench.errors import ConfigError
from rnnbench.lock import run_lock
from rnnbench.loggers import open_logger
from rnnbench.padding import pad, unpad
from rnnbench.runtime import derived_seed, process_settings, seed_everything
from rnnbench.schema import validate
from rnnbench.sequence import Recurrent
from rnnbench.stacked_optim import StackedOptimizer, clip_per_member
from rnnbench.tasks.base import Batch
from rnnbench.trainer import StopSignal, Trainer, detach, training_loss

PER_MEMBER = ("seed", "data_seed", "init_seed", "results_dir", "trainer.lr", "trainer.momentum",
              "trainer.weight_decay", "trainer.clip_norm", "trainer.patience", "trainer.divergence_factor",
              "model.init_scale", "model.init_std", "model.input_noise_std", "model.param_budget",
              "cell.hidden_size", "cell.forget_bias", "trainer.threads", "trainer.progress",
              "trainer.resume")  # fmt: skip
# cells whose padded units provably stay at 0 (rnnbench.padding); FGR carries its gates' activations
# (sigmoid(0) = 1/2 on a padded unit) and gated-feedback stacks mix layer widths in their weights
PADDABLE = tuple(sorted(name for name in CELLS if name != "fgr" and name not in GATED_FEEDBACK))


def train_population(cfgs: list[DictConfig], run_dirs: list[str | Path], on_eval=None) -> list[dict]:
    """Trains ``cfgs[k]`` in ``run_dirs[k]`` for every k at once; returns their summaries.

    ``on_eval``: None, a list of one hook per member (each like ``train``'s), or one callable
    ``on_eval(k, record)`` for all members. Threads and determinism come from ``cfgs[0]``."""
    if len(cfgs) != len(run_dirs) or not cfgs:
        raise ConfigError(f"a population needs one run directory per config (got {len(cfgs)} configs, "
                          f"{len(run_dirs)} directories)")  # fmt: skip
    for cfg in cfgs:
        validate(cfg)
    check_compatible(cfgs)
    if callable(on_eval):
        hooks = [lambda record, k=k: on_eval(k, record) for k in range(len(cfgs))]
    else:
        hooks = list(on_eval) if on_eval is not None else [None] * len(cfgs)
    tc = cfgs[0].trainer
    with ExitStack() as stack:
        for run_dir in run_dirs:
            stack.enter_context(run_lock(Path(run_dir)))
        stack.enter_context(process_settings(tc.threads, tc.deterministic))
        population = Population(cfgs, [Path(d) for d in run_dirs], hooks)
        for m in population.members:  # trainer.logger: one per member's run directory
            stack.callback(m.files.close_mirror)
        return population.run()


def member_configs(cfg: DictConfig, run_dir: str | Path) -> tuple[list[DictConfig], list[Path]]:
    """``trainer.population=K``: K copies of ``cfg`` with seeds seed..seed+K-1, in run_dir/member-<k>."""
    cfgs, dirs = [], []
    for k in range(cfg.trainer.population):
        member = copy.deepcopy(cfg)
        member.seed, member.trainer.population = cfg.seed + k, 1
        cfgs.append(member)
        dirs.append(Path(run_dir) / f"member-{k}")
    return cfgs, dirs


def flat(cfg: DictConfig) -> dict:
    plain = OmegaConf.to_container(cfg, resolve=True)

    def walk(node, prefix):
        for key, value in node.items():
            if isinstance(value, dict):
                yield from walk(value, f"{prefix}{key}.")
            else:
                yield f"{prefix}{key}", value

    return dict(walk(plain, ""))


def check_compatible(cfgs: list[DictConfig]) -> None:
    """Members may differ only in ``PER_MEMBER`` values."""
    first = {k: v for k, v in flat(cfgs[0]).items() if k not in PER_MEMBER}
    for index, cfg in enumerate(cfgs[1:], 1):
        other = {k: v for k, v in flat(cfg).items() if k not in PER_MEMBER}
        for key in sorted(set(first) | set(other)):
            if first.get(key) != other.get(key):
                raise ConfigError(
                    f"population member {index} has {key}={other.get(key)!r} but member 0 has "
                    f"{first.get(key)!r}; members may differ only in {', '.join(PER_MEMBER)}"
                )
    tc = cfgs[0].trainer
    if cfgs[0].cell.get("impl", "auto") not in ("auto", "python"):
        raise ConfigError(f"cell.impl={cfgs[0].cell.impl} is not available in a population (its batched "
                          "forward runs the step loop); use auto or python")  # fmt: skip
    if tc.amp or tc.compile:
        raise ConfigError(f"trainer.amp={tc.amp} and trainer.compile={tc.compile} are not available in a "
                          "population; use null and false")  # fmt: skip


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
        real = [b.mask if b.mask is not None else torch.ones(b.targets.shape[:2], dtype=torch.bool)
                for b in batches]  # fmt: skip
        mask = stacked(real, T_out)
    if ragged or any(b.step_mask is not None for b in batches):
        real = [b.step_mask if b.step_mask is not None else torch.ones(b.inputs.shape[:2], dtype=torch.bool)
                for b in batches]  # fmt: skip
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


class Member(Trainer):
    """One run of a population: a Trainer whose weights the population holds. ``stacked_state`` (its
    optimiser state, unpadded) rides along in its checkpoint.

    Members save in rounds: every member writes ``checkpoint.next.pt`` (marked with the round), and only
    when all have written are they renamed over ``checkpoint.pt``. A kill while writing leaves the last
    round in place (the new files are dropped); a kill while renaming finishes the round on resume. So
    the members always resume from the same step."""

    stacked_state: dict | None = None
    round: int = 0

    @property
    def next_checkpoint(self) -> Path:
        return self.files.dir / "checkpoint.next.pt"

    def checkpoint_payload(self) -> dict:
        return super().checkpoint_payload() | {"population": self.stacked_state, "round": self.round}

    def save_checkpoint(self):
        """A single run saves at each evaluation; a member's population saves every member at once."""

    def save_next(self):
        checkpoint.save(self.next_checkpoint, self.checkpoint_payload())

    def commit(self):
        self.next_checkpoint.replace(self.files.checkpoint)

    def restore(self) -> bool:
        if not super().restore():
            return False
        saved = checkpoint.load(self.files.checkpoint)  # again: Trainer.restore keeps only its own keys
        self.round, self.stacked_state = saved.get("round", 0), saved.get("population")
        if self.stacked_state is None:
            raise ConfigError(f"{self.files.dir} holds a single run, not a population member; "
                              f"{checkpoint.WAY_OUT}")  # fmt: skip
        return True


MAX_GROUP = 16  # members per vmapped group: each group costs the loop's per-step overhead once, and
# its members' padded weights are read at every step (scripts/bench_population.py: on a 2-core CPU,
# Greff's K=16 is fastest as one group, K=32 as two)


class Group:
    """Members run by one vmapped forward and backward: weights stacked with a leading member
    dimension, padded to the group's largest hidden size (``rnnbench.padding``)."""

    def __init__(self, members: list[Member], task, device, tc):
        self.members, self.task, self.device, self.tc = members, task, device, tc
        self.sizes = [m.model.hidden_size for m in members]
        self.hidden = max(self.sizes)
        self.template = copy.deepcopy(members[self.sizes.index(self.hidden)].model)
        self.template.input_noise_std = max(m.model.input_noise_std for m in members)
        for name, module in self.template.named_modules():  # a kernel runs per member in its own layer,
            if isinstance(module, Recurrent):  # a step loop once for all members (rnnbench.member_steps)
                module.stacked = True
                module.members = [m.model.get_submodule(name) for m in members]
        self.carried = None

    def stack(self, saved_optimizer: list[dict] | None):
        self.params = {}
        for name, _ in self.template.named_parameters():
            own = [self.padded(j, m.model.get_parameter(name), name) for j, m in enumerate(self.members)]
            self.params[name] = torch.stack(own).requires_grad_()
        self.buffers = {"noise_scale": torch.stack([self.noise_scale(j) for j in range(len(self.members))])}
        nesterov = bool(self.tc.get("nesterov"))
        self.optimizer = StackedOptimizer(
            self.tc.optimizer, self.params, self.values("momentum"), self.values("weight_decay"), nesterov
        )
        clip = self.values("clip_norm", missing=float("inf"))
        self.clip_norm = torch.tensor(clip, device=self.device) if min(clip) < float("inf") else None
        for j, saved in enumerate(saved_optimizer or []):
            padded = {n: {key: self.padded(j, v.to(self.device), n) for key, v in s.items()}
                      for n, s in saved["state"].items()}  # fmt: skip
            self.optimizer.load_member_state(j, {"steps": saved["steps"], "state": padded})

    def padded(self, j: int, t: torch.Tensor, name: str) -> torch.Tensor:
        return pad(t.detach(), self.template.get_parameter(name).shape, self.sizes[j], self.hidden)

    def noise_scale(self, j: int) -> torch.Tensor:
        """Member j's noise std per input feature: its own std on real features, 0 on padded ones."""
        model = self.members[j].model
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
        own = dict(m.model.named_parameters())
        with torch.no_grad():
            for name, p in own.items():
                p.copy_(unpad(self.params[name][j], p.shape, self.sizes[j], self.hidden))
        mine = self.optimizer.member_state(j)
        mine["state"] = {
            n: {key: unpad(v, own[n].shape, self.sizes[j], self.hidden).cpu() for key, v in s.items()}
            for n, s in mine["state"].items()
        }
        m.stacked_state = mine
        m.carried = member_slice(self.carried, j)

    def member_loss(self, params, buffers, inputs, targets, mask, step_mask, carried):
        logits, state = functional_call(self.template, (params, buffers), (inputs, carried, step_mask))
        loss_sum, count = self.task.loss(logits.float(), Batch(inputs, targets, mask, step_mask))
        return loss_sum, count, state

    def forward(self, batches: list[Batch]):
        """(loss sums, counts, sequence counts), each (G,), of the group's batches; the new state is kept."""
        inputs, targets, mask, step_mask, sequences = stack_batches(batches, self.device)
        self.template.train()
        args = (self.params, self.buffers, inputs, targets, mask, step_mask, self.carried)
        batched = vmap(self.member_loss, in_dims=tuple(None if a is None else 0 for a in args),
                       randomness="different")  # fmt: skip
        loss_sum, count, self.state = batched(*args)
        return loss_sum, count, sequences

    def update(self, active: torch.Tensor, everyone: bool):
        """Clips and steps every active member with its own values (``everyone``: all are active);
        carries the state on."""
        if self.clip_norm is not None:
            clip_per_member([p.grad for p in self.params.values() if p.grad is not None], self.clip_norm)
        lr = torch.tensor([m.optimizer.param_groups[0]["lr"] for m in self.members], device=self.device)
        self.optimizer.step(lr, active, everyone)
        for p in self.params.values():
            p.grad = None
        self.carried = detach(self.state) if self.task.carries_state else None

    def values(self, key: str, missing: float = 0.0) -> list[float]:
        """Each member's ``trainer.<key>``."""
        return [missing if m.tc.get(key) is None else float(m.tc.get(key)) for m in self.members]


class Population:
    def __init__(self, cfgs: list[DictConfig], run_dirs: list[Path], hooks: list):
        self.members = [Member(cfg, d, hook) for cfg, d, hook in zip(cfgs, run_dirs, hooks)]
        first = self.members[0]
        self.tc, self.task, self.device = first.tc, first.task, first.device
        sizes = [m.model.hidden_size for m in self.members]
        if len(set(sizes)) > 1 and cfgs[0].cell.name not in PADDABLE:
            raise ConfigError(f"cell {cfgs[0].cell.name} cannot be padded to the largest hidden size; its "
                              "members need equal cell.hidden_size (padding works for "
                              f"{', '.join(PADDABLE)})")  # fmt: skip
        if len(set(sizes)) > 1 and cfgs[0].model.get("initial_state", "zeros") in ("normal", "uniform"):
            raise ConfigError(f"model.initial_state={cfgs[0].model.initial_state} draws random states, "
                              "which padded units would read; a population with different hidden sizes "
                              "needs zeros or learned")  # fmt: skip
        # groups of members of similar size: less padding, and stacked weights that stay in cache
        by_size = sorted(range(len(sizes)), key=lambda k: (sizes[k], k))
        self.order = [by_size[i : i + MAX_GROUP] for i in range(0, len(by_size), MAX_GROUP)]
        self.groups = [
            Group([self.members[k] for k in ks], self.task, self.device, self.tc) for ks in self.order
        ]
        self.place = {k: (g, j) for g, ks in enumerate(self.order) for j, k in enumerate(ks)}
        grouped = [k for ks in self.order for k in ks]
        self.position = torch.tensor([grouped.index(k) for k in range(len(sizes))], device=self.device)
        seed_everything(derived_seed(cfgs[0].seed, 2))  # dropout and input noise draws

    def stack_members(self, saved_optimizer: list[dict] | None):
        for group, ks in zip(self.groups, self.order):
            group.stack(None if saved_optimizer is None else [saved_optimizer[k] for k in ks])

    def load_member(self, k: int) -> None:
        g, j = self.place[k]
        self.groups[g].load_member(j)

    # ---- one step for all members -------------------------------------------------------------------
    def train_step(self, batches: list[Batch], running: list[int]):
        tick = time.perf_counter()
        tokens = [b.num_tokens for b in batches]  # host copies: no device sync
        parts = [group.forward([batches[k] for k in ks]) for group, ks in zip(self.groups, self.order)]
        in_groups = [torch.cat([part[i] for part in parts]) for i in range(3)]  # in group order
        loss_sum, count, sequences = (t[self.position] for t in in_groups)  # (K,) in member order
        loss = training_loss(loss_sum, count, sequences, self.tc.loss_over_time)
        members = [self.members[k] for k in running]
        if any(m.progress.step == 0 for m in members):
            initial = (loss_sum / count).detach().tolist()  # a sync, once per run
            for k in running:
                if self.members[k].progress.step == 0:
                    self.members[k].progress.initial_loss = initial[k]
        active = torch.zeros(len(self.members), dtype=torch.bool)
        active[running] = True
        active = active.to(self.device)
        torch.where(active, loss, torch.zeros_like(loss)).sum().backward()
        for group, ks in zip(self.groups, self.order):
            group.update(active[ks], all(k in running for k in ks))
        zero = torch.zeros_like(loss_sum)
        self.window_loss += torch.where(active, loss_sum.detach(), zero)
        self.window_count += torch.where(active, count.detach(), zero)
        seconds = time.perf_counter() - tick
        for m, k in zip(members, running):
            p = m.progress
            p.step, p.batch_in_epoch = p.step + 1, p.batch_in_epoch + 1
            p.window_tokens += tokens[k]
            p.window_seconds += seconds

    # ---- the run, top to bottom ---------------------------------------------------------------------
    def run(self) -> list[dict]:
        started = time.perf_counter()
        for m in self.members:
            m.started = started
        settle_rounds(self.members)
        restored = [m.restore() for m in self.members]
        if any(restored) and not all(restored):
            raise ConfigError(f"only some members of this population have a checkpoint ({restored}); "
                              f"{checkpoint.WAY_OUT}")  # fmt: skip
        done = {}
        for k, m in enumerate(self.members):
            if restored[k]:
                if m.progress.status != "running" and m.files.summary.exists():
                    done[k] = m.files.read_summary()
                    continue
                # a member that has ended keeps its evaluation at a limit, as a single run does
                m.files.keep_metrics_until(m.progress.step, ended=m.progress.status != "running")
            else:
                m.files.start_metrics()
            m.files.write_config(m.cfg)
            m.files.mirror = open_logger(m.cfg, m.files)  # trainer.logger: each metrics line, live
        self.stack_members([m.stacked_state for m in self.members] if all(restored) else None)
        if all(restored):
            for group in self.groups:
                carried = [m.carried for m in group.members]
                group.carried = None if any(c is None for c in carried) else stack_states(carried)
        self.window_loss = torch.stack([m.progress.window_loss for m in self.members])
        self.window_count = torch.stack([m.progress.window_count for m in self.members])
        was_running = self.running()
        if was_running:
            with StopSignal() as stop:
                self.loop(stop)
            self.save_round()  # records how the runs ended
        return [done[k] if k in done else m.finish() for k, m in enumerate(self.members)]

    def running(self) -> list[int]:
        return [k for k, m in enumerate(self.members) if m.progress.status == "running"]

    def loop(self, stop: StopSignal):
        tc = self.tc
        clock = self.members[self.running()[0]].progress
        bar = tqdm(total=tc.max_steps, initial=clock.step, desc=f"population of {len(self.members)}",
                   disable=not tc.progress, dynamic_ncols=True)  # fmt: skip
        while not self.should_stop(stop):
            running = self.running()
            clock = self.members[running[0]].progress
            for k in running:
                self.members[k].set_lr()
            streams = [islice(self.members[k].task.train_batches(clock.epoch), clock.batch_in_epoch, None)
                       for k in running]  # fmt: skip
            for batches in self.timed(zip(*streams)):
                if self.should_stop(stop):
                    break
                mine = dict(zip(running, batches))
                self.train_step([mine.get(k, batches[0]) for k in range(len(self.members))], self.running())
                bar.update(1)
                if tc.eval_every is not None and self.clock().step % tc.eval_every == 0:
                    self.evaluate(bar, self.running())
            else:  # the epoch ran to its end
                for k in self.running():
                    p = self.members[k].progress
                    p.epoch, p.batch_in_epoch = p.epoch + 1, 0
                for group in self.groups:
                    group.carried = None
                if tc.eval_every is None:
                    self.evaluate(bar, self.running())
        bar.close()
        ended = [k for k, m in enumerate(self.members) if m.progress.status == "completed"
                 and m.progress.last.get("step") != m.progress.step and m.progress.step > 0]  # fmt: skip
        if ended:
            self.evaluate(bar, ended, at_limit=True)  # a run always ends on an evaluation of its last weights

    def clock(self):
        return self.members[self.running()[0]].progress

    def should_stop(self, stop: StopSignal) -> bool:
        for k in self.running():
            self.members[k].should_stop(stop)
        return not self.running()

    def timed(self, batches):
        batches = iter(batches)
        while True:
            tick = time.perf_counter()
            batch = next(batches, None)
            for k in self.running():
                self.members[k].progress.window_data_seconds += time.perf_counter() - tick
            if batch is None:
                return
            yield batch

    def sync_windows(self):
        for k, m in enumerate(self.members):
            m.progress.window_loss, m.progress.window_count = self.window_loss[k], self.window_count[k]

    def evaluate(self, bar, members: list[int], at_limit: bool = False):
        """Each listed member evaluates, logs, checkpoints and decides exactly as a single run does."""
        self.sync_windows()
        for k in members:
            self.load_member(k)
            self.members[k].evaluate(bar, at_limit)
        self.window_loss = torch.stack([m.progress.window_loss for m in self.members])
        self.window_count = torch.stack([m.progress.window_count for m in self.members])
        self.save_round()

    def save_round(self):
        """Every member's checkpoint, as one round (see ``Member``)."""
        self.sync_windows()
        for k, m in enumerate(self.members):
            self.load_member(k)
            m.round += 1
            m.save_next()
        for m in self.members:
            m.commit()


def settle_rounds(members: list[Member]) -> None:
    """After a kill: finish a round whose new checkpoints were all written, else drop it."""
    pending = [m.next_checkpoint.exists() for m in members]
    if not any(pending):
        return
    rounds = [
        checkpoint.load(m.next_checkpoint).get("round") if p
        else checkpoint.load(m.files.checkpoint).get("round") if m.files.checkpoint.exists()
        else None
        for m, p in zip(members, pending)
    ]  # fmt: skip
    for m, p in zip(members, pending):
        if p and len(set(rounds)) == 1:
            m.commit()
        elif p:
            m.next_checkpoint.unlink()
