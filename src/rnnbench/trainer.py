"""Training one run: ``train(cfg, run_dir) -> summary``, a plain function of its config.

The loop knows neither the cell nor the task: it asks the task for batches and a (sum, count) loss,
evaluates every ``trainer.eval_every`` steps, keeps the weights with the best validation headline
metric, scores them on the test split at the end, and writes the run files (``rnnbench.runfiles``).
"""

from __future__ import annotations

import copy
import math
import random
import time
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig
from tqdm import tqdm

from rnnbench.device import resolve_device
from rnnbench.errors import check_positive
from rnnbench.model import build_model, count_parameters
from rnnbench.optim import build_optimizer
from rnnbench.runfiles import RunFiles, git_commit, versions
from rnnbench.tasks import build_task


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


def train(cfg: DictConfig, run_dir: str | Path) -> dict:
    tc = cfg.trainer
    check_positive("trainer.max_steps", tc.max_steps)
    check_positive("trainer.eval_every", tc.eval_every)
    device = resolve_device(cfg.device)
    seed_everything(cfg.seed)
    task = build_task(cfg.task, cfg.seed, cfg.get("data_dir"))
    model = build_model(cfg, task).to(device)
    optimizer = build_optimizer(tc, model.parameters())
    files = RunFiles(run_dir)
    files.write_config(cfg)
    files.start_metrics()

    headline = f"valid/{task.headline}"
    better = (lambda a, b: a > b) if task.higher_is_better else (lambda a, b: a < b)
    best, best_step, best_weights, last = None, 0, None, {}
    status, stop_reason = "completed", "max_steps"
    step, epoch, started = 0, 0, time.perf_counter()
    train_sum = torch.zeros((), device=device)  # summed on the device: no sync per step
    train_count, train_tokens, train_seconds = 0, 0, 0.0
    bar = tqdm(
        total=tc.max_steps,
        desc=f"{cfg.cell.name} on {task.name}",
        disable=not tc.progress,
        dynamic_ncols=True,
    )
    while step < tc.max_steps:
        if tc.max_epochs is not None and epoch >= tc.max_epochs:
            stop_reason = "max_epochs"
            break
        state = None  # reset at every epoch start
        tick = time.perf_counter()
        for batch in task.train_batches(epoch):
            model.train()
            batch = batch.to(device)
            logits, state = model(
                batch.inputs, detach(state) if task.carries_state else None, batch.step_mask
            )
            loss_sum, count = task.loss(logits, batch)
            optimizer.zero_grad(set_to_none=True)
            (loss_sum / count).backward()
            if tc.clip_norm is not None:
                torch.nn.utils.clip_grad_norm_(model.parameters(), tc.clip_norm)
            optimizer.step()
            step += 1
            train_sum += loss_sum.detach()
            train_count += count
            train_tokens += batch.num_tokens
            bar.update(1)
            if step % tc.eval_every == 0 or step == tc.max_steps:
                train_loss = float(train_sum) / train_count  # sync point, once per evaluation
                train_seconds += time.perf_counter() - tick
                if not math.isfinite(train_loss):
                    status, stop_reason = "diverged", "non-finite training loss"
                    break
                model.eval()
                valid = prefixed("valid", task.evaluate(model, "valid", device, tc.eval_batches))
                last = {
                    "step": step,
                    "epoch": epoch,
                    "split": "valid",
                    **valid,
                    "train/loss": train_loss,
                    "lr": optimizer.param_groups[0]["lr"],
                    "tokens_per_s": train_tokens / train_seconds,
                    "wall_s": time.perf_counter() - started,
                }
                files.append_metrics(last)
                bar.set_postfix({"loss": f"{train_loss:.3f}", headline: f"{valid[headline]:.4f}"})
                if best is None or better(valid[headline], best[headline]):
                    best, best_step = valid, step
                    best_weights = copy.deepcopy(model.state_dict())
                train_sum.zero_()
                train_count = train_tokens = 0
                train_seconds = 0.0
                tick = time.perf_counter()
            if step >= tc.max_steps:
                break
        train_seconds += time.perf_counter() - tick  # the epoch's tail counts too (tick restarts below)
        if status == "diverged":
            break
        epoch += 1
    bar.close()

    test = {}
    if best_weights is not None:
        model.load_state_dict(best_weights)
        model.eval()
        test = prefixed("test", task.evaluate(model, "test", device, tc.eval_batches))
        files.append_metrics(
            {
                "step": best_step,
                "epoch": epoch,
                "split": "test",
                **test,
                "wall_s": time.perf_counter() - started,
            }
        )
        files.save_model(best_weights, cfg)
    summary = {
        "status": status,
        "stop_reason": stop_reason,
        "cell": cfg.cell.name,
        "task": task.name,
        "headline": headline,
        "higher_is_better": task.higher_is_better,
        "steps": step,
        "epochs": epoch,
        "best_step": best_step,
        "best": best or {},
        "final": {k: v for k, v in last.items() if "/" in k},
        "test": test,
        "seed": cfg.seed,
        "device": str(device),
        "num_params": count_parameters(model),
        "hidden_size": cfg.cell.hidden_size,
        "num_layers": cfg.cell.num_layers,
        "wall_s": time.perf_counter() - started,
        "versions": versions(),
        "git_commit": git_commit(),
    }
    files.write_summary(summary)
    return summary
