"""Parameter initialisation schemes (config ``model.init``).

* ``uniform`` (Jozefowicz et al.): every weight ~ U(−s/√N, s/√N), N = the width the weight reads from
  (its last dimension: the hidden size for recurrent matrices); biases 0. ``s`` is ``model.init_scale``.
* ``normal`` (Greff et al.): every weight ~ N(0, ``model.init_std``) (0.1 in the paper); biases 0.
* ``pytorch``: cell parameters, biases included, ~ U(−1/√H, 1/√H) as ``torch.nn.LSTM`` does; embedding
  and output layers keep PyTorch's defaults.

After the scheme, each cell's declared gate biases (``Cell.bias_init``, e.g. the forget bias of
``lstm_b``) are written into its ``bias``. Learned initial states start at 0
(``rnnbench.layers.initial_state``).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from rnnbench.cells.base import Cell
from rnnbench.errors import check_choice
from rnnbench.layers.initial_state import InitialState

SCHEMES = ("uniform", "normal", "pytorch")


@torch.no_grad()
def initialize(model: nn.Module, scheme: str = "uniform", scale: float = 1.0, std: float = 0.1):
    check_choice("model.init", scheme, SCHEMES)
    cells = [m for m in model.modules() if isinstance(m, Cell)]
    cell_params = {id(p) for c in cells for p in c.parameters()}
    for name, p in model.named_parameters():
        is_bias = name.endswith("bias")  # 2-D for gated-feedback stacks: one row per layer
        if scheme == "pytorch":
            if id(p) in cell_params:
                owner = next(c for c in cells if any(p is q for q in c.parameters()))
                bound = 1 / math.sqrt(owner.hidden_size)
                p.uniform_(-bound, bound)
        elif is_bias:
            p.zero_()
        elif scheme == "uniform":
            bound = scale / math.sqrt(p.shape[-1])
            p.uniform_(-bound, bound)
        else:
            p.normal_(0.0, std)
    for cell in cells:
        set_gate_biases(cell)
    for module in model.modules():
        if isinstance(module, InitialState):
            module.reset_parameters()


@torch.no_grad()
def set_gate_biases(cell: Cell) -> None:
    values = cell.bias_init() if hasattr(cell, "bias_init") else {}
    if not values:
        return
    per_gate = cell.bias.view(-1, len(cell.gate_names), cell.hidden_size)  # (layers, gates, H)
    for gate, value in values.items():
        per_gate[:, cell.gate_names.index(gate)] = value
