"""The step loop of a population's members, run once for all of them on a leading member dimension.

A population (``rnnbench.population``) runs its template model under ``torch.func.vmap``, so that the
model, its cells and the task see one member. For the time loop that is too slow: one member's step is
a few microseconds of arithmetic, and autograd would build a full-size gradient of every recurrent
matrix at every step. So the runner (``rnnbench.layers.recurrent.Recurrent``) of a population hands the loop
of a stackable cell (``member_layer.stackable``) to ``member_steps``, a ``torch.autograd.Function`` whose vmap
rule receives the members' tensors stacked, (K, ...), and calls the cell's own ``step`` once per time
step for all members:

* members are put in order of their sequence length, longest first, and each leaves the loop after its
  last real step: the loop runs the longest member's steps, each on the members still running, so
  padded steps cost nothing; a member's final state is that of its last real step and its outputs after
  it are 0, as the runner's masks give them;
* a recurrent matrix (a ``step_weights`` entry that ``step`` applies as ``h @ w``) is ``Deferred``: the
  backward pass of each step only passes the gradient on to ``h``, and the matrix gets its gradient
  from one batched matmul over all steps once the backward pass has left the loop.

A cell with a kernel (torch's or the package's fused one) runs that instead (``each_member``), each
member at its own hidden size and on its own steps, so that padding costs the kernel nothing: the LSTM
family all members in one call of its fused kernel (``lstm_members``), other cells once per
member in the member's own layer. A fused kernel's whole loop beats the batched step loop at any size
on a CPU, and at minibatch 20 a kernel's matrix products beat batched ones
(scripts/bench_population.py, arithmetic).
"""

from __future__ import annotations

import itertools
from functools import partial

import torch
import torch.nn.functional as F
from torch.func import functional_call

from rnnbench.cells.lstm import LSTMCell
from rnnbench.population.lstm_members import run_members as run_lstm_members
from rnnbench.population.padding import pad, unpad


def member_steps(step, xp, state, mask, weights):
    """Under vmap: ``step`` over ``xp`` (T, B, ·) from ``state`` with ``weights`` (from ``step_weights``,
    a flat tuple), for all members at once. Returns outputs (T, B, O) and the final state, per member."""
    out, *final = MemberSteps.apply(step, len(state), xp, mask, *state, *weights)
    return out, tuple(final)


class MemberSteps(torch.autograd.Function):
    @staticmethod
    def forward(step, n_state, xp, mask, *tensors):
        raise RuntimeError("member_steps runs under torch.func.vmap (a population's forward) only")

    @staticmethod
    def setup_context(ctx, inputs, output):
        pass

    @staticmethod
    def vmap(info, in_dims, step, n_state, xp, mask, *tensors):
        """Autograd records the ops run here on the members' stacked tensors, as for any other op."""
        K = info.batch_size
        xp, mask, *tensors = (leading(t, d, K) for t, d in zip((xp, mask, *tensors), in_dims[2:]))
        out, final = run_members(step, xp, tuple(tensors[:n_state]), mask, tuple(tensors[n_state:]))
        return (out, *final), (0,) * (1 + len(final))


def each_member(layer, x, state, mask):
    """Under vmap: ``layer`` (a ``Recurrent`` whose cell has a torch kernel) runs each member's sequence
    through its own forward, with that member's weights (and so the kernel's own fallbacks)."""
    names, params = zip(*layer.named_parameters())
    out, *final = EachMember.apply(layer, names, len(state), x, mask, *state, *params)
    return out, tuple(final)


class EachMember(torch.autograd.Function):
    @staticmethod
    def forward(layer, names, n_state, x, mask, *tensors):
        raise RuntimeError("each_member runs under torch.func.vmap (a population's forward) only")

    @staticmethod
    def setup_context(ctx, inputs, output):
        pass

    @staticmethod
    def vmap(info, in_dims, layer, names, n_state, x, mask, *tensors):
        """All members in one call of the cell's fused kernel where it has one for members
        (``all_at_once``); else member k runs in its own layer (``layer.members[k]``, set by the
        population; else the template at the padded size) on its own weights, state and input cut back
        to its hidden size. Either way on each member's own steps only: the kernel does a member's own
        work, with the shapes of its single run."""
        K = info.batch_size
        x, mask, *tensors = (leading(t, d, K) for t, d in zip((x, mask, *tensors), in_dims[3:]))
        T = x.shape[1]
        lengths, masked = member_lengths(mask, K, T)
        state, params = tuple(tensors[:n_state]), tensors[n_state:]
        result = all_at_once(layer, names, x, state, mask, params, lengths, masked)
        if result is not None:
            return (result[0], *result[1]), (0,) * (1 + len(result[1]))
        states = zip(*(s.unbind(0) for s in state)) if n_state else [()] * K
        params = zip(*(p.unbind(0) for p in params))  # unbind, not [k]: one backward node
        outputs, finals = [], []
        for k, (own, state_k, params_k) in enumerate(
            zip(layer.members or [layer.single] * K, states, params)
        ):
            mask_k = mask[k, : lengths[k]] if masked[k] else None
            out, final = own_sequence(
                layer, own, dict(zip(names, params_k)), x[k, : lengths[k]], state_k, mask_k
            )
            outputs.append(out if out.shape[0] == T else F.pad(out, [0, 0, 0, 0, 0, T - out.shape[0]]))
            finals.append(final)
        final = tuple(torch.stack(s) for s in zip(*finals))
        return (torch.stack(outputs), *final), (0,) * (1 + len(final))


