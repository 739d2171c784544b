"""A genome as equations for reports, one line per named node, as the papers print MUT1-MUT3::

    z = sigm(W_xz x + b_z)
    r = sigm(W_xr x + W_hr h + b_r)
    u = tanh(W_u (r ⊙ h) + b_u + tanh(x))
    h' = u ⊙ z + h ⊙ (1 − z)

Each Linear is written out as its terms: a matrix per operand, named after the operand (when it is a
name) and the Linear (its label, else that of the named node it feeds); ``(W + a I) v`` where a ≠ 0;
its bias ``b_``. Lines are the nodes ``to_text`` gives a line.
"""

from __future__ import annotations

from rnnbench.cells.genome.canonical import normalize
from rnnbench.cells.genome.graph import ACTIVATIONS, Genome, line_names, number, use_counts

SYMBOLS = {"+": "+", "-": "−", "*": "⊙", "sigmoid": "sigm", "tanh": "tanh", "relu": "ReLU"}


def linear_names(genome: Genome) -> dict[int, str]:
    """A name for every Linear: its label, else the label (or ``s'``) of the first named node up the
    chain of nodes that each have a single user; numbered ``name.2``, ... where names repeat."""
    names, counts = line_names(genome), use_counts(genome)
    user: dict[int, int] = {}
    for i, node in enumerate(genome.nodes):
        for a in node.args:
            user[a] = i
    out: dict[int, str] = {}
    for i, node in enumerate(genome.nodes):
        if node.kind != "linear":
            continue
        j = i
        while j not in names and counts[j] == 1 and j in user:
            j = user[j]
        base = names.get(j, "L")
        name, k = base, 1
        while name in out.values():
            k += 1
            name = f"{base}.{k}"
        out[i] = name
    return out


def equations(genome: Genome) -> str:
    """The genome as equations, one line per named node (see the module docstring)."""
    genome = normalize(genome)
    names, linears = line_names(genome), linear_names(genome)

    def term(i: int, top: bool = False) -> tuple[str, int]:
        """(text, precedence): 3 for atoms and calls, 2 for products, 1 for sums."""
        node = genome.nodes[i]
        if not top and i in names:
            return names[i], 3
        if node.kind == "const":
            return number(node.value), 3
        if node.kind in ACTIVATIONS:
            return f"{SYMBOLS[node.kind]}({term(node.args[0])[0]})", 3
        if node.kind == "linear":
            return linear(i), 1
        (a, pa), (b, pb) = term(node.args[0]), term(node.args[1])
        if node.kind == "*":
            return f"{a if pa >= 2 else f'({a})'} ⊙ {b if pb >= 3 else f'({b})'}", 2
        right = b if node.kind == "+" or pb >= 2 else f"({b})"  # a sum's terms need no brackets
        return f"{a} {SYMBOLS[node.kind]} {right}", 1

    def linear(i: int) -> str:
        node, name = genome.nodes[i], linears[i]
        parts = []
        for a in node.args:
            text, precedence = term(a)
            operand = text if precedence == 3 else f"({text})"
            matrix = f"W_{text}{name}" if text.isidentifier() else f"W_{name}"
            if node.value:
                matrix = f"({matrix} + {number(node.value)} I)"
            parts.append(f"{matrix} {operand}")
        return " + ".join([*parts, f"b_{name}"])

    lines = []
    for i, node in enumerate(genome.nodes):
        if node.kind != "input" and i in names:
            lines.append(f"{names[i]} = {term(i, top=True)[0]}")
        for s, o in zip(genome.states, genome.outputs):
            if o == i and names[i] != f"{s}'":
                lines.append(f"{s}' = {names[i]}")
    return "\n".join(lines)
