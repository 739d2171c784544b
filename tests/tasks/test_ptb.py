"""Penn Treebank tasks: the vocabulary, the column layout of the stream, truncated BPTT windows, the carried
state and the metrics against direct computations, on tiny files the tests write (helpers/fixture_data); the
corpus counts of the data README on the real files (RNNBENCH_DATA)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from helpers.configs import compose_config
from helpers.fixture_data import PTB_CHARS, PTB_WORDS, written
from helpers.realdata import DATA_DIR, needs_data
from rnnbench.model.network import build_model
from rnnbench.tasks.ptb import EOS, PTBCharTask, PTBTask, windows
from rnnbench.tasks.stream import batchify


def test_batchify_matches_the_picture():
    letters = "abcdefghijklmnopqrstuvwxyz"
    data = batchify(torch.arange(26), 4)
    assert ["".join(letters[i] for i in row) for row in data.tolist()] == [
        "agms",
        "bhnt",
        "ciou",
        "djpv",
        "ekqw",
        "flrx",
    ]


def test_windows_cover_the_columns_once_shifted_by_one():
    data = batchify(torch.arange(103), 4)  # 25 rows
    batches = list(windows(data, 7))
    assert [len(b.inputs) for b in batches] == [7, 7, 7, 3]
    assert torch.equal(torch.cat([b.inputs for b in batches]), data[:-1])
    assert torch.equal(torch.cat([b.targets for b in batches]), data[1:])


@pytest.fixture(scope="module")
def ptb():
    return PTBTask(seed=0, data_dir=DATA_DIR)


@needs_data
def test_word_corpus_counts(ptb):
    """README: 929,589 / 73,760 / 82,430 tokens with <eos>, 10,000 types (9,999 words + <eos>)."""
    assert ptb.input_size == ptb.output_size == len(ptb.symbols) == 10_000
    columns = {"train": 20, "valid": 10, "test": 10}
    for split, n in {"train": 929_589, "valid": 73_760, "test": 82_430}.items():
        assert ptb.corpus.splits[split].numel() == n
        assert ptb.data[split].numel() == n - n % columns[split]  # the tail that fills no row is dropped
    eos = ptb.symbols.index(EOS)
    assert int((ptb.corpus.splits["train"] == eos).sum()) == 42_068  # one per line
    assert "<unk>" in ptb.symbols and ptb.symbols[:3] == ["aer", "banknote", "berlitz"]


@needs_data
def test_columns_hold_the_stream_in_order(ptb):
    """Token k of the training stream (read straight from the file) sits at row k mod R, column k div R."""
    text = (DATA_DIR / "ptb" / "ptb.train.txt").read_text()
    stream = [w for line in text.split("\n")[:-1] for w in [*line.split(), EOS]]
    data = ptb.data["train"]
    rows = data.shape[0]
    assert data.shape == (929_589 // 20, 20)
    index = {w: k for k, w in enumerate(ptb.symbols)}
    assert data[:50, 0].tolist() == [index[w] for w in stream[:50]]
    for k in list(range(0, rows * 20, 9973)) + [rows - 1, rows, rows * 20 - 1]:
        assert int(data[k % rows, k // rows]) == index[stream[k]], k


@needs_data
def test_char_corpus_counts():
    """README: 4,975,414 / 389,672 / 438,662 symbols plus one <eos> per line; 49 symbols + <eos>."""
    task = PTBCharTask(seed=0, data_dir=DATA_DIR)
    assert task.input_size == 50 and "_" in task.symbols and EOS in task.symbols
    for split, (symbols, lines) in {
        "train": (4_975_414, 42_068),
        "valid": (389_672, 3_370),
        "test": (438_662, 3_761),
    }.items():
        assert task.corpus.splits[split].numel() == symbols + lines, split
        assert int((task.corpus.splits[split] == task.symbols.index(EOS)).sum()) == lines


@pytest.fixture(scope="module")
def model(ptb):
    torch.manual_seed(0)
    return build_model(compose_config("task=ptb", "debug=fast"), ptb).eval()


@needs_data
def test_evaluation_is_the_per_token_average_over_the_unbroken_columns(ptb, model):
    """Three windows with the state carried equal one pass over the first 3*35 rows of the columns."""
    metrics = ptb.evaluate(model, "valid", "cpu", max_batches=3)
    data = ptb.data["valid"]
    with torch.no_grad():
        logits, _ = model(data[:105])
    direct = F.cross_entropy(logits.reshape(-1, 10_000), data[1:106].reshape(-1), reduction="sum") / 1050
    assert metrics["loss"] == pytest.approx(float(direct), rel=1e-5)
    assert metrics["ppl"] == pytest.approx(math.exp(float(direct)), rel=1e-5)
    probs = logits.reshape(-1, 10_000).softmax(-1)
    targets = data[1:106].reshape(-1)
    assert metrics["mean_p"] == pytest.approx(float(probs[range(1050), targets].mean()), rel=1e-5)
    assert metrics["acc"] == pytest.approx(float((probs.argmax(-1) == targets).double().mean()), rel=1e-9)
    assert "score" not in metrics  # 1/ppl is not the paper's PTB number (see tasks/ptb.py)
    assert 5_000 < metrics["ppl"] < 20_000  # an untrained model is near uniform over 10,000 words


def test_bits_per_character_is_loss_over_ln2():
    assert PTBCharTask.from_loss(math.log(2) * 1.5) == {"bpc": pytest.approx(1.5)}
    assert PTBTask.from_loss(math.log(100)) == {"ppl": pytest.approx(100)}


# The tiny files (tests/helpers/fixture_data.py), through data_dir.


def tiny(cls, tmp_path, **options):
    with written(tmp_path, cls.dataset) as root:
        return cls(seed=0, data_dir=root, **options)


def stream_of(text: str) -> list[str]:
    """The split's tokens read independently of the task: words of each line, then <eos>."""
    return [t for line in text.splitlines() for t in [*line.split(), EOS]]