def all_at_once(layer, names, x, state, mask, params, lengths, masked):
    """Every member in one call of the LSTM family's fused kernel (``lstm_members``), where it serves, also
    for a cell with torch's kernel (one call instead of K saves more than torch's kernel gains on a member);
    None where not."""
    if type(layer.cell) is not LSTMCell or layer.members is None or min(lengths) == 0:
        return None
    if layer.impl not in ("auto", "fused"):
        return None
    if not layer.fused_serves():
        return None
    sizes = [own.cell.hidden_size for own in layer.members]
    params = {n.removeprefix("cell."): p for n, p in zip(names, params) if n.startswith("cell.")}
    return run_lstm_members(layer.cell, params, x, state, mask, (sizes, lengths, masked))


def own_sequence(layer, own, params: dict, x: torch.Tensor, state: tuple, mask: torch.Tensor | None):
    """One member's sequence in its own layer ``own``: its weights, state and input (its real steps
    only) cut back from the template ``layer``'s padded size to its own; outputs and final state padded
    again."""
    full, H, (L, B) = layer.cell.hidden_size, own.cell.hidden_size, x.shape[:2]
    own_params = dict(own.named_parameters())
    params = {n: unpad(p, own_params[n].shape, H, full) for n, p in params.items()}
    state = tuple(unpad(s, (B, *shape), H, full) for s, shape in zip(state, own.cell.state_shapes))
    if L == 0:  # no real step: outputs 0, the state as it was
        out = x.new_zeros(0, B, layer.cell.output_size)
    else:
        x = unpad(x, (L, B, own.cell.input_size), H, full)
        out, state = functional_call(own, params, (x, state, mask))
        out = pad(out, (L, B, layer.cell.output_size), H, full)
    return out, tuple(pad(s, (B, *shape), H, full) for s, shape in zip(state, layer.cell.state_shapes))


def leading(t: torch.Tensor | None, dim: int | None, K: int) -> torch.Tensor | None:
    """``t`` with its member dimension first (an unbatched tensor is the same for every member)."""
    if t is None:
        return None
    return t.expand(K, *t.shape) if dim is None else t.movedim(dim, 0)


def run_members(step, xp, state, mask, weights):
    """xp (K, T, B, ·), state tensors (K, B, ·), mask (K, T, B) or None, weights (K, ·): outputs
    (K, T, B, O) and the final state, each member's at its last real step."""
    from rnnbench.layers.recurrent import run_steps  # the runner's own step loop

    K, T, B = xp.shape[:3]
    lengths, masked = member_lengths(mask, K, T)
    masked = any(masked)
    order = sorted(range(K), key=lambda k: -lengths[k])  # longest first: the running members lead
    index = torch.tensor(order, device=xp.device) if order != list(range(K)) else None
    lengths = [lengths[k] for k in order]
    # segments of steps with the same running members; split once, so that the backward pass builds one
    # full-size gradient of xp, not one per segment
    ends = sorted({length for length in lengths if length > 0})
    spans = [end - start for start, end in zip([0, *ends], ends)]
    weights = tuple(Deferred(w, index, spans, B) if is_matrix(w) else permuted(w, index) for w in weights)
    xp, state = permuted(xp, index), tuple(permuted(s, index) for s in state)
    xs = xp.transpose(0, 1)[: ends[-1]].split(spans)  # time first
    masks = permuted(mask, index).transpose(0, 1)[: ends[-1]].split(spans) if masked else [None] * len(spans)
    pieces, finals, n = [], [], K
    for segment, (start, x, m) in enumerate(zip([0, *ends], xs, masks)):
        running = sum(length > start for length in lengths)
        if running < n:  # members whose sequences have ended keep their final state
            finals.append(tuple(s[running:n] for s in state))
            state, n = tuple(s[:running] for s in state), running
        members = tuple(w.segment(segment, n) if isinstance(w, Deferred) else w[:n] for w in weights)
        outputs, state = run_steps(
            partial(step, weights=members),
            x[:, :n].unbind(0),
            state,
            None if m is None else m[:, :n].unbind(0),
        )
        pieces.append(padded(torch.stack(outputs), K))  # (steps, K, B, O): 0 for members that ended
    finals.append(state)
    if ends[-1] < T:  # steps no member has: padding
        pieces.append(pieces[-1].new_zeros(T - ends[-1], *pieces[-1].shape[1:]))
    out = torch.cat(pieces).transpose(0, 1)
    final = tuple(torch.cat(parts) for parts in zip(*reversed(finals)))
    if index is not None:
        back = inverse(index)
        out, final = out.index_select(0, back), tuple(s.index_select(0, back) for s in final)
    return out, final


