"""Turning a one-step cell into a sequence layer; stacking layers; running a layer in both directions.

Tensors are time-major: inputs (T, B, I), outputs (T, B, O), masks (T, B) with True at real steps.
A mask marks a prefix of each column (padding at the end, as tasks produce it). On padded steps a layer
keeps the state of the last real step and outputs zeros, so a padded batch gives every sequence the
outputs and final state it gets alone.

``Recurrent`` is the one layer runner: built-in cells, cells users write, readout and nested cells all
run through it. ``impl`` (config ``cell.impl``) picks how it runs a sequence, every way computing the
same outputs and gradients (tests/layers/test_fast_paths.py):

* ``python``: the step loop, the reference;
* ``compiled``: the same loop over ``torch.compile(cell.step)``, compiled once per shape and reused;
* ``library``: the cell's ``sequence``, torch's own kernel (``lstm``, ``lstm_b``, ``np``, ``tanh``); a
  mask that is not a prefix of every column falls back to the step loop;
* ``fused``: the cell's ``fused_sequence``, the package's C++ kernel of the whole loop and its backward
  (the LSTM family, gru, mut1..3, the gated-feedback stacks, on a CPU, float32 or float64; elsewhere,
  or where it cannot be built, the step loop);
* ``auto``: ``library`` where the cell has a torch kernel, else ``fused`` where it has a fused one that
  serves (``fused_serves``: measured faster than the step loop at every study shape), else ``python``
  (on a CPU, compiling the step measured no faster than the loop: see docs/speed.md).
"""

from __future__ import annotations

from functools import partial

import torch
from torch import nn

from rnnbench.cells.base import Cell, State
from rnnbench.cells.kernels import native
from rnnbench.errors import ConfigError, check_choice
from rnnbench.layers.initial_state import InitialState

IMPLS = ("auto", "python", "compiled", "library", "fused")


