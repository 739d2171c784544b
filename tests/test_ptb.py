"""Penn Treebank tasks: corpus counts from the data README, the column layout of the stream, truncated
BPTT windows, the carried state, and the metrics against direct computations."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from realdata import DATA_DIR, needs_data
from rnnbench.model import build_model
from rnnbench.tasks.ptb import EOS, PTBCharTask, PTBTask, windows
from rnnbench.tasks.stream import batchify
from test_configs import compose_config


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
def test_carried_state_changes_the_next_window(ptb, model):
    first, second = list(ptb.train_batches(0))[:2]
    with torch.no_grad():
        _, state = model(first.inputs)
        carried, _ = model(second.inputs, state)
        reset, _ = model(second.inputs)
        whole, _ = model(torch.cat([first.inputs, second.inputs]))
    assert not torch.allclose(carried, reset, atol=1e-4)
    assert torch.allclose(carried, whole[len(first.inputs) :], atol=1e-5)


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
    assert metrics["score"] == pytest.approx(1 / metrics["ppl"])
    assert 5_000 < metrics["ppl"] < 20_000  # an untrained model is near uniform over 10,000 words


@needs_data
def test_train_batches_are_the_same_every_epoch(ptb):
    first, again = next(iter(ptb.train_batches(0))), next(iter(ptb.train_batches(5)))
    assert torch.equal(first.inputs, again.inputs) and first.inputs.shape == (35, 20)
    assert len(list(ptb.train_batches(0))) == math.ceil((929_589 // 20 - 1) / 35)


def test_bits_per_character_is_loss_over_ln2():
    assert PTBCharTask.from_loss(math.log(2) * 1.5) == {"bpc": pytest.approx(1.5)}
    assert PTBTask.from_loss(math.log(100)) == {"ppl": pytest.approx(100), "score": pytest.approx(0.01)}


@needs_data
def test_decode_for_sampling():
    words, chars = PTBTask(seed=0, data_dir=DATA_DIR), PTBCharTask(seed=0, data_dir=DATA_DIR)
    ids = [words.corpus.index[w] for w in ["the", "company", EOS, "it"]]
    assert words.decode(ids) == "the company\nit"
    ids = [chars.corpus.index[c] for c in ["a", "_", "b", EOS, "c"]]
    assert chars.decode(ids) == "a b\nc"
    assert words.start_id == words.corpus.index[EOS]
