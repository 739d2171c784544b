"""The LSTM family: one generic cell, and each variant a small frozen spec.

Equations (Greff et al. 2017 notation; Jozefowicz et al. 2015 write the block input ``z`` as ``i`` and
the input gate ``i`` as ``j``)::

    z_t = g(W_z x_t + R_z y_{t-1} + b_z)                     block input (candidate), g = tanh
    i_t = σ(W_i x_t + R_i y_{t-1} + p_i ⊙ c_{t-1} + b_i)      input gate
    f_t = σ(W_f x_t + R_f y_{t-1} + p_f ⊙ c_{t-1} + b_f)      forget gate
    c_t = z_t ⊙ i_t + c_{t-1} ⊙ f_t
    o_t = σ(W_o x_t + R_o y_{t-1} + p_o ⊙ c_t + b_o)          output gate; its peephole reads the NEW c
    y_t = h(c_t) ⊙ o_t                                        h = tanh

Weight layout: the gates that exist, in the order (i, f, z, o) (the order of ``torch.nn.LSTM``), stacked
in ``weight_ih`` (G*H, I) and ``weight_hh`` (G*H, H); one ``bias`` (G*H), added with the input
projection (``torch.nn.LSTM`` has two biases: their sum is this one). Peepholes are vectors, one row of
``peephole`` (P, H) per peephole gate. With gate recurrence (FGR), ``weight_gg`` (3H, 3H) maps the
previous (i, f, o) activations onto the current (i, f, o) pre-activations: the nine R_{a→b} blocks.

State: (y, c), plus (i, f, o) of the previous step under FGR. Parameters:
G*H*(I+H+1) + P*H (+ 9*H*H with FGR).

A variant with all three gates, no peepholes, no gate recurrence and tanh for g and h (``lstm``,
``lstm_b``, ``np``) is exactly ``torch.nn.LSTM``: ``sequence`` runs torch's LSTM kernel on the cell's
own weights (``rnnbench.cells.library``). Every variant, FGR included, also runs in the package's fused
C++ kernel (``fused_sequence``, ``rnnbench.cells.kernels.lstm_kernel``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch

from rnnbench.cells.base import Cell, State, fused
from rnnbench.cells.kernels import lstm_kernel
from rnnbench.cells.library import run_kernel

ACTIVATIONS = {"tanh": torch.tanh, "identity": lambda a: a}


@dataclass(frozen=True)
class LSTMSpec:
    input_gate: bool = True  # False: i ≡ 1 (NIG, lstm_i)
    forget_gate: str = "gate"  # "gate" | "none" (f ≡ 1: NFG, lstm_f) | "coupled" (f = 1 − i: CIFG)
    output_gate: bool = True  # False: o ≡ 1 (NOG, lstm_o)
    peepholes: bool = False  # Greff's vectors p_i, p_f, p_o
    block_activation: str = "tanh"  # g; "identity" is NIAF
    output_activation: str = "tanh"  # h; "identity" is NOAF
    gate_recurrence: bool = False  # FGR: previous gate activations feed every gate
    forget_bias: float = 0.0  # initial value of b_f


JOZEFOWICZ_LSTM = LSTMSpec()
GREFF_V = LSTMSpec(peepholes=True)

VARIANTS: dict[str, LSTMSpec] = {
    # Jozefowicz et al. 2015: no peepholes.
    "lstm": JOZEFOWICZ_LSTM,
    "lstm_f": replace(JOZEFOWICZ_LSTM, forget_gate="none"),
    "lstm_i": replace(JOZEFOWICZ_LSTM, input_gate=False),
    "lstm_o": replace(JOZEFOWICZ_LSTM, output_gate=False),
    "lstm_b": replace(JOZEFOWICZ_LSTM, forget_bias=1.0),
    # Greff et al. 2017: vanilla LSTM with peepholes and its eight one-change variants.
    "greff_v": GREFF_V,
    "nig": replace(GREFF_V, input_gate=False),
    "nfg": replace(GREFF_V, forget_gate="none"),
    "nog": replace(GREFF_V, output_gate=False),
    "niaf": replace(GREFF_V, block_activation="identity"),
    "noaf": replace(GREFF_V, output_activation="identity"),
    "np": replace(GREFF_V, peepholes=False),
    "cifg": replace(GREFF_V, forget_gate="coupled"),
    "fgr": replace(GREFF_V, gate_recurrence=True),
}


class LSTMCell(Cell):
    """Generic LSTM step; which gates exist is resolved here, once, from the spec."""

    fused_kernel = lstm_kernel.NAME

    def __init__(self, input_size: int, hidden_size: int, spec: LSTMSpec = JOZEFOWICZ_LSTM):
        super().__init__()
        self.input_size, self.hidden_size, self.spec = input_size, hidden_size, spec
        gates = ["i"] if spec.input_gate else []
        gates += ["f"] if spec.forget_gate == "gate" else []
        gates += ["z"] + (["o"] if spec.output_gate else [])
        self.gate_names = tuple(gates)
        self.sigmoid_gates = tuple(g for g in gates if g != "z")
        self.peephole_gates = self.sigmoid_gates if spec.peepholes else ()
        self.block_act = ACTIVATIONS[spec.block_activation]
        self.output_act = ACTIVATIONS[spec.output_activation]
        # resolved once for the step: where each gate sits in the fused rows and in ``peephole``
        self.slot = {g: k for k, g in enumerate(gates)}
        self.peephole_row = {g: k for k, g in enumerate(self.peephole_gates)}
        self.library_kernel = spec == replace(JOZEFOWICZ_LSTM, forget_bias=spec.forget_bias)
        G, H = len(gates), hidden_size
        self.weight_ih = fused(G * H, input_size)
        self.weight_hh = fused(G * H, H)
        self.bias = torch.nn.Parameter(torch.zeros(G * H))
        if self.peephole_gates:
            self.peephole = fused(len(self.peephole_gates), H)
        if spec.gate_recurrence:
            n = len(self.sigmoid_gates) * H
            self.weight_gg = fused(n, n)

    @property
    def state_shapes(self):
        carried = len(self.sigmoid_gates) if self.spec.gate_recurrence else 0
        return ((self.hidden_size,),) * (2 + carried)

    def bias_init(self) -> dict[str, float]:
        return {"f": self.spec.forget_bias} if "f" in self.gate_names else {}

    def project_input(self, x):
        return torch.nn.functional.linear(x, self.weight_ih, self.bias)

    def sequence(self, x, state, mask):
        if not self.library_kernel:
            return None
        weights = [self.weight_ih, self.weight_hh, self.bias, torch.zeros_like(self.bias)]
        return run_kernel("lstm", x, state[:2], weights, mask, self.training)

    def step_weights(self):
        """``weight_hh`` (and ``weight_gg``) transposed for ``y @ w``, each peephole as a (1, H) row."""
        rows = tuple(self.peephole[k : k + 1] for k in range(len(self.peephole_gates)))
        return (self.weight_hh.t(), *rows, *((self.weight_gg.t(),) if self.spec.gate_recurrence else ()))

    def fused_sequence(self, x, state, mask):
        return lstm_kernel.run(self, x, state, mask)

    def step(self, xp, state: State, weights=None):
        y, c, H = state[0], state[1], self.hidden_size
        w_hh, *rest = self.step_weights() if weights is None else weights
        pre = list((xp + y @ w_hh).chunk(len(self.gate_names), -1))  # in ``gate_names`` order
        if self.spec.gate_recurrence:
            rec = torch.cat(state[2:], -1) @ rest[-1]
            for name, r in zip(self.sigmoid_gates, rec.split(H, -1)):
                pre[self.slot[name]] = pre[self.slot[name]] + r
        z = self.block_act(pre[self.slot["z"]])
        i = self.gate(pre, "i", c, rest) if "i" in self.slot else None
        coupled = self.spec.forget_gate == "coupled"
        f = self.gate(pre, "f", c, rest) if "f" in self.slot else (1 - i if coupled else None)
        c_new = (z if i is None else z * i) + (c if f is None else c * f)
        o = self.gate(pre, "o", c_new, rest) if "o" in self.slot else None
        h = self.output_act(c_new)
        y_new = h if o is None else h * o
        if not self.spec.gate_recurrence:
            return y_new, (y_new, c_new)
        gates = {"i": i, "f": f, "o": o}
        return y_new, (y_new, c_new, *(gates[g] for g in self.sigmoid_gates))

    def gate(self, pre: list, name: str, cell_state, peepholes):
        """σ of a gate's pre-activation, plus its peephole (a row of ``peepholes``) on ``cell_state``."""
        a, row = pre[self.slot[name]], self.peephole_row.get(name)
        return torch.sigmoid(a if row is None else a + peepholes[row] * cell_state)
