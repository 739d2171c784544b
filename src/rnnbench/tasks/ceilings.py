"""Accuracy ceilings of the synthetic tasks, computed from their generators (not by training).

Each ceiling is the accuracy of the Bayes-optimal argmax predictor given some information: per
character it is right with probability max over characters of the true conditional probability, so
its accuracy is the expectation of that maximum. Everything here is exact (finite sums, floating
point); nothing is Monte Carlo.

XML (``rnnbench.tasks.xml``), for any generator options, indent and newline:

- ``oracle``: the predictor knows the whole history of the current document (the open tags with
  their names, the iteration count, the depth) and the generator's probabilities, but cannot guess
  random letters. Documents are i.i.d., so the stream accuracy is E[sum of max-probabilities per
  document] / E[characters per document] (renewal-reward). The sums come from a dynamic programme
  over (iteration, depth) and closed forms over name lengths. A document's first ``<`` is certain:
  after the stack empties, the generator either opens a new top-level tag or stops, and the next
  document also opens with ``<`` at depth 0. The predictor is told where documents start: the stream
  does not show whether a depth-0 tag opens a new document (and so how near the 'only close from
  iteration ``max_iterations`` on' rule is), which a stream predictor must infer by filtering the
  iteration count. So the ceiling is an upper bound; at the default options a Monte Carlo of that
  exact filter put the difference below 5e-5.
- ``memoryless``: the same predictor without memory of tag names (nor of their lengths): it knows
  iteration and depth and the current line so far; a closing tag's name is to it a fresh random name
  (it predicts ``>`` where the name most likely ends, and a letter right 1/letters of the time).
- ``close_oracle`` (1.0) and ``close_memoryless``: the same over the characters of closing tags after
  ``</`` (name and ``>``), beside the task's ``close_acc``.

Arithmetic (``rnnbench.tasks.arithmetic``), on the answer characters (``acc``) and on them without
the end symbol (``acc_no_end``):

- ``oracle`` = ``oracle_no_end`` = 1.0: the answer is a function of the prompt.
- ``memoryless``: the best predictor that sees only the previous character (``=`` before the first
  answer character), sum over x of max over y of E[count of (x, y) at answer positions] / E[answer
  length]. ``memoryless_no_end``: the best such predictor for ``acc_no_end`` (argmax over the
  non-end characters, scored on them; the ``memoryless`` predictor itself predicts the end symbol
  after every digit, so its ``acc_no_end`` is far lower). The counts are exact: for each pair of
  digit counts and each operator, a dynamic programme over the digits from the most significant,
  guessing the carry (borrow) from below, with forward and backward masses; a − b < 0 is b − a > 0
  with a ``-`` in front (a and b have the same distribution). Distractors do not matter.

Command line: ``python -m rnnbench.tasks.ceilings xml indent=1`` (options as in configs/task; also
``newline=false``).
"""

from __future__ import annotations

import functools
import itertools
import sys
from collections import defaultdict

XML_OPTIONS = ("close_prob", "max_iterations", "min_tag_length", "max_tag_length", "indent", "newline")
ARITHMETIC_OPTIONS = ("min_digits", "max_digits")
END = "."


def _fresh_name(min_length: int, max_length: int, letters: int) -> float:
    """Expected sum of max-probabilities over a fresh random name's letters and its ``>``."""
    total = 0.0
    for j in range(max_length + 1):  # the character after j letters: another letter or ``>``
        alive = min(1.0, (max_length - j + 1) / (max_length - min_length + 1))  # P(length >= j)
        ends = 1 / (max_length - j + 1) if j >= min_length else 0.0  # P(length == j | length >= j)
        total += alive * max(ends, (1 - ends) / letters)
    return total


