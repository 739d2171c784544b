"""Reading genome text: a small parser (no ``eval``) and the checks that make a genome a valid cell.

One assignment a statement; statements are separated by new lines or ``;``; ``#`` starts a comment::

    r = sigmoid(Linear(x, h))        # a name for an intermediate node
    z = sigmoid(Linear(x, h))        # every Linear(...) is a fresh affine map with its own W, b
    u = tanh(Linear(x, r * h))
    h' = z * h + (1 - z) * u         # a primed name is a state's new value

Grammar (``*`` binds tighter than ``+`` and ``-``; both left to right)::

    statement := name ['] = expr
    expr      := term {(+ | -) term}
    term      := factor {* factor}
    factor    := number | -number | name['] | (expr) | act(expr) | Linear([number,] expr {, expr})
    act       := tanh | sigmoid | relu

``x`` is the input; every name ``s`` with a line ``s' = ...`` is a state, read as ``s`` (its previous
value) and ``s'`` (its new value); ``h`` must be one, and is the cell's output. Statements may come in
any order. A line whose value no state reads is dropped.
"""

from __future__ import annotations

import re

from rnnbench.cells.genome.graph import ACTIVATIONS, Genome, Node, describe, rebuild
from rnnbench.errors import ConfigError

FUNCTIONS = (*ACTIVATIONS, "Linear")
TOKEN = re.compile(
    r"\s*(?:(?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)|(?P<name>[A-Za-z_]\w*'?)|(?P<op>[-+*(),=]))"
)


def tokens(text: str, line: int) -> list[tuple[str, str]]:
    out, pos, text = [], 0, text.rstrip()
    while pos < len(text):
        match = TOKEN.match(text, pos)
        if not match:
            raise ConfigError(f"genome line {line}: unexpected character {text[pos:].lstrip()[0]!r}")
        out.append(next((k, v) for k, v in match.groupdict().items() if v is not None))
        pos = match.end()
    return out


class Parser:
    """Recursive descent over one statement's tokens; expressions become nested tuples."""

    def __init__(self, toks: list[tuple[str, str]], line: int):
        self.toks, self.pos, self.line = toks, 0, line

    def fail(self, expected: str):
        found = repr(self.toks[self.pos][1]) if self.pos < len(self.toks) else "the end of the line"
        raise ConfigError(f"genome line {self.line}: expected {expected}, found {found}")

    def peek(self, k: int = 0):
        return self.toks[self.pos + k] if self.pos + k < len(self.toks) else (None, None)

    def take(self, value: str) -> bool:
        if self.peek()[1] == value:
            self.pos += 1
            return True
        return False

    def expect(self, value: str):
        if not self.take(value):
            self.fail(repr(value))

    def statement(self):
        kind, target = self.peek()
        if kind != "name":
            self.fail("a name to assign, as in z = ...")
        self.pos += 1
        self.expect("=")
        value = self.expr()
        if self.pos != len(self.toks):
            self.fail("an operator (+, -, *) or the end of the statement")
        return target, value

    def expr(self):
        value = self.term()
        while self.peek()[1] in ("+", "-"):
            op = self.toks[self.pos][1]
            self.pos += 1
            value = ("op", op, value, self.term())
        return value

    def term(self):
        value = self.factor()
        while self.take("*"):
            value = ("op", "*", value, self.factor())
        return value

    def signed_number(self) -> float | None:
        sign = -1.0 if self.peek()[1] == "-" and self.peek(1)[0] == "number" else 1.0
        if sign < 0:
            self.pos += 1
        if self.peek()[0] != "number":
            return None
        self.pos += 1
        return sign * float(self.toks[self.pos - 1][1])

    def factor(self):
        number = self.signed_number()
        if number is not None:
            return ("const", number)
        kind, value = self.peek()
        if self.take("("):
            inner = self.expr()
            self.expect(")")
            return inner
        if kind != "name":
            self.fail("a name, a number, '(' or a function such as tanh(...)")
        self.pos += 1
        if not self.take("("):
            return ("name", value)
        if value not in FUNCTIONS:
            raise ConfigError(
                f"genome line {self.line}: unknown node {value}(...); choose one of: {', '.join(FUNCTIONS)}"
            )
        if value != "Linear":
            inner = self.expr()
            self.expect(")")
            return ("act", value, inner)
        start, a = self.pos, self.signed_number()
        if a is not None and not self.take(","):  # a number operand, not the scale a
            self.pos, a = start, None
        operands = [self.expr()]
        while self.take(","):
            operands.append(self.expr())
        self.expect(")")
        return ("linear", 0.0 if a is None else a, operands)


def statements(text: str):
    """(line number, statement) for every non-empty statement."""
    for number, raw in enumerate(text.splitlines(), start=1):
        for part in raw.split("#", 1)[0].split(";"):
            if part.strip():
                yield number, part


