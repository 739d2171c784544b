"""Canonical form and hash of a genome: equal for genomes that compute the same graph.

Two genomes get the same ``canonical_hash`` when their graphs are the same after ``normalize``, up to

* the names of intermediate nodes. States keep their names (they are the cell's interface), so the LSTM
  written with ``m`` for ``c`` hashes differently; mutation never renames a state, so the search's
  hashes are unaffected;
* the operand order of ``+`` and ``*``, and of a Linear's operands: a Linear's weights are free
  parameters, so W [x; h] and W [h; x] span the same functions (the diagonal scale a goes with each
  operand's own block, so it does not depend on the order either);
* how the text shares nodes: a node written twice with the same operands (``tanh(h)`` on two lines) is
  one node, except Linear: every Linear is a fresh map, so two ``Linear(x, h)`` stay two nodes;
* ``Linear(a, u) + Linear(a, v)`` (each Linear read only there, no operand in common), which is
  ``Linear(a, u, v)``: the same functions, with one bias instead of two.

So these are one genome::

    z = sigmoid(Linear(x, h)); h' = z * h + (1 - z) * tanh(Linear(x, h))
    c = tanh(Linear(h) + Linear(x)); g = sigmoid(Linear(h, x)); h' = (1 - g) * c + h * g

``-`` keeps its order. The hash is of the canonical serialization: nodes ordered by colour refinement
(each node's colour is refined from its operands' and users' colours until stable); where symmetric
nodes remain tied, each choice is tried and the smallest serialization wins, so the order is the same
for every way of writing the graph.
"""

from __future__ import annotations

import hashlib

from rnnbench.cells.genome.graph import COMMUTATIVE, Genome, Node, rebuild, use_counts


def _key(node: Node, args: tuple[int, ...]) -> tuple:
    return (node.kind, node.value, tuple(sorted(args)) if node.kind in COMMUTATIVE else args)


def normalize(genome: Genome) -> Genome:
    """Shared nodes merged and sums of Linears contracted (see the module docstring); labels kept."""
    nodes: list[Node] = []
    seen: dict[tuple, int] = {}
    index: list[int] = []
    for node in genome.nodes:
        args = tuple(index[a] for a in node.args)
        if node.kind in ("const", "linear"):  # one spelling per number: 1 and 1.0, -0.0 and 0.0
            node = Node(node.kind, node.args, float(node.value) + 0.0, node.label, node.line)
        key = _key(node, args)
        if node.kind != "linear" and key in seen:
            k = seen[key]
            if nodes[k].label is None and node.label:
                nodes[k] = Node(nodes[k].kind, nodes[k].args, nodes[k].value, node.label, nodes[k].line)
            index.append(k)
            continue
        if node.kind != "linear":
            seen[key] = len(nodes)
        nodes.append(Node(node.kind, args, node.value, node.label, node.line))
        index.append(len(nodes) - 1)
    merged = rebuild(nodes, genome.states, [index[o] for o in genome.outputs])
    return contract(merged)


def contract(genome: Genome) -> Genome:
    """Every ``Linear(a, u) + Linear(a, v)`` whose Linears are read only there becomes Linear(a, u, v)."""
    counts, nodes = use_counts(genome), list(genome.nodes)
    for i, node in enumerate(nodes):
        if node.kind != "+":
            continue
        left, right = (nodes[a] for a in node.args)
        if (
            left.kind == right.kind == "linear"
            and left.value == right.value
            and counts[node.args[0]] == counts[node.args[1]] == 1
            and not set(left.args) & set(right.args)
        ):
            label = node.label or left.label or right.label
            nodes[i] = Node("linear", left.args + right.args, left.value, label, node.line or left.line)
    return rebuild(nodes, genome.states, genome.outputs)


def _digest(text: str) -> str:
    return hashlib.blake2b(text.encode(), digest_size=12).hexdigest()


class _Canon:
    """Colour refinement with individualization over one normalized genome."""

    def __init__(self, genome: Genome):
        self.genome = genome
        n = len(genome.nodes)
        self.children: list[list[tuple[str, int]]] = [[] for _ in range(n)]
        self.parents: list[list[tuple[str, int]]] = [[] for _ in range(n)]
        for i, node in enumerate(genome.nodes):
            for k, a in enumerate(node.args):
                edge = str(k) if node.kind == "-" else ""
                self.children[i].append((edge, a))
                self.parents[a].append((edge, i))
        self.base = []
        for i, node in enumerate(genome.nodes):
            produced = ",".join(s for s, o in zip(genome.states, genome.outputs) if o == i)
            self.base.append(_digest(f"{node.kind}|{node.value!r}|{produced}"))

    def refine(self, colours: list[str]) -> list[str]:
        count = len(set(colours))
        while True:
            colours = [
                _digest(
                    colours[i]
                    + "<"
                    + ",".join(sorted(e + colours[a] for e, a in self.children[i]))
                    + ">"
                    + ",".join(sorted(e + colours[p] for e, p in self.parents[i]))
                )
                for i in range(len(colours))
            ]
            if len(set(colours)) == count:
                return colours
            count = len(set(colours))

    def serialize(self, order: list[int]) -> str:
        position = {i: k for k, i in enumerate(order)}
        parts = []
        for i in order:
            node = self.genome.nodes[i]
            args = [position[a] for a in node.args]
            if node.kind in COMMUTATIVE:
                args.sort()
            parts.append(f"{node.kind}:{node.value!r}:{args}")
        parts.append(";".join(f"{s}'={position[o]}" for s, o in zip(self.genome.states, self.genome.outputs)))
        return "\n".join(parts)

    def best(self, colours: list[str]) -> str:
        colours = self.refine(colours)
        classes: dict[str, list[int]] = {}
        for i, c in enumerate(colours):
            classes.setdefault(c, []).append(i)
        tied = min((c for c, members in classes.items() if len(members) > 1), default=None)
        if tied is None:
            return self.serialize(sorted(range(len(colours)), key=colours.__getitem__))
        options = []
        for i in classes[tied]:  # individualize each tied node in turn
            chosen = list(colours)
            chosen[i] = _digest(colours[i] + "*")
            options.append(self.best(chosen))
        return min(options)


def canonical_form(genome: Genome) -> str:
    """The serialization that ``canonical_hash`` hashes: one line per node, operands by position."""
    genome = normalize(genome)
    return _Canon(genome).best(_Canon(genome).base) if genome.nodes else ""


def canonical_hash(genome: Genome | str) -> str:
    """16 hex digits, equal for genomes that compute the same graph (see the module docstring)."""
    if isinstance(genome, str):
        from rnnbench.cells.genome.language import parse

        genome = parse(genome)
    return hashlib.sha256(canonical_form(genome).encode()).hexdigest()[:16]
