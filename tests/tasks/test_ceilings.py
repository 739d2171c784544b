"""The ceilings of rnnbench.tasks.ceilings against brute force and against the real generators."""

from __future__ import annotations

import itertools
from collections import Counter, defaultdict

import numpy as np
import pytest

from rnnbench.tasks.arithmetic import make_example
from rnnbench.tasks.ceilings import (
    arithmetic_ceilings,
    arithmetic_pairs,
    ceilings,
    main,
    memoryless_accuracy,
    xml_ceilings,
)
from rnnbench.tasks.xml import closing_flags, make_document


class _Branch(Exception):
    def __init__(self, options):
        self.options = options  # [(value, probability)]


class _ScriptedRng:
    """Stands in for np.random.Generator in make_document: replays the scripted draws, and at the first
    draw past the script raises _Branch with every outcome and its probability. Letters come from the
    first `letters` of the alphabet make_document passes."""

    def __init__(self, script, close_prob, letters):
        self.script, self.close_prob, self.letters = list(script), close_prob, letters

    def _draw(self, options):
        if not self.script:
            raise _Branch(options)
        return self.script.pop(0)

    def random(self):
        p = self.close_prob
        return self._draw([(p / 2, p), ((1 + p) / 2, 1 - p)])  # below close_prob: close

    def integers(self, low, high):
        return self._draw([(k, 1 / (high - low)) for k in range(low, high)])

    def choice(self, alphabet, size):
        words = list(itertools.product(alphabet[: self.letters], repeat=size))
        return np.array(self._draw([(w, 1 / len(words)) for w in words]))


def _documents(close_prob, max_iterations, min_len, max_len, indent, letters, newline=True):
    """Every document make_document can write, with its probability."""
    docs, todo = [], [((), 1.0)]
    while todo:
        script, prob = todo.pop()
        try:
            rng = _ScriptedRng(script, close_prob, letters)
            text = make_document(rng, close_prob, max_iterations, min_len, max_len, indent, newline)
        except _Branch as branch:
            todo += [((*script, v), prob * q) for v, q in branch.options]
            continue
        docs.append((text, prob))
    assert abs(sum(p for _, p in docs) - 1) < 1e-12
    return docs


def _memoryless_key(prefix):
    """What the memoryless predictor knows of a document's prefix: the kinds of the finished tags
    (which give iteration and depth) and what follows the last of them (the current line so far)."""
    *done, current = prefix.split(">")
    return tuple(tag.lstrip(" \n").startswith("</") for tag in done), current


def _brute_force(docs):
    """Ceilings by conditioning on document prefixes: each character of a document is predicted from
    the document so far; after a document's last character comes the next document's '<'."""
    tables = {"oracle": defaultdict(Counter), "memoryless": defaultdict(Counter)}
    keys = {"oracle": lambda prefix: prefix, "memoryless": _memoryless_key}
    for text, p in docs:
        for t, char in enumerate(text + "<"):
            for name, table in tables.items():
                table[keys[name](text[:t])][char] += p

    def best(name, prefix):
        counts = tables[name][keys[name](prefix)]
        return max(counts.values()) / sum(counts.values())

    sums = Counter()
    for text, p in docs:
        flags = closing_flags(text)
        sums["chars"] += p * len(text)
        sums["close_chars"] += p * flags.sum()
        for t in range(1, len(text) + 1):  # the first '<' is scored at the end of the previous document
            for name in tables:
                sums[name] += p * best(name, text[:t])
                if t < len(text) and flags[t]:
                    sums["close_" + name] += p * best(name, text[:t])
    return {k: sums[k] / sums["close_chars" if k.startswith("close") else "chars"] for k in tables} | {
        "close_" + k: sums["close_" + k] / sums["close_chars"] for k in tables
    }


TINY = [
    (0.5, 3, 1, 2, 0, 2, False),
    (0.4, 4, 1, 3, 0, 2, False),
    (0.5, 3, 1, 2, 0, 2),
    (0.4, 4, 1, 2, 0, 2),
    (0.4, 4, 1, 2, 1, 2),
    (0.3, 3, 1, 3, 2, 2),
    (0.6, 3, 2, 2, 1, 3),
]


