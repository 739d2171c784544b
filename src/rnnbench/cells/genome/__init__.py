"""Cells as genomes: one step of a recurrent cell written as a small graph (Jozefowicz et al. 2015).

A genome says how the new state is computed from the input ``x`` and the previous state (``h``, and
any other state the genome names, e.g. the memory ``c``). Its nodes are those of the paper's search
space: ``Linear(a, v)`` (a fresh affine map W v + b with the scalar a added to W's diagonal), ``tanh``,
``sigmoid``, ``relu``, and elementwise ``+``, ``*``, ``-``; plus number constants, so that ``1 - z`` can
be written. The text form (``rnnbench.cells.genome.language`` has the grammar)::

    r = sigmoid(Linear(x, h))
    z = sigmoid(Linear(x, h))
    u = tanh(Linear(x, r * h))
    h' = z * h + (1 - z) * u

* ``Linear(v1, ..., vk)`` is ONE fresh affine map of the concatenation: W [v1; ...; vk] + b, as the
  built-in cells write their gates (W_x x + W_h h + b, one bias). ``Linear(0.9, h)`` has a = 0.9:
  (W + 0.9 I) h + b. With several operands a goes on the diagonal of each operand's block of W (for an
  operand of another width than the hidden size, the rectangular diagonal), so a Linear's operand
  order never matters. a is a fixed offset: the weights train as W, which under plain gradient descent
  is the same as initialising the diagonal to a more.
* Constants (``1 - z``, ``0.5 * h``) are a node kind of their own: they carry no parameters, and the
  mutations never create one.
* ``h`` is the output; states are ordered ``h`` first, then the others by name (``(h, c)``, as the
  built-in LSTM's ``(y, c)``).

With these, the six built-in cells are genomes exactly (``BUILTIN_GENOMES``; ``copy_builtin_parameters``
copies a built-in cell's weights into the genome cell, which then computes the same outputs, states and
gradients in float64). ``NAMED_GENOMES`` adds lstm_b (the forget gate's pre-activation + 1): the names
``cell.genome`` and the search accept. ``GenomeCell(input_size, hidden_size, genome)`` builds an ordinary
``Cell``; ``canonical_hash`` identifies a genome up to the names of intermediate nodes (not of states) and
operand order; ``equations`` prints it as the papers print cells; ``mutate`` applies the paper's random
transformations.
"""

from rnnbench.cells.genome.builtins import (
    BUILTIN_GENOMES,
    NAMED_GENOMES,
    copy_builtin_parameters,
    parameter_pairs,
)
from rnnbench.cells.genome.canonical import canonical_form, canonical_hash, normalize
from rnnbench.cells.genome.compile import GenomeCell
from rnnbench.cells.genome.equations import equations
from rnnbench.cells.genome.graph import Genome, Node, to_text
from rnnbench.cells.genome.language import parse
from rnnbench.cells.genome.mutate import TRANSFORMATIONS, Change, Mutation, mutate

__all__ = [
    "BUILTIN_GENOMES",
    "TRANSFORMATIONS",
    "Change",
    "Genome",
    "GenomeCell",
    "Mutation",
    "NAMED_GENOMES",
    "Node",
    "canonical_form",
    "canonical_hash",
    "copy_builtin_parameters",
    "equations",
    "mutate",
    "normalize",
    "parameter_pairs",
    "parse",
    "to_text",
]
