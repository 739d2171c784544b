"""Optimisers from the ``trainer`` config."""

from __future__ import annotations

import torch
from omegaconf import DictConfig

from rnnbench.errors import ConfigError, check_choice, check_positive

OPTIMIZERS = ("sgd", "adam")


def build_optimizer(cfg: DictConfig, params) -> torch.optim.Optimizer:
    check_choice("trainer.optimizer", cfg.optimizer, OPTIMIZERS)
    check_positive("trainer.lr", cfg.lr)
    check_positive("trainer.weight_decay", cfg.weight_decay, allow_zero=True)
    if not 0 <= cfg.momentum < 1:
        raise ConfigError(f"trainer.momentum={cfg.momentum} is not valid; it must be in [0, 1)")
    if cfg.clip_norm is not None:
        check_positive("trainer.clip_norm", cfg.clip_norm)
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    return torch.optim.SGD(
        params,
        lr=cfg.lr,
        momentum=cfg.momentum,
        nesterov=cfg.nesterov,
        weight_decay=cfg.weight_decay,
    )
