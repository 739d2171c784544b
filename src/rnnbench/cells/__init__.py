"""Every built-in cell, by the name used in configs (``cell=<name>``)."""

from __future__ import annotations

from dataclasses import replace
from functools import partial

from rnnbench.cells.base import Cell, State
from rnnbench.cells.gated_feedback import GatedFeedbackCell
from rnnbench.cells.gru import GRUCell
from rnnbench.cells.lstm import VARIANTS, LSTMCell, LSTMSpec
from rnnbench.cells.mut import Mut1Cell, Mut2Cell, Mut3Cell
from rnnbench.cells.tanh_rnn import TanhCell
from rnnbench.errors import ConfigError, check_choice


def _lstm(spec: LSTMSpec, input_size: int, hidden_size: int, forget_bias: float | None = None):
    if forget_bias is not None:
        if spec.forget_gate != "gate":
            raise ConfigError(f"cell.forget_bias={forget_bias} is set but this cell has no forget gate")
        spec = replace(spec, forget_bias=float(forget_bias))
    return LSTMCell(input_size, hidden_size, spec)


# Gated-feedback stacks hold every layer in one cell: the model must not stack them again.
GATED_FEEDBACK = {f"gf_{kind}": partial(GatedFeedbackCell, kind) for kind in ("tanh", "gru", "lstm")}

CELLS = {
    "tanh": TanhCell,
    "gru": GRUCell,
    "mut1": Mut1Cell,
    "mut2": Mut2Cell,
    "mut3": Mut3Cell,
    **{name: partial(_lstm, spec) for name, spec in VARIANTS.items()},
    **GATED_FEEDBACK,
}


def build_cell(
    name: str, input_size: int, hidden_size: int, forget_bias: float | None = None, **options
) -> Cell:
    """``options``: a cell's own keys (the gated-feedback stacks' ``num_layers``, ``feedback_gates``,
    ``unit_gates_read``, ``dropout``); other cells take none."""
    check_choice("cell", name, sorted(CELLS))
    if name in GATED_FEEDBACK:
        return CELLS[name](input_size, hidden_size, forget_bias=forget_bias, **options)
    if options:
        raise ConfigError(f"cell.{next(iter(options))} is not an option of cell {name}")
    if name in VARIANTS:
        return CELLS[name](input_size, hidden_size, forget_bias=forget_bias)
    if forget_bias is not None:
        raise ConfigError(f"cell.forget_bias={forget_bias} is set but cell {name} has no forget gate")
    return CELLS[name](input_size, hidden_size)


__all__ = [
    "CELLS",
    "GATED_FEEDBACK",
    "Cell",
    "GatedFeedbackCell",
    "State",
    "LSTMCell",
    "LSTMSpec",
    "VARIANTS",
    "build_cell",
]
