"""The XML generator against the paper's description, parsed with xml.etree; the task's stream and metrics."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from helpers.cli import rnnbench, run_dir
from helpers.configs import compose_config
from rnnbench.model.network import build_model
from rnnbench.tasks.xml import ALPHABET, XmlTask, closing_flags, make_document

TAG_LINE = re.compile(r"( *)<(/?)([a-z]+)>")


def documents(n, seed=0, **options):
    rng = np.random.default_rng(seed)
    return [make_document(rng, **options) for _ in range(n)]


def replay(document, indent=0):
    """The document's iterations as (iteration, depth before it, kind, name), read from its lines."""
    steps, depth = [], 0
    for k, line in enumerate(document.splitlines()):
        match = TAG_LINE.fullmatch(line)
        assert match, line
        kind = "close" if match[2] else "open"
        depth -= kind == "close"
        assert len(match[1]) == indent * depth, f"indentation of {line!r} is not {indent} x its depth {depth}"
        steps.append((k, depth + (kind == "close"), kind, match[3]))
        depth += kind == "open"
    return steps


@pytest.mark.parametrize("indent", [0, 1, 2])
def test_documents_are_well_formed_and_nested(indent):
    for document in documents(500, indent=indent):
        root = ET.fromstring(f"<doc>{document}</doc>")  # several top-level tags may follow each other
        opened = [name for _, _, kind, name in replay(document, indent) if kind == "open"]
        assert [e.tag for e in root.iter()][1:] == opened  # document order of the elements
        assert document.endswith("\n") and replay(document, indent)[0][2] == "open"


def test_the_default_layout_has_no_indentation():
    """The task, its config file and the generator all default to lines that start with "<"."""
    cfg = compose_config("task=xml")
    assert cfg.task.indent == 0
    text = XmlTask(seed=0).text(np.random.default_rng(0), 5000)
    assert all(line.startswith("<") for line in text.splitlines()[:-1])
    assert documents(1, seed=4)[0] == documents(1, seed=4, indent=0)[0]


def test_close_and_stop_probabilities_and_the_iteration_cap():
    open_count = decisions = stops = empty_decisions = reached_cap = 0
    for document in documents(3000, seed=1):
        steps = replay(document)
        assert sum(kind == "open" for *_, kind, _ in steps) <= 50
        for k, depth, kind, _ in steps[1:]:
            if k >= 50:
                assert kind == "close", "after 50 iterations only closing"
            elif depth > 0:
                decisions += 1
                open_count += kind == "open"
            else:
                empty_decisions += 1  # nothing open: the coin opens a new tag or stops
        if len(steps) < 50:
            stops, empty_decisions = stops + 1, empty_decisions + 1  # the last iteration stopped
        reached_cap += len(steps) > 50
    assert abs(open_count / decisions - 0.5) < 0.015
    assert abs(stops / empty_decisions - 0.5) < 0.03
    expected = still_open_at_cap()
    assert abs(reached_cap / 3000 - expected) < 4 * (expected * (1 - expected) / 3000) ** 0.5


def still_open_at_cap(close_prob=0.5, cap=50):
    """P(tags are still open at iteration ``cap``), by dynamic programming over the open-tag count."""
    alive = np.zeros(cap + 2)
    alive[1] = 1.0  # iteration 0 opened the first tag
    for _ in range(1, cap):
        nxt = np.zeros_like(alive)
        nxt[1] += alive[0] * (1 - close_prob)  # nothing open: open a tag, or stop (mass leaves)
        nxt[:-1] += alive[1:] * close_prob
        nxt[2:] += alive[1:-1] * (1 - close_prob)
        alive = nxt
    return alive[1:].sum()


def test_tag_names_are_uniform_in_length_and_letters():
    names = [name for d in documents(2000, seed=2) for _, _, kind, name in replay(d) if kind == "open"]
    lengths = np.bincount([len(n) for n in names], minlength=11)
    assert lengths[:2].sum() == 0 and len(lengths) == 11
    assert np.all(np.abs(lengths[2:] / len(names) - 1 / 9) < 0.01)
    letters = np.bincount([ord(c) - ord("a") for n in names for c in n], minlength=26)
    assert np.all(np.abs(letters / letters.sum() - 1 / 26) < 0.005)


