"""Population training: K runs of one cell and task (different seeds and hyperparameters) trained at
once as one batched model, ``train_population(cfgs, run_dirs, on_eval=None) -> [summary, ...]``.

Each member is a ``Trainer`` (``rnnbench.training.trainer``) that keeps all of a run's bookkeeping: its own
task and data order, seeds, schedule, progress, early stopping, divergence, best weights, evaluation hook and
run directory with the same run files as a single run (model.pt holds its unpadded weights). Only its
weights live elsewhere: sorted by hidden size into groups of at most ``MAX_GROUP``, stacked with a
leading member dimension (padded to the group's largest hidden size, ``rnnbench.population.padding``) and run
by ``torch.func.vmap`` over ``functional_call`` of one template model per group, so the same cells and
tasks do one forward per group and one backward for all members. Inside it, each recurrent layer runs
a cell's kernel on each member's own size and steps (the LSTM family's fused kernel all members in one
call), or the cell's step loop once for all members (``rnnbench.population.member_steps``): under vmap alone,
every op of every step would pay vmap's and autograd's per-op cost for a few microseconds of
arithmetic. ``rnnbench.population.stacked_optim`` updates every member with its own learning rate, momentum
and clipping. A stopped member no longer changes; the others go on. Evaluation copies a member's weights
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
from tqdm import tqdm

from rnnbench.cells import CELLS, GATED_FEEDBACK
from rnnbench.config.schema import validate
from rnnbench.errors import ConfigError
from rnnbench.population.group import Group, stack_states
from rnnbench.population.member import Member, settle_rounds
from rnnbench.tasks.base import Batch
from rnnbench.training import checkpoint
from rnnbench.training.lock import run_lock
from rnnbench.training.loggers import open_logger
from rnnbench.training.loss import training_loss
from rnnbench.training.progress import TENSORS
from rnnbench.training.runtime import derived_seed, process_settings, seed_everything
from rnnbench.training.stop_signal import StopSignal
from rnnbench.training.trainer import Trainer

PER_MEMBER = (
    "seed",
    "data_seed",
    "init_seed",
    "results_dir",
    "trainer.lr",
    "trainer.momentum",
    "trainer.weight_decay",
    "trainer.clip_norm",
    "trainer.patience",
    "trainer.divergence_factor",
    "model.init_scale",
    "model.init_std",
    "model.input_noise_std",
    "model.param_budget",
    "cell.hidden_size",
    "cell.forget_bias",
    "trainer.threads",
    "trainer.progress",
    "trainer.resume",
)
# cells whose padded units provably stay at 0 (rnnbench.population.padding); FGR carries its gates'
# activations (sigmoid(0) = 1/2 on a padded unit), gated-feedback stacks mix layer widths in their weights
# and a genome may compute anything on a padded unit
PADDABLE = tuple(
    sorted(name for name in CELLS if name not in ("fgr", "genome") and name not in GATED_FEEDBACK)
)


def train_population(cfgs: list[DictConfig], run_dirs: list[str | Path], on_eval=None) -> list[dict]:
    """Trains ``cfgs[k]`` in ``run_dirs[k]`` for every k at once; returns their summaries.

    ``on_eval``: None, a list of one hook per member (each like ``train``'s), or one callable
    ``on_eval(k, record)`` for all members. Threads and determinism come from ``cfgs[0]``."""
    if len(cfgs) != len(run_dirs) or not cfgs:
        raise ConfigError(
            f"a population needs one run directory per config (got {len(cfgs)} configs, "
            f"{len(run_dirs)} directories)"
        )
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
            stack.callback(m.trainer.files.close_mirror)
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
        raise ConfigError(
            f"cell.impl={cfgs[0].cell.impl} is not available in a population (its batched "
            "forward runs the step loop); use auto or python"
        )
    if tc.amp or tc.compile:
        raise ConfigError(
            f"trainer.amp={tc.amp} and trainer.compile={tc.compile} are not available in a "
            "population; use null and false"
        )


MAX_GROUP = 16  # members per vmapped group: each group costs the loop's per-step overhead once, and
# its members' padded weights are read at every step (scripts/bench_population.py: on a 2-core CPU,
# Greff's K=16 is fastest as one group, K=32 as two)


class Population:
    def __init__(self, cfgs: list[DictConfig], run_dirs: list[Path], hooks: list):
        self.members = [Member(Trainer(cfg, d, hook)) for cfg, d, hook in zip(cfgs, run_dirs, hooks)]
        first = self.members[0]
        self.tc, self.task, self.device = first.trainer.tc, first.trainer.task, first.trainer.device
        sizes = [m.trainer.model.hidden_size for m in self.members]
        if len(set(sizes)) > 1 and cfgs[0].cell.name not in PADDABLE:
            raise ConfigError(
                f"cell {cfgs[0].cell.name} cannot be padded to the largest hidden size; its "
                "members need equal cell.hidden_size (padding works for "
                f"{', '.join(PADDABLE)})"
            )
        if len(set(sizes)) > 1 and cfgs[0].model.get("initial_state", "zeros") in ("normal", "uniform"):
            raise ConfigError(
                f"model.initial_state={cfgs[0].model.initial_state} draws random states, "
                "which padded units would read; a population with different hidden sizes "
                "needs zeros or learned"
            )
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
        if any(m.trainer.progress.step == 0 for m in members):
            initial = (loss_sum / count).detach().tolist()  # a sync, once per run
            for k in running:
                if self.members[k].trainer.progress.step == 0:
                    self.members[k].trainer.progress.initial_loss = initial[k]
        active = torch.zeros(len(self.members), dtype=torch.bool)
        active[running] = True
        active = active.to(self.device)
        torch.where(active, loss, torch.zeros_like(loss)).sum().backward()
        norms, clipped = torch.zeros_like(loss_sum), torch.zeros_like(active)
        for group, ks in zip(self.groups, self.order):
            norms[ks], clipped[ks] = group.update(active[ks], all(k in running for k in ks))
        zero = torch.zeros_like(loss_sum)
        w = self.windows
        w["window_loss"] += torch.where(active, loss_sum.detach(), zero)
        w["window_count"] += torch.where(active, count.detach(), zero)
        w["window_grad_norm"] += torch.where(active, norms, zero)
        w["window_clipped"] += (active & clipped).to(zero.dtype)
        seconds = time.perf_counter() - tick
        for m, k in zip(members, running):
            p = m.trainer.progress
            p.step, p.batch_in_epoch, p.window_steps = p.step + 1, p.batch_in_epoch + 1, p.window_steps + 1
            p.window_tokens += tokens[k]
            p.window_seconds += seconds

    # ---- the run, top to bottom ---------------------------------------------------------------------
    def run(self) -> list[dict]:
        started = time.perf_counter()
        for m in self.members:
            m.trainer.started = started
        settle_rounds(self.members)
        restored = [m.restore() for m in self.members]
        if any(restored) and not all(restored):
            raise ConfigError(
                f"only some members of this population have a checkpoint ({restored}); {checkpoint.WAY_OUT}"
            )
        done = {}
        for k, m in enumerate(self.members):
            if restored[k]:
                summary = m.trainer.ended_summary()
                if summary is not None:
                    done[k] = summary
                    continue
                # a member that has ended keeps its evaluation at a limit, as a single run does
                m.trainer.files.keep_metrics_until(
                    m.trainer.progress.step, ended=m.trainer.progress.status != "running"
                )
            else:
                m.trainer.files.start_metrics()
            m.trainer.files.write_config(m.trainer.cfg)
            m.trainer.files.mirror = open_logger(
                m.trainer.cfg, m.trainer.files
            )  # trainer.logger: each metrics line, live
        self.stack_members([m.stacked_state for m in self.members] if all(restored) else None)
        if all(restored):
            for group in self.groups:
                carried = [m.trainer.carried for m in group.members]
                group.carried = None if any(c is None for c in carried) else stack_states(carried)
        self.stack_windows()
        was_running = self.running()
        if was_running:
            with StopSignal() as stop:
                self.loop(stop)
            self.save_round()  # records how the runs ended
        return [done[k] if k in done else m.trainer.finish() for k, m in enumerate(self.members)]

    def running(self) -> list[int]:
        return [k for k, m in enumerate(self.members) if m.trainer.progress.status == "running"]

    def loop(self, stop: StopSignal):
        tc = self.tc
        clock = self.members[self.running()[0]].trainer.progress
        bar = tqdm(
            total=tc.max_steps,
            initial=clock.step,
            desc=f"population of {len(self.members)}",
            disable=not tc.progress,
            dynamic_ncols=True,
        )
        while not self.should_stop(stop):
            running = self.running()
            clock = self.members[running[0]].trainer.progress
            for k in running:
                self.members[k].trainer.set_lr()
            tasks = [self.members[k].trainer.task for k in running]  # each member its own data order
            streams = [islice(task.train_batches(clock.epoch), clock.batch_in_epoch, None) for task in tasks]
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
                    p = self.members[k].trainer.progress
                    p.epoch, p.batch_in_epoch = p.epoch + 1, 0
                for group in self.groups:
                    group.carried = None
                if tc.eval_every is None:
                    self.evaluate(bar, self.running())
        bar.close()
        ended = [
            k
            for k, m in enumerate(self.members)
            if m.trainer.progress.status == "completed"
            and m.trainer.progress.last.get("step") != m.trainer.progress.step
            and m.trainer.progress.step > 0
        ]
        if ended:
            self.evaluate(bar, ended, at_limit=True)  # a run always ends on an evaluation of its last weights

    def clock(self):
        return self.members[self.running()[0]].trainer.progress

    def should_stop(self, stop: StopSignal) -> bool:
        for k in self.running():
            self.members[k].trainer.should_stop(stop)
        return not self.running()

    def timed(self, batches):
        batches = iter(batches)
        while True:
            tick = time.perf_counter()
            batch = next(batches, None)
            for k in self.running():
                self.members[k].trainer.progress.window_data_seconds += time.perf_counter() - tick
            if batch is None:
                return
            yield batch

    def stack_windows(self):
        """The members' window sums (loss, count, gradient norm, clipped steps) as (K,) tensors."""
        self.windows = {
            name: torch.stack([getattr(m.trainer.progress, name) for m in self.members]) for name in TENSORS
        }

    def sync_windows(self):
        for k, m in enumerate(self.members):
            for name, stacked in self.windows.items():
                setattr(m.trainer.progress, name, stacked[k])

    def evaluate(self, bar, members: list[int], at_limit: bool = False):
        """Each listed member evaluates, logs, checkpoints and decides exactly as a single run does."""
        self.sync_windows()
        for k in members:
            self.load_member(k)
            self.members[k].trainer.evaluate(bar, at_limit)
        self.stack_windows()
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