def per_row(keep: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """(B,) or (K, B) bool -> (B, 1, ..., 1) or (K, B, 1, ..., 1), broadcastable against ``like``."""
    return keep.view(*keep.shape, *([1] * (like.dim() - keep.dim())))


def run_steps(step, inputs, state, masks=None):
    """The step loop: ``step`` over ``inputs`` (one tensor per step) from ``state``. Where a step's mask
    is False, that sequence keeps the state of its last real step and outputs 0."""
    outputs = []
    for t, x_t in enumerate(inputs):
        out, new_state = step(x_t, state)
        if masks is not None:
            keep = masks[t]
            new_state = tuple(torch.where(per_row(keep, n), n, s) for n, s in zip(new_state, state))
            out = torch.where(per_row(keep, out), out, torch.zeros_like(out))
        outputs.append(out)
        state = tuple(new_state)
    return outputs, state


class Recurrent(nn.Module):
    """Runs ``cell`` over a sequence: input projection for all steps first, then the time loop."""

    def __init__(
        self, cell: Cell, initial_state: str = "zeros", initial_state_std: float = 0.1, impl: str = "auto"
    ):
        super().__init__()
        check_choice("cell.impl", impl, IMPLS)
        if impl == "library" and not cell.library_kernel:
            raise ConfigError(
                f"cell.impl=library is not available for {type(cell).__name__} (its equations are not those "
                "of a torch kernel); choose one of: auto, python, compiled"
            )
        if impl == "fused" and not cell.fused_kernel:
            raise ConfigError(
                f"cell.impl=fused is not available for {type(cell).__name__} (it has no fused kernel; every "
                "built-in cell but tanh has one); choose one of: auto, python, compiled"
                + (", library" if cell.library_kernel else "")
            )
        self.cell, self.impl = cell, impl
        self.initial_state = InitialState(cell.state_shapes, initial_state, initial_state_std)
        self._compiled_step = None  # built at the first compiled forward; torch.compile caches per shape

    @property
    def output_size(self) -> int:
        return self.cell.output_size

    @property
    def path(self) -> str:
        """The way sequences run: ``library``, ``fused``, ``compiled`` or ``python`` (what ``auto`` resolves
        to; ``fused`` where the kernel cannot serve is ``python``)."""
        if self.impl == "auto" and self.cell.library_kernel:
            return "library"
        if self.impl in ("auto", "fused"):
            return "fused" if self.fused_serves() else "python"
        return self.impl

    def fused_serves(self) -> bool:
        """Whether the cell's fused kernel runs this layer: it has one, its weights are float32 or float64
        on the CPU, the kernel is built or can be (a C++ compiler is here; no build of it failed), and the
        layer is not being compiled (to torch.compile the kernel is opaque: compiled models keep the loop)."""
        weight = next(self.cell.parameters(), None)
        return bool(
            self.cell.fused_kernel
            and not torch.compiler.is_compiling()
            and (weight is None or (weight.device.type == "cpu" and weight.dtype in native.DTYPES))
            and native.can_build(self.cell.fused_kernel)
        )

    def forward(self, x: torch.Tensor, state: State | None = None, mask: torch.Tensor | None = None):
        """Returns outputs (T, B, O) and the final state (that of each column's last real step)."""
        if state is None:
            state = self.initial_state(x.shape[1], x)
        path = self.path
        if path == "library":
            result = self.cell.sequence(x, state, mask)
            if result is not None:
                return result
        if path == "fused" or self.impl == "fused":  # a failed build says so, once
            result = self.cell.fused_sequence(x, state, mask)
            if result is not None:
                return result
        step = self.cell.step
        if path == "compiled":
            if self._compiled_step is None:
                self._compiled_step = torch.compile(self.cell.step, dynamic=False)
            step = self._compiled_step
        weights = self.cell.step_weights()  # resolved once per sequence, not per step
        xp = self.cell.project_input(x)  # (T, B, ·): the only place the input matrices are applied
        if weights is not None:
            step = partial(step, weights=weights)
        # unbind, not xp[t]: one backward node for all steps instead of one full-size gradient per step
        outputs, state = run_steps(step, xp.unbind(0), state, None if mask is None else mask.unbind(0))
        return torch.stack(outputs), state

    def last_output(self, outputs: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Many-to-one: each column's output at its last real step, (B, O)."""
        return outputs.gather(0, last_index(outputs, mask)).squeeze(0)


def last_index(outputs: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """(1, B, O) index of each column's last real step, for ``gather`` along time."""
    T, B = outputs.shape[:2]
    full = outputs.new_full((B,), T - 1, dtype=torch.long)
    last = full if mask is None else (mask.sum(0) - 1).clamp(min=0)
    return last.view(1, B, *([1] * (outputs.dim() - 2))).expand(1, *outputs.shape[1:])


def reverse_real(x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Reverses the real prefix of every column in time and leaves its padding in place (own inverse)."""
    if mask is None:
        return x.flip(0)
    T, B = mask.shape
    lengths = mask.sum(0)  # (B,)
    t = torch.arange(T, device=x.device).unsqueeze(1)  # (T, 1)
    source = torch.where(t < lengths, lengths - 1 - t, t)  # (T, B): where step t reads from
    return x.gather(0, source.view(T, B, *([1] * (x.dim() - 2))).expand_as(x))


class Bidirectional(nn.Module):
    """Two layers, one reading each sequence forward and one backward; outputs concatenated per step.

    The backward layer reads each column's real steps in reverse (x_{L-1}, ..., x_0), so its output at
    step t has seen x_t..x_{L-1} and never the padding. The state is (forward state, backward state);
    both are final states that have seen the whole real sequence.
    """

    def __init__(self, forward_layer: nn.Module, backward_layer: nn.Module):
        super().__init__()
        self.forward_layer, self.backward_layer = forward_layer, backward_layer

    @property
    def output_size(self) -> int:
        return self.forward_layer.output_size + self.backward_layer.output_size

    def forward(self, x, state=None, mask=None):
        forward_state, backward_state = (None, None) if state is None else state
        out_f, forward_state = self.forward_layer(x, forward_state, mask)
        out_b, backward_state = self.backward_layer(reverse_real(x, mask), backward_state, mask)
        return torch.cat([out_f, reverse_real(out_b, mask)], -1), (forward_state, backward_state)

    def last_output(self, outputs: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Many-to-one: the forward half at the last real step and the backward half at step 0, (B, O)."""
        width = self.forward_layer.output_size
        out_f, out_b = outputs[..., :width], outputs[..., width:]
        return torch.cat([out_f.gather(0, last_index(out_f, mask)).squeeze(0), out_b[0]], -1)


class Stack(nn.Module):
    """Layers on top of each other; dropout only on the connections between layers (Zaremba et al.)."""

    def __init__(self, layers: list[nn.Module], dropout: float = 0.0):
        super().__init__()
        self.layers = nn.ModuleList(layers)
        self.dropout = nn.Dropout(dropout)

    @property
    def output_size(self) -> int:
        return self.layers[-1].output_size

    def forward(self, x, state: tuple | None = None, mask=None):
        states = []
        for k, layer in enumerate(self.layers):
            if k > 0:
                x = self.dropout(x)
            x, s = layer(x, None if state is None else state[k], mask)
            states.append(s)
        return x, tuple(states)

    def last_output(self, outputs: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.layers[-1].last_output(outputs, mask)