@pytest.mark.parametrize("options", TINY)
def test_xml_exact_on_tiny_generators(options):
    docs = _documents(*options)
    expected = _brute_force(docs)
    got = xml_ceilings(*options)
    assert expected["close_oracle"] == pytest.approx(1.0, abs=1e-10)
    for key in ("oracle", "memoryless", "close_oracle", "close_memoryless"):
        assert got[key] == pytest.approx(expected[key], abs=1e-10), key
    if len(options) > 6:
        return  # the scorer below reads lines
    # the per-document scorer of the Monte Carlo test below, on the same documents
    chars = sum(p * len(text) for text, p in docs)
    scored = sum(p * np.array(_document_scores(text, *options)) for text, p in docs) / chars
    assert scored == pytest.approx([expected["oracle"], expected["memoryless"]], abs=1e-10)


def _document_scores(text, close_prob, max_iterations, min_len, max_len, indent, letters=26):
    """(oracle, memoryless) sums of max-probabilities over one document's characters, each character
    scored from its line's iteration i, depth d, kind and position."""

    def fresh(j):  # max-probability of the character after j letters of a fresh name
        ends = 1 / (max_len - j + 1) if j >= min_len else 0.0
        return max(ends, (1 - ends) / letters)

    oracle = memoryless = 0.0
    d = 0
    for i, line in enumerate(text.splitlines()):
        c = 0.0 if i == 0 else 1.0 if i >= max_iterations else close_prob
        closing = "</" in line
        n = len(line.strip(" </>"))
        # spaces and '<' (certain, but for the one that tells open from close), up to the name
        head = [1.0] * (len(line) - len(line.lstrip(" ")) + 1)
        if d and indent:
            head[indent * (d - 1)] = max(c, 1 - c)
        if closing:
            head.append(max(c, (1 - c) / letters) if d and not indent else 1.0)  # '/'
            name = [1.0] * (n + 1), [fresh(j) for j in range(n + 1)]  # letters, '>'
        else:
            name = [fresh(j) for j in range(n + 1)]
            if d and not indent:
                name[0] = max(c, (1 - c) / letters)  # '/' or this first letter
            name = name, name
        oracle += sum(head) + sum(name[0]) + 1  # '\n'
        memoryless += sum(head) + sum(name[1]) + 1
        d += -1 if closing else 1
    return oracle, memoryless


def test_xml_default_matches_monte_carlo_of_make_document():
    """Monte Carlo: 4000 documents of the real generator (default options), each scored character by
    character; the ratio estimator sum(scores) / sum(characters) has standard error
    sqrt(var(score - ratio * chars) / n) / mean(chars): about 0.0002 at indent 0, 0.001 (oracle) and
    0.002 (memoryless) at indent 1."""
    rng = np.random.default_rng(0)
    options = (0.5, 50, 2, 10, 0)
    for indent in (0, 1):
        options = (*options[:4], indent)
        docs = [make_document(rng, *options) for _ in range(4000)]
        chars = np.array([len(d) for d in docs], dtype=float)
        scores = np.array([_document_scores(d, *options) for d in docs])
        exact = xml_ceilings(*options)
        for k, key in enumerate(("oracle", "memoryless")):
            ratio = scores[:, k].sum() / chars.sum()
            se = np.std(scores[:, k] - ratio * chars) / np.sqrt(len(docs)) / chars.mean()
            assert abs(ratio - exact[key]) < 4 * se, (indent, key, ratio, se, exact[key])
            assert se < 0.005


def test_xml_newline_raises_the_ceilings():
    """The newline after every tag is a certain character: without it both ceilings are lower."""
    with_newline, without = xml_ceilings(), xml_ceilings(newline=False)
    for key in ("oracle", "memoryless"):
        assert without[key] < with_newline[key]
    assert without["close_memoryless"] == with_newline["close_memoryless"]


def test_xml_indent_raises_the_ceilings_and_memory_matters():
    flat, indented = xml_ceilings(indent=0), xml_ceilings(indent=1)
    for key in ("oracle", "memoryless"):
        assert indented[key] > flat[key]
    for options in [{"indent": 0}, {"indent": 1}, {"indent": 2, "close_prob": 0.3}, {"max_iterations": 5}]:
        values = xml_ceilings(**options)
        assert values["memoryless"] < values["oracle"] < 1
        assert values["close_memoryless"] < values["close_oracle"] == 1.0


