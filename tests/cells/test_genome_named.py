"""Named genomes: ``cell.genome`` takes the names the architecture search takes, lstm_b included, and
lstm_b's genome trains as the built-in ``cell=lstm_b``.

lstm_b's genome adds a constant 1 to the forget gate's pre-activation where the built-in initialises
the forget bias to 1. With plain SGD and no weight decay both get the same gradients, so they move the
same way and their losses agree to float64 rounding, not bit for bit: (W x + b) + 1 and W x + (b + 1)
round differently, and the built-in runs torch's LSTM kernel. Weight decay shrinks the built-in's bias
towards 0, not the constant, so the two part (last test): lstm_b is not in ``BUILTIN_GENOMES``, the
exactly-equal set of tests/cells/test_genome_equivalence.py. The training run itself cannot pair them
(one seed draws other weights for the two parameter layouts, and it trains in float32): the weights are
copied, the steps are torch's SGD on the cells.
"""

from __future__ import annotations

import pytest
import torch

from helpers.configs import compose_config
from rnnbench.cells import build_cell_from_config
from rnnbench.cells.genome import (
    BUILTIN_GENOMES,
    NAMED_GENOMES,
    GenomeCell,
    canonical_hash,
    copy_builtin_parameters,
)
from rnnbench.evolve.settings import genome_text
from rnnbench.layers.recurrent import Recurrent
from rnnbench.model.init import initialize

T, B, I, H = 6, 4, 3, 5  # noqa: E741
CLOSE = {"rtol": 1e-12, "atol": 1e-12}  # float64 rounding over a few steps


def cell_of(*overrides, input_size=I):
    return build_cell_from_config(compose_config(*overrides).cell, input_size, H).double()


@pytest.mark.parametrize("name", sorted(NAMED_GENOMES))
def test_the_run_command_builds_every_genome_the_search_names(name):
    cell = cell_of("cell=genome", f"cell.genome={name}", input_size=H)  # mut1, mut2 need I = H
    assert isinstance(cell, GenomeCell)
    assert canonical_hash(cell.genome) == canonical_hash(genome_text(name))


def test_lstm_b_is_the_lstm_with_one_added_to_the_forget_gate():
    assert "lstm_b" not in BUILTIN_GENOMES
    assert canonical_hash(NAMED_GENOMES["lstm_b"]) != canonical_hash(BUILTIN_GENOMES["lstm"])
    changed = set(NAMED_GENOMES["lstm_b"].splitlines()) ^ set(BUILTIN_GENOMES["lstm"].splitlines())
    assert {line.strip() for line in changed} == {
        "f = sigmoid(Linear(x, h))",
        "f = sigmoid(Linear(x, h) + 1)",
    }
    assert canonical_hash(NAMED_GENOMES["lstm_b"]) == "d7989a6e51e11913"  # searches' records name it so


def pair():
    """The built-in lstm_b (weights as the training run draws them, biases drawn too so that every row
    counts, the forget gate's 1 higher) and lstm_b's genome with its weights: the genome's forget bias
    1 lower, its constant holding the rest."""
    builtin, genome = cell_of("cell=lstm_b"), cell_of("cell=genome", "cell.genome=lstm_b")
    torch.manual_seed(0)
    initialize(builtin, "uniform")
    with torch.no_grad():
        builtin.bias.uniform_(-0.5, 0.5)  # every bias row counts
        builtin.bias[H : 2 * H] += 1  # the forget gate's rows (i, f, z, o)
        copy_builtin_parameters("lstm", builtin, genome)
        start, stop = genome.bias_rows["f"]
        genome.bias[start:stop] -= 1
    return builtin, genome


def losses(cell, weight_decay=0.0, steps=4):
    layer = Recurrent(cell)  # impl auto: the built-in runs torch's kernel, as cell=lstm_b does
    optimizer = torch.optim.SGD(layer.parameters(), lr=0.5, weight_decay=weight_decay)
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(T, B, I, dtype=torch.double, generator=generator)
    target = torch.randn(T, B, H, dtype=torch.double, generator=generator)
    out = []
    for _ in range(steps):
        loss = ((layer(x)[0] - target) ** 2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        out.append(loss.detach())
    return torch.stack(out)


def test_lstm_b_genome_trains_as_the_builtin_lstm_b_under_plain_sgd():
    builtin, genome = pair()
    want, got = losses(builtin), losses(genome)
    assert (want.diff() < 0).all()  # it trains: every step lowers the loss
    torch.testing.assert_close(got, want, **CLOSE)


def test_weight_decay_parts_them():
    builtin, genome = pair()
    want, got = losses(builtin, weight_decay=0.1), losses(genome, weight_decay=0.1)
    torch.testing.assert_close(got[0], want[0], **CLOSE)  # same start
    assert not torch.allclose(got[1:], want[1:], **CLOSE)
