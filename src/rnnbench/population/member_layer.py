"""The recurrent layers of a population's template: each runs all members at once under vmap.

A population (``rnnbench.population.train``) runs a copy of one member's model, the template, under
``torch.func.vmap`` with every member's weights stacked. In that template each ``Recurrent`` is replaced by
a ``MemberLayer``: the same modules and parameters under the same names, with another way to run a
sequence. A cell with a kernel (torch's or the fused one) runs it on each member's own size and steps,
the LSTM family all members in one call (``each_member``); the step loop of a stackable cell runs once for
all members (``member_steps``); any other cell runs its own step loop under vmap.

A stackable cell's step meets ``member_steps``' contract: every tensor it gets (``xp``, the state, the
``weights`` from ``step_weights``, a flat tuple) may have a leading member dimension, so it reads
parameters only through ``weights``, broadcasts vectors given as (1, H) rows, and applies each other 2-D
weight only as ``h @ w``. The built-in cells below are written so (tests/population/test_member_steps.py).
"""

from __future__ import annotations

from rnnbench.cells.gru import GRUCell
from rnnbench.cells.lstm import LSTMCell
from rnnbench.cells.mut import Mut1Cell, Mut2Cell, Mut3Cell
from rnnbench.cells.tanh_rnn import TanhCell
from rnnbench.layers.recurrent import Recurrent
from rnnbench.population.member_steps import each_member, member_steps

STACKABLE = (TanhCell, GRUCell, LSTMCell, Mut1Cell, Mut2Cell, Mut3Cell)


def stackable(cell) -> bool:
    """Whether ``cell``'s step runs all members at once (exact types: a subclass may change the step)."""
    return type(cell) in STACKABLE


class MemberLayer(Recurrent):
    """A template's ``Recurrent`` for all members; ``members``: the members' own layers (each at its own
    hidden size), or None where the template stands for every member."""

    @classmethod
    def wrap(cls, layer: Recurrent, members: list[Recurrent] | None) -> MemberLayer:
        wrapped = cls.__new__(cls)
        wrapped.__dict__.update(layer.__dict__)  # the same submodules and parameters, by the same names
        wrapped.__dict__["single"] = layer  # kept out of the module tree: its parameters are these
        wrapped.__dict__["members"] = members
        return wrapped

    def forward(self, x, state=None, mask=None):
        if state is None:
            state = self.initial_state(x.shape[1], x)
        if self.path in ("library", "fused"):
            return each_member(self, x, state, mask)
        if stackable(self.cell):
            xp = self.cell.project_input(x)
            return member_steps(self.cell.step, xp, state, mask, self.cell.step_weights())
        return self.single(x, state, mask)


def wrap_layers(template, members: list) -> None:
    """Replaces every ``Recurrent`` of ``template`` (a model) by a ``MemberLayer``; ``members``: the
    members' models, whose layers of the same name are the members' own."""
    layers = [(name, m) for name, m in template.named_modules() if isinstance(m, Recurrent)]
    for name, layer in layers:
        own = [member.get_submodule(name) for member in members] if members else None
        template.set_submodule(name, MemberLayer.wrap(layer, own))
