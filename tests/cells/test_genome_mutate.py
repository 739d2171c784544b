"""Mutation: every mutant is a valid genome that builds and runs, a seed repeats a mutation exactly,
and each of the six transformations happens."""

from __future__ import annotations

import random
import statistics

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from rnnbench.cells.genome import (
    BUILTIN_GENOMES,
    TRANSFORMATIONS,
    GenomeCell,
    canonical_hash,
    mutate,
    normalize,
    parse,
    to_text,
)
from rnnbench.cells.genome.language import fits
from rnnbench.cells.genome.mutate import TRANSFORM, Work, expand
from rnnbench.layers.recurrent import Recurrent
from rnnbench.model.init import initialize

SQUARE = ("mut1", "mut2")  # the only built-ins that need input size == hidden size


def check_valid(genome, parent, square: bool):
    """Operands before users (so no cycle), every state produced, same states as the parent; builds
    and runs at input size != hidden size unless the parent needed them equal; its text parses back
    to the same graph."""
    assert all(a < i for i, node in enumerate(genome.nodes) for a in node.args)
    assert genome.states == parent.states and len(genome.outputs) == len(genome.states)
    assert fits(genome, square=square)
    I, H = (3, 3) if square else (2, 3)  # noqa: E741
    cell = GenomeCell(I, H, genome)
    initialize(cell)  # the uniform scheme of Jozefowicz et al., as training starts
    mask = torch.tensor([[True, True], [True, False]])
    out, final = Recurrent(cell, impl="python")(torch.randn(2, 2, I), mask=mask)
    assert out.shape == (2, 2, H) and len(final) == len(genome.states)
    assert torch.isfinite(out).all() and all(torch.isfinite(s).all() for s in final)
    again = parse(to_text(genome))
    assert canonical_hash(again) == canonical_hash(genome)


@settings(max_examples=60, deadline=None, derandomize=True, database=None)
@given(
    seed=st.integers(0, 2**32 - 1), start=st.sampled_from(sorted(BUILTIN_GENOMES)), steps=st.integers(1, 4)
)
def test_mutation_sequences_stay_valid_and_repeat_from_the_seed(seed, start, steps):
    genome = parse(BUILTIN_GENOMES[start])
    square = start in SQUARE
    for k in range(steps):
        mutant, what = mutate(genome, seed + k)
        again, what_again = mutate(genome, random.Random(seed + k))  # a seed or the stream it starts
        assert to_text(again) == to_text(mutant) and what_again == what
        assert 0 <= what.p <= 1 and what.changes and {c.kind for c in what.changes} <= set(TRANSFORMATIONS)
        check_valid(mutant, genome, square)
        genome = mutant


def test_every_transformation_happens():
    seen = {}
    for seed in range(30):
        for name in sorted(BUILTIN_GENOMES):
            for change in mutate(BUILTIN_GENOMES[name], seed)[1].changes:
                seen.setdefault(change.kind, str(change))
    assert set(seen) == set(TRANSFORMATIONS), seen


def applied(kind, text=BUILTIN_GENOMES["lstm"]):
    """(parent, result, description) of transformation ``kind`` applied to each node of ``text`` where
    it applies; graphs with every Linear split per operand, as the transformations see them."""
    parent, rng, out = expand(normalize(parse(text))), random.Random(0), []
    for site in [i for i, node in enumerate(parent.nodes) if node.args]:
        work = Work(parent, square=False)
        text = TRANSFORM[kind](work, site, rng)
        if text is not None:
            out.append((parent, work.genome(), text))
    assert len(out) >= 3, kind
    return out


def kinds(genome, among=None):
    names = [n.kind if n.kind != "linear" else f"Linear({n.value})" for n in genome.nodes]
    return sorted(k for k in names if among is None or k in among)


def test_each_transformation_does_what_it_says():
    ops = ("+", "*", "-")
    for parent, mutant, _ in applied("activation"):  # one activation for another
        assert len(mutant.nodes) == len(parent.nodes) and kinds(mutant) != kinds(parent)
        assert kinds(mutant, ops) == kinds(parent, ops)
    for parent, mutant, _ in applied("elementwise"):  # one operation for another
        assert len(mutant.nodes) == len(parent.nodes) and kinds(mutant, ops) != kinds(parent, ops)
    for parent, mutant, what in applied("insert"):  # one node more
        assert len(mutant.nodes) == len(parent.nodes) + 1, what
    for parent, mutant, _ in applied("remove"):  # one node less
        assert len(mutant.nodes) == len(parent.nodes) - 1
    for parent, mutant, _ in applied("ancestor"):  # the node and what only it read go
        assert len(mutant.nodes) < len(parent.nodes)
    for parent, mutant, what in applied("combine"):  # a new a op b in the node's place
        new = what.split(" -> ")[1]
        assert any(f" {op} " in new for op in ops) and canonical_hash(mutant) != canonical_hash(parent)


def test_p_sets_how_far_a_mutant_moves():
    low, high = [], []
    for seed in range(150):
        what = mutate(BUILTIN_GENOMES["lstm"], seed)[1]
        (low if what.p < 0.3 else high if what.p > 0.7 else []).append(len(what.changes))
    assert statistics.mean(low) < 5 < 10 < statistics.mean(high)  # about p of the LSTM's 22 sites


def test_mutants_of_one_parent_differ_and_keep_x_apart_from_h():
    hashes = set()
    for seed in range(40):
        mutant, _ = mutate(BUILTIN_GENOMES["gru"], seed)
        hashes.add(canonical_hash(mutant))
        GenomeCell(16, 7, mutant)  # the GRU takes any input size: so do its mutants
    assert len(hashes) >= 35


def test_degenerate_and_unusual_genomes_mutate():
    for text in ["h' = h", "h' = x", "m' = Linear(0.5, x, h, m) * 2; h' = relu(m' - 1)"]:
        parent = parse(text)
        square = not fits(parent, square=False)
        for seed in range(10):
            mutant, what = mutate(parent, seed)
            assert what.changes
            check_valid(mutant, parent, square)
