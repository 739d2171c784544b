"""Canonical hash: equal for one graph written many ways (names, line order, operand order of +, * and
Linear, shared nodes), different for different graphs; the equations printed for reports."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from rnnbench.cells.genome import (
    BUILTIN_GENOMES,
    GenomeCell,
    canonical_hash,
    equations,
    mutate,
    normalize,
    parse,
    to_text,
)
from rnnbench.cells.genome.graph import COMMUTATIVE, Genome

GRU = BUILTIN_GENOMES["gru"]
SAME_AS_GRU = {
    "renamed": """
        reset = sigmoid(Linear(x, h)); keep = sigmoid(Linear(x, h)); cand = tanh(Linear(x, reset * h))
        h' = keep * h + (1 - keep) * cand""",
    "lines reordered": """
        h' = z * h + (1 - z) * u
        u = tanh(Linear(x, r * h)); z = sigmoid(Linear(x, h)); r = sigmoid(Linear(x, h))""",
    "+ and * operands swapped": """
        r = sigmoid(Linear(x, h)); z = sigmoid(Linear(x, h)); u = tanh(Linear(x, h * r))
        h' = u * (1 - z) + h * z""",
    "Linear operands swapped": """
        r = sigmoid(Linear(h, x)); z = sigmoid(Linear(x, h)); u = tanh(Linear(r * h, x))
        h' = z * h + (1 - z) * u""",
    "inlined": """
        z = sigmoid(Linear(x, h))
        h' = z * h + (1 - z) * tanh(Linear(x, sigmoid(Linear(x, h)) * h))""",
    "sum of Linears": """
        r = sigmoid(Linear(x) + Linear(h)); z = sigmoid(Linear(x, h)); u = tanh(Linear(x, r * h))
        h' = z * h + (1 - z) * u""",
    "aliases and a repeated 1 - z": """
        r = sigmoid(Linear(x, h)); z = sigmoid(Linear(x, h)); keep = z; u = tanh(Linear(x, r * h))
        h' = keep * h + (1 - z) * u * (1 - 1 + 1)""",
}


@pytest.mark.parametrize("text", SAME_AS_GRU.values(), ids=SAME_AS_GRU.keys())
def test_one_graph_written_many_ways_has_one_hash(text):
    if "1 - 1 + 1" in text:  # a constant factor 1 is a different graph: compare with it written the GRU way
        assert canonical_hash(text) == canonical_hash(GRU.replace("(1 - z) * u", "(1 - z) * u * (1 - 1 + 1)"))
    else:
        assert canonical_hash(text) == canonical_hash(GRU)


DIFFERENT_FROM_GRU = {
    "gates' roles swapped": GRU.replace("h' = z * h + (1 - z) * u", "h' = (1 - z) * h + z * u"),
    "reset on the other gate": GRU.replace("r * h", "z * h"),
    "- operands swapped": GRU.replace("1 - z", "z - 1"),
    "another activation": GRU.replace("r = sigmoid", "r = relu"),
    "a Linear scale": GRU.replace("Linear(x, r * h)", "Linear(0.9, x, r * h)"),
    "another constant": GRU.replace("1 - z", "0.5 - z"),
    "one gate used twice": "z = sigmoid(Linear(x, h)); u = tanh(Linear(x, z * h))\nh' = z * h + (1 - z) * u",
    "a Linear read twice is not two": """
        a = Linear(x); r = sigmoid(a + Linear(h)); z = sigmoid(Linear(x, h)); u = tanh(a + Linear(r * h))
        h' = z * h + (1 - z) * u""",
    "x added where the GRU multiplies": GRU.replace("r * h", "r + h"),
}


@pytest.mark.parametrize("text", DIFFERENT_FROM_GRU.values(), ids=DIFFERENT_FROM_GRU.keys())
def test_different_graphs_have_different_hashes(text):
    assert canonical_hash(text) != canonical_hash(GRU)


