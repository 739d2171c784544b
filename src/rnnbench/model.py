"""The model a task trains: input layer, a stack of recurrent layers, and a readout.

    tokens (T, B) --Embedding--> (T, B, E) --dropout--> Stack --dropout--> Linear --> logits (T, B, O)
    dense  (T, B, D) --[optional Linear projection]----> ...

Dropout sits only on non-recurrent connections (Zaremba et al. 2014). A gated-feedback cell (gf_*) is
itself the whole Stack of ``cell.num_layers`` layers. ``model.param_budget`` sizes the hidden layers
(``rnnbench.budget``).
"""

from __future__ import annotations

import torch
from omegaconf import DictConfig
from torch import nn

from rnnbench.budget import configured_budget, solve_hidden_size
from rnnbench.cells import GATED_FEEDBACK, build_cell
from rnnbench.errors import ConfigError, check_positive
from rnnbench.init import initialize
from rnnbench.sequence import Recurrent, Stack


class SequenceModel(nn.Module):
    def __init__(self, encoder: nn.Module, stack: Stack, output_size: int, dropout: float):
        super().__init__()
        self.encoder = encoder
        self.stack = stack
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(stack.output_size, output_size)

    def forward(self, inputs, state=None, mask=None):
        """Returns logits (T, B, O) and the final state of every layer."""
        x = self.dropout(self.encoder(inputs))
        h, state = self.stack(x, state, mask)
        return self.head(self.dropout(h)), state


CELL_KEYS = ("name", "hidden_size", "num_layers", "forget_bias")  # the rest of cell.* are cell options


def build_model(cfg: DictConfig, task) -> SequenceModel:
    """Builds and initialises the model for ``task`` from the ``cell`` and ``model`` configs.

    The hidden size is ``cell.hidden_size``, or the one solved from ``model.param_budget`` when set."""
    cell_cfg, model_cfg = cfg.cell, cfg.model
    check_positive("cell.num_layers", cell_cfg.num_layers)
    if not 0 <= model_cfg.dropout < 1:
        raise ConfigError(f"model.dropout={model_cfg.dropout} is not valid; it must be in [0, 1)")
    budget = configured_budget(model_cfg)
    if budget is None:
        hidden = cell_cfg.hidden_size
        check_positive("cell.hidden_size", hidden)
    else:
        what = f"cell {cell_cfg.name} with {cell_cfg.num_layers} layer(s) on task {task.name}"
        hidden = solve_hidden_size(lambda h: count_at(cfg, task, h), budget, what)
    model = assemble(cfg, task, hidden)
    initialize(model, model_cfg.init, model_cfg.init_scale, model_cfg.init_std)
    return model


def assemble(cfg: DictConfig, task, hidden: int) -> SequenceModel:
    """The uninitialised model with ``hidden`` units per layer."""
    cell_cfg, model_cfg = cfg.cell, cfg.model
    layers, forget_bias = cell_cfg.num_layers, cell_cfg.get("forget_bias")
    options = {k: v for k, v in cell_cfg.items() if k not in CELL_KEYS}
    if task.input_kind == "tokens":
        width = model_cfg.embed_size or hidden
        encoder: nn.Module = nn.Embedding(task.input_size, width)
    elif model_cfg.input_projection:
        width = model_cfg.embed_size or hidden
        encoder = nn.Linear(task.input_size, width)
    else:
        width, encoder = task.input_size, nn.Identity()
    if cell_cfg.name in GATED_FEEDBACK:
        # A gated-feedback stack couples its layers at every step: ONE cell holds all of them,
        # applies the between-layer dropout itself, and is not stacked again here.
        options.update(num_layers=layers, dropout=model_cfg.dropout)
        cells = [build_cell(cell_cfg.name, width, hidden, forget_bias, **options)]
    else:
        cells = []
        for _ in range(layers):
            cells.append(build_cell(cell_cfg.name, width, hidden, forget_bias, **options))
            width = cells[-1].output_size
    stack = Stack([Recurrent(c) for c in cells], model_cfg.dropout)
    return SequenceModel(encoder, stack, task.output_size, model_cfg.dropout)


def count_at(cfg: DictConfig, task, hidden: int) -> int:
    """Parameters of the model with ``hidden`` units, built on the meta device (shapes, no memory)."""
    with torch.device("meta"):
        return count_parameters(assemble(cfg, task, hidden))


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
