"""The cell interface: one time step of a recurrent network.

A cell is an ``nn.Module`` with

* ``project_input(x)``: the part of the step that depends on the input alone, applied to the whole
  sequence ``(T, B, I)`` at once, before the time loop (the "premul" of fused RNN kernels);
* ``step(xp_t, state) -> (output, new_state)``: one time step on the projected input ``xp_t`` and a
  tuple of state tensors; the only work left inside the time loop;
* ``state_shapes``: the trailing shape of each state tensor (the batch dimension is added in front).

``rnnbench.layers.recurrent.Recurrent`` turns any such cell into a sequence layer. Built-in cells and cells
that users write share that one runner. A cell whose equations are exactly those of a torch kernel also has
``sequence(x, state, mask)``: the whole layer in that kernel (``library_kernel`` says whether it has one),
which the runner calls instead of its time loop when ``impl`` allows. A cell with a fused C++ kernel
(the LSTM family, the GRU, the MUT cells, the gated-feedback stacks: ``fused_kernel``) has
``fused_sequence(x, state, mask)`` likewise.
"""

from __future__ import annotations

import torch
from torch import nn

State = tuple[torch.Tensor, ...]


class Cell(nn.Module):
    """Base class: identity input projection, a single hidden-state vector."""

    input_size: int
    hidden_size: int
    library_kernel: bool = False  # True: ``sequence`` runs the whole layer in a torch kernel
    fused_kernel: str | None = None  # the package's C++ kernel that ``fused_sequence`` runs (cells.native)

    @property
    def output_size(self) -> int:
        return self.hidden_size

    @property
    def state_shapes(self) -> tuple[tuple[int, ...], ...]:
        return ((self.hidden_size,),)

    def project_input(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def step(self, xp: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        raise NotImplementedError

    def step_weights(self) -> tuple[torch.Tensor, ...] | None:
        """Views of parameters the step reads (a fused matrix split per gate), made once per sequence by
        the runner and passed as ``step(xp, state, weights)``: slicing a parameter inside the step would
        cost a full-size gradient of it at every step. None (the default): ``step(xp, state)``."""
        return None

    def sequence(self, x: torch.Tensor, state: State, mask: torch.Tensor | None):
        """The whole layer in a library kernel: (outputs, final state), or None to use the step loop."""
        return None

    def fused_sequence(self, x: torch.Tensor, state: State, mask: torch.Tensor | None):
        """The whole layer in the package's fused C++ kernel: (outputs, final state), or None to use the
        step loop (the kernel cannot be built, or does not serve this device or dtype)."""
        return None

    def zero_state(self, batch: int, like: torch.Tensor) -> State:
        return tuple(like.new_zeros((batch, *shape)) for shape in self.state_shapes)


def fused(rows: int, cols: int) -> nn.Parameter:
    """An uninitialised fused weight; ``rnnbench.model.init`` fills every parameter after construction."""
    return nn.Parameter(torch.empty(rows, cols))


def require_square(cell_name: str, input_size: int, hidden_size: int) -> None:
    """Cells that add the raw input to a hidden-sized vector need input size == hidden size."""
    if input_size != hidden_size:
        from rnnbench.errors import ConfigError

        raise ConfigError(
            f"cell {cell_name} adds the raw input to the hidden state, so input size must equal "
            f"hidden size (got input {input_size}, hidden {hidden_size}); put a projection in front "
            f"(model.input_projection=true) or change the sizes"
        )
