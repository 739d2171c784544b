"""The genome graph: one step of a cell as a DAG of nodes, and its text form.

A ``Genome`` holds its nodes in an order where every operand comes before its users, the names of
its states (the output state ``h`` first) and, per state, the node that holds its new value. Node
kinds (``Node.kind``):

* ``input``: ``x`` or a state's previous value (``value`` is the name);
* ``const``: a number (``value``), broadcast against vectors, e.g. the ``1`` of ``1 - z``;
* ``tanh``, ``sigmoid``, ``relu``: elementwise activations of one operand;
* ``linear``: a fresh affine map of its operands' concatenation, W [v1; ...; vk] + b, with the scalar
  ``value`` = a added to the diagonal of each operand's block of W (see ``rnnbench.cells.genome``);
* ``+``, ``*``, ``-``: elementwise operations of two operands.

``to_text`` writes a genome in the syntax ``parse`` reads (``rnnbench.cells.genome.language``); every
function here works on a plain list of nodes too, so that mutation can use them on its working copy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

ACTIVATIONS = ("tanh", "sigmoid", "relu")
OPERATIONS = ("+", "*", "-")
COMMUTATIVE = ("+", "*", "linear")  # operand order does not change the node's function class


@dataclass(frozen=True)
class Node:
    kind: str
    args: tuple[int, ...] = ()
    value: float | str | None = None  # input: its name; const: the number; linear: a
    label: str | None = None  # the name the text gave the node, kept for reports
    line: int | None = None  # the text line that wrote it, for error messages


@dataclass(frozen=True)
class Genome:
    nodes: tuple[Node, ...]  # operands before users
    states: tuple[str, ...]  # the output state "h" first
    outputs: tuple[int, ...]  # the node holding each state's new value

    def __str__(self) -> str:
        return to_text(self)


def rebuild(nodes: Sequence[Node], states: Sequence[str], outputs: Sequence[int]) -> Genome:
    """The genome of the nodes that some state's new value reads, renumbered so that operands come
    first (depth first from the outputs, in state order). ``nodes`` must have no cycle."""
    order, seen = [], set()
    for root in outputs:
        stack = [(root, False)]
        while stack:
            i, expanded = stack.pop()
            if expanded:
                order.append(i)
            elif i not in seen:
                seen.add(i)
                stack.append((i, True))
                stack.extend((a, False) for a in reversed(nodes[i].args) if a not in seen)
    new = {old: k for k, old in enumerate(order)}
    kept = tuple(
        Node(
            nodes[i].kind, tuple(new[a] for a in nodes[i].args), nodes[i].value, nodes[i].label, nodes[i].line
        )
        for i in order
    )
    return Genome(kept, tuple(states), tuple(new[o] for o in outputs))


def use_counts(genome: Genome) -> list[int]:
    """How often each node is read: as an operand, or as a state's new value."""
    counts = [0] * len(genome.nodes)
    for node in genome.nodes:
        for a in node.args:
            counts[a] += 1
    for o in genome.outputs:
        counts[o] += 1
    return counts


def number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() and abs(value) < 1e15 else repr(float(value))


def expression(nodes: Sequence[Node], i: int, names: dict[int, str], top: bool = True) -> str:
    """Node ``i`` written out, with nodes in ``names`` referred to by name (``i`` itself written out
    when ``top``)."""
    if not top and i in names:
        return names[i]
    node = nodes[i]
    if node.kind == "input":
        return str(node.value)
    if node.kind == "const":
        return number(node.value)
    args = [expression(nodes, a, names, top=False) for a in node.args]
    if node.kind in ACTIVATIONS:
        return f"{node.kind}({args[0]})"
    if node.kind == "linear":
        return "Linear(" + ", ".join(([number(node.value)] if node.value else []) + args) + ")"
    left, right = node.args

    def needs_parens(j: int, kinds: tuple[str, ...]) -> bool:
        return j not in names and nodes[j].kind in kinds

    a = f"({args[0]})" if node.kind == "*" and needs_parens(left, ("+", "-")) else args[0]
    inner = ("+", "-", "*") if node.kind == "*" else ("+", "-")
    b = f"({args[1]})" if needs_parens(right, inner) else args[1]
    return f"{a} {node.kind} {b}"


def line_names(genome: Genome) -> dict[int, str]:
    """The nodes that get a line of their own in ``to_text``, and the name others read them by:
    labelled nodes, nodes read more than once, and each state's new value (``s'``)."""
    taken = {n.label for n in genome.nodes if n.label} | set(genome.states) | {"x"}
    names: dict[int, str] = {}
    for i, node in enumerate(genome.nodes):
        if node.kind == "input":
            names[i] = str(node.value)
        elif node.label:
            names[i] = node.label
    for s, o in zip(genome.states, genome.outputs):
        names.setdefault(o, f"{s}'")
    counts, k = use_counts(genome), 0
    for i, node in enumerate(genome.nodes):
        if i not in names and counts[i] > 1 and node.kind != "const":
            k += 1
            while f"t{k}" in taken:
                k += 1
            names[i] = f"t{k}"
    return names


def to_text(genome: Genome) -> str:
    """One assignment a line, in node order; ``parse(to_text(g))`` is ``g`` up to names and line
    numbers."""
    names, lines = line_names(genome), []
    for i, node in enumerate(genome.nodes):
        if node.kind != "input" and i in names:
            lines.append(f"{names[i]} = {expression(genome.nodes, i, names)}")
        for s, o in zip(genome.states, genome.outputs):
            if o == i and names[i] != f"{s}'":
                lines.append(f"{s}' = {names[i]}")
    return "\n".join(lines)


def describe(nodes: Sequence[Node], i: int, limit: int = 48) -> str:
    """A short name for node ``i`` in messages: its label, else its expression over labels (shortened)."""
    if nodes[i].label:
        return nodes[i].label
    text = expression(nodes, i, {j: n.label for j, n in enumerate(nodes) if n.label})
    return text if len(text) <= limit else text[: limit - 3] + "..."