def test_options_change_the_generator():
    for document in documents(200, seed=3, max_iterations=5, min_tag_length=3, max_tag_length=3, indent=0):
        lines = document.splitlines()
        assert all(not line.startswith(" ") for line in lines)
        assert all(len(line.strip("</>")) == 3 for line in lines)
        kinds = ["close" if line.startswith("</") else "open" for line in lines]
        assert "open" not in kinds[5:]


def test_closing_flags_mark_the_name_and_bracket_of_closing_tags():
    text = "<ab>\n <c>\n </c>\n</ab>\n"
    flags = closing_flags(text)
    assert "".join(c for c, f in zip(text, flags) if f) == "c>ab>"
    assert [k for k, f in enumerate(flags) if f] == [13, 14, 18, 19, 20]


def in_closing_tag(text, p):
    """Whether text[p] comes after the ``</`` of the tag it belongs to (slow, written independently)."""
    start = text.rfind("<", 0, p + 1)
    return start >= 0 and ">" not in text[start:p] and text[start + 1 : start + 2] == "/" and p >= start + 2


def test_stream_layout_and_seeds():
    task = XmlTask(seed=1, batch_size=4, bptt=7, batches_per_epoch=5, eval_chars=400)
    batches = list(task.train_batches(0))
    assert len(batches) == 5 and all(b.inputs.shape == (7, 4) for b in batches)
    column = torch.cat([b.inputs[:, 2] for b in batches])
    shifted = torch.cat([b.targets[:, 2] for b in batches])
    assert torch.equal(column[1:], shifted[:-1]), "windows continue each column; targets are the next char"
    text = "".join(ALPHABET[k] for k in torch.cat([b.inputs[:, 0] for b in batches]))
    assert text.startswith("<") and re.fullmatch(r"(( *)</?[a-z]+>\n)*( *)<?/?[a-z]*>?", text)
    assert torch.equal(next(task.train_batches(0)).inputs, batches[0].inputs), "deterministic per epoch"
    assert not torch.equal(next(task.train_batches(1)).inputs, batches[0].inputs)
    other = XmlTask(seed=2, batch_size=4, bptt=7, batches_per_epoch=5, eval_chars=400)
    assert not torch.equal(next(other.train_batches(0)).inputs, batches[0].inputs)
    assert torch.equal(other._eval["test"][0], task._eval["test"][0]), "test text does not depend on the seed"
    assert not torch.equal(task._eval["test"][0], task._eval["valid"][0])


def test_metrics_equal_a_direct_computation_over_whole_columns():
    cfg = compose_config("task=xml", "debug=fast", "task.batch_size=3", "task.bptt=9", "task.eval_chars=300")
    task = XmlTask(seed=0, batch_size=3, bptt=9, eval_chars=300)
    model = build_model(cfg, task).eval()
    metrics = task.evaluate(model, "valid", "cpu")
    ids, _ = task._eval["valid"]  # (100, 3): each column is one contiguous piece of the text
    with torch.no_grad():
        logits, _ = model(ids[:-1])  # the whole column at once = windows with the carried state
    nll = F.cross_entropy(logits.flatten(0, 1), ids[1:].flatten())
    hit = logits.argmax(-1) == ids[1:]
    text = "".join(ALPHABET[k] for k in ids.t().flatten())  # the columns are consecutive pieces
    closing = torch.tensor([in_closing_tag(text, p) for p in range(len(text))]).view(3, -1).t()[1:]
    assert closing.any()
    assert metrics["loss"] == pytest.approx(float(nll), rel=1e-5)
    assert metrics["acc"] == pytest.approx(float(hit.float().mean()))
    assert metrics["close_acc"] == pytest.approx(float(hit[closing].float().mean()))


def test_debug_fast_run(tmp_path):
    result = rnnbench("task=xml", "debug=fast", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    summary = json.loads((run_dir(tmp_path) / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["headline"] == "valid/acc"
    assert set(summary["test"]) == {"test/acc", "test/close_acc", "test/loss"}
