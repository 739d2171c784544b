"""The six built-in cells of Jozefowicz et al. as genomes, and the copy of a built-in cell's weights.

Each text computes exactly what the built-in cell computes (rnnbench.cells.tanh_rnn, lstm with the
``lstm`` spec: forget gate, no peepholes, gru, mut): ``copy_builtin_parameters`` puts the built-in
weights into the genome cell's rows, and tests/cells/test_genome_equivalence.py checks outputs, final
states and gradients in float64. The LSTM's state is (h, c), as the built-in's (y, c); its gate names
follow torch (i, f, g, o), g being the candidate the built-in calls z. ``NAMED_GENOMES`` adds lstm_b.
"""

from __future__ import annotations

import torch

from rnnbench.cells.base import Cell
from rnnbench.cells.genome.compile import GenomeCell

BUILTIN_GENOMES = {
    "tanh": "h' = tanh(Linear(x, h))",
    "lstm": """
        i = sigmoid(Linear(x, h))
        f = sigmoid(Linear(x, h))
        g = tanh(Linear(x, h))
        o = sigmoid(Linear(x, h))
        c' = g * i + c * f
        h' = tanh(c') * o
    """,
    "gru": """
        r = sigmoid(Linear(x, h))
        z = sigmoid(Linear(x, h))
        u = tanh(Linear(x, r * h))
        h' = z * h + (1 - z) * u
    """,
    "mut1": """
        z = sigmoid(Linear(x))
        r = sigmoid(Linear(x, h))
        u = tanh(Linear(r * h) + tanh(x))
        h' = u * z + h * (1 - z)
    """,
    "mut2": """
        z = sigmoid(Linear(x, h))
        r = sigmoid(x + Linear(h))
        u = tanh(Linear(x, r * h))
        h' = u * z + h * (1 - z)
    """,
    "mut3": """
        z = sigmoid(Linear(x, tanh(h)))
        r = sigmoid(Linear(x, h))
        u = tanh(Linear(x, r * h))
        h' = u * z + h * (1 - z)
    """,
}

# The genomes a name stands for, in ``cell.genome`` and the architecture search: the built-ins, and
# lstm_b, whose constant 1 added to the forget gate's pre-activation trains as the forget bias initialised
# 1 higher (plain SGD, no weight decay on it), which is what lstm_b is. Not exactly lstm_b under weight
# decay (the constant does not decay), so not in BUILTIN_GENOMES. The search names candidates by the
# hash of this text: it must not change.
NAMED_GENOMES = BUILTIN_GENOMES | {
    "lstm_b": BUILTIN_GENOMES["lstm"].replace("f = sigmoid(Linear(x, h))", "f = sigmoid(Linear(x, h) + 1)")
}

# Per built-in: Linear name -> (row block of the built-in bias, {operand: (built-in weight, row block)}),
# from the layouts the built-in cells document.
LAYOUTS = {
    "tanh": {"h'": (0, {"x": ("weight_ih", 0), "h": ("weight_hh", 0)})},
    "lstm": {
        gate: (k, {"x": ("weight_ih", k), "h": ("weight_hh", k)}) for k, gate in enumerate("ifgo")
    },  # the built-in's rows: i, f, z (the candidate), o
    "gru": {
        "r": (0, {"x": ("weight_ih", 0), "h": ("weight_hh", 0)}),
        "z": (1, {"x": ("weight_ih", 1), "h": ("weight_hh", 1)}),
        "u": (2, {"x": ("weight_ih", 2), "r * h": ("weight_hh", 2)}),
    },
    "mut1": {
        "z": (0, {"x": ("weight_ih", 0)}),
        "r": (1, {"x": ("weight_ih", 1), "h": ("weight_hh", 0)}),
        "u": (2, {"r * h": ("weight_hh", 1)}),
    },
    "mut2": {
        "z": (0, {"x": ("weight_ih", 0), "h": ("weight_hh", 0)}),
        "r": (1, {"h": ("weight_hh", 1)}),
        "u": (2, {"x": ("weight_ih", 1), "r * h": ("weight_hh", 2)}),
    },
    "mut3": {
        "z": (0, {"x": ("weight_ih", 0), "tanh(h)": ("weight_hh", 0)}),
        "r": (1, {"x": ("weight_ih", 1), "h": ("weight_hh", 1)}),
        "u": (2, {"x": ("weight_ih", 2), "r * h": ("weight_hh", 2)}),
    },
}


def parameter_pairs(name: str, cell: GenomeCell) -> list[tuple[str, slice, str, slice]]:
    """(built-in parameter, its rows, genome parameter, its rows) for every block of the built-in cell
    ``name``; they cover every parameter row of both cells (``ValueError`` otherwise)."""
    H, pairs = cell.hidden_size, []
    rows = lambda k: slice(k * H, (k + 1) * H)  # noqa: E731
    for linear, (bias_block, operands) in LAYOUTS[name].items():
        start, stop = cell.bias_rows[linear]
        pairs.append(("bias", rows(bias_block), "bias", slice(start, stop)))
        for operand, (param, block) in operands.items():
            genome_param, start, stop = cell.blocks[linear, operand]
            pairs.append((param, rows(block), genome_param, slice(start, stop)))
    covered = {(p, r.start) for _, _, p, r in pairs}
    expected = {(p, s) for p, s, _ in cell.blocks.values()} | {
        ("bias", s) for s, _ in cell.bias_rows.values()
    }
    if covered != expected:
        raise ValueError(
            f"the genome cell's Linears are not those of the built-in {name}: {sorted(expected - covered)}"
        )
    return pairs


@torch.no_grad()
def copy_builtin_parameters(name: str, builtin: Cell, cell: GenomeCell) -> GenomeCell:
    """Writes the built-in cell's weights into the genome cell of ``BUILTIN_GENOMES[name]``."""
    source, target = dict(builtin.named_parameters()), dict(cell.named_parameters())
    for param, rows, genome_param, genome_rows in parameter_pairs(name, cell):
        target[genome_param][genome_rows] = source[param][rows]
    return cell
