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


def gated_feedback(kind, xs, P, hs, cs=None, *, feedback=True, read="own"):
    """GF-tanh / GF-GRU / GF-LSTM (Chung et al. 2015), one loop over every ordered pair of layers.

    P["W"][j], P["b"][j]: dicts over the layer's gates ("r", "z" | "i", "f", "o") and "cand" (bottom-up);
    P["U"][(i, j)]: feedback matrix of the candidate, layer i at t−1 → layer j at t;
    P["wg"][(i, j)], P["ug"][(i, j)]: the global gate's vectors (reading h^{j−1}_t and h*_{t−1});
    P["Ur"][j]: dict over the unit-wise gates of recurrent matrices reading h^j_{t−1} (read="own") or
    all of h*_{t−1} (read="all"). Returns the top layer's outputs and the final (h^1..h^L, c^1..c^L)."""
    L = len(hs)

    def step(x, s):
        h_prev, c_prev = s[1 : L + 1], s[L + 1 :]  # s[0] is the previous output
        h_star = torch.cat(h_prev, -1)
        below, new_h, new_c = x, [], []
        for j in range(L):
            reads = h_prev[j] if read == "own" else h_star  # what the unit-wise gates read
            gate = {
                name: σ(below @ P["W"][j][name].T + reads @ U.T + P["b"][j][name])
                for name, U in P["Ur"][j].items()
            }
            gated_sum = 0
            for i in range(L):
                term = h_prev[i] @ P["U"][(i, j)].T
                if feedback:
                    g = σ(below @ P["wg"][(i, j)] + h_star @ P["ug"][(i, j)])  # (B,): a scalar per example
                    term = g[:, None] * term
                gated_sum = gated_sum + term
            bottom_up = below @ P["W"][j]["cand"].T + P["b"][j]["cand"]
            if kind == "tanh":
                h = torch.tanh(bottom_up + gated_sum)
            elif kind == "gru":
                r, z = gate["r"], gate["z"]
                h = (1 - z) * h_prev[j] + z * torch.tanh(bottom_up + r * gated_sum)
            else:
                i_, f, o = gate["i"], gate["f"], gate["o"]
                c = f * c_prev[j] + i_ * torch.tanh(bottom_up + gated_sum)
                h = o * torch.tanh(c)
                new_c.append(c)
            new_h.append(h)
            below = h
        return (new_h[-1], *new_h, *new_c)

    outs, final = run(step, xs, (None, *hs, *(cs or ())))
    return outs, final[1:]
