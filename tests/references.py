"""Independent references, written from the equations in spec/cells.md with plain tensor code.

Each takes named per-gate matrices (not the production fused layout) and loops over time itself, so
a mistake in the fused layout, the gate order or the step of a production cell shows up as a mismatch.
"""

from __future__ import annotations

import torch

σ = torch.sigmoid


def split_rows(weight: torch.Tensor, names: str | list[str]) -> dict[str, torch.Tensor]:
    """Names the row blocks of a fused (G*H, ·) weight, in the order the cell's docstring states."""
    return dict(zip(names, weight.chunk(len(names), 0)))


def run(step, xs, state):
    outs = []
    for x in xs:
        state = step(x, state)
        outs.append(state[0])
    return torch.stack(outs), state


def gru(xs, W, U, b, h):
    """W, U, b: dicts over r, z, h. Reset gate before the recurrent matrix."""

    def step(x, s):
        (h,) = s
        r = σ(x @ W["r"].T + h @ U["r"].T + b["r"])
        z = σ(x @ W["z"].T + h @ U["z"].T + b["z"])
        cand = torch.tanh(x @ W["h"].T + (r * h) @ U["h"].T + b["h"])
        return (z * h + (1 - z) * cand,)

    return run(step, xs, (h,))


def lstm(xs, W, U, b, h, c, *, p=None, no=(), coupled=False, g=torch.tanh, hact=torch.tanh, gate_rec=None):
    """Greff's notation: W, U, b dicts over the gates that exist among z, i, f, o; p peepholes over
    i, f, o; ``no`` lists gates fixed at 1; ``gate_rec[(a, b)]`` is R_{a→b} for FGR."""
    p = p or {}

    def pre(name, x, y):
        return x @ W[name].T + y @ U[name].T + b[name]

    def step(x, s):
        y, c = s[0], s[1]
        prev = dict(zip("ifo", s[2:]))

        def gate(name, cell):
            if name in no:
                return torch.ones_like(c)
            a = pre(name, x, y) + (p[name] * cell if name in p else 0)
            if gate_rec:
                a = a + sum(prev[src] @ gate_rec[(src, name)].T for src in "ifo")
            return σ(a)

        z = g(pre("z", x, y))
        i = gate("i", c)
        f = 1 - i if coupled else gate("f", c)
        c_new = z * i + c * f
        o = gate("o", c_new)
        y_new = hact(c_new) * o
        return (y_new, c_new, i, f, o) if gate_rec else (y_new, c_new)

    init = (h, c) if not gate_rec else (h, c, *(torch.zeros_like(h),) * 3)
    return run(step, xs, init)


def tanh_rnn(xs, W, U, b, h):
    return run(lambda x, s: (torch.tanh(x @ W.T + s[0] @ U.T + b),), xs, (h,))


def mut(kind, xs, W, U, b, h):
    """MUT1/2/3 as printed (z multiplies the new candidate); W, U, b dicts over z, r, h."""

    def step(x, s):
        (h,) = s
        if kind == "mut1":
            z = σ(x @ W["z"].T + b["z"])
            r = σ(x @ W["r"].T + h @ U["r"].T + b["r"])
            cand = torch.tanh((r * h) @ U["h"].T + torch.tanh(x) + b["h"])
        elif kind == "mut2":
            z = σ(x @ W["z"].T + h @ U["z"].T + b["z"])
            r = σ(x + h @ U["r"].T + b["r"])
            cand = torch.tanh((r * h) @ U["h"].T + x @ W["h"].T + b["h"])
        else:
            z = σ(x @ W["z"].T + torch.tanh(h) @ U["z"].T + b["z"])
            r = σ(x @ W["r"].T + h @ U["r"].T + b["r"])
            cand = torch.tanh((r * h) @ U["h"].T + x @ W["h"].T + b["h"])
        return (cand * z + h * (1 - z),)

    return run(step, xs, (h,))
