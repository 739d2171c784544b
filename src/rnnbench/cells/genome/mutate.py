"""Random mutation of a genome, with the six transformations of Jozefowicz et al.'s search (Sec. 3).

``mutate(genome, rng_or_seed) -> (mutant, Mutation)``: draw p ~ U[0, 1], then visit every node (in
operand-first order) and, with probability p, apply to it one transformation chosen at random among
those that apply to it and leave a valid genome:

1. ``activation``: replace an activation by another of {tanh, sigmoid, relu, Linear(0, .),
   Linear(1, .), Linear(0.9, .), Linear(1.1, .)};
2. ``elementwise``: replace an elementwise operation by another of {+, *, -};
3. ``insert``: insert a random activation (same set) between the node and one of its operands (the
   new value of a state counts as a node whose operand is the node that computes it);
4. ``remove``: remove a node with one operand and one user (the user reads the operand instead);
5. ``ancestor``: replace the node by one of its ancestors (every user reads the ancestor);
6. ``combine``: replace the node by the sum, product or difference of one of its ancestors and an
   ancestor of another node (that does not depend on it, so that no cycle forms).

The rule for how many nodes change is recorded two ways, both drawing p ~ U[0, 1]: "apply 1-3 random
transformations" and "transform each node with probability p". Only the second gives the drawn p a
role (with 1-3 transformations p would go unused), and p then tunes how far a mutant moves, from one
change to a rewrite of every node: so each node is transformed with probability p. Where no node is
drawn, one random node is transformed, so that every mutation does something.

Each Linear of several operands is first split into a sum of one-operand Linears (its function class,
with one bias per operand), so that the transformations reach each operand as they would in the
paper's graphs; ``normalize`` joins them again afterwards. A mutant is always a valid genome: no cycle
(by construction), every state produced, and every shape fits at every input size, or, where the
parent adds x to hidden-width values (MUT1, MUT2), at input size == hidden size. The random stream is
``random.Random(seed)`` (or the one passed), so a seed repeats a mutation exactly.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace

from rnnbench.cells.genome.canonical import normalize
from rnnbench.cells.genome.graph import ACTIVATIONS, OPERATIONS, Genome, Node, describe, rebuild
from rnnbench.cells.genome.language import fits, parse

TRANSFORMATIONS = ("activation", "elementwise", "insert", "remove", "ancestor", "combine")
CHOICES = (
    ("tanh", None),
    ("sigmoid", None),
    ("relu", None),
    ("linear", 0.0),
    ("linear", 1.0),
    ("linear", 0.9),
    ("linear", 1.1),
)
TRIES = 8  # draws of ancestors per ancestor/combine transformation before giving up on the node


@dataclass(frozen=True)
class Change:
    kind: str  # one of TRANSFORMATIONS
    text: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.text}"


@dataclass(frozen=True)
class Mutation:
    """What ``mutate`` did: the drawn p and each transformation, in order."""

    p: float
    changes: tuple[Change, ...]

    def __str__(self) -> str:
        return f"p={self.p:.3f}; " + "; ".join(map(str, self.changes))


def choice_name(kind: str, a: float | None) -> str:
    return kind if a is None else f"Linear({a:g}, .)"


class Work:
    """A mutable copy of the graph: nodes appended, never removed (dead ones are dropped at the end)."""

    def __init__(self, genome: Genome, square: bool):
        self.nodes, self.outputs = list(genome.nodes), list(genome.outputs)
        self.states, self.square = genome.states, square

    def genome(self) -> Genome:
        return rebuild(self.nodes, self.states, self.outputs)

    def snapshot(self):
        return list(self.nodes), list(self.outputs)

    def restore(self, saved) -> None:
        self.nodes, self.outputs = list(saved[0]), list(saved[1])

    def valid(self) -> bool:
        return fits(self.genome(), self.square)

    def live(self) -> set[int]:
        seen, stack = set(), list(self.outputs)
        while stack:
            i = stack.pop()
            if i not in seen:
                seen.add(i)
                stack.extend(self.nodes[i].args)
        return seen

    def ancestors(self, i: int) -> list[int]:
        seen, stack = set(), list(self.nodes[i].args)
        while stack:
            a = stack.pop()
            if a not in seen:
                seen.add(a)
                stack.extend(self.nodes[a].args)
        return sorted(seen)

    def uses(self, i: int) -> int:
        live = self.live()
        return sum(a == i for j in live for a in self.nodes[j].args) + self.outputs.count(i)

    def redirect(self, old: int, new: int) -> None:
        """Every user of ``old`` (and every state it was the new value of) reads ``new`` instead."""
        for j, node in enumerate(self.nodes):
            if old in node.args and j != new:
                self.nodes[j] = replace(node, args=tuple(new if a == old else a for a in node.args))
        self.outputs = [new if o == old else o for o in self.outputs]

    def add(self, node: Node) -> int:
        self.nodes.append(node)
        return len(self.nodes) - 1

    def name(self, i: int) -> str:
        return describe(self.nodes, i)


def expand(genome: Genome) -> Genome:
    """Every Linear of k operands as a sum of k one-operand Linears (labels kept, lines dropped)."""
    nodes = [replace(n, line=None) for n in genome.nodes]
    for i, node in enumerate(list(nodes)):
        if node.kind == "linear" and len(node.args) > 1:
            parts = [len(nodes) + k for k in range(len(node.args))]
            nodes.extend(Node("linear", (a,), node.value) for a in node.args)
            total = parts[0]
            for k, p in enumerate(parts[1:], start=1):
                if k == len(parts) - 1:
                    nodes[i] = Node("+", (total, p), label=node.label)
                else:
                    nodes.append(Node("+", (total, p)))
                    total = len(nodes) - 1
    return rebuild(nodes, genome.states, genome.outputs)


def t_activation(work: Work, i: int, rng: random.Random) -> str | None:
    node = work.nodes[i]
    if not (node.kind in ACTIVATIONS or node.kind == "linear" and len(node.args) == 1):
        return None
    current = (node.kind, node.value if node.kind == "linear" else None)
    options = [c for c in CHOICES if c != current]
    rng.shuffle(options)
    name, saved = work.name(i), work.snapshot()
    for kind, a in options:
        work.nodes[i] = replace(node, kind=kind, value=a)
        if work.valid():
            return f"{name}: {choice_name(*current)} -> {choice_name(kind, a)}"
        work.restore(saved)
    return None


def t_elementwise(work: Work, i: int, rng: random.Random) -> str | None:
    node = work.nodes[i]
    if node.kind not in OPERATIONS:
        return None
    op = rng.choice([o for o in OPERATIONS if o != node.kind])
    name = work.name(i)
    work.nodes[i] = replace(node, kind=op)
    return f"{name}: {node.kind} -> {op}"


def t_insert(work: Work, site, rng: random.Random) -> str | None:
    """``site``: a node, or ("out", k) for the new value of state k."""
    slots = list(range(len(work.nodes[site].args))) if isinstance(site, int) else [None]
    rng.shuffle(slots)
    saved = work.snapshot()
    for slot in slots:
        parent = work.outputs[site[1]] if slot is None else work.nodes[site].args[slot]
        options = list(CHOICES)
        rng.shuffle(options)
        for kind, a in options:
            new = work.add(Node(kind, (parent,), a))
            if slot is None:
                work.outputs[site[1]] = new
                user = f"{work.states[site[1]]}'"
            else:
                args = list(work.nodes[site].args)
                args[slot] = new
                user = work.name(site)
                work.nodes[site] = replace(work.nodes[site], args=tuple(args))
            if work.valid():
                return f"{choice_name(kind, a)} between {user} and {work.name(parent)}"
            work.restore(saved)
    return None


def t_remove(work: Work, i: int, rng: random.Random) -> str | None:
    node = work.nodes[i]
    if len(node.args) != 1 or work.uses(i) != 1:
        return None
    saved, name = work.snapshot(), work.name(i)
    work.redirect(i, node.args[0])
    if work.valid():
        return f"{name} (its user reads {work.name(node.args[0])})"
    work.restore(saved)
    return None


def t_ancestor(work: Work, i: int, rng: random.Random) -> str | None:
    candidates = work.ancestors(i)
    rng.shuffle(candidates)
    saved, name = work.snapshot(), work.name(i)
    for a in candidates[:TRIES]:
        work.redirect(i, a)
        if work.valid():
            return f"{name} -> {work.name(a)}"
        work.restore(saved)
    return None


def t_combine(work: Work, i: int, rng: random.Random) -> str | None:
    own = work.ancestors(i)
    live = sorted(work.live())
    downstream = {j for j in live if i in work.ancestors(j)} | {i}
    others = [j for j in live if j != i and work.nodes[j].args]
    if not own or not others:
        return None
    saved, name = work.snapshot(), work.name(i)
    for _ in range(TRIES):
        a = rng.choice(own)
        theirs = [b for b in work.ancestors(rng.choice(others)) if b not in downstream]
        if not theirs:
            continue
        b, op = rng.choice(theirs), rng.choice(OPERATIONS)
        new = work.add(Node(op, (a, b)))
        work.redirect(i, new)
        if work.valid():
            return f"{name} -> {work.name(new)}"
        work.restore(saved)
    return None


TRANSFORM = {
    "activation": t_activation,
    "elementwise": t_elementwise,
    "insert": t_insert,
    "remove": t_remove,
    "ancestor": t_ancestor,
    "combine": t_combine,
}


def transform(work: Work, site, rng: random.Random) -> Change | None:
    """One transformation of ``site``, chosen at random among those that apply to it."""
    kinds = list(TRANSFORMATIONS) if isinstance(site, int) else ["insert"]
    rng.shuffle(kinds)
    for kind in kinds:
        text = TRANSFORM[kind](work, site, rng)
        if text is not None:
            return Change(kind, text)
    return None


def mutate(genome: Genome | str, rng: random.Random | int) -> tuple[Genome, Mutation]:
    """A random mutant of ``genome`` and what was done (see the module docstring)."""
    genome = parse(genome) if isinstance(genome, str) else genome
    rng = rng if isinstance(rng, random.Random) else random.Random(rng)
    work = Work(expand(normalize(genome)), square=not fits(genome, square=False))
    sites = [i for i, n in enumerate(work.nodes) if n.args] + [("out", k) for k in range(len(work.states))]
    p, changes = rng.random(), []
    for site in sites:
        if rng.random() < p and (not isinstance(site, int) or site in work.live()):
            change = transform(work, site, rng)
            if change is not None:
                changes.append(change)
    while not changes:  # nothing drawn: transform one node (a state's new value always takes "insert")
        live = [s for s in sites if not isinstance(s, int) or s in work.live()]
        change = transform(work, rng.choice(live), rng)
        if change is not None:
            changes.append(change)
    mutant = normalize(work.genome())
    assert fits(mutant, work.square), "a mutation left shapes that do not fit"
    return mutant, Mutation(p, tuple(changes))