def test_xml_close_memoryless_closed_form():
    # names of 2..10 letters: letters j = 0, 1 right 1/26 of the time, then '>' (P(end | j letters) =
    # 1/(11 - j)) is the best guess; divided by the expected 7 characters of name and '>'.
    by_hand = (2 / 26 + sum((11 - j) / 9 * 1 / (11 - j) for j in range(2, 11))) / 7
    assert xml_ceilings()["close_memoryless"] == pytest.approx(by_hand, abs=1e-12)


def _arithmetic_brute_force(min_digits, max_digits):
    """(previous, next) counts at answer positions over every (a, b, op), weighted as the generator."""
    counts = range(min_digits, max_digits + 1)
    table = defaultdict(float)
    for na, nb in itertools.product(counts, counts):
        xs = [range(10) if n == 1 else range(10 ** (n - 1), 10**n) for n in (na, nb)]
        weight = 1 / (len(counts) ** 2 * len(xs[0]) * len(xs[1]) * 2)
        for a, b, op in itertools.product(*xs, "+-"):
            text = "=" + str(a + b if op == "+" else a - b) + "."
            for pair in zip(text, text[1:]):
                table[pair] += weight
    return table


@pytest.mark.parametrize("digits", [(1, 1), (1, 2), (2, 2)])
def test_arithmetic_exact_matches_enumeration(digits):
    expected = _arithmetic_brute_force(*digits)
    got = arithmetic_pairs(*digits)
    assert set(got) == set(expected)
    for pair, value in expected.items():
        assert got[pair] == pytest.approx(value, abs=1e-12), pair
    values = arithmetic_ceilings(*digits)
    assert values["memoryless"] == pytest.approx(memoryless_accuracy(expected), abs=1e-12)
    assert values["memoryless_no_end"] == pytest.approx(memoryless_accuracy(expected, end=False), abs=1e-12)
    assert values["oracle"] == values["oracle_no_end"] == 1.0


def test_arithmetic_default_matches_make_example():
    """Monte Carlo over 8000 examples of the real generator: the exact table's best previous-character
    predictor scored on them (standard error about 0.0009, as for XML), and the mean answer length,
    each within 4 standard errors."""
    rng = np.random.default_rng(1)
    table = arithmetic_pairs()
    best = {}
    for (x, y), v in table.items():
        if v > table.get((x, best.get(x)), 0.0):
            best[x] = y
    hits, lengths = [], []
    for _ in range(8000):
        prompt, answer = make_example(rng, 1, 8, 3, "abcdefghijk")
        text = "=" + answer
        hits.append(sum(best[x] == y for x, y in zip(text, text[1:])))
        lengths.append(len(answer))
    hits, lengths = np.array(hits, float), np.array(lengths, float)
    ratio = hits.sum() / lengths.sum()
    se = np.std(hits - ratio * lengths) / np.sqrt(len(hits)) / lengths.mean()
    assert abs(ratio - arithmetic_ceilings()["memoryless"]) < 4 * se
    assert abs(lengths.mean() - sum(table.values())) < 4 * lengths.std() / np.sqrt(len(lengths))


def test_ceilings_by_task_config(capsys):
    xml = ceilings("xml", {"name": "xml", "indent": 1, "batch_size": 7, "bptt": 35})
    assert xml == xml_ceilings(indent=1)
    assert ceilings("arithmetic", {"max_digits": 2, "distractors": "ab"}) == arithmetic_ceilings(1, 2)
    assert ceilings("ptb", {}) == {}
    ceilings("xml", {})["oracle"] = 0  # callers get copies of the cached values
    assert ceilings("xml", {}) == xml_ceilings()
    main(["xml", "indent=1", "close_prob=0.5"])
    out = capsys.readouterr().out
    assert f"{xml['oracle']:.6f}" in out and "memoryless" in out
    main(["xml", "task.newline=false"])  # the task's config keys, as written on the command line
    assert f"{xml_ceilings(newline=False)['oracle']:.6f}" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="indnt is not an option of xml; valid: close_prob"):
        main(["xml", "indnt=1"])
