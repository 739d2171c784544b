"""XML (Jozefowicz et al. 2015): next-character prediction over synthetic nested tags.

The generator, as the paper describes it: "With 50% probability or after 50 iterations, we either
close the most recently opened tag, or stop if no open tags remain. Otherwise, open a new random tag."
Tag names are random lowercase strings of 2..10 characters (uniform length, uniform letters). Our
decisions: a document always starts by opening a tag (else half would be empty), and that first
opening is iteration 0, so tags open only at iterations 0..49 and iteration 50 onwards only closes.
Each tag sits on its own line, with no indentation by default::

    <xkw>
    <svgquspn>
    </svgquspn>
    </xkw>
    <hd>
    </hd>

``indent`` > 0 puts that many spaces per open tag before each line; ``newline=false`` writes the tags
with nothing between them (``<xkw><svgquspn></svgquspn></xkw><hd></hd>``), removing the certain
newline after every tag. The paper's layout was not found;
indentation makes the stream easier than the paper's (an indented line start gives the depth away,
and with it when a document ends): an lstm at ``indent=1`` scored above the paper's best value for
every cell after 10 epochs, with closing-tag accuracy 0.155, so the default has none.
``rnnbench.tasks.ceilings`` computes what a perfect and a memoryless predictor score on each layout.

Documents follow each other in one character stream, laid out as ``batch_size`` parallel columns read
in windows of ``bptt`` characters with the hidden state carried from window to window (truncated
BPTT, as for Penn Treebank; the paper gives no XML unroll length, 35 is its PTB one). Each training
epoch draws a fresh stream from the run's seed and the epoch; valid and test streams of
``eval_chars`` characters come from ``eval_seed``.

Metrics: ``acc``, per-character accuracy of the argmax prediction over all characters (the
headline); ``close_acc``, the same over the characters of closing tags after ``</`` (the name and
``>``, which only memory of the open tags can predict); ``loss``, cross-entropy (NLL) per character in nats.
"""

from __future__ import annotations

import re
import string

import numpy as np
import torch

from rnnbench.errors import ConfigError, check_positive
from rnnbench.tasks.base import Batch, Task
from rnnbench.tasks.generated import SPLIT_STREAM
from rnnbench.tasks.stream import batchify, windows

ALPHABET = "\n <>/" + string.ascii_lowercase
CLOSING_NAME = re.compile(r"</([a-z]*>?)")  # group 1: the characters that need memory (also cut at the end)


def make_document(
    rng: np.random.Generator,
    close_prob: float = 0.5,
    max_iterations: int = 50,
    min_tag_length: int = 2,
    max_tag_length: int = 10,
    indent: int = 0,
    newline: bool = True,
) -> str:
    """One document: the paper's random walk over open tags, one tag per line (``newline=False``: the
    tags follow each other with nothing between them)."""
    letters = list(string.ascii_lowercase)
    lines, stack, iteration, end = [], [], 0, "\n" if newline else ""
    while True:
        if iteration > 0 and (iteration >= max_iterations or rng.random() < close_prob):
            if not stack:
                break
            name = stack.pop()
            lines.append(" " * indent * len(stack) + f"</{name}>" + end)
        else:
            name = "".join(rng.choice(letters, size=rng.integers(min_tag_length, max_tag_length + 1)))
            lines.append(" " * indent * len(stack) + f"<{name}>" + end)
            stack.append(name)
        iteration += 1
    return "".join(lines)


def closing_flags(text: str) -> np.ndarray:
    """True at each character of a closing tag after its ``</``."""
    flags = np.zeros(len(text), dtype=bool)
    for match in CLOSING_NAME.finditer(text):
        flags[match.start(1) : match.end(1)] = True
    return flags


class XmlTask(Task):
    name = "xml"
    carries_state = True
    headline = "acc"
    higher_is_better = True
    separator = ""  # sampling joins characters with nothing between them
    start_id = ALPHABET.index("\n")  # a sample starts where a line (and maybe a document) begins

    def __init__(
        self,
        seed: int,
        close_prob: float = 0.5,
        max_iterations: int = 50,
        min_tag_length: int = 2,
        max_tag_length: int = 10,
        indent: int = 0,
        newline: bool = True,
        batch_size: int = 32,
        bptt: int = 35,
        batches_per_epoch: int = 100,
        eval_chars: int = 20000,
        eval_seed: int = 1234,
    ):
        if not 0 < close_prob < 1:
            raise ConfigError(f"task.close_prob={close_prob!r} is not valid; it must be in (0, 1)")
        for key, value in [
            ("max_iterations", max_iterations),
            ("min_tag_length", min_tag_length),
            ("batch_size", batch_size),
            ("bptt", bptt),
            ("batches_per_epoch", batches_per_epoch),
        ]:
            check_positive(f"task.{key}", value, integer=True)
        check_positive("task.indent", indent, allow_zero=True, integer=True)
        if indent and not newline:
            raise ConfigError(f"task.indent={indent} needs task.newline=true (indentation starts a line)")
        if max_tag_length < min_tag_length:
            raise ConfigError(
                f"task.max_tag_length={max_tag_length} is below task.min_tag_length={min_tag_length}"
            )
        if eval_chars < 2 * batch_size:
            raise ConfigError(
                f"task.eval_chars={eval_chars!r} is not valid; it must be >= 2 * task.batch_size"
            )
        self.options = (close_prob, max_iterations, min_tag_length, max_tag_length, indent, newline)
        self.seed, self.batch_size, self.bptt, self.batches_per_epoch = (
            seed,
            batch_size,
            bptt,
            batches_per_epoch,
        )
        self.index = {c: k for k, c in enumerate(ALPHABET)}
        self.input_size = self.output_size = len(ALPHABET)
        self._eval = {s: self._stream(eval_seed, SPLIT_STREAM[s], 0, eval_chars) for s in ("valid", "test")}

    def text(self, rng: np.random.Generator, n: int) -> str:
        """The first ``n`` characters of a stream of documents."""
        parts, length = [], 0
        while length < n:
            parts.append(make_document(rng, *self.options))
            length += len(parts[-1])
        return "".join(parts)[:n]

    def _stream(self, seed, stream, epoch, n):
        """Columns of ids and of closing-tag flags, both (n // batch_size, batch_size)."""
        text = self.text(np.random.default_rng([seed, stream, epoch]), n)
        ids = torch.tensor([self.index[c] for c in text])
        flags = torch.from_numpy(closing_flags(text))
        return batchify(ids, self.batch_size), batchify(flags, self.batch_size)

    def train_batches(self, epoch):
        n = self.batch_size * (self.batches_per_epoch * self.bptt + 1)
        data, _ = self._stream(self.seed, SPLIT_STREAM["train"], epoch, n)
        for x, y in windows(data, self.bptt):
            yield Batch(data[x], data[y])

    def eval_batches(self, split):
        data, flags = self._eval[split]
        for x, y in windows(data, self.bptt):
            yield Batch(data[x], data[y], marks=flags[y])  # marks: targets that close a tag

    def metric_sums(self, logits, batch):
        loss, count = self.loss(logits, batch)
        hit = logits.argmax(-1) == batch.targets
        return {
            "loss": (loss, count),
            "acc": (hit.sum().float(), count),
            "close_acc": ((hit & batch.marks).sum().float(), batch.marks.sum().float()),
        }

    def decode(self, ids) -> str:
        return self.separator.join(ALPHABET[k] for k in ids)
