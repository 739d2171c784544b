"""The instruction lists a ``GenomeCell`` runs: plain functions over a register file.

A ``Program`` is a list of ``(fn, argument registers, output register or tuple of registers)``; running
it fills a list of registers in order. ``GenomeCell`` builds two, one for ``project_input`` and one for
the step, from the genome's nodes; the functions are torch's own (``torch.addmm``, ``torch.sigmoid``,
``Tensor.split``) or small closures over constants, so no code is generated from the genome's text.
"""

from __future__ import annotations

import math
import operator

import torch
import torch.nn.functional as F

ACT = {"tanh": torch.tanh, "sigmoid": torch.sigmoid, "relu": torch.relu}
OP = {"+": operator.add, "*": operator.mul, "-": operator.sub}
FOLD = {
    "tanh": math.tanh,
    "sigmoid": lambda v: 0.5 + 0.5 * math.tanh(v / 2),
    "relu": lambda v: max(v, 0.0),
    **OP,
}


def splitter(sizes: list[int]):
    return lambda t: t.split(sizes, -1)


def bound(fn, position: int, value: float):
    """``fn`` of one tensor, with the constant ``value`` as its argument at ``position``."""
    return (lambda t: fn(value, t)) if position == 0 else (lambda t: fn(t, value))


def diagonal(a: float, width: int, hidden: int):
    """v ↦ a · eye(hidden, width) v: the scale a on a Linear's block for an operand of ``width``."""

    def apply(v):
        if width != hidden:
            v = v[..., :hidden] if width > hidden else F.pad(v, (0, hidden - width))
        return v if a == 1 else a * v

    return apply


def runs(pieces: list[tuple]) -> list[list]:
    """(start, n) pieces with each run joined: rows that follow on, or zeros (None) after zeros."""
    out: list[list] = []
    for start, n in pieces:
        last = out[-1] if out else None
        if last and (last[0] is None if start is None else last[0] is not None and sum(last) == start):
            last[1] += n
        else:
            out.append([start, n])
    return out


class Program:
    """Instructions ``(fn, argument registers, output register or tuple of them)``, run in order."""

    def __init__(self):
        self.code: list[tuple] = []
        self.size = 0

    def new(self) -> int:
        self.size += 1
        return self.size - 1

    def emit(self, fn, args, n_out: int = 1):
        outs = tuple(self.new() for _ in range(n_out))
        self.code.append((fn, tuple(args), outs[0] if n_out == 1 else outs))
        return outs[0] if n_out == 1 else list(outs)

    def sum(self, parts: list[int]) -> int:
        total = parts[0]
        for p in parts[1:]:
            total = self.emit(operator.add, (total, p))
        return total

    def run(self, regs: list) -> None:
        for fn, args, out in self.code:
            value = fn(*[regs[a] for a in args])
            if type(out) is int:
                regs[out] = value
            else:
                for o, v in zip(out, value):
                    regs[o] = v


def unsplit(program: Program, regs: list[int]) -> list[int]:
    """``regs``, or the one register they were split from, in order (then project_input returns it
    without a copy); the split itself is dropped where nothing else reads it."""
    for n, (_, args, out) in enumerate(program.code):
        if isinstance(out, tuple) and list(out) == regs:  # only splits have several outputs
            if not any(set(out) & set(a) for _, a, _ in program.code[n + 1 :]):
                del program.code[n]
            return [args[0]]
    return regs
