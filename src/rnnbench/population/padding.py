"""Padding a member of a population to the population's largest hidden size, and back.

Every hidden-sized dimension of a weight is a run of blocks of H units (the gates of a fused matrix,
the two directions of a bidirectional output, the layers' states): (G*H, I) has G blocks along dim 0.
A member with H units is padded to Hmax by appending Hmax - H zero units to every block::

    member  (2*H, I)     [ i_0 .. i_H | f_0 .. f_H ]
    padded  (2*Hmax, I)  [ i_0 .. i_H 0 .. 0 | f_0 .. f_H 0 .. 0 ]

Why padded units stay exactly inert (every built-in cell, any optimiser): a padded unit j has zero
rows (its pre-activations are 0), zero columns (nothing reads it) and a zero state. With a zero
pre-activation and a zero state every cell keeps the unit at 0: the LSTM's block input is g(0) = 0
whatever i and f are (a forget bias is written before padding, so it is 0 here), c stays 0, y =
h(0) o = 0; the GRU and MUT updates are z h + (1 - z) tanh(0) = 0; MUT1/MUT2's raw input x_j is the
padded (zero) embedding feature, and the input noise is 0 there (``noise_scale``). Since nothing reads
unit j, dL/dh_j = 0, so its rows get zero gradients; its columns get dL/dpre * h_j = 0. Zero
gradients leave zero weights at zero under SGD, momentum, Adam and RMSprop, and add nothing to a
member's gradient norm. Two cells break the argument and need equal sizes: FGR carries its gates'
activations as state (σ(0) = 1/2 on a padded unit, read by ``weight_gg``), and the gated-feedback
stacks mix the widths of their layers in their weights. Initial states drawn at random
(``model.initial_state=normal|uniform``) would put noise into padded units: they need equal sizes too.
Members are initialised at their real size, with their own seed, and padded afterwards, so inits
that scale with the width see the real width.
"""

from __future__ import annotations

import torch

from rnnbench.errors import ConfigError


def block_dims(shape, full_shape, hidden: int, full_hidden: int) -> list[int | None]:
    """Per dimension: the number of hidden blocks it holds, or None when it does not depend on H."""
    blocks = []
    for size, full in zip(shape, full_shape):
        if size == full:
            blocks.append(None)
        elif full % full_hidden == 0 and size == (full // full_hidden) * hidden:
            blocks.append(full // full_hidden)
        else:
            raise ConfigError(
                f"a weight of shape {tuple(shape)} cannot be padded to {tuple(full_shape)}; this cell needs "
                "equal cell.hidden_size for every member of a population"
            )
    return blocks


def pad(t: torch.Tensor, full_shape, hidden: int, full_hidden: int) -> torch.Tensor:
    """``t`` with Hmax - H zero units appended to every hidden block."""
    if len(full_shape) != t.dim():
        raise ConfigError(f"a weight of shape {tuple(t.shape)} does not fit {tuple(full_shape)}")
    for d, n in enumerate(block_dims(t.shape, full_shape, hidden, full_hidden)):
        if n is not None:
            split = t.unflatten(d, (n, hidden))
            widths = [0, 0] * (t.dim() - d) + [0, full_hidden - hidden]  # F.pad counts from the last dim
            t = torch.nn.functional.pad(split, widths[2:]).flatten(d, d + 1)
    return t


def unpad(t: torch.Tensor, shape, hidden: int, full_hidden: int) -> torch.Tensor:
    """The member's own tensor of ``shape`` taken back out of a padded one."""
    for d, n in enumerate(block_dims(shape, t.shape, hidden, full_hidden)):
        if n is not None:
            t = t.unflatten(d, (n, full_hidden)).narrow(d + 1, 0, hidden).flatten(d, d + 1)
    return t.contiguous()
