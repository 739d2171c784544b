"""Every built-in cell, by the name used in configs (``cell=<name>``), and cells from users' modules.

A cell config with ``_target_: package.module.Factory`` (or ``factory:``) builds the user's cell as
``Factory(input_size, hidden_size, **options)``, options being the config's other keys, e.g.
``examples/my_cells/cell/my_cell.yaml`` used as ``python -m rnnbench --config-dir examples/my_cells
cell=my_cell`` with the module's folder on ``PYTHONPATH``.
"""

from __future__ import annotations

from dataclasses import replace
from functools import partial
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from rnnbench.cells.base import Cell, State
from rnnbench.cells.gated_feedback import GatedFeedbackCell
from rnnbench.cells.gru import GRUCell
from rnnbench.cells.lstm import VARIANTS, LSTMCell, LSTMSpec
from rnnbench.cells.mut import Mut1Cell, Mut2Cell, Mut3Cell
from rnnbench.cells.tanh_rnn import TanhCell
from rnnbench.errors import ConfigError, check_choice
from rnnbench.user_code import import_target


def _lstm(spec: LSTMSpec, input_size: int, hidden_size: int, forget_bias: float | None = None):
    if forget_bias is not None:
        if spec.forget_gate != "gate":
            raise ConfigError(f"cell.forget_bias={forget_bias} is set but this cell has no forget gate")
        spec = replace(spec, forget_bias=float(forget_bias))
    return LSTMCell(input_size, hidden_size, spec)


def _genome(input_size: int, hidden_size: int, genome: str | None = None, genome_file: str | None = None):
    """``cell=genome``: ``cell.genome`` is the step as text, or the name of a genome (tanh, lstm, lstm_b,
    gru, mut1..3; those the architecture search names); ``cell.genome_file`` a file that holds the text;
    neither: the GRU's genome."""
    from rnnbench.cells.genome import NAMED_GENOMES, GenomeCell

    if genome is not None and genome_file is not None:
        raise ConfigError("cell.genome and cell.genome_file are both set; give one of them")
    if genome_file is not None:
        genome = read_genome_file(genome_file)
    text = NAMED_GENOMES.get(genome or "gru", genome)
    return GenomeCell(input_size, hidden_size, text)


def read_genome_file(path: str) -> str:
    """The text of ``cell.genome_file``, or a one-line error naming it."""
    try:
        return Path(path).read_text()
    except OSError as error:
        raise ConfigError(f"cell.genome_file={path!r} cannot be read ({error.strerror})") from None


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
    "genome": _genome,
}


def build_cell(
    name: str, input_size: int, hidden_size: int, forget_bias: float | None = None, **options
) -> Cell:
    """``options``: a cell's own keys (the gated-feedback stacks' ``num_layers``, ``feedback_gates``,
    ``unit_gates_read``, ``dropout``); other cells take none."""
    check_choice("cell", name, sorted(CELLS))
    if name in GATED_FEEDBACK:
        return CELLS[name](input_size, hidden_size, forget_bias=forget_bias, **options)
    if name == "genome":
        unknown = set(options) - {"genome", "genome_file"}
        if unknown or forget_bias is not None:
            key = next(iter(unknown)) if unknown else "forget_bias"
            raise ConfigError(f"cell.{key} is not an option of cell genome; its options: genome, genome_file")
        return CELLS[name](input_size, hidden_size, **options)
    if options:
        raise ConfigError(f"cell.{next(iter(options))} is not an option of cell {name}")
    if name in VARIANTS:
        return CELLS[name](input_size, hidden_size, forget_bias=forget_bias)
    if forget_bias is not None:
        raise ConfigError(f"cell.forget_bias={forget_bias} is set but cell {name} has no forget gate")
    return CELLS[name](input_size, hidden_size)


# keys every cell config has; the rest of a user cell's config are options for its factory
SHARED_KEYS = ("name", "hidden_size", "num_layers", "forget_bias", "impl", "_target_", "factory")


def build_user_cell(key: str, target: str, input_size: int, hidden_size: int, options: dict) -> Cell:
    factory = import_target(key, target)
    try:
        cell = factory(input_size, hidden_size, **options)
    except TypeError as error:
        raise ConfigError(f"{key}={target!r} cannot be called with the options {options}: {error}") from None
    if not isinstance(cell, Cell):
        raise ConfigError(f"{key}={target!r} returned {type(cell).__name__}, not an rnnbench.cells.Cell")
    return cell


def build_cell_from_config(cell_cfg, input_size: int, hidden_size: int | None = None, **extra) -> Cell:
    """The cell a ``cell`` config describes: a built-in by ``name``, or a user's ``_target_``/``factory``.
    ``hidden_size`` defaults to the config's (``model.param_budget`` passes a solved one). Keys beyond
    the shared ones, and ``extra``, are the cell's own options."""
    if isinstance(cell_cfg, DictConfig):
        cell_cfg = OmegaConf.to_container(cell_cfg, resolve=True)
    hidden_size = cell_cfg["hidden_size"] if hidden_size is None else hidden_size
    options = {k: v for k, v in cell_cfg.items() if k not in SHARED_KEYS} | extra
    for key in ("_target_", "factory"):
        if cell_cfg.get(key):
            if cell_cfg.get("forget_bias") is not None:
                options["forget_bias"] = cell_cfg["forget_bias"]
            return build_user_cell(f"cell.{key}", cell_cfg[key], input_size, hidden_size, options)
    return build_cell(cell_cfg["name"], input_size, hidden_size, cell_cfg.get("forget_bias"), **options)


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
    "build_cell_from_config",
]
