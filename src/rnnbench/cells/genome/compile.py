"""A genome compiled to an ordinary cell: ``GenomeCell(input_size, hidden_size, genome)``::

    cell = GenomeCell(16, 128, "h' = tanh(Linear(x, h))")  # the tanh RNN: W [x; h] + b, one bias
    outputs, state = Recurrent(cell)(x, mask=mask)  # rnnbench.layers.recurrent, as any other cell

The genome is normalized first (``rnnbench.cells.genome.canonical``), so genomes with one hash build
the same cell. The work is split as the built-in cells split it:

* ``project_input`` runs every node that depends on x alone (and constants) over the whole sequence:
  one fused matmul of x for all Linears that read x, their biases included (``weight_ih``), then the
  x-only nodes. It returns, side by side, what the step needs: the x part of each Linear that also reads
  a state, and the x-only values that state-dependent nodes read;
* ``step`` runs the rest. Linears with the same operands and scale form a bundle, whose
  pre-activations are one sum and one split (an LSTM's four gates); every node that Linears read is
  multiplied once per step by one matrix for all of them (``weight_hh[k]``, transposed once per
  sequence by ``step_weights``); a Linear that reads no x gets its bias in that product (``addmm``).

Parameters: ``weight_ih`` (H rows per Linear reading x), ``weight_hh`` (one matrix per other node that
Linears read), ``bias`` (H per Linear; those reading x first, in ``weight_ih`` order). ``blocks`` and
``bias_rows`` say where each Linear's rows are, by Linear name (``equations.linear_names``) and operand
text; ``rnnbench.cells.genome.builtins`` copies built-in weights with them.

Both run as instruction lists over a register file (``rnnbench.cells.genome.program``).
"""

from __future__ import annotations

import operator

import torch
import torch.nn.functional as F
from torch import nn

from rnnbench.cells.base import Cell
from rnnbench.cells.genome.canonical import normalize
from rnnbench.cells.genome.equations import linear_names
from rnnbench.cells.genome.graph import Genome, describe
from rnnbench.cells.genome.language import parse, widths
from rnnbench.cells.genome.program import ACT, FOLD, OP, Program, bound, diagonal, runs, splitter, unsplit


