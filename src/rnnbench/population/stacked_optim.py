"""SGD, Adam and RMSprop on stacked weights: a leading member dimension K, one update for all members.

Each member keeps its own learning rate, momentum, weight decay and gradient clipping (by its own global
norm, never one norm across members), and its own step count. The update math is that of
``torch.optim.SGD`` (Nesterov included), ``Adam`` and ``RMSprop`` with their defaults, and of
``torch.nn.utils.clip_grad_norm_``, so a member follows the run it would be alone. Members that are not
``active`` (stopped) keep their weights and optimiser state unchanged. While every member is active,
SGD updates in place, and terms that are 0 for every member (weight decay, momentum) are skipped: the
stacked weights are large, and each pass over them costs as much as a few time steps.
"""

from __future__ import annotations

import torch

ADAM_BETAS, ADAM_EPS = (0.9, 0.999), 1e-8
RMSPROP_ALPHA, RMSPROP_EPS = 0.99, 1e-8


def per_member(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """(K,) -> (K, 1, ..., 1), broadcastable against a stacked (K, ...) tensor."""
    return values.view(-1, *([1] * (like.dim() - 1)))


def member_norms(grads: list[torch.Tensor]) -> torch.Tensor:
    """Each member's global gradient norm, (K,)."""
    return torch.stack([g.flatten(1).norm(dim=1) for g in grads], 1).norm(dim=1)


def clip_per_member(grads: list[torch.Tensor], norms: torch.Tensor, max_norms: torch.Tensor) -> None:
    """Scales each member's gradients (global ``norms``) to at most its own max norm (inf: no clipping),
    in place."""
    coef = (max_norms / (norms + 1e-6)).clamp(max=1.0)
    for g in grads:
        g.mul_(per_member(coef, g))


class StackedOptimizer:
    """``momentum`` and ``weight_decay``: each member's value (they stay fixed; the rate may change)."""

    def __init__(
        self,
        kind: str,
        params: dict[str, torch.Tensor],
        momentum: list[float],
        weight_decay: list[float],
        nesterov: bool = False,
    ):
        self.kind, self.params, self.nesterov = kind, params, nesterov
        self.state = {name: self.fresh(p) for name, p in params.items()}
        first = next(iter(params.values()))
        self.steps = torch.zeros(first.shape[0], dtype=torch.float64, device=first.device)
        self.momentum = torch.tensor(momentum, dtype=first.dtype, device=first.device)
        self.weight_decay = torch.tensor(weight_decay, dtype=first.dtype, device=first.device)
        self.has_momentum, self.has_decay = any(momentum), any(weight_decay)

    def fresh(self, p: torch.Tensor) -> dict[str, torch.Tensor]:
        if self.kind == "sgd":
            return {"momentum_buffer": torch.zeros_like(p)}
        if self.kind == "adam":
            return {"exp_avg": torch.zeros_like(p), "exp_avg_sq": torch.zeros_like(p)}
        return {"square_avg": torch.zeros_like(p), "momentum_buffer": torch.zeros_like(p)}

    @torch.no_grad()
    def step(self, lr: torch.Tensor, active: torch.Tensor, everyone: bool = False) -> None:
        """``lr``: (K,); ``active``: (K,) bool; ``everyone``: all members are active. Uses (and may
        change) the gradients."""
        self.steps += active.to(self.steps.device, torch.float64)
        momentum = self.momentum
        for name, p in self.params.items():
            g = p.grad
            if g is None:
                continue
            if everyone and self.kind == "sgd":
                self.sgd_in_place(p, g, self.state[name], lr)
                continue
            g = g + per_member(self.weight_decay, p) * p
            new_p, new_state = getattr(self, self.kind)(p, g, self.state[name], lr, momentum)
            keep = per_member(active, p)
            p.copy_(torch.where(keep, new_p, p))
            for key, value in new_state.items():
                self.state[name][key] = torch.where(keep, value, self.state[name][key])

    def sgd_in_place(self, p, g, state, lr):
        """``sgd`` for every member, written into p, its buffer and its gradient."""
        if self.has_decay:
            g.addcmul_(p, per_member(self.weight_decay, p))
        if self.has_momentum:
            m = per_member(self.momentum, p)
            buf = state["momentum_buffer"].mul_(m).add_(g)
            g = g.addcmul_(buf, m) if self.nesterov else buf
        p.addcmul_(g, per_member(-lr, p))

    def sgd(self, p, g, state, lr, momentum):
        m = per_member(momentum, p)
        buf = m * state["momentum_buffer"] + g  # torch: the first buffer is g itself (0 * m + g)
        direction = g + m * buf if self.nesterov else buf
        return p - per_member(lr, p) * direction, {"momentum_buffer": buf}

    def adam(self, p, g, state, lr, momentum):
        (beta1, beta2), steps = ADAM_BETAS, self.steps.clamp(min=1)
        exp_avg = state["exp_avg"].lerp(g, 1 - beta1)
        exp_avg_sq = state["exp_avg_sq"] * beta2 + (1 - beta2) * g * g
        step_size = (lr.double() / (1 - beta1**steps)).to(p.dtype)
        bias2_sqrt = (1 - beta2**steps).sqrt().to(p.dtype)
        denom = exp_avg_sq.sqrt() / per_member(bias2_sqrt, p) + ADAM_EPS
        return p - per_member(step_size, p) * exp_avg / denom, {"exp_avg": exp_avg, "exp_avg_sq": exp_avg_sq}

    def rmsprop(self, p, g, state, lr, momentum):
        square_avg = state["square_avg"] * RMSPROP_ALPHA + (1 - RMSPROP_ALPHA) * g * g
        buf = per_member(momentum, p) * state["momentum_buffer"] + g / (square_avg.sqrt() + RMSPROP_EPS)
        return p - per_member(lr, p) * buf, {"square_avg": square_avg, "momentum_buffer": buf}

    def member_state(self, k: int) -> dict:
        return {
            "steps": float(self.steps[k]),
            "state": {n: {key: v[k] for key, v in s.items()} for n, s in self.state.items()},
        }

    def load_member_state(self, k: int, saved: dict) -> None:
        self.steps[k] = saved["steps"]
        for name, s in saved["state"].items():
            for key, value in s.items():
                self.state[name][key][k] = value