WORDS = ["the", "cat", "sat", EOS, "dog", "ran", "a"]  # the training split's, in order of first use


def test_tiny_word_vocabulary_and_splits(tmp_path):
    task = tiny(PTBTask, tmp_path)
    assert task.symbols == WORDS and task.input_size == task.output_size == 7
    for split, text in PTB_WORDS.items():
        assert task.corpus.splits[split].tolist() == [WORDS.index(w) for w in stream_of(text)], split


def test_tiny_char_vocabulary_and_splits(tmp_path):
    task = tiny(PTBCharTask, tmp_path)
    assert task.symbols == ["a", "_", "c", "t", EOS] and task.input_size == 5
    for split, text in PTB_CHARS.items():
        assert task.corpus.splits[split].tolist() == [task.symbols.index(c) for c in stream_of(text)]


def test_tiny_stream_in_columns_and_windows(tmp_path):
    task = tiny(PTBTask, tmp_path, batch_size=2, bptt=2, eval_batch_size=2)
    train = [WORDS.index(w) for w in stream_of(PTB_WORDS["train"])]  # 12 tokens: 2 columns of 6
    assert task.data["train"].T.tolist() == [train[:6], train[6:]]
    valid = [WORDS.index(w) for w in stream_of(PTB_WORDS["valid"])]  # 7 tokens: the last fills no row
    assert task.data["valid"].T.tolist() == [valid[:3], valid[3:6]]
    # Windows of 2, 2 and 1 rows; targets are the next row of the same column.
    batches = list(task.train_batches(0))
    columns = [train[:6], train[6:]]
    for batch, rows in zip(batches, [(0, 2), (2, 4), (4, 5)], strict=True):
        start, stop = rows
        assert batch.inputs.T.tolist() == [c[start:stop] for c in columns]
        assert batch.targets.T.tolist() == [c[start + 1 : stop + 1] for c in columns]
    again = list(task.train_batches(7))  # the same batches every epoch
    assert all(torch.equal(a.inputs, b.inputs) for a, b in zip(batches, again, strict=True))


class Bigram(torch.nn.Module):
    """Logits of the next token from a fixed table indexed by the current token; no state."""

    def __init__(self, table):
        super().__init__()
        self.register_buffer("table", table)

    def forward(self, inputs, state=None, step_mask=None):
        return self.table[inputs], state


