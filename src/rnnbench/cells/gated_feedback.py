"""Gated-feedback stacks (Chung et al. 2015): GF-tanh, GF-GRU, GF-LSTM as ONE multi-layer cell.

Every layer's previous state feeds every layer's candidate, each path scaled by a scalar global reset
gate, so the layers are coupled at every time step and cannot run one after another over the whole
sequence: this cell holds all L layers and the single runner ``rnnbench.layers.recurrent.Recurrent`` steps
them together. Layers j = 1..L, h^0_t = x_t, h*_{t-1} = concat(h^1_{t-1} .. h^L_{t-1})::

    g^{i→j} = σ(w_g^{i→j} · h^{j-1}_t + u_g^{i→j} · h*_{t-1})        one scalar per ordered pair i→j
    s^j_t   = Σ_i g^{i→j} U^{i→j} h^i_{t-1}                           the gated feedback sum

    GF-tanh  h^j_t = tanh(W^j h^{j-1}_t + b^j + s^j_t)
    GF-GRU   r^j_t = σ(W_r^j h^{j-1}_t + U_r^j h^j_{t-1} + b_r^j)     z^j_t likewise
             h̃^j_t = tanh(W^j h^{j-1}_t + b^j + r^j_t ⊙ s^j_t)        reset AFTER the matrices (Chung)
             h^j_t = (1 − z^j_t) ⊙ h^j_{t-1} + z^j_t ⊙ h̃^j_t           z on the candidate (Chung)
    GF-LSTM  i, f, o = σ(W_{i,f,o}^j h^{j-1}_t + U_{i,f,o}^j h^j_{t-1} + b^j)   as a plain LSTM
             c̃^j_t = tanh(W_c^j h^{j-1}_t + b_c^j + s^j_t)           only the candidate is gated
             c^j_t = f ⊙ c^j_{t-1} + i ⊙ c̃^j_t,   h^j_t = o ⊙ tanh(c^j_t)

Only the recurrent (t−1 → t) paths are gated; the bottom-up path W^j h^{j-1}_t is not. The output is
the top layer h^L_t. Options:

* ``feedback_gates=False`` fixes every g = 1 (the paper's ablation): the cross-layer matrices U^{i→j}
  stay, so this is a fully connected stack, equal to a plain stack only when they are zero;
* ``unit_gates_read``: the unit-wise gates (GRU r, z; LSTM i, f, o) read their own layer's state h^j_{t-1}
  (``own``, default) or all of h*_{t-1} (``all``); the paper is ambiguous. GF-tanh has none.
* ``dropout``: applied to the bottom-up input h^{j-1}_t of layers 2..L (the model drops the input of
  layer 1 and the output of layer L), the same connections a plain ``Stack`` drops; recurrent and
  feedback paths are never dropped. The global gates read the dropped h^{j-1}_t too.

The whole stack also runs in the package's fused C++ kernel (``fused_sequence``,
``rnnbench.cells.kernels.gf_kernel``) when no dropout is drawn.

Biases: one per unit-wise gate and candidate of each layer (the paper omits biases; every other cell
here has them, and ``cell.forget_bias`` needs one); the global gates have none, as printed.

Parameter layout, G = unit-wise gates + 1 row blocks of H per layer, in ``gate_names`` order
(tanh: cand; gru: r, z, cand; lstm: i, f, o, cand), n = L global-gate rows per destination layer
(0 without feedback gates):

* ``weight_ih`` (G*H + n, I): layer 1's bottom-up rows, then w_g^{i→1} for i = 1..L. Applied to the
  whole sequence before the time loop: the only part that can be hoisted.
* ``weight_bu`` (L−1, G*H + n, H): the same for layers 2..L, reading h^{j-1}_t (absent when L = 1).
* ``bias`` (L, G*H).
* ``weight_hh`` (L, R, H): everything that reads h^i_{t-1}, one block per SOURCE layer i, applied in
  one batched matmul per step. Rows: U^{i→j} for j = 1..L (L*H); the unit-wise gates' recurrent rows
  (own: U_gates^{i} of layer i itself, (G−1)*H; all: their columns for h^i of every destination
  j = 1..L, L*(G−1)*H); then u_g^{j'→j} restricted to h^i, for destination j, source j' (L*L rows).
  R = L*H + k*(G−1)*H + L*n with k = 1 (own) or L (all).

State: (h^1 .. h^L), then (c^1 .. c^L) for GF-LSTM. Parameters:
(G*H + n)(I + (L−1)H) + L*G*H + L*H*(L*H + k(G−1)H + L*n).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.functional import linear, pad

from rnnbench.cells.base import Cell, State, fused
from rnnbench.cells.kernels import gf_kernel
from rnnbench.errors import ConfigError, check_choice

GATE_NAMES = {"tanh": ("cand",), "gru": ("r", "z", "cand"), "lstm": ("i", "f", "o", "cand")}
UNIT_GATES_READ = ("own", "all")


class GatedFeedbackCell(Cell):
    fused_kernel = gf_kernel.NAME

    def __init__(
        self,
        kind: str,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        feedback_gates: bool = True,
        unit_gates_read: str = "own",
        dropout: float = 0.0,
        forget_bias: float | None = None,
    ):
        super().__init__()
        check_choice("cell.unit_gates_read", unit_gates_read, UNIT_GATES_READ)
        if not isinstance(feedback_gates, bool):
            raise ConfigError(f"cell.feedback_gates={feedback_gates!r} is not valid; choose true or false")
        if forget_bias is not None and kind != "lstm":
            raise ConfigError(f"cell.forget_bias={forget_bias} is set but cell gf_{kind} has no forget gate")
        self.kind, self.input_size, self.hidden_size, self.num_layers = (
            kind,
            input_size,
            hidden_size,
            num_layers,
        )
        self.feedback_gates, self.unit_gates_read = feedback_gates, unit_gates_read
        self.forget_bias = 0.0 if forget_bias is None else float(forget_bias)
        self.gate_names = GATE_NAMES[kind]
        L, H, G = num_layers, hidden_size, len(self.gate_names)
        self.n_unit = (G - 1) * H  # unit-wise gate rows per layer
        self.n_global = L if feedback_gates else 0  # global-gate rows per destination layer
        self.n_unit_rec = self.n_unit * (L if unit_gates_read == "all" else 1)
        self.weight_ih = fused(G * H + self.n_global, input_size)
        self.weight_bu = nn.Parameter(torch.empty(L - 1, G * H + self.n_global, H)) if L > 1 else None
        self.bias = nn.Parameter(torch.zeros(L, G * H))
        self.weight_hh = nn.Parameter(torch.empty(L, L * H + self.n_unit_rec + L * self.n_global, H))
        self.dropout = nn.Dropout(dropout)

    @property
    def state_shapes(self):
        per_layer = 2 if self.kind == "lstm" else 1
        return ((self.hidden_size,),) * (per_layer * self.num_layers)

    def bias_init(self) -> dict[str, float]:
        return {"f": self.forget_bias} if self.kind == "lstm" else {}

    def padded_bias(self):
        """``bias`` with zeros for the global-gate rows, which have no bias: (L, G*H + n)."""
        return pad(self.bias, (0, self.n_global))

    def project_input(self, x, linear=linear):  # the fused kernel passes its own products
        return linear(x, self.weight_ih, self.padded_bias()[0])  # (T, B, G*H + n)

    def fused_sequence(self, x, state, mask):
        return gf_kernel.run(self, x, state, mask)

    def step_weights(self):
        """Per layer above the first: its bottom-up matrix and padded bias (indexing them inside the step
        would cost a full-size gradient of ``weight_bu`` and ``bias`` at every step)."""
        upper = () if self.weight_bu is None else self.weight_bu.unbind(0)
        return upper, self.padded_bias().unbind(0)[1:]

    def step(self, xp, state: State, weights=None):
        L, H = self.num_layers, self.hidden_size
        weight_bu, bias_bu = self.step_weights() if weights is None else weights
        hs, cs = state[:L], state[L:]
        rec = torch.bmm(torch.stack(hs), self.weight_hh.transpose(1, 2))  # (L_src, B, R): all of h*_{t-1}
        feedback = rec[..., : L * H].unflatten(-1, (L, H))  # (L_src, B, L_dst, H): U^{i→j} h^i_{t-1}
        unit_rec = rec[..., L * H : L * H + self.n_unit_rec]  # own: (L, B, (G-1)H), layer i reads h^i
        if self.unit_gates_read == "all":  # summed over source layers: (L_dst, B, (G-1)H)
            unit_rec = unit_rec.unflatten(-1, (L, self.n_unit)).sum(0).transpose(0, 1)
        global_rec = rec[..., L * H + self.n_unit_rec :].sum(0)  # (B, L_dst * L_src), empty without

        GH = len(self.gate_names) * H
        new_h, new_c = [], []
        for j in range(L):
            # layer 1's bottom-up rows were hoisted; above it they read this step's layer below
            pre = xp if j == 0 else linear(self.dropout(new_h[-1]), weight_bu[j - 1], bias_bu[j - 1])
            if self.feedback_gates:
                u_part = global_rec[:, j * L : (j + 1) * L]
                g = torch.sigmoid(pre[..., GH:] + u_part)  # (B, L_src): one scalar per pair i→j
                gated = torch.einsum("bi,ibh->bh", g, feedback[:, :, j])
            else:
                gated = feedback[:, :, j].sum(0)
            h, c = self._layer(pre[..., :GH], unit_rec[j], gated, hs[j], cs[j] if cs else None)
            new_h.append(h)
            new_c += [] if c is None else [c]
        return new_h[-1], (*new_h, *new_c)

    def _layer(self, bottom_up, unit_rec, gated, h, c):
        """One layer's update from its bottom-up pre-activations, unit-gate recurrence and gated sum."""
        gates_pre, cand_pre = bottom_up[..., : self.n_unit], bottom_up[..., self.n_unit :]
        if self.kind == "tanh":
            return torch.tanh(cand_pre + gated), None
        gates = torch.sigmoid(gates_pre + unit_rec).chunk(len(self.gate_names) - 1, -1)
        if self.kind == "gru":
            r, z = gates
            return (1 - z) * h + z * torch.tanh(cand_pre + r * gated), None
        i, f, o = gates
        c_new = f * c + i * torch.tanh(cand_pre + gated)
        return o * torch.tanh(c_new), c_new
