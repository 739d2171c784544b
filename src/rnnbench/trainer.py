"""Training one run: ``train(cfg, run_dir) -> summary``, a plain function of its config.

The loop knows neither the cell nor the task: it asks the task for batches and a (sum, count) loss,
evaluates every ``trainer.eval_every`` steps (or at each epoch end), keeps the weights with the best
validation headline metric, scores them on the test split at the end, and writes the run files
(``rnnbench.runfiles``). At every evaluation it writes a checkpoint; running the same config on the same
run directory again continues from it (``trainer.resume=auto``), and the result is the same as one
uninterrupted run. A diverging run ends with ``status: "diverged"``, a signal (SIGINT, SIGTERM) with a
checkpoint and ``status: "interrupted"``; neither raises, so a sweep goes on.
"""

from __future__ import annotations

import contextlib
import copy
import math
import os
import random
import signal
import threading
import time
from itertools import islice
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from tqdm import tqdm

from rnnbench import checkpoint
from rnnbench.budget import configured_budget
from rnnbench.device import resolve_device
from rnnbench.errors import ConfigError, check_choice, check_positive
from rnnbench.model import build_model, count_parameters
from rnnbench.optim import base_learning_rate, build_optimizer
from rnnbench.runfiles import RunFiles, git_commit, versions
from rnnbench.schedules import Schedule
from rnnbench.tasks import build_task

LIMITS = ("max_steps", "max_epochs", "max_minutes")
# Keys that may change between an interrupted run and its resumption: limits and display only.
RESUMABLE_CHANGES = ("max_steps", "max_epochs", "max_minutes", "progress", "resume")


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def detach(state):
    """Truncated BPTT: keep the values of a carried state, cut its history."""
    if state is None:
        return None
    if isinstance(state, torch.Tensor):
        return state.detach()
    return tuple(detach(s) for s in state)


def prefixed(split: str, metrics: dict) -> dict:
    return {f"{split}/{k}": v for k, v in metrics.items()}


def comparable(cfg: DictConfig) -> dict:
    """The config without the keys a resumed run may change."""
    plain = OmegaConf.to_container(cfg, resolve=True)
    for key in ("data_dir", "results_dir"):  # where files live, not what the run computes
        plain.pop(key, None)
    for key in RESUMABLE_CHANGES:
        plain["trainer"].pop(key, None)
    return plain


class StopSignal:
    """Turns SIGINT/SIGTERM into a flag the loop checks between steps (main thread only)."""

    def __init__(self):
        self.received: int | None = None
        self.previous = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self.previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.received is not None:  # a second signal: stop at once
            raise KeyboardInterrupt
        self.received = signum

    def __exit__(self, *exc):
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)


