"""Penn Treebank language modelling (Mikolov's version): ``ptb`` (words) and ``ptb_char`` (characters).

Both files hold one sentence per line with symbols separated by spaces (the char files spell words
letter by letter with ``_`` between words). The corpus adds an end symbol ``<eos>`` at every newline:
10,000 word types (``<unk>`` included), 50 character symbols. The vocabulary is the training split's,
in order of first occurrence.

Batching as Zaremba et al. 2014: the token stream of a split is laid out in ``batch_size`` columns and
read in truncated-BPTT windows of ``bptt`` steps. The hidden state is carried from one window to the
next (the trainer detaches it) and reset at each epoch start; evaluation carries it through the split.

Metrics: ``loss`` = mean negative log-likelihood per predicted token in nats, an exact per-token
average over the split. ``ptb``: ``ppl`` = exp(loss) (headline, lower is better); ``mean_p``, the
mean probability given to the correct next word, and ``acc``, next-word accuracy of the argmax: the
two candidates for the "higher is better" PTB number of Jozefowicz et al., which the paper does not
define. ``ptb_char``: ``bpc`` = loss / ln 2, bits per character (headline). With B evaluation
columns the first token of each column and the N mod B tokens at the end of the split are not
predicted; ``eval_batch_size=1`` scores all but the first.
"""

from __future__ import annotations

import functools
import math
from array import array
from pathlib import Path

import torch

from rnnbench.data import DATASETS, DataError, locate
from rnnbench.errors import check_positive
from rnnbench.tasks.base import Batch, Task
from rnnbench.tasks.stream import batchify
from rnnbench.tasks.stream import windows as stream_windows

EOS = "<eos>"
SPLITS = ("train", "valid", "test")


class Corpus:
    """The three splits of a text corpus as flat int64 tensors of token ids, and the vocabulary."""

    def __init__(self, paths: dict[str, Path]):
        self.index: dict[str, int] = {}  # symbol -> id, grown by the training split only
        self.splits = {split: self._read(paths[split], grow=split == "train") for split in SPLITS}
        self.symbols = list(self.index)

    def _read(self, path: Path, grow: bool) -> torch.Tensor:
        ids, index = array("q"), self.index
        with open(path, encoding="utf-8") as f:
            for line in f:
                tokens = line.split()
                if line.endswith("\n"):
                    tokens.append(EOS)
                if grow:
                    ids.extend(index.setdefault(t, len(index)) for t in tokens)
                else:
                    unknown = set(tokens) - index.keys()
                    if unknown:
                        raise DataError(f"{path}: symbols {sorted(unknown)} are not in the training split")
                    ids.extend(index[t] for t in tokens)
        return torch.frombuffer(ids, dtype=torch.int64).clone()


@functools.lru_cache(maxsize=2)
def load_corpus(paths: tuple[tuple[str, Path], ...]) -> Corpus:
    """Cached: sweeps train many runs in one process on the same files."""
    return Corpus(dict(paths))


def windows(data: torch.Tensor, bptt: int):
    """The training/evaluation batches: truncated-BPTT windows over the columns (``stream.windows``)."""
    for x, y in stream_windows(data, bptt):
        yield Batch(data[x], data[y])


class PTBTask(Task):
    name = "ptb"
    dataset = "ptb"  # the files in rnnbench.data.DATASETS
    carries_state = True
    headline = "ppl"
    higher_is_better = False
    separator = " "  # sampling: words are joined with spaces, <eos> becomes a newline

    def __init__(
        self,
        seed: int,
        batch_size: int = 20,
        bptt: int = 35,
        eval_batch_size: int = 10,
        data_dir: str | None = None,
    ):
        for key, value in [("batch_size", batch_size), ("bptt", bptt), ("eval_batch_size", eval_batch_size)]:
            check_positive(f"task.{key}", value, integer=True)
        self.seed, self.bptt = seed, bptt  # the order is fixed: the seed changes nothing here
        files = DATASETS[self.dataset]
        paths = tuple((split, locate(f.path, data_dir)) for split, f in zip(SPLITS, files))
        self.corpus = corpus = load_corpus(paths)
        self.symbols = corpus.symbols
        self.input_size = self.output_size = len(corpus.symbols)
        self.data = {
            split: batchify(ids, batch_size if split == "train" else eval_batch_size)
            for split, ids in corpus.splits.items()
        }

    def train_batches(self, epoch):
        return windows(self.data["train"], self.bptt)

    def eval_batches(self, split):
        return windows(self.data[split], self.bptt)

    def metric_sums(self, logits, batch):
        loss, count = self.loss(logits, batch)
        p_correct = logits.log_softmax(-1).gather(-1, batch.targets[..., None]).exp()
        hits = logits.argmax(-1) == batch.targets
        return {"loss": (loss, count), "mean_p": (p_correct.sum(), count), "acc": (hits.sum().float(), count)}

    def derived(self, means):
        return self.from_loss(means["loss"])

    @property
    def start_id(self) -> int:
        return self.corpus.index[EOS]  # a sample starts like a sentence

    def decode(self, ids) -> str:
        text = self.separator.join(self.symbols[k] for k in ids)
        return text.replace(f"{self.separator}{EOS}{self.separator}", "\n").replace(EOS, "\n")

    @staticmethod
    def from_loss(loss: float) -> dict[str, float]:
        ppl = math.exp(loss) if loss < 709 else math.inf  # exp overflows a float above ~709.8
        return {"ppl": ppl}


class PTBCharTask(PTBTask):
    name = "ptb_char"
    dataset = "ptb_char"
    headline = "bpc"
    separator = ""  # sampling: characters are joined directly; "_" marks a word boundary
    metric_sums = Task.metric_sums  # the loss only: the word-level candidates are not bpc's

    def decode(self, ids) -> str:
        text = "".join(" " if self.symbols[k] == "_" else self.symbols[k] for k in ids)
        return text.replace(EOS, "\n")

    @staticmethod
    def from_loss(loss: float) -> dict[str, float]:
        return {"bpc": loss / math.log(2)}