def test_builtins_and_small_variants_all_differ():
    texts = [
        *BUILTIN_GENOMES.values(),
        "h' = tanh(Linear(x, h))",
        "h' = tanh(Linear(h, x)) * 1",
        "h' = sigmoid(Linear(x, h))",
        "h' = tanh(Linear(1, x, h))",
        "h' = tanh(Linear(x) * Linear(h))",
        "h' = tanh(Linear(x) - Linear(h))",
        "h' = tanh(Linear(h) - Linear(x))",
        "a = Linear(h); h' = tanh(a * a)",  # one Linear squared ...
        "h' = tanh(Linear(h) * Linear(h))",  # ... against a product of two
        "c' = tanh(Linear(x, h)); h' = c' * h",  # states keep their names: the state tuple is the interface
        "m' = tanh(Linear(x, h)); h' = m' * h",
        "c' = tanh(Linear(x, h)); h' = c' * c",
    ]
    assert canonical_hash(texts[4]) != canonical_hash(texts[5])  # from here on, by the set's size
    assert canonical_hash("h' = tanh(Linear(x, h))") == canonical_hash(BUILTIN_GENOMES["tanh"])
    hashes = {canonical_hash(t) for t in texts}
    assert len(hashes) == len(texts) - 1  # the tanh RNN is in the list twice


def test_symmetric_nodes_are_ordered_the_same_however_written():
    """Two sigmoid gates that differ only in how they are used: refinement alone cannot tell which is
    which until their users are seen; tied Linears (a * b, both Linear(h)) need the tie-break."""
    a = "p = sigmoid(Linear(x, h)); q = sigmoid(Linear(x, h)); h' = p * tanh(Linear(h)) + (1 - q) * h"
    b = "q = sigmoid(Linear(h, x)); p = sigmoid(Linear(x, h)); h' = h * (1 - q) + tanh(Linear(h)) * p"
    assert canonical_hash(a) == canonical_hash(b)
    tied = "h' = tanh(Linear(h) * Linear(h) + Linear(h) * Linear(x))"
    assert canonical_hash(tied) == canonical_hash("h' = tanh(Linear(x) * Linear(h) + Linear(h) * Linear(h))")
    assert canonical_hash(tied) != canonical_hash("h' = tanh(Linear(h) * Linear(h) + Linear(h) * Linear(h))")


def rewrite(genome: Genome, rng: random.Random) -> str:
    """The genome's text written another way: new names (on other nodes too), operands of +, * and
    Linear in random order, lines shuffled and joined by new lines or ';'."""
    nodes = []
    for i, node in enumerate(genome.nodes):
        args = list(node.args)
        if node.kind in COMMUTATIVE:
            rng.shuffle(args)
        label = None
        if node.kind not in ("input", "const") and (node.label or rng.random() < 0.3):
            label = f"n{i}_{rng.randrange(10**6)}"
        nodes.append(replace(node, args=tuple(args), label=label, line=None))
    lines = to_text(Genome(tuple(nodes), genome.states, genome.outputs)).splitlines()
    rng.shuffle(lines)
    return "".join(line + rng.choice(["\n", "; ", " # a comment\n"]) for line in lines)


def mutants(seed: int, start: str, steps: int) -> list[Genome]:
    genome, out = parse(BUILTIN_GENOMES[start]), []
    for k in range(steps):
        genome, _ = mutate(genome, seed + k)
        out.append(genome)
    return out


@settings(max_examples=40, deadline=None, derandomize=True, database=None)
@given(seed=st.integers(0, 2**31), start=st.sampled_from(sorted(BUILTIN_GENOMES)), steps=st.integers(1, 3))
def test_mutants_rewritten_keep_their_hash(seed, start, steps):
    rng = random.Random(seed)
    for genome in mutants(seed, start, steps):
        text = rewrite(genome, rng)
        assert canonical_hash(text) == canonical_hash(genome), (to_text(genome), text)