class Trainer:
    def __init__(self, cfg: DictConfig, run_dir: str | Path, on_eval=None):
        tc = self.tc = cfg.trainer
        self.cfg = cfg
        self.on_eval = on_eval  # on_eval(record) -> "continue" | "stop" | "prune" (a search's pruner)
        if not isinstance(cfg.seed, int) or isinstance(cfg.seed, bool):
            raise ConfigError(f"seed={cfg.seed!r} is not valid; it must be an integer")
        check_positive("trainer.max_steps", tc.max_steps, integer=True)
        for key in ("max_epochs", "patience"):
            if tc[key] is not None:
                check_positive(f"trainer.{key}", tc[key], integer=True)
        if tc.max_minutes is not None:
            check_positive("trainer.max_minutes", tc.max_minutes, allow_zero=True)
        check_choice("trainer.loss_over_time", tc.loss_over_time, ("mean", "sum"))
        if tc.eval_every is not None:
            check_positive("trainer.eval_every", tc.eval_every, integer=True)
        check_choice("trainer.resume", tc.resume, ("auto", "never"))
        check_choice("trainer.amp", tc.amp, (None, "bf16", "fp16"))
        self.device = resolve_device(cfg.device)
        if tc.amp and self.device.type != "cuda":
            raise ConfigError(f"trainer.amp={tc.amp} needs a CUDA device (device={cfg.device})")
        if tc.threads is not None:
            check_positive("trainer.threads", tc.threads)
            torch.set_num_threads(tc.threads)
        if tc.deterministic:
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
            torch.use_deterministic_algorithms(True)
            torch.backends.cudnn.benchmark = False
        seed_everything(cfg.seed)
        self.task = build_task(cfg.task, cfg.seed, cfg.get("data_dir"))
        self.model = build_model(cfg, self.task).to(self.device)
        self.forward = torch.compile(self.model) if tc.compile else self.model
        self.optimizer = build_optimizer(tc, self.model.parameters())
        self.base_lr = base_learning_rate(tc)
        self.schedule = Schedule(
            tc.schedule, tc.decay_start, tc.decay, tc.halving_patience, tc.halvings,
            self.task.higher_is_better,
        )  # fmt: skip
        self.scaler = torch.amp.GradScaler("cuda") if tc.amp == "fp16" else None
        self.files = RunFiles(run_dir)
        self.headline = f"valid/{self.task.headline}"
        # progress: everything a checkpoint must restore besides the modules
        self.step = self.epoch = self.batch_in_epoch = 0
        self.carried = None  # hidden state carried between training batches (truncated BPTT)
        self.best, self.best_step, self.best_weights, self.last = None, 0, None, {}
        self.initial_loss = math.inf  # the untrained model's loss: the yardstick for exploding losses
        self.status, self.stop_reason = "running", None
        self.elapsed = 0.0  # seconds of earlier sessions of this run
        self._reset_window()

    def _reset_window(self):
        self.window_loss = torch.zeros((), device=self.device)  # summed on the device: no sync per step
        self.window_count = self.window_tokens = 0
        self.window_seconds = 0.0

    # ---- checkpoints -------------------------------------------------------------------------------
    def state(self) -> dict:
        return {
            "config": comparable(self.cfg),
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler else None,
            "schedule": self.schedule.state_dict(),
            "rng": checkpoint.rng_states(),
            "progress": {
                "step": self.step, "epoch": self.epoch, "batch_in_epoch": self.batch_in_epoch,
                "carried": self.carried, "best": self.best, "best_step": self.best_step,
                "best_weights": self.best_weights, "last": self.last,
                "initial_loss": self.initial_loss, "status": self.status,
                "stop_reason": self.stop_reason, "elapsed": self.elapsed + self.clock(),
                "window": (self.window_loss.cpu(), self.window_count, self.window_tokens,
                           self.window_seconds),
            },
        }  # fmt: skip

    def save_checkpoint(self):
        checkpoint.save(self.files.checkpoint, self.state())

    def restore(self) -> bool:
        """Continues from the run directory's checkpoint; False when there is none to use."""
        if self.tc.resume == "never" or not self.files.checkpoint.exists():
            return False
        saved = checkpoint.load(self.files.checkpoint)
        if saved["config"] != comparable(self.cfg):
            raise ConfigError(
                f"{self.files.dir} holds a run with a different config; use another run directory "
                "or trainer.resume=never to start over"
            )
        self.model.load_state_dict(saved["model"])
        self.optimizer.load_state_dict(saved["optimizer"])
        if self.scaler:
            self.scaler.load_state_dict(saved["scaler"])
        for key, value in saved["schedule"].items():
            setattr(self.schedule, key, value)
        p = saved["progress"]
        self.step, self.epoch, self.batch_in_epoch = p["step"], p["epoch"], p["batch_in_epoch"]
        self.carried = None if p["carried"] is None else _to(p["carried"], self.device)
        self.best, self.best_step, self.best_weights = p["best"], p["best_step"], p["best_weights"]
        self.last, self.initial_loss, self.elapsed = p["last"], p["initial_loss"], p["elapsed"]
        self.status, self.stop_reason = p["status"], p["stop_reason"]
        loss, self.window_count, self.window_tokens, self.window_seconds = p["window"]
        self.window_loss = loss.to(self.device)
        if self.status == "interrupted" or (self.stop_reason in LIMITS and not self.limit_reached()):
            self.status, self.stop_reason = "running", None  # continue, e.g. with a raised step limit
        checkpoint.set_rng_states(saved["rng"])
        return True

    # ---- the loop ----------------------------------------------------------------------------------
    def clock(self) -> float:
        return time.perf_counter() - self.started

    def run(self) -> dict:
        self.started = time.perf_counter()  # limit_reached() reads the clock, also inside restore()
        resumed = self.restore()
        finished = self.files.read_summary() if resumed and self.status != "running" else None
        if finished:
            return finished  # this run has already ended
        if resumed:
            self.files.keep_metrics_until(self.step)  # lines written after the checkpoint are redone
        else:
            self.files.start_metrics()
        self.files.write_config(self.cfg)  # a resumed run may have raised a limit
        if self.status == "running":
            with StopSignal() as stop:
                self.loop(stop)
            self.save_checkpoint()  # records how the run ended
        return self.finish()

    def set_lr(self):
        for group in self.optimizer.param_groups:
            group["lr"] = self.base_lr * self.schedule.factor(self.epoch)

    def limit_reached(self) -> str | None:
        tc = self.tc
        if self.step >= tc.max_steps:
            return "max_steps"
        if tc.max_epochs is not None and self.epoch >= tc.max_epochs:
            return "max_epochs"
        if tc.max_minutes is not None and (self.elapsed + self.clock()) / 60 >= tc.max_minutes:
            return "max_minutes"
        return None

    def loop(self, stop: StopSignal):
        tc, task = self.tc, self.task
        bar = tqdm(total=tc.max_steps, initial=self.step, desc=f"{self.cfg.cell.name} on {task.name}",
                   disable=not tc.progress, dynamic_ncols=True)  # fmt: skip
        while self.status == "running":
            reason = self.limit_reached()
            if reason:
                self.status, self.stop_reason = "completed", reason
                break
            self.set_lr()
            tick = time.perf_counter()
            for batch in islice(task.train_batches(self.epoch), self.batch_in_epoch, None):
                self.train_step(batch)
                bar.update(1)
                if tc.eval_every is not None and self.step % tc.eval_every == 0:
                    self.window_seconds += time.perf_counter() - tick
                    self.evaluate(bar)
                    tick = time.perf_counter()
                if stop.received is not None:
                    self.window_seconds += time.perf_counter() - tick
                    self.status, self.stop_reason = "interrupted", signal.Signals(stop.received).name
                    self.save_checkpoint()
                    break
                if self.status != "running" or self.limit_reached():
                    self.window_seconds += time.perf_counter() - tick
                    break
            else:  # the epoch ran to its end
                self.window_seconds += time.perf_counter() - tick  # its tail counts too
                self.epoch, self.batch_in_epoch, self.carried = self.epoch + 1, 0, None
                if tc.eval_every is None:
                    self.evaluate(bar)
        bar.close()
        if self.status == "completed" and self.last.get("step") != self.step and self.step > 0:
            self.evaluate(bar, at_limit=True)  # a run always ends on an evaluation of its last weights

    def train_step(self, batch):
        tc, task = self.tc, self.task
        self.model.train()
        tokens = batch.num_tokens  # counted on the host copy: no device sync per step
        batch = batch.to(self.device)
        state = self.carried if task.carries_state else None
        with self.autocast():
            logits, state = self.forward(batch.inputs, state, batch.step_mask)
            loss_sum, count = task.loss(logits.float(), batch)
        self.optimizer.zero_grad(set_to_none=True)
        loss = loss_sum / count
        if tc.loss_over_time == "sum":  # Zaremba et al.: summed over the window's steps, mean over the batch
            loss = loss * batch.inputs.shape[0]
        if self.step == 0:
            self.initial_loss = float(loss.detach())
        if self.scaler:
            self.scaler.scale(loss).backward()
            self.scaler.unscale_(self.optimizer)
        else:
            loss.backward()
        if tc.clip_norm is not None:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), tc.clip_norm)
        if self.scaler:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self.carried = detach(state) if task.carries_state else None
        self.step += 1
        self.batch_in_epoch += 1
        self.window_loss += loss_sum.detach()
        self.window_count += count
        self.window_tokens += tokens

    def autocast(self):
        if not self.tc.amp:
            return contextlib.nullcontext()
        return torch.autocast("cuda", dtype=torch.bfloat16 if self.tc.amp == "bf16" else torch.float16)

    @torch.no_grad()
    def evaluate(self, bar, at_limit: bool = False):
        """``at_limit``: the extra evaluation where a limit ended the run between two scheduled ones. It
        may pick the best weights, but it neither feeds the schedule nor restarts the training-loss
        window, and its line (marked ``at_limit``) is dropped if the run is extended, so that an
        extended run logs what an uninterrupted one does."""
        train_loss = float(self.window_loss) / max(self.window_count, 1)  # sync point, once per evaluation
        record = {"step": self.step, "epoch": self.epoch, "split": "valid"}
        if not math.isfinite(train_loss):
            self.status, self.stop_reason = "diverged", "non-finite training loss"
        else:
            self.model.eval()
            with self.autocast():
                valid = prefixed("valid", self.task.evaluate(self.model, "valid", self.device,
                                                             self.tc.eval_batches))  # fmt: skip
            record |= valid
            loss = valid.get("valid/loss", 0.0)
            factor = self.tc.divergence_factor
            if not math.isfinite(loss) or (factor is not None and loss > factor * self.initial_loss):
                self.status, self.stop_reason = "diverged", "validation loss exploded"
        seconds = self.window_seconds
        record |= {
            "train/loss": train_loss, "lr": self.optimizer.param_groups[0]["lr"],
            "tokens_per_s": self.window_tokens / seconds if seconds > 0 else None,
            "wall_s": self.elapsed + self.clock(),
        }  # fmt: skip
        if at_limit:
            record["at_limit"] = True
        self.files.append_metrics(record)
        self.last = record
        if not at_limit:
            self._reset_window()
        # the limit's evaluation comes after the loop has marked the run completed
        if self.status == "running" or (at_limit and self.status == "completed"):
            value = record[self.headline]
            bar.set_postfix({"loss": f"{train_loss:.3f}", self.headline: f"{value:.4f}"})
            if self.best is None or self.better(value, self.best[self.headline]):
                self.best, self.best_step = valid, self.step
                self.best_weights = copy.deepcopy(self.model.state_dict())
            if at_limit:
                pass
            elif self.schedule.observe(value):
                self.status, self.stop_reason = "completed", "lr schedule ended"
            elif self.tc.patience is not None and self.schedule.since_best >= self.tc.patience:
                self.status, self.stop_reason = "completed", f"no improvement in {self.tc.patience} evals"
            self.set_lr()
        if self.on_eval is not None and self.status == "running":
            decision = self.on_eval(record)
            if decision == "prune":
                self.status, self.stop_reason = "pruned", "pruned by the search"
            elif decision == "stop":
                self.status, self.stop_reason = "completed", "stopped by the evaluation hook"
        self.save_checkpoint()

    def better(self, a, b) -> bool:
        return a > b if self.task.higher_is_better else a < b

    def finish(self) -> dict:
        test = {}
        if self.best_weights is not None and self.status in ("completed", "diverged"):
            self.model.load_state_dict(self.best_weights)
            self.model.eval()
            test = prefixed("test", self.task.evaluate(self.model, "test", self.device, self.tc.eval_batches))
            self.files.append_metrics({"step": self.best_step, "epoch": self.epoch, "split": "test", **test,
                                       "wall_s": self.elapsed + self.clock()})  # fmt: skip
            self.files.save_model(self.best_weights, self.cfg)
        tc = self.tc
        summary = {
            "status": self.status,
            "stop_reason": self.stop_reason,
            "cell": self.cfg.cell.name,
            "task": self.task.name,
            "headline": self.headline,
            "higher_is_better": self.task.higher_is_better,
            "steps": self.step,
            "epochs": self.epoch,
            "best_step": self.best_step,
            "best": self.best or {},
            "final": {k: v for k, v in self.last.items() if "/" in k},
            "test": test,
            "seed": self.cfg.seed,
            "device": str(self.device),
            "num_params": count_parameters(self.model),
            "hidden_size": self.model.hidden_size,  # as built: model.param_budget may set it
            "param_budget": configured_budget(self.cfg.model),
            "num_layers": self.cfg.cell.num_layers,
            "wall_s": self.elapsed + self.clock(),
            "runtime": {
                "deterministic": bool(tc.deterministic),
                "amp": tc.amp,
                "compile": bool(tc.compile),
                "threads": torch.get_num_threads(),
            },  # fmt: skip
            "versions": versions(),
            "git_commit": git_commit(),
        }
        self.files.write_summary(summary)
        return summary


def _to(state, device):
    if isinstance(state, torch.Tensor):
        return state.to(device)
    return tuple(_to(s, device) for s in state)


def train(cfg: DictConfig, run_dir: str | Path, on_eval=None) -> dict:
    # threads and deterministic mode are process-wide: give the next run of a sweep what we found
    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    try:
        return Trainer(cfg, run_dir, on_eval).run()
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic)