class GenomeCell(Cell):
    """The cell a genome describes (see the module docstring); its output is the new ``h``."""

    def __init__(self, input_size: int, hidden_size: int, genome: str | Genome):
        super().__init__()
        g = normalize(parse(genome) if isinstance(genome, str) else genome)
        self.input_size, self.hidden_size, self.genome = input_size, hidden_size, g
        self.width = widths(g, input_size, hidden_size)  # ConfigError where a shape cannot be
        self._layout()
        self._compile()

    @property
    def state_shapes(self):
        return ((self.hidden_size,),) * len(self.genome.states)

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}, genome={'; '.join(str(self.genome).splitlines())!r}"

    def _layout(self):
        """Which node runs where, the bundles, the matrices and the parameters' rows."""
        nodes, H = self.genome.nodes, self.hidden_size
        static = []  # depends on x and constants alone: runs in project_input
        for node in nodes:
            static.append(
                all(static[a] for a in node.args) if node.args else node.value == "x" or node.kind == "const"
            )
        groups: dict[tuple, list[int]] = {}
        for i, node in enumerate(nodes):
            if node.kind == "linear":
                groups.setdefault((tuple(sorted(node.args)), node.value), []).append(i)
        # bundles the step needs first, so that the step's part of weight_ih is one block
        self.bundles = sorted(groups.values(), key=lambda b: (static[b[0]], b[0]))
        self.bundle_of = {i: k for k, b in enumerate(self.bundles) for i in b}
        used = {a for b in self.bundles for a in nodes[b[0]].args}
        # matrices, one per node Linears read: x first, then x-only nodes, then the others
        self.operands = sorted(used, key=lambda a: (nodes[a].value != "x", not static[a], a))
        self.columns = {
            v: [k for k, b in enumerate(self.bundles) if v in nodes[b[0]].args] for v in self.operands
        }
        owner = {k: min(nodes[b[0]].args, key=self.operands.index) for k, b in enumerate(self.bundles)}
        names = linear_names(self.genome)
        bias_order = [
            i for v in self.operands for k in self.columns[v] if owner[k] == v for i in self.bundles[k]
        ]
        self.bias_rows = {names[i]: (n * H, (n + 1) * H) for n, i in enumerate(bias_order)}
        self.blocks: dict[tuple[str, str], tuple[str, int, int]] = {}
        has_x = bool(self.operands) and nodes[self.operands[0]].value == "x"
        matrices = []
        for m, v in enumerate(self.operands):
            param = "weight_ih" if has_x and m == 0 else f"weight_hh.{m - has_x}"
            rows = [i for k in self.columns[v] for i in self.bundles[k]]
            operand = describe(nodes, v, limit=10**6)
            for n, i in enumerate(rows):
                key = (names[i], operand if (names[i], operand) not in self.blocks else f"{operand} [{v}]")
                self.blocks[key] = (param, n * H, (n + 1) * H)
            matrices.append(nn.Parameter(torch.empty(len(rows) * H, self.width[v])))
        if has_x:
            self.weight_ih = matrices[0]
        self.weight_hh = nn.ParameterList(matrices[has_x:])
        self.bias = nn.Parameter(torch.zeros(len(bias_order) * H)) if bias_order else None
        # each product's bias row: runs of ``bias`` rows (start, n) or of zeros (None, n)
        self.bias_pieces = []
        for v in self.operands:
            pieces = [
                (
                    bias_order.index(self.bundles[k][0]) * H if owner[k] == v else None,
                    len(self.bundles[k]) * H,
                )
                for k in self.columns[v]
            ]
            self.bias_pieces.append(runs(pieces) if any(s is not None for s, _ in pieces) else None)
        self.static = static

    def _compile(self):
        """The two programs: ``project_input``'s over (T, B, ·) and the step's over (B, ·)."""
        nodes, H, static, width = self.genome.nodes, self.hidden_size, self.static, self.width
        pre, step = Program(), Program()
        self._x = pre.new()
        self._pre_weights = {m: (pre.new(), pre.new()) for m, v in enumerate(self.operands) if static[v]}
        self._step_weights = {}
        for m, v in enumerate(self.operands):
            if not static[v]:
                self._step_weights[m] = (step.new(), step.new() if self.bias_pieces[m] else None)
        at = {False: {}, True: {}}  # node -> register, in the step (False) and in project_input (True)
        spans = {}  # (operand, bundle) -> register of that bundle's columns of the operand's product
        constants: dict[int, float] = {}
        frontier: list[tuple] = []  # what project_input hands the step: ("bundle", k) or ("node", i)
        self._inputs: list[int] = []  # the step registers that receive those

        def need(item):
            if item not in frontier:
                frontier.append(item)
                self._inputs.append(step.new())
            return self._inputs[frontier.index(item)]

        def arg(a, in_pre):
            if a in constants:
                return ("const", constants[a])
            if static[a] and not in_pre:
                return need(("node", a))
            return at[in_pre][a]

        def product(v):
            m, prog = self.operands.index(v), pre if static[v] else step
            if static[v]:
                w, b = self._pre_weights[m]
                out = prog.emit(F.linear, (at[True][v], w, b))
            else:
                w, b = self._step_weights[m]
                out = (
                    prog.emit(torch.addmm, (b, at[False][v], w))
                    if b is not None
                    else prog.emit(operator.matmul, (at[False][v], w))
                )
            keys = self.columns[v]
            outs = (
                [out]
                if len(keys) == 1
                else prog.emit(splitter([len(self.bundles[k]) * H for k in keys]), (out,), len(keys))
            )
            spans.update({(v, k): o for k, o in zip(keys, outs)})

        def bundle(k):
            linears, in_pre = self.bundles[k], static[self.bundles[k][0]]
            prog, args, a = pre if in_pre else step, nodes[linears[0]].args, nodes[linears[0]].value
            parts = [] if in_pre or all(not static[v] for v in args) else [need(("bundle", k))]
            parts += [spans[v, k] for v in args if static[v] == in_pre]
            total = prog.sum(parts)
            outs = (
                [total]
                if len(linears) == 1
                else prog.emit(splitter([H] * len(linears)), (total,), len(linears))
            )
            if a:  # rare (mutations): the diagonal term, added to each Linear of the bundle
                scaled = prog.sum([prog.emit(diagonal(a, width[v], H), (arg(v, in_pre),)) for v in args])
                outs = [prog.emit(operator.add, (o, scaled)) for o in outs]
            at[in_pre].update(zip(linears, outs))

        for i, node in enumerate(nodes):
            in_pre = static[i]
            if node.kind == "input":
                at[in_pre][i] = self._x if node.value == "x" else step.new()
            elif node.kind == "const":
                constants[i] = float(node.value)
            elif all(a in constants for a in node.args):  # only constants: folded now
                constants[i] = float(FOLD[node.kind](*(constants[a] for a in node.args)))
            elif node.kind == "linear":
                if self.bundles[self.bundle_of[i]][0] == i:
                    bundle(self.bundle_of[i])
            else:
                fn = ACT.get(node.kind) or OP[node.kind]
                args = [arg(a, in_pre) for a in node.args]
                for position, value in enumerate(args):
                    if isinstance(value, tuple):
                        fn = bound(fn, position, value[1])
                at[in_pre][i] = (pre if in_pre else step).emit(
                    fn, [r for r in args if not isinstance(r, tuple)]
                )
            if i in self.columns:
                product(i)
        self._states = [
            (self.genome.states.index(nodes[i].value), r)
            for i, r in at[False].items()
            if nodes[i].kind == "input"
        ]
        self._outputs = [need(("node", o)) if static[o] else at[False][o] for o in self.genome.outputs]
        regs = []
        for kind, item in frontier:  # the static part of a step bundle: its x-only operands' columns
            regs.append(
                pre.sum([spans[v, item] for v in nodes[self.bundles[item][0]].args if static[v]])
                if kind == "bundle"
                else at[True][item]
            )
        self._widths = [
            H * len(self.bundles[item]) if kind == "bundle" else width[item] for kind, item in frontier
        ]
        self._frontier = unsplit(pre, regs)
        self._pre, self._step = pre, step

    def _matrices(self) -> list[torch.Tensor]:
        return ([self.weight_ih] if hasattr(self, "weight_ih") else []) + list(self.weight_hh)

    def _bias_row(self, m: int) -> torch.Tensor | None:
        if self.bias_pieces[m] is None:
            return None
        parts = [
            self.bias[s : s + n] if s is not None else self.bias.new_zeros(n) for s, n in self.bias_pieces[m]
        ]
        return parts[0] if len(parts) == 1 else torch.cat(parts)

    def project_input(self, x):
        """(T, B, I) -> (T, B, ·): the step's x-only inputs, side by side (see the module docstring)."""
        if not self._frontier:
            return x[..., :0]
        regs = [None] * self._pre.size
        regs[self._x] = x
        matrices = self._matrices()
        for m, (w, b) in self._pre_weights.items():
            regs[w], regs[b] = matrices[m], self._bias_row(m)
        self._pre.run(regs)
        parts = [regs[r] for r in self._frontier]
        return parts[0] if len(parts) == 1 else torch.cat(parts, -1)

    def step_weights(self):
        """Each matrix the step applies, transposed for ``v @ w``, and its bias row where it has one."""
        matrices, out = self._matrices(), []
        for m, (_, b) in self._step_weights.items():
            out.append(matrices[m].t())
            if b is not None:
                out.append(self._bias_row(m))
        return tuple(out)

    def step(self, xp, state, weights=None):
        weights = self.step_weights() if weights is None else weights
        regs = [None] * self._step.size
        slots = [r for w, b in self._step_weights.values() for r in (w, b) if r is not None]
        for r, w in zip(slots, weights):
            regs[r] = w
        for k, r in self._states:
            regs[r] = state[k]
        if len(self._inputs) == 1:
            regs[self._inputs[0]] = xp
        elif self._inputs:
            for r, part in zip(self._inputs, xp.split(self._widths, -1)):
                regs[r] = part
        self._step.run(regs)
        new = tuple(regs[r] for r in self._outputs)
        return new[0], new
