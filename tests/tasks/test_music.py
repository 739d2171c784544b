"""Music tasks: the piano rolls, padding and the Bernoulli loss against direct computations, the per-epoch
order and the allow-list unpickler, on a tiny pickle the tests write (helpers/fixture_data); the data README's
counts on the real files (RNNBENCH_DATA)."""

from __future__ import annotations

import math
import pickle
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from helpers.configs import compose_config
from helpers.fixture_data import MUSIC, written
from helpers.realdata import DATA_DIR, needs_data
from rnnbench.data import safe_pickle
from rnnbench.errors import ConfigError
from rnnbench.model.network import build_model
from rnnbench.tasks.music import MusicTask, bernoulli_nll, pad

# shared/data/README.md, "Measured counts": (sequences, time steps, notes, min note, max note, empty steps)
README_COUNTS = {
    "jsb": {
        "train": (229, 13807, 53824, 43, 96, 18),
        "valid": (76, 4602, 17811, 48, 96, 29),
        "test": (77, 4725, 18367, 45, 96, 17),
    },
    "nottingham": {
        "train": (694, 176561, 699403, 31, 93, 487),
        "valid": (173, 45513, 180192, 34, 91, 51),
        "test": (170, 44463, 177421, 36, 89, 19),
    },
    "musedata": {
        "train": (524, 245202, 856543, 21, 96, 12962),
        "valid": (135, 82755, 287893, 21, 100, 4412),
        "test": (124, 64339, 211857, 21, 105, 5042),
    },
    "piano_midi": {
        "train": (87, 75911, 231089, 21, 108, 4917),
        "valid": (12, 8540, 27623, 24, 104, 251),
        "test": (25, 19036, 56067, 21, 108, 652),
    },
}


@needs_data
@pytest.mark.parametrize("dataset", sorted(README_COUNTS))
def test_piano_rolls_match_the_readme_counts(dataset):
    task = MusicTask(seed=0, dataset=dataset, data_dir=DATA_DIR)
    for split, expected in README_COUNTS[dataset].items():
        rolls = task.rolls[split]
        keys = torch.cat(rolls).nonzero()[:, 1]
        counted = (
            len(rolls),
            sum(len(r) for r in rolls),
            int(sum(r.sum() for r in rolls)),
            int(keys.min()) + 21,
            int(keys.max()) + 21,
            sum(int((r.sum(1) == 0).sum()) for r in rolls),
        )
        assert counted == expected, split
        assert all(r.shape[1] == 88 and r.dtype == torch.bool for r in rolls)


@needs_data
def test_jsb_roll_holds_exactly_the_pickled_notes():
    task = MusicTask(seed=0, dataset="jsb", data_dir=DATA_DIR)
    raw = safe_pickle.load(DATA_DIR / "music" / "jsb_chorales.pickle")
    for split in ("train", "test"):
        for sequence, roll in zip(raw[split], task.rolls[split]):
            assert [tuple(int(n) for n in step) for step in sequence] == [
                tuple(int(k) + 21 for k in row.nonzero()[:, 0]) for row in roll
            ]


def rolls_of(*lengths, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.rand(n, 88, generator=g) < 0.1 for n in lengths]


def test_padding_layout_and_masks():
    a, b = rolls_of(5, 3)
    batch = pad([a, b])
    assert batch.inputs.shape == (4, 2, 88)
    assert torch.equal(batch.inputs[:, 0], a[:-1].float()) and torch.equal(batch.targets[:, 0], a[1:].float())
    assert torch.equal(batch.inputs[:2, 1], b[:-1].float()) and torch.equal(
        batch.targets[:2, 1], b[1:].float()
    )
    assert batch.inputs[2:, 1].abs().sum() == 0
    assert batch.mask.tolist() == [[True, True], [True, True], [True, False], [True, False]]
    assert torch.equal(batch.step_mask, batch.mask)
    assert pad([a]).step_mask is None  # one sequence: nothing to freeze


def test_bernoulli_loss_with_padding_equals_a_direct_computation():
    batch = pad(rolls_of(4, 2, 3))
    logits = torch.randn(batch.targets.shape, generator=torch.Generator().manual_seed(1))
    total, count = bernoulli_nll(logits, batch)
    direct, steps = 0.0, 0
    for b, length in enumerate((4, 2, 3)):
        for t in range(length - 1):
            p, y = torch.sigmoid(logits[t, b].double()), batch.targets[t, b].double()
            direct += float(-(y * torch.log(p) + (1 - y) * torch.log(1 - p)).sum())
            steps += 1
    assert count == steps == 6
    assert float(total) == pytest.approx(direct, rel=1e-6)