def symmetric_step(genome: Genome) -> tuple[torch.Tensor, ...]:
    """One step with every Linear given the same weights (per operand width) and bias: a function of
    the graph alone, the same for every way of writing it."""
    H = I = 3  # noqa: E741
    cell = GenomeCell(I, H, genome).double()
    gen = torch.Generator().manual_seed(0)
    block, bias = (
        torch.randn(H, H, generator=gen, dtype=torch.double),
        torch.randn(H, generator=gen, dtype=torch.double),
    )
    with torch.no_grad():
        for name, p in cell.named_parameters():
            p.copy_(bias.repeat(p.shape[0] // H) if name == "bias" else block.repeat(p.shape[0] // H, 1))
    x = torch.randn(1, 2, I, generator=gen, dtype=torch.double)
    state = tuple(torch.randn(2, H, generator=gen, dtype=torch.double) for _ in cell.state_shapes)
    return cell.step(cell.project_input(x)[0], state)[1]


def test_equal_hashes_compute_equal_functions():
    """No false merges: genomes that share a hash compute the same step with symmetric weights, over
    many mutants and their rewrites (and so different functions never share a hash)."""
    rng, by_hash = random.Random(0), {}
    for seed in range(12):
        for genome in mutants(100 * seed, sorted(BUILTIN_GENOMES)[seed % 6], 3):
            for g in (genome, parse(rewrite(genome, rng))):
                by_hash.setdefault(canonical_hash(g), []).append(g)
    assert len(by_hash) >= 30
    for group in by_hash.values():
        reference = symmetric_step(group[0])
        for g in group[1:]:
            for got, want in zip(symmetric_step(g), reference, strict=True):
                torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-9)


def test_normalize_is_idempotent_and_text_is_stable():
    for text in [*BUILTIN_GENOMES.values(), *SAME_AS_GRU.values()]:
        once = normalize(parse(text))
        assert to_text(normalize(once)) == to_text(once) == to_text(normalize(parse(to_text(once))))


def test_equations_as_the_papers_print_them():
    assert equations(parse(BUILTIN_GENOMES["mut1"])) == (
        "r = sigm(W_xr x + W_hr h + b_r)\n"
        "u = tanh(W_u (r ⊙ h) + b_u + tanh(x))\n"
        "z = sigm(W_xz x + b_z)\n"
        "h' = u ⊙ z + h ⊙ (1 − z)"
    )
    assert equations(parse(BUILTIN_GENOMES["mut2"])).splitlines()[0] == "r = sigm(x + W_hr h + b_r)"
    assert equations(parse(BUILTIN_GENOMES["mut3"])).splitlines()[2] == "z = sigm(W_xz x + W_z tanh(h) + b_z)"
    lstm = equations(parse(BUILTIN_GENOMES["lstm"])).splitlines()
    assert "c' = g ⊙ i + c ⊙ f" in lstm and lstm[-1] == "h' = tanh(c') ⊙ o"
    assert (
        equations(parse("a = Linear(1.1, h); h' = relu(a) - a"))
        == "a = (W_ha + 1.1 I) h + b_a\nh' = ReLU(a) − a"
    )


def test_the_example_of_the_module_docstring():
    first = "z = sigmoid(Linear(x, h)); h' = z * h + (1 - z) * tanh(Linear(x, h))"
    second = "c = tanh(Linear(h) + Linear(x)); g = sigmoid(Linear(h, x)); h' = (1 - g) * c + h * g"
    assert canonical_hash(first) == canonical_hash(second)


def test_numbers_have_one_spelling():
    assert canonical_hash("h' = tanh(Linear(-0.0, x, h)) * 1.0") == canonical_hash(
        "h' = tanh(Linear(x, h)) * 1"
    )
    assert canonical_hash("h' = tanh(Linear(1e-1, h))") == canonical_hash("h' = tanh(Linear(0.1, h))")