def xml_ceilings(
    close_prob: float = 0.5,
    max_iterations: int = 50,
    min_tag_length: int = 2,
    max_tag_length: int = 10,
    indent: int = 0,
    letters: int = 26,
    newline: bool = True,
) -> dict[str, float]:
    """Exact oracle and memoryless ceilings of the XML stream (see the module docstring)."""
    if indent and not newline:
        raise ValueError("indent needs newline")
    nl = 1 if newline else 0  # the newline after each tag: always predicted
    name = _fresh_name(min_tag_length, max_tag_length, letters)  # name and ``>``, memoryless
    length = (min_tag_length + max_tag_length) / 2  # expected name length
    s = indent
    oracle = memoryless = chars = 0.0
    mass = {0: 1.0}  # depth -> probability that the document reaches this iteration at this depth
    for i in range(2 * max_iterations + 1):  # opens only before max_iterations: all closed by 2x
        c = 0.0 if i == 0 else 1.0 if i >= max_iterations else close_prob  # P(close, or stop at depth 0)
        step = defaultdict(float)
        for d, w in mass.items():
            if d == 0:  # open at depth 0 (or stop): '<' certain, the name, '\n'
                w_open = w * (1 - c)
                oracle += w_open * (1 + nl + name)
                memoryless += w_open * (1 + nl + name)
                chars += w_open * (length + 2 + nl)
                step[1] += w_open
                continue
            if s == 0:  # '<' certain, then '/' or the new name's first letter
                first = 1 + max(c, (1 - c) / letters)
                opened = name - 1 / letters + nl  # the rest of the name, '>', '\n'
            else:  # the spaces up to depth - 1 are certain, then ' ' (open) or '<' (close)
                first = s * (d - 1) + max(c, 1 - c)
                opened = s + name + 1  # the other spaces and '<', the name, '>', '\n'
            slash = 1 if s else 0  # '/' is certain after an indented '<' (in `first` otherwise)
            oracle += w * (first + c * (slash + length + 1 + nl) + (1 - c) * opened)  # name, '>', '\n'
            memoryless += w * (first + c * (slash + name + nl) + (1 - c) * opened)
            chars += w * (s * (d - 1) + length + 3 + nl + (1 - c) * (s - 1))
            step[d - 1] += w * c
            step[d + 1] += w * (1 - c)
        mass = step
    return {
        "oracle": oracle / chars,
        "memoryless": memoryless / chars,
        "close_oracle": 1.0,
        "close_memoryless": name / (length + 1),
    }


def _digits(n_digits: int, position: int) -> range:
    """The digits a number with ``n_digits`` digits can have at ``position`` (0: least significant)."""
    if position >= n_digits:
        return range(1)
    return range(1, 10) if position == n_digits - 1 and n_digits > 1 else range(10)