def test_padded_batch_scores_each_sequence_as_alone():
    """Padding never counts and never leaks: the summed loss of a padded batch equals the sum of
    the sequences' losses computed one at a time (state frozen by step_mask, targets by mask)."""
    cfg = compose_config("task=jsb", "debug=fast", "cell=gru")
    sizes = SimpleNamespace(
        input_kind="dense", input_size=88, output_size=88, many_to_one=False, carries_state=False
    )
    model = build_model(cfg, sizes).eval()
    rolls = rolls_of(7, 3, 5)
    with torch.no_grad():
        batch = pad(rolls)
        together = bernoulli_nll(model(batch.inputs, None, batch.step_mask)[0], batch)[0]
        alone = sum(bernoulli_nll(model(pad([r]).inputs)[0], pad([r]))[0] for r in rolls)
    assert float(together) == pytest.approx(float(alone), rel=1e-5)


def test_unknown_dataset_is_a_config_error():
    with pytest.raises(ConfigError, match="task.dataset='bach'"):
        MusicTask(seed=0, dataset="bach")


class RunsACommand:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        import os

        return os.system, (f"touch {self.path}",)


def test_unpickler_refuses_other_globals(tmp_path):
    evil = tmp_path / "evil.pickle"
    evil.write_bytes(pickle.dumps({"train": [RunsACommand(tmp_path / "ran")]}, protocol=2))
    with pytest.raises(safe_pickle.UnsafePickleError, match=r"system.*allowed: numpy"):
        safe_pickle.load(evil)
    assert not (tmp_path / "ran").exists()


def test_unpickler_allows_numpy_scalars(tmp_path):
    """numpy 2 names numpy._core.multiarray.scalar; the JSB file (numpy 1 era) names numpy.core."""
    path = tmp_path / "notes.pickle"
    path.write_bytes(pickle.dumps({"train": [[(np.int64(60), np.int64(64))]]}, protocol=4))
    loaded = safe_pickle.load(path)
    assert loaded == {"train": [[(60, 64)]]}


# The tiny pickle (tests/helpers/fixture_data.py), through data_dir.


def tiny(tmp_path, dataset="jsb", **options):
    with written(tmp_path, dataset) as root:
        return MusicTask(seed=options.pop("seed", 0), dataset=dataset, data_dir=root, **options)


@pytest.mark.parametrize("dataset", ["jsb", "piano_midi"])
def test_tiny_rolls_hold_exactly_the_pickled_notes(tmp_path, dataset):
    task = tiny(tmp_path, dataset)
    for split, sequences in MUSIC.items():
        assert [len(r) for r in task.rolls[split]] == [len(s) for s in sequences]
        for sequence, roll in zip(sequences, task.rolls[split], strict=True):
            assert roll.shape == (len(sequence), 88) and roll.dtype == torch.bool
            assert [tuple(k + 21 for k in row.nonzero()[:, 0].tolist()) for row in roll] == sequence


def test_tiny_training_order_is_a_permutation_fixed_by_seed_and_epoch(tmp_path):
    task = tiny(tmp_path, seed=3, batch_size=2)
    orders = [task.epoch_order(e) for e in range(6)]
    assert all(sorted(order) == [0, 1, 2, 3, 4] for order in orders)
    assert np.array_equal(orders[0], tiny(tmp_path, seed=3).epoch_order(0))
    assert len({tuple(order) for order in orders}) > 1  # the order changes with the epoch
    assert any(not np.array_equal(tiny(tmp_path, seed=s).epoch_order(0), orders[0]) for s in range(4, 8))
    batches = list(task.train_batches(0))
    assert len(batches) == 3  # 5 sequences, 2 per batch
    for k, batch in enumerate(batches):
        expected = pad([task.rolls["train"][i] for i in orders[0][2 * k : 2 * k + 2]])
        assert torch.equal(batch.inputs, expected.inputs) and torch.equal(batch.targets, expected.targets)
        assert torch.equal(batch.mask, expected.mask)


class Sustain(torch.nn.Module):
    """Predicts each note on with logit 2 if it sounds now, else -3; no state, no parameters."""

    def forward(self, inputs, state=None, step_mask=None):
        return inputs * 5.0 - 3.0, state


def sustain_nll(sequences) -> float:
    """Mean over predicted steps of the Bernoulli NLL summed over the 88 keys, in plain Python floats."""
    total, steps = 0.0, 0
    for sequence in sequences:
        for now, after in zip(sequence[:-1], sequence[1:]):
            for key in range(21, 109):
                p = 1 / (1 + math.exp(-(2.0 if key in now else -3.0)))
                total -= math.log(p if key in after else 1 - p)
            steps += 1
    return total / steps


@pytest.mark.parametrize("eval_batch_size", [1, 2, 32])
def test_tiny_nll_is_the_exact_mean_over_predicted_steps(tmp_path, eval_batch_size):
    task = tiny(tmp_path, eval_batch_size=eval_batch_size)
    for split in ("valid", "test"):
        metrics = task.evaluate(Sustain(), split, "cpu")
        assert metrics["nll"] == metrics["loss"] == pytest.approx(sustain_nll(MUSIC[split]), rel=1e-6), split
