"""Every built-in cell, by the name used in configs (``cell=<name>``)."""

from __future__ import annotations

from dataclasses import replace
from functools import partial

from rnnbench.cells.base import Cell, State
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


CELLS = {
    "tanh": TanhCell,
    "gru": GRUCell,
    "mut1": Mut1Cell,
    "mut2": Mut2Cell,
    "mut3": Mut3Cell,
    **{name: partial(_lstm, spec) for name, spec in VARIANTS.items()},
}


def build_cell(name: str, input_size: int, hidden_size: int, forget_bias: float | None = None) -> Cell:
    check_choice("cell", name, sorted(CELLS))
    if name in VARIANTS:
        return CELLS[name](input_size, hidden_size, forget_bias=forget_bias)
    if forget_bias is not None:
        raise ConfigError(f"cell.forget_bias={forget_bias} is set but cell {name} has no forget gate")
    return CELLS[name](input_size, hidden_size)


__all__ = ["CELLS", "Cell", "State", "LSTMCell", "LSTMSpec", "VARIANTS", "build_cell"]
