"""The model a task trains: input layer, a stack of recurrent layers, and a readout.

    tokens (T, B) --Embedding--> (T, B, E) --dropout--> Stack --dropout--> Linear --> logits (T, B, O)
    dense  (T, B, D) --[optional Linear projection]----> ...

Dropout sits only on non-recurrent connections (Zaremba et al. 2014). Gaussian input noise (Greff et
al. 2017) is added to the input of the first recurrent layer, in training only. A gated-feedback cell
(gf_*) is itself the whole stack of ``cell.num_layers`` layers. ``model.param_budget`` sizes the hidden
layers (``rnnbench.model.budget``).
"""

from __future__ import annotations

import os

import torch
from omegaconf import DictConfig
from torch import nn

from rnnbench.cells import GATED_FEEDBACK, Cell, build_cell_from_config
from rnnbench.errors import ConfigError, check_positive
from rnnbench.layers.recurrent import Bidirectional, Recurrent, Stack
from rnnbench.model.budget import configured_budget, solve_hidden_size
from rnnbench.model.init import initialize


class SequenceModel(nn.Module):
    def __init__(
        self,
        encoder: nn.Module,
        stack: Stack,
        output_size: int,
        dropout: float,
        input_noise_std: float = 0.0,
        many_to_one: bool = False,
    ):
        super().__init__()
        self.encoder = encoder
        self.many_to_one = many_to_one
        self.input_noise_std = input_noise_std
        # the noise's std per input feature as a tensor: a population gives each member its own
        # (and 0 on the features padded for a smaller member); not part of the weights
        self.register_buffer("noise_scale", torch.tensor(float(input_noise_std)), persistent=False)
        self.stack = stack
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(stack.output_size, output_size)

    @property
    def hidden_size(self) -> int:
        return next(m for m in self.stack.modules() if isinstance(m, Cell)).hidden_size

    def forward(self, inputs, state=None, mask=None):
        """Returns logits (T, B, O), or (1, B, O) for a many-to-one model, and every layer's final state."""
        x = self.encoder(inputs)
        if self.training and self.input_noise_std > 0:
            x = x + torch.randn_like(x) * self.noise_scale
        x = self.dropout(x)
        h, state = self.stack(x, state, mask)
        if self.many_to_one:  # the last real step (both directions' ends when bidirectional)
            h = self.stack.last_output(h, mask).unsqueeze(0)
        return self.head(self.dropout(h)), state


def build_model(cfg: DictConfig, task) -> SequenceModel:
    """Builds and initialises the model for ``task`` from the ``cell`` and ``model`` configs.

    The hidden size is ``cell.hidden_size``, or the one solved from ``model.param_budget`` when set."""
    cell_cfg, model_cfg = cfg.cell, cfg.model
    check_positive("cell.num_layers", cell_cfg.num_layers, integer=True)
    check_positive("model.init_scale", model_cfg.init_scale)
    check_positive("model.init_std", model_cfg.init_std)
    if not 0 <= model_cfg.dropout < 1:
        raise ConfigError(f"model.dropout={model_cfg.dropout} is not valid; it must be in [0, 1)")
    budget = configured_budget(model_cfg)
    if budget is None:
        hidden = cell_cfg.hidden_size
        check_positive("cell.hidden_size", hidden, integer=True)
    else:
        what = f"cell {cell_cfg.name} with {cell_cfg.num_layers} layer(s) on task {task.name}"
        hidden = solve_hidden_size(lambda h: count_at(cfg, task, h), budget, what)
    check_fits_in_memory(count_at(cfg, task, hidden), cell_cfg, hidden)
    model = assemble(cfg, task, hidden)
    initialize(model, model_cfg.init, model_cfg.init_scale, model_cfg.init_std)
    return model


BYTES_PER_PARAMETER = 20  # float32 weights, gradients, two optimiser moments and the best weights' copy


def check_fits_in_memory(parameters: int, cell_cfg: DictConfig, hidden: int) -> None:
    """A model too large for this machine is a config error, not an out-of-memory crash."""
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    if parameters * BYTES_PER_PARAMETER > memory:
        raise ConfigError(
            f"cell.hidden_size={hidden} gives {parameters / 1e6:,.0f}M parameters, more than this machine's "
            f"{memory / 2**30:.0f} GiB can train; choose a smaller cell.hidden_size, cell.num_layers or "
            "model.param_budget"
        )


def assemble(cfg: DictConfig, task, hidden: int) -> SequenceModel:
    """The uninitialised model with ``hidden`` units per layer."""
    model_cfg = cfg.model
    if task.input_kind == "tokens":
        width = embed_width(model_cfg, hidden)
        encoder: nn.Module = nn.Embedding(task.input_size, width)
    elif model_cfg.input_projection:
        width = embed_width(model_cfg, hidden)
        encoder = nn.Linear(task.input_size, width)
    else:
        width, encoder = task.input_size, nn.Identity()
    stack = Stack(build_layers(cfg, task, width, hidden), model_cfg.dropout)
    noise = model_cfg.get("input_noise_std", 0.0)
    check_positive("model.input_noise_std", noise, allow_zero=True)
    return SequenceModel(encoder, stack, task.output_size, model_cfg.dropout, noise, task.many_to_one)


def embed_width(model_cfg: DictConfig, hidden: int) -> int:
    if model_cfg.embed_size is None:
        return hidden
    check_positive("model.embed_size", model_cfg.embed_size, integer=True)
    return model_cfg.embed_size


def count_at(cfg: DictConfig, task, hidden: int) -> int:
    """Parameters of the model with ``hidden`` units, built on the meta device (shapes, no memory)."""
    with torch.device("meta"):
        return count_parameters(assemble(cfg, task, hidden))


def build_layers(cfg: DictConfig, task, width: int, hidden: int) -> list[nn.Module]:
    """``cell.num_layers`` recurrent layers; ``model.bidirectional``: each one a forward-backward pair."""
    model_cfg = cfg.model
    bidirectional = model_cfg.get("bidirectional", False)
    if bidirectional and not task.many_to_one:  # a backward pass would read the targets of next-step tasks
        raise ConfigError(
            f"model.bidirectional=true does not fit task {task.name}: it predicts the next step, which the "
            "backward direction would already have read; use it with many-to-one tasks (classify)"
        )

    def layer(input_width: int, **options) -> Recurrent:
        cell = build_cell_from_config(cfg.cell, input_width, hidden, **options)
        kind = model_cfg.get("initial_state", "zeros")
        impl = cfg.cell.get("impl", "auto")
        return Recurrent(cell, kind, model_cfg.get("initial_state_std", 0.1), impl)

    if cfg.cell.name in GATED_FEEDBACK:
        # A gated-feedback stack couples its layers at every step: ONE cell holds all of them,
        # applies the between-layer dropout itself, and is not stacked again here.
        if bidirectional:
            raise ConfigError(f"model.bidirectional=true is not available for cell {cfg.cell.name}")
        return [layer(width, num_layers=cfg.cell.num_layers, dropout=model_cfg.dropout)]
    layers: list[nn.Module] = []
    for _ in range(cfg.cell.num_layers):
        layers.append(Bidirectional(layer(width), layer(width)) if bidirectional else layer(width))
        width = layers[-1].output_size
    return layers


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