def parse(text: str) -> Genome:
    """A genome from its text; ``ConfigError`` (one line naming the place) if it is malformed."""
    assigned: dict[str, tuple[int, tuple]] = {}
    for line, part in statements(text):
        target, value = Parser(tokens(part, line), line).statement()
        if target in assigned:
            raise ConfigError(
                f"genome line {line}: {target} is assigned twice (first on line {assigned[target][0]})"
            )
        assigned[target] = (line, value)
    states = sorted(t[:-1] for t in assigned if t.endswith("'"))
    for target, (line, _) in assigned.items():
        if target in ("x", "x'"):
            raise ConfigError(f"genome line {line}: x is the input and cannot be assigned")
        if target in states:
            raise ConfigError(
                f"genome line {line}: {target} is the previous state; write {target}' = ... for its new value"
            )
        if target in FUNCTIONS:
            raise ConfigError(f"genome line {line}: {target} is a node kind, not a name to assign")
    if "h" not in states:
        raise ConfigError("genome: the output state h is never produced; add a line h' = ...")
    states = ["h", *(s for s in states if s != "h")]
    nodes: list[Node] = []
    node_of: dict[str, int] = {name: k for k, name in enumerate(["x", *states])}
    nodes.extend(Node("input", value=name) for name in ["x", *states])
    resolving: list[str] = []

    def resolve(name: str, line: int) -> int:
        if name in node_of:
            return node_of[name]
        if name not in assigned:
            known = sorted({"x", *states, *assigned})
            hint = f" (a state {name} needs a line {name}' = ...)" if not name.endswith("'") else ""
            raise ConfigError(
                f"genome line {line}: {name!r} is not defined{hint}; names here: {', '.join(known)}"
            )
        if name in resolving:
            chain = " -> ".join([*resolving[resolving.index(name) :], name])
            raise ConfigError(f"genome line {assigned[name][0]}: {name} depends on itself ({chain})")
        resolving.append(name)
        own_line, value = assigned[name]
        node_of[name] = build(value, own_line)
        resolving.pop()
        if value[0] != "name" and not name.endswith("'"):  # a new node, not an alias of a name
            old = nodes[node_of[name]]
            nodes[node_of[name]] = Node(old.kind, old.args, old.value, name, old.line)
        return node_of[name]

    def build(value: tuple, line: int) -> int:
        kind = value[0]
        if kind == "name":
            return resolve(value[1], line)
        if kind == "const":
            node = Node("const", value=value[1], line=line)
        elif kind == "act":
            node = Node(value[1], (build(value[2], line),), line=line)
        elif kind == "op":
            node = Node(value[1], (build(value[2], line), build(value[3], line)), line=line)
        else:
            args = tuple(build(v, line) for v in value[2])
            if len(set(args)) < len(args):
                raise ConfigError(f"genome line {line}: a Linear(...) reads one of its operands twice")
            node = Node("linear", args, value[1], line=line)
        nodes.append(node)
        return len(nodes) - 1

    for name, (line, _) in assigned.items():  # every line, so that errors in unused lines show too
        resolve(name, line)
    genome = rebuild(nodes, states, [node_of[f"{s}'"] for s in states])
    widths(genome, 1, 1)  # what is wrong at any sizes: a constant where a vector must be
    return genome


def place(genome: Genome, i: int) -> str:
    node = genome.nodes[i]
    where = f"genome line {node.line}" if node.line else "genome"
    return f"{where}, in {describe(genome.nodes, i)}"


def widths(genome: Genome, input_size: int, hidden_size: int) -> list[int]:
    """The width of every node's value (0: a scalar constant), or ``ConfigError`` where a shape cannot
    be: an elementwise operation of vectors of two widths, a Linear of a constant, a state that is not
    a vector of the hidden width."""
    out: list[int] = []
    for i, node in enumerate(genome.nodes):
        if node.kind == "input":
            width = input_size if node.value == "x" else hidden_size
        elif node.kind == "const":
            width = 0
        elif node.kind == "linear":
            if any(out[a] == 0 for a in node.args):
                raise ConfigError(
                    f"{place(genome, i)}: Linear(...) of a constant; its operands must be vectors"
                )
            width = hidden_size
        elif node.kind in ACTIVATIONS:
            width = out[node.args[0]]
        else:
            a, b = (out[k] for k in node.args)
            if a and b and a != b:
                left, right = (describe(genome.nodes, k) for k in node.args)
                raise ConfigError(
                    f"{place(genome, i)}: {node.kind!r} of {left} (width {a}) and {right} (width {b}); put "
                    f"the input through Linear(...) or give the cell input size == hidden size"
                )
            width = a or b
        out.append(width)
    for s, o in zip(genome.states, genome.outputs):
        if out[o] == 0:
            raise ConfigError(f"{place(genome, o)}: the new state {s}' is a constant, not a vector")
        if out[o] != hidden_size:
            raise ConfigError(
                f"{place(genome, o)}: the new state {s}' has width {out[o]}, not the hidden width "
                f"{hidden_size}"
            )
    return out


def fits(genome: Genome, square: bool) -> bool:
    """Whether the genome builds a cell at every input size (``square``: where input size == hidden)."""
    try:
        widths(genome, 1 if square else 2, 1)
    except ConfigError:
        return False
    return True
