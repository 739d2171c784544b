"""The training loss a step descends: ``trainer.loss_over_time`` against direct computations, and the
paper presets that must use the summed loss (Greff et al.'s and Jozefowicz et al.'s code)."""

from __future__ import annotations

import pytest
import torch

from helpers.configs import compose_config
from helpers.fixture_data import written
from rnnbench.model.network import build_model
from rnnbench.tasks.music import MusicTask
from rnnbench.training.loss import training_loss


def one_sequence(tmp_path):
    with written(tmp_path, "jsb") as root:
        task = MusicTask(seed=0, dataset="jsb", data_dir=root, batch_size=1)
    return task, next(iter(task.train_batches(0)))


def gradients(model, loss):
    model.zero_grad()
    loss.backward()
    return [p.grad.clone() for p in model.parameters()]


def test_summed_loss_is_length_times_mean_for_one_sequence_and_so_is_its_gradient(tmp_path):
    task, batch = one_sequence(tmp_path)
    T = batch.targets.shape[0]
    assert T > 3 and batch.targets.shape[1] == 1
    torch.manual_seed(0)
    cfg = compose_config("experiment=greff_jsb", "cell.hidden_size=8", "model.input_noise_std=0")
    model = build_model(cfg, task).double()

    def loss(over_time):
        logits, _ = model(batch.inputs.double())
        return training_loss(*task.loss(logits, batch), batch.targets.shape[1], over_time)

    with torch.no_grad():
        summed, mean = loss("sum"), loss("mean")
    # Independently: Bernoulli cross-entropy summed over every step and all 88 notes of the sequence.
    with torch.no_grad():
        logits, _ = model(batch.inputs.double())
    p, y = torch.sigmoid(logits), batch.targets.double()
    direct = -(y * p.log() + (1 - y) * (1 - p).log()).sum()
    assert float(summed) == pytest.approx(float(direct), rel=1e-9)
    assert float(summed) == pytest.approx(T * float(mean), rel=1e-12)
    for g_sum, g_mean in zip(gradients(model, loss("sum")), gradients(model, loss("mean"))):
        torch.testing.assert_close(g_sum, T * g_mean, rtol=1e-10, atol=1e-12)


def test_summed_loss_averages_over_the_sequences_of_a_padded_batch():
    """Two sequences, one padded: the sum counts only real positions and divides by 2, not by T."""
    loss_sum, count = torch.tensor(12.0), torch.tensor(6.0)
    assert float(training_loss(loss_sum, count, 2, "sum")) == 6.0
    assert float(training_loss(loss_sum, count, 2, "mean")) == 2.0


@pytest.mark.parametrize(
    "overrides",
    [
        ["experiment=greff_jsb"],
        ["search=greff", "task=jsb"],
        ["study=greff_jsb"],
        ["experiment=jozefowicz_arith"],
        ["experiment=jozefowicz_xml"],
        ["experiment=jozefowicz_ptb"],
        ["study=jozefowicz_arith"],
        ["study=jozefowicz_xml"],
        ["study=jozefowicz_ptb"],
        ["experiment=zaremba_small"],
    ],
)
def test_paper_presets_sum_the_loss_over_time(overrides):
    assert compose_config(*overrides).trainer.loss_over_time == "sum"


def test_the_default_run_keeps_the_per_token_mean():
    assert compose_config().trainer.loss_over_time == "mean"