def permuted(t: torch.Tensor | None, index: torch.Tensor | None) -> torch.Tensor | None:
    return t if t is None or index is None else t.index_select(0, index)


def inverse(index: torch.Tensor) -> torch.Tensor:
    return torch.empty_like(index).scatter_(0, index, torch.arange(len(index), device=index.device))


def inverse_or_none(index: torch.Tensor | None) -> torch.Tensor | None:
    return None if index is None else inverse(index)


def member_lengths(mask: torch.Tensor | None, K: int, T: int) -> tuple[list[int], list[bool]]:
    """Each member's length (its last real step + 1, over its columns) and whether some column of it has
    a padded step within that length (then it needs its mask). One host sync."""
    if mask is None:
        return [T] * K, [False] * K
    steps = torch.arange(1, T + 1, device=mask.device)
    lengths = (mask.any(-1) * steps).amax(1)  # (K,)
    within = steps.view(1, T, 1) <= lengths.view(K, 1, 1)
    masked = (mask != within).flatten(1).any(1)
    lengths, masked = torch.stack([lengths, masked.long()]).tolist()
    if max(lengths) == 0:  # no real step at all: run every step, masked
        return [T] * K, [True] * K
    return lengths, [bool(m) for m in masked]


def padded(x: torch.Tensor, K: int) -> torch.Tensor:
    """(S, n, ...) -> (S, K, ...) with zeros for the members n..K-1."""
    return x if x.shape[1] == K else F.pad(x, [0, 0] * (x.dim() - 2) + [0, K - x.shape[1]])


def is_matrix(w: torch.Tensor) -> bool:
    """A recurrent matrix per member, (H, R) with H > 1; a (1, H) entry is a vector the step broadcasts."""
    return w.dim() == 3 and w.shape[1] > 1 and torch.is_grad_enabled() and w.requires_grad


class Deferred:
    """A stacked matrix w (K, H, R) that the step applies as ``h @ w``, once per step, to the running
    members' h (n, B, H). Each product is ``z_t + h @ w`` with w detached and z_t a zero slot of
    ``Gradient``'s output: the backward pass gives h its gradient and leaves grad_t in z_t's place, and
    ``Gradient`` forms w's gradient, the sum over steps of h_t^T grad_t, in one matmul."""

    def __init__(self, w: torch.Tensor, index: torch.Tensor | None, spans: list[int], batch: int):
        """``w``: in member order; ``index``: the order of the loop's members (None: the same)."""
        # a contiguous (K, H, R) copy: the matvec reads it at every step, and a transposed view
        # (``weight_hh.t()``) is slower to read
        self.w, self.inputs = permuted(w.detach(), index).contiguous(), []
        K, _, R = w.shape
        self.slots = Gradient.apply(w, self.inputs, index, (sum(spans), K, batch, R)).split(spans)

    def segment(self, index: int, n: int) -> Deferred:
        """The first ``n`` members, for the steps of segment ``index``."""
        self.running, self.steps = self.w[:n], iter(self.slots[index][:, :n].unbind(0))
        return self

    def __rmatmul__(self, h: torch.Tensor) -> torch.Tensor:
        slot = next(self.steps, None)
        if slot is None:
            raise RuntimeError("a stackable cell's step applies each matrix of step_weights once per step")
        self.inputs.append(h.detach())
        return torch.baddbmm(slot, h, self.running)


class Gradient(torch.autograd.Function):
    """Zero slots (T, K, B, R) for a ``Deferred`` matrix's products. Autograd runs this backward after
    every step's (they all read the slots), with the products' gradients in place of the slots."""

    @staticmethod
    def forward(ctx, w, inputs, index, shape):
        ctx.inputs, ctx.index = inputs, index
        return w.new_zeros(shape)

    @staticmethod
    def backward(ctx, grads):
        K = grads.shape[1]
        if len(ctx.inputs) != len(grads):
            raise RuntimeError("a stackable cell's step applies each matrix of step_weights once per step")
        hs = [padded(torch.stack(list(h)), K) for _, h in itertools.groupby(ctx.inputs, key=len)]
        ctx.inputs.clear()
        # (K, R, H) and transposed back: a matrix given as ``weight.t()`` gets a contiguous gradient
        grad = permuted(torch.einsum("tkbh,tkbr->krh", torch.cat(hs), grads), inverse_or_none(ctx.index))
        return grad.mT, None, None, None
