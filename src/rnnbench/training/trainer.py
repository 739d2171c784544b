"""Training one run: ``train(cfg, run_dir, on_eval=None) -> summary``, a plain function of its config.

The loop knows neither the cell nor the task: it asks the task for batches and a (sum, count) loss,
evaluates every ``trainer.eval_every`` steps (or at each epoch end), keeps the weights with the best
validation headline metric, scores them on the test split at the end, and writes the run files
(``rnnbench.training.runfiles``). At every evaluation it writes a checkpoint; running the same config on the
same run directory again continues from it (``trainer.resume=auto``), and the result is the same as one
uninterrupted run. A diverging run ends with ``status: "diverged"``, a signal (SIGINT, SIGTERM) with a
checkpoint and ``status: "interrupted"``; neither raises, so a sweep goes on.

``on_eval(record) -> "continue" | "stop" | "prune"`` sees every evaluation's metrics line: a search
reports progress and prunes through it ("prune" ends the run with ``status: "pruned"``).

Reading order: ``train`` (lock, process settings) -> ``Trainer.run`` (resume or start) -> ``loop`` ->
``train_step`` / ``evaluate`` -> ``finish`` (test split, summary).
"""

from __future__ import annotations

import contextlib
import copy
import math
import signal
import time
from itertools import islice
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf
from tqdm import tqdm

from rnnbench.cells import read_genome_file
from rnnbench.config.schema import runtime_keys, validate
from rnnbench.errors import ConfigError
from rnnbench.errors.write import RunFileError, resume_hint, writing
from rnnbench.model.network import build_model, count_parameters
from rnnbench.tasks import build_task
from rnnbench.training import checkpoint
from rnnbench.training.device import resolve_device
from rnnbench.training.lock import run_lock
from rnnbench.training.loggers import open_logger
from rnnbench.training.loss import training_loss
from rnnbench.training.optim import base_learning_rate, build_optimizer
from rnnbench.training.progress import (
    Progress,
    better,
    divergence,
    global_norm,
    limit_reached,
    window_gradients,
)
from rnnbench.training.runfiles import RunFiles
from rnnbench.training.runtime import derived_seed, process_settings, seed_everything
from rnnbench.training.schedules import Schedule
from rnnbench.training.stop_signal import StopSignal
from rnnbench.training.summary import summarize

DECISIONS = ("continue", "stop", "prune")
LIMITS = ("max_steps", "max_epochs", "max_minutes")


def train(cfg: DictConfig, run_dir: str | Path, on_eval=None) -> dict:
    validate(cfg)
    if cfg.trainer.get("population", 1) != 1:
        raise ConfigError(
            f"trainer.population={cfg.trainer.population} trains several runs: use "
            "rnnbench.population.train_population, or the command line"
        )
    run_dir = Path(run_dir)
    with contextlib.ExitStack() as held:
        saved = -1 if not (run_dir / "checkpoint.pt").exists() else None  # the step is known once read
        with writing(run_dir / "run.lock", step=saved):  # a folder that cannot be written: one line
            held.enter_context(run_lock(run_dir))
        held.enter_context(process_settings(cfg.trainer.threads, cfg.trainer.deterministic))
        return Trainer(cfg, run_dir, on_eval).run()


def with_genome_text(cfg: DictConfig) -> DictConfig:
    """The config a run records: a genome file's text in ``cell.genome`` (the file may change later; the
    run's config.yaml and checkpoint keep what it trained)."""
    path = cfg.cell.get("genome_file")
    if cfg.cell.name != "genome" or path is None:
        return cfg
    cfg = copy.deepcopy(cfg)
    cfg.cell.genome, cfg.cell.genome_file = read_genome_file(path), None
    return cfg


def comparable(cfg: DictConfig) -> dict:
    """The config without the keys a resumed run may change (limits, threads, device, display)."""
    plain = OmegaConf.to_container(cfg, resolve=True)
    for dotted in runtime_keys():
        *parents, leaf = dotted.split(".")
        node = plain
        for parent in parents:
            node = node.get(parent, {})
        node.pop(leaf, None)
    return plain