def _pairs(na: int, nb: int, op: str, start: str) -> dict[tuple[str, str], float]:
    """Expected counts of (previous, next) characters in ``start + str(a op b) + END`` over uniform a
    with ``na`` digits and b with ``nb`` digits, restricted to a >= b for ``-`` (a > b if ``start`` is
    ``-``); the first pair is (start, leading digit). Masses are probabilities, so they sum to
    P(restriction)."""
    n = max(na, nb)
    steps = []  # per position from the top: {(carry out, carry in, digit): probability}
    for k in reversed(range(n)):
        xs, ys, table = _digits(na, k), _digits(nb, k), defaultdict(float)
        for x, y, c_in in itertools.product(xs, ys, (0, 1)):
            v = x + y + c_in if op == "+" else x - y - c_in
            table[int(v // 10 != 0), c_in, v % 10] += 1 / (len(xs) * len(ys))
        steps.append(table)
    # A state is (the carry the next position down must pass up, the last character written), with
    # `start` while only leading zeros were seen.

    def written(last, digit):  # the last character written once `digit` is seen
        return last if last == start and digit == 0 else digit

    def accept(state):
        carry, last = state
        return carry == 0 and (last != start or start == "=")

    backward = [defaultdict(float) for _ in range(n + 1)]
    for carry, last in itertools.product((0, 1), [start, *range(10)]):
        backward[n][carry, last] = float(accept((carry, last)))
    for k in reversed(range(n)):
        for (carry, last), (c_out, c_in, digit) in itertools.product(list(backward[n]), steps[k]):
            if c_out == carry:
                p = steps[k][c_out, c_in, digit]
                backward[k][carry, last] += p * backward[k + 1][c_in, written(last, digit)]
    pairs = defaultdict(float)
    forward = {(0, start): 1.0}
    if op == "+":  # a carry out of the top position writes a leading 1
        forward[1, 1] = 1.0
        pairs[start, 1] += backward[0][1, 1]
    for k in range(n):
        step = defaultdict(float)
        for (carry, last), f in forward.items():
            for (c_out, c_in, digit), p in steps[k].items():
                if c_out != carry:
                    continue
                new = written(last, digit)
                step[c_in, new] += f * p
                if not (last == start and digit == 0):
                    pairs[last, digit] += f * p * backward[k + 1][c_in, new]
        forward = step
    for (carry, last), f in forward.items():
        if accept((carry, last)):
            if last == start:  # a zero result
                pairs[start, 0] += f
                last = 0
            pairs[last, END] += f
    if start == "-":
        pairs["=", "-"] += sum(f for state, f in forward.items() if accept(state))
    return {(str(x), str(y)): v for (x, y), v in pairs.items() if v > 0}


def arithmetic_pairs(min_digits: int = 1, max_digits: int = 8) -> dict[tuple[str, str], float]:
    """Expected count per example of each (previous character, answer character) pair."""
    counts = range(min_digits, max_digits + 1)
    weight = 1 / (2 * len(counts) ** 2)  # digit counts uniform, operator uniform
    table = defaultdict(float)
    for na, nb in itertools.product(counts, counts):
        parts = [_pairs(na, nb, "+", "="), _pairs(na, nb, "-", "="), _pairs(nb, na, "-", "-")]
        for part in parts:
            for pair, v in part.items():
                table[pair] += weight * v
    return dict(table)


def memoryless_accuracy(table: dict[tuple[str, str], float], end: bool = True) -> float:
    """Accuracy of the best previous-character predictor on the pairs of ``table`` (``end=False``:
    the targets other than END, and the predictor never predicts END)."""
    best, total = defaultdict(float), 0.0
    for (x, y), v in table.items():
        if end or y != END:
            best[x] = max(best[x], v)
            total += v
    return sum(best.values()) / total


def arithmetic_ceilings(min_digits: int = 1, max_digits: int = 8) -> dict[str, float]:
    table = arithmetic_pairs(min_digits, max_digits)
    return {
        "oracle": 1.0,
        "oracle_no_end": 1.0,
        "memoryless": memoryless_accuracy(table),
        "memoryless_no_end": memoryless_accuracy(table, end=False),
    }


@functools.cache
def _cached(task_name: str, options: tuple) -> dict[str, float]:
    if task_name == "xml":
        return xml_ceilings(**dict(options))
    return arithmetic_ceilings(**dict(options))


def ceilings(task_name: str, task_options) -> dict[str, float | tuple]:
    """The ceilings of a task config's options (extra keys such as batch_size are ignored); empty
    for tasks without ceilings. Values are floats (all exact; a Monte Carlo one would be a
    (value, standard error) tuple)."""
    keys = {"xml": XML_OPTIONS, "arithmetic": ARITHMETIC_OPTIONS}.get(task_name)
    if keys is None:
        return {}
    options = tuple(sorted((k, task_options[k]) for k in keys if k in task_options))
    return dict(_cached(task_name, options))


def _value(text: str):
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def main(argv: list[str]) -> None:
    if not argv or argv[0] not in ("xml", "arithmetic") or not all("=" in a for a in argv[1:]):
        sys.exit("usage: python -m rnnbench.tasks.ceilings xml|arithmetic [key=value ...]")
    options = {k.removeprefix("task."): _value(v) for k, v in (a.split("=", 1) for a in argv[1:])}
    valid = XML_OPTIONS if argv[0] == "xml" else ARITHMETIC_OPTIONS
    unknown = sorted(set(options) - set(valid))
    if unknown:
        sys.exit(
            f"rnnbench.tasks.ceilings: {unknown[0]} is not an option of {argv[0]}; valid: {', '.join(valid)}"
        )
    values = ceilings(argv[0], options)
    print(f"{argv[0]} {' '.join(argv[1:]) or '(defaults)'}   (exact)")
    for key, value in values.items():
        print(f"  {key:<20} {value:.6f}")


if __name__ == "__main__":
    main(sys.argv[1:])