def bigram_nll(table, pairs) -> float:
    """Mean -log softmax(table[a])[b] over (a, b) pairs, in plain Python floats."""
    total = 0.0
    for a, b in pairs:
        row = table[a].tolist()
        total -= row[b] - math.log(sum(math.exp(x) for x in row))
    return total / len(pairs)


def bigram_mean_p_and_acc(table, pairs) -> tuple[float, float]:
    """Mean softmax(table[a])[b] and the fraction of pairs where b is the row's largest entry."""
    p = hits = 0.0
    for a, b in pairs:
        row = table[a].tolist()
        p += math.exp(row[b]) / sum(math.exp(x) for x in row)
        hits += max(range(len(row)), key=row.__getitem__) == b
    return p / len(pairs), hits / len(pairs)


@pytest.mark.parametrize("eval_batch_size, bptt", [(1, 4), (2, 1)])
def test_tiny_word_metrics_are_the_exact_per_token_average(tmp_path, eval_batch_size, bptt):
    task = tiny(PTBTask, tmp_path, eval_batch_size=eval_batch_size, bptt=bptt)
    table = torch.randn(7, 7, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    ids = [WORDS.index(w) for w in stream_of(PTB_WORDS["valid"])]
    rows = len(ids) // eval_batch_size
    columns = [ids[k * rows : (k + 1) * rows] for k in range(eval_batch_size)]
    pairs = [(c[t], c[t + 1]) for c in columns for t in range(rows - 1)]
    assert len(pairs) == {1: 6, 2: 4}[eval_batch_size]  # every column's first token is not predicted
    expected = bigram_nll(table, pairs)
    metrics = task.evaluate(Bigram(table), "valid", "cpu")
    assert metrics["loss"] == pytest.approx(expected, rel=1e-9)
    assert metrics["ppl"] == pytest.approx(math.exp(expected), rel=1e-9)
    mean_p, acc = bigram_mean_p_and_acc(table, pairs)
    assert metrics["mean_p"] == pytest.approx(mean_p, rel=1e-9)
    assert metrics["acc"] == pytest.approx(acc, rel=1e-12)


def test_tiny_char_bits_per_character(tmp_path):
    task = tiny(PTBCharTask, tmp_path, eval_batch_size=1, bptt=3)
    table = torch.randn(5, 5, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    ids = [task.symbols.index(c) for c in stream_of(PTB_CHARS["test"])]
    expected = bigram_nll(table, list(zip(ids[:-1], ids[1:])))
    metrics = task.evaluate(Bigram(table), "test", "cpu")
    assert set(metrics) == {"loss", "bpc"}
    assert metrics["bpc"] == pytest.approx(expected / math.log(2), rel=1e-9)


def test_tiny_evaluation_carries_the_state_across_windows(tmp_path):
    """Windows of 2 rows with the state carried equal one pass over the column; reset, they differ."""
    task = tiny(PTBTask, tmp_path, eval_batch_size=1, bptt=2)
    torch.manual_seed(0)
    model = build_model(compose_config("task=ptb", "debug=fast"), task).eval()
    column = task.data["valid"]  # (7, 1)
    with torch.no_grad():
        logits, _ = model(column[:-1])
        whole = float(F.cross_entropy(logits.reshape(-1, 7), column[1:].reshape(-1)))
        reset = (
            sum(
                float(
                    F.cross_entropy(
                        model(column[k : k + 2])[0].reshape(-1, 7), column[k + 1 : k + 3].reshape(-1)
                    )
                )
                for k in (0, 2, 4)
            )
            / 3
        )
    metrics = task.evaluate(model, "valid", "cpu")
    assert metrics["loss"] == pytest.approx(whole, rel=1e-5)
    assert metrics["loss"] != pytest.approx(reset, rel=1e-5)


def test_tiny_decode_for_sampling(tmp_path):
    words, chars = tiny(PTBTask, tmp_path), tiny(PTBCharTask, tmp_path)
    assert words.decode([WORDS.index(w) for w in ["the", "cat", EOS, "a"]]) == "the cat\na"
    assert chars.decode([chars.symbols.index(c) for c in ["a", "_", "c", EOS, "t"]]) == "a c\nt"
    assert words.start_id == WORDS.index(EOS)