def config_changes(saved: dict, current: dict, prefix: str = "") -> list[str]:
    """What differs between a checkpoint's config and this run's, as ``key=saved -> current``. A key the
    saved config lacks is not a change: it was added to rnnbench after the run began, and a new key's
    default keeps the behaviour from before it (so a run continues across an upgrade)."""
    changes = []
    for key in sorted(saved, key=str):  # keys only the current config has are new ones: no change
        name = f"{prefix}{key}"
        if key not in current:
            changes.append(f"{name} (no longer a key)")
        elif isinstance(saved[key], dict) and isinstance(current[key], dict):
            changes += config_changes(saved[key], current[key], f"{name}.")
        elif saved[key] != current[key]:
            changes.append(f"{name}={saved[key]!r} -> {current[key]!r}")
    return changes


def detach(state):
    """Truncated BPTT: keep the values of a carried state, cut its history."""
    if state is None or isinstance(state, torch.Tensor):
        return None if state is None else state.detach()
    return tuple(detach(s) for s in state)


def moved(state, device):
    if state is None or isinstance(state, torch.Tensor):
        return None if state is None else state.to(device)
    return tuple(moved(s, device) for s in state)


def prefixed(split: str, metrics: dict) -> dict:
    return {f"{split}/{k}": v for k, v in metrics.items()}


