"""Optimisers from the ``trainer`` config.

``sgd`` with ``momentum_scales_lr: true`` is Greff et al.'s update: Nesterov momentum with the learning
rate multiplied by (1 − momentum), so that the step size stays comparable across momentum values.
"""

from __future__ import annotations

import torch
from omegaconf import DictConfig

from rnnbench.config.choices import OPTIMIZERS
from rnnbench.errors import ConfigError, check_choice, check_positive


def base_learning_rate(cfg: DictConfig) -> float:
    """The rate the optimiser starts from, before any schedule."""
    return cfg.lr * (1 - cfg.momentum) if cfg.get("momentum_scales_lr") else cfg.lr


def build_optimizer(cfg: DictConfig, params) -> torch.optim.Optimizer:
    check_choice("trainer.optimizer", cfg.optimizer, OPTIMIZERS)
    check_positive("trainer.lr", cfg.lr)
    check_positive("trainer.weight_decay", cfg.weight_decay, allow_zero=True)
    if not 0 <= cfg.momentum < 1:
        raise ConfigError(f"trainer.momentum={cfg.momentum} is not valid; it must be in [0, 1)")
    if cfg.clip_norm is not None:
        check_positive("trainer.clip_norm", cfg.clip_norm)
    lr = base_learning_rate(cfg)
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "rmsprop":  # Chung et al. 2015 (GF-RNN)
        return torch.optim.RMSprop(params, lr=lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    if cfg.nesterov and cfg.momentum == 0:
        raise ConfigError("trainer.nesterov=true needs trainer.momentum > 0")
    return torch.optim.SGD(
        params, lr=lr, momentum=cfg.momentum, nesterov=cfg.nesterov, weight_decay=cfg.weight_decay
    )