class Trainer:
    def __init__(self, cfg: DictConfig, run_dir: str | Path, on_eval=None):
        validate(cfg)
        cfg = with_genome_text(cfg)
        self.cfg, self.tc, self.on_eval = cfg, cfg.trainer, on_eval
        tc = self.tc
        self.device = resolve_device(cfg.device)
        if tc.amp and self.device.type != "cuda":
            raise ConfigError(f"trainer.amp={tc.amp} needs a CUDA device (device={cfg.device})")
        seed = cfg.seed
        self.task = build_task(cfg.task, seed if cfg.data_seed is None else cfg.data_seed, cfg.data_dir)
        seed_everything(derived_seed(seed if cfg.init_seed is None else cfg.init_seed, 1))  # initial weights
        self.model = build_model(cfg, self.task).to(self.device)
        seed_everything(derived_seed(seed, 2))  # dropout, input noise, drawn initial states
        self.forward = torch.compile(self.model) if tc.compile else self.model
        self.params = list(self.model.parameters())  # the same tensors for the whole run
        # read at every step: a DictConfig attribute costs microseconds, a plain one nanoseconds
        self.clip_norm, self.loss_over_time, self.eval_every = tc.clip_norm, tc.loss_over_time, tc.eval_every
        self.limits = (tc.max_steps, tc.max_epochs, tc.max_minutes)
        self.optimizer = build_optimizer(tc, self.params)
        self.base_lr = base_learning_rate(tc)
        self.schedule = Schedule(
            tc.schedule,
            tc.decay_start,
            tc.decay,
            tc.halving_patience,
            tc.halvings,
            self.task.higher_is_better,
        )
        self.scaler = torch.amp.GradScaler("cuda") if tc.amp == "fp16" else None
        self.files = RunFiles(run_dir)
        self.headline = f"valid/{self.task.headline}"
        self.progress = Progress()
        self.progress.reset_window(self.device)
        self.carried = None  # hidden state carried between training batches (truncated BPTT)
        self.best_weights = None
        self.saved_step = -1  # the step of the checkpoint on disk that a rerun continues from (-1: none)

    # ---- the run, top to bottom ---------------------------------------------------------------------
    def run(self) -> dict:
        """Runs, or continues, the run. A run file that cannot be written (disk full, quota, read-only
        folder) ends it with a one-line ``RunFileError`` saying where a rerun continues from; the last
        checkpoint stays as it was, and summary.json says ``status: "write_failed"`` where it can."""
        try:
            return self.run_files()
        except RunFileError as failure:
            told = failure.then(resume_hint(failure.fix, self.saved_step))
            self.record_write_failure(told)
            raise told from failure.__cause__
        finally:
            self.files.close_mirror()

    def run_files(self) -> dict:
        self.started = time.perf_counter()
        p = self.progress
        if self.restore():
            self.saved_step = p.step
            summary = self.ended_summary()
            if summary is not None:
                return summary
            # lines written after the checkpoint are redone; a run that has ended keeps them all
            self.files.keep_metrics_until(p.step, ended=p.status != "running")
        else:
            self.files.start_metrics()
        self.files.write_config(self.cfg)  # a resumed run may have raised a limit
        self.files.mirror = open_logger(self.cfg, self.files)  # trainer.logger: each metrics line, live
        if p.status == "running":
            with StopSignal() as stop:
                self.loop(stop)
            self.save_checkpoint()  # records how the run ended
        return self.finish()

    def ended_summary(self) -> dict | None:
        """The summary of a restored run that has ended and has nothing left to write; None when it is
        running, its summary records a failed write, or it scored other test weights (a run scored
        again writes its test line anew)."""
        p = self.progress
        if p.status == "running" or not self.files.summary.exists():
            return None
        summary = self.files.read_summary()
        whole = summary["status"] != "write_failed" and summary.get("steps") == p.step
        return summary if whole and summary.get("test_weights", "best") == self.tc.test_weights else None

    def loop(self, stop: StopSignal):
        p, tc = self.progress, self.tc
        bar = tqdm(
            total=tc.max_steps,
            initial=p.step,
            desc=f"{self.cfg.cell.name} on {self.task.name}",
            disable=not tc.progress,
            dynamic_ncols=True,
        )
        while not self.should_stop(stop):
            self.set_lr()
            for batch, last in self.timed(islice(self.task.train_batches(p.epoch), p.batch_in_epoch, None)):
                if self.should_stop(stop):
                    break
                self.train_step(batch)
                bar.update(1)
                if last:  # the epoch's end: counted before the evaluation that may follow
                    p.epoch, p.batch_in_epoch, self.carried = p.epoch + 1, 0, None
                if self.eval_due(last):
                    self.evaluate(bar)
                    self.save_checkpoint()
        bar.close()
        if p.status == "completed" and p.last.get("step") != p.step and p.step > 0:
            self.evaluate(bar, at_limit=True)  # a run always ends on an evaluation of its last weights

    def eval_due(self, epoch_ended: bool) -> bool:
        every = self.eval_every
        return epoch_ended if every is None else self.progress.step % every == 0

    def should_stop(self, stop: StopSignal) -> bool:
        p = self.progress
        if p.status == "running" and stop.received is not None:
            p.status, p.stop_reason = "interrupted", signal.Signals(stop.received).name
        if p.status == "running" and self.limit():
            p.status, p.stop_reason = "completed", self.limit()
        return p.status != "running"

    def limit(self) -> str | None:
        p = self.progress
        return limit_reached(p.step, p.epoch, self.wall() / 60, *self.limits)

    def train_step(self, batch):
        p, task = self.progress, self.task
        tick = time.perf_counter()
        if not self.model.training:  # (an evaluation left it in eval mode)
            self.model.train()
        tokens = batch.num_tokens  # counted on the host copy: no device sync per step
        batch = batch.to(self.device)
        with self.autocast():
            logits, state = self.forward(batch.inputs, self.carried, batch.step_mask)
            loss_sum, count = task.loss(logits.float(), batch)
        if p.step == 0:
            p.initial_loss = float((loss_sum / count).detach())  # a sync, once per run
        loss = training_loss(loss_sum, count, batch.targets.shape[1], self.loss_over_time)
        self.optimizer.zero_grad(set_to_none=True)
        norm = self.backward_and_update(loss)
        self.carried = detach(state) if task.carries_state else None
        p.step, p.batch_in_epoch = p.step + 1, p.batch_in_epoch + 1
        p.window_loss += loss_sum.detach()
        p.window_count += count
        p.window_grad_norm += norm
        if self.clip_norm is not None:
            p.window_clipped += norm > self.clip_norm
        p.window_steps += 1
        p.window_tokens += tokens
        p.window_seconds += time.perf_counter() - tick

    def backward_and_update(self, loss) -> torch.Tensor:
        """The gradient's global norm before clipping (a tensor on the device: no sync)."""
        if self.scaler:
            self.scaler.scale(loss).backward()
            self.scaler.unscale_(self.optimizer)
        else:
            loss.backward()
        if self.clip_norm is not None:
            norm = torch.nn.utils.clip_grad_norm_(self.params, self.clip_norm)
        else:
            norm = global_norm([p.grad for p in self.params if p.grad is not None])
        if self.scaler:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        return norm.detach()

    @torch.no_grad()
    def evaluate(self, bar, at_limit: bool = False):
        """``at_limit``: the extra evaluation where a limit ended the run between two scheduled ones. It
        may pick the best weights, but it neither feeds the schedule nor restarts the training-loss
        window, and its line (marked ``at_limit``) is dropped if the run is extended, so that an
        extended run logs what an uninterrupted one does."""
        p, tc = self.progress, self.tc
        train_loss = float(p.window_loss / p.window_count.clamp(min=1))  # sync point, once per evaluation
        valid = {}
        if math.isfinite(train_loss):
            self.model.eval()
            with self.autocast():
                valid = prefixed(
                    "valid", self.task.evaluate(self.model, "valid", self.device, tc.eval_batches)
                )
        seconds = p.window_seconds + p.window_data_seconds
        record = {
            "step": p.step,
            "epoch": p.epoch,
            "split": "valid",
            **valid,
            "train/loss": train_loss,
            **window_gradients(p),
            "lr": self.optimizer.param_groups[0]["lr"],
            "tokens_per_s": p.window_tokens / seconds if seconds > 0 else None,
            "data_s": p.window_data_seconds,
            "wall_s": self.wall(),
        }
        if at_limit:
            record["at_limit"] = True
        self.files.append_metrics(record)
        p.last = record
        if not at_limit:
            p.reset_window(self.device)
        reason = divergence(train_loss, valid.get("valid/loss"), p.initial_loss, tc.divergence_factor)
        if reason:
            p.status, p.stop_reason = "diverged", reason
        elif p.status == "running" or at_limit:
            self.observe(record, at_limit)
            bar.set_postfix({"loss": f"{train_loss:.3f}", self.headline: f"{record[self.headline]:.4f}"})

    def observe(self, record: dict, at_limit: bool):
        """Best weights, the schedule, early stopping and the evaluation hook see one evaluation."""
        p, value = self.progress, record[self.headline]
        if not p.best or better(value, p.best[self.headline], self.task.higher_is_better):
            p.best, p.best_step = {k: v for k, v in record.items() if k.startswith("valid/")}, p.step
            self.best_weights = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        if at_limit:
            return
        if self.schedule.observe(value):
            p.status, p.stop_reason = "completed", "lr schedule ended"
        elif self.tc.patience is not None and self.schedule.since_best >= self.tc.patience:
            p.status, p.stop_reason = "completed", f"no improvement in {self.tc.patience} evals"
        elif self.on_eval is not None:
            decision = self.on_eval(record)
            if decision not in DECISIONS:
                raise ValueError(f"on_eval returned {decision!r}; it must return one of {DECISIONS}")
            if decision == "prune":
                p.status, p.stop_reason = "pruned", "pruned by the search"
            elif decision == "stop":
                p.status, p.stop_reason = "completed", "stopped by the evaluation hook"
        self.set_lr()

    def finish(self) -> dict:
        """Scores the test split with ``trainer.test_weights`` (the best evaluation's weights, or those
        the run ended with) and writes the test line, model.pt and summary.json."""
        p, test = self.progress, {}
        if self.best_weights is not None and p.status in ("completed", "diverged"):
            last = self.tc.test_weights == "last"
            if not last:  # "last": the model already holds the weights the run ended with
                self.model.load_state_dict(self.best_weights)
            self.model.eval()
            test = prefixed("test", self.task.evaluate(self.model, "test", self.device, self.tc.eval_batches))
            step = p.step if last else p.best_step
            self.files.append_metrics(
                {"step": step, "epoch": p.epoch, "split": "test", **test, "wall_s": self.wall()}
            )
            self.files.save_model(self.model.state_dict(), self.cfg)
        summary = summarize(self.cfg, p, test, self.facts())
        self.files.write_summary(summary)
        return summary

    def facts(self) -> dict:
        return {
            "task": self.task.name,
            "headline": self.headline,
            "higher_is_better": self.task.higher_is_better,
            "device": str(self.device),
            "num_params": count_parameters(self.model),
            "hidden_size": self.model.hidden_size,
            "threads": torch.get_num_threads(),
            "wall_s": self.wall(),
        }

    def record_write_failure(self, failure: RunFileError) -> None:
        """summary.json says the run stopped on a write, if that small write still succeeds. A rerun
        does not take it for the run's end: it continues from the checkpoint (``resume_step``)."""
        if not hasattr(self, "started"):  # it failed before the run began (the lock, the folder)
            return
        summary = summarize(self.cfg, self.progress, {}, self.facts()) | {
            "status": "write_failed",
            "stop_reason": str(failure),
            "resume_step": self.saved_step if self.saved_step >= 0 else None,
        }
        with contextlib.suppress(RunFileError):
            self.files.write_summary(summary)

    # ---- helpers ------------------------------------------------------------------------------------
    def wall(self) -> float:
        """Seconds this run has trained, over all its sessions."""
        return self.progress.elapsed + time.perf_counter() - self.started

    def timed(self, batches):
        """(batch, whether it is the epoch's last), with the time spent making batches added to the
        window's data clock. The next batch is made before this one is trained on: that is how the
        last one is known."""
        batches = iter(batches)
        tick = time.perf_counter()
        batch = next(batches, None)
        while batch is not None:
            following = next(batches, None)
            self.progress.window_data_seconds += time.perf_counter() - tick
            yield batch, following is None
            tick = time.perf_counter()
            batch = following

    def set_lr(self):
        for group in self.optimizer.param_groups:
            group["lr"] = self.base_lr * self.schedule.factor(self.progress.epoch)

    def autocast(self):
        if not self.tc.amp:
            return contextlib.nullcontext()
        return torch.autocast("cuda", dtype=torch.bfloat16 if self.tc.amp == "bf16" else torch.float16)

    # ---- checkpoints --------------------------------------------------------------------------------
    def save_checkpoint(self):
        checkpoint.save(self.files.checkpoint, self.checkpoint_payload())
        self.saved_step = self.progress.step

    def checkpoint_payload(self) -> dict:
        progress = self.progress.state_dict() | {"elapsed": self.wall()}
        return {
            "config": comparable(self.cfg),
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler else None,
            "schedule": self.schedule.state_dict(),
            "rng": checkpoint.rng_states(),
            "progress": progress,
            "carried": self.carried,
            "best_weights": self.best_weights,
        }

    def saved_checkpoint(self) -> dict | None:
        """The run directory's checkpoint, read once; None when there is none to use."""
        if self.tc.resume == "never" or not self.files.checkpoint.exists():
            return None
        return checkpoint.load(self.files.checkpoint)

    def restore(self) -> bool:
        """Continues from the run directory's checkpoint; False when there is none to use."""
        saved = self.saved_checkpoint()
        if saved is None:
            return False
        self.restore_from(saved)
        return True

    def restore_from(self, saved: dict) -> None:
        """Puts a checkpoint's weights, optimiser, schedule, progress and RNG states back in place."""
        path = self.files.checkpoint
        changed = config_changes(saved["config"], comparable(self.cfg))
        if changed:
            raise ConfigError(
                f"{self.files.dir} holds a run with a different config ({', '.join(changed[:3])}"
                f"{', ...' if len(changed) > 3 else ''}); {checkpoint.WAY_OUT}"
            )
        try:
            self.model.load_state_dict(saved["model"])
            self.optimizer.load_state_dict(saved["optimizer"])
            if self.scaler:
                self.scaler.load_state_dict(saved["scaler"])
            for key, value in saved["schedule"].items():
                setattr(self.schedule, key, value)
            self.progress.load_state_dict(saved["progress"], self.device)
            checkpoint.set_rng_states(saved["rng"])
        except (KeyError, RuntimeError, ValueError, TypeError) as error:
            reason = str(error).splitlines()[0][:160]
            raise ConfigError(f"{path} does not fit this run ({reason}); {checkpoint.WAY_OUT}") from None
        self.carried = moved(saved["carried"], self.device)
        self.best_weights = saved["best_weights"]
        p = self.progress
        if p.status == "interrupted" or (p.stop_reason in LIMITS and not self.limit()):
            p.status, p.stop_reason = "running", None  # continue, e.g. with a raised step limit
