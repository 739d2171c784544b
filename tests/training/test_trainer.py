"""The trainer's protocol: resume equals an uninterrupted run, divergence and signals end runs cleanly,
schedules give the sequences their papers describe, Greff's update and input noise."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from omegaconf import OmegaConf

from helpers.configs import compose_config
from helpers.runs import SMALL, assert_same_run, metrics
from rnnbench.config.schema import validate
from rnnbench.model.network import SequenceModel, build_model
from rnnbench.tasks import build_task
from rnnbench.training.optim import build_optimizer
from rnnbench.training.schedules import Schedule, lr_sequence
from rnnbench.training.trainer import Trainer, train


def test_resume_after_step_limit_is_identical(tmp_path):
    # dropout on: the torch RNG must be restored too; 30 steps cross an epoch boundary (25 batches)
    # the first limit (13) falls between evaluations: its extra evaluation must not change the rest
    base = [*SMALL, "trainer.eval_every=5", "task.batches_per_epoch=25"]
    train(compose_config(*base, "trainer.max_steps=30"), tmp_path / "whole")
    first = train(compose_config(*base, "trainer.max_steps=13"), tmp_path / "parts")
    assert first["steps"] == 13 and first["stop_reason"] == "max_steps"
    valid = [r for r in metrics(tmp_path / "parts") if r["split"] == "valid"]
    assert valid[-1].get("at_limit") and valid[-1]["step"] == 13
    summary = train(compose_config(*base, "trainer.max_steps=30"), tmp_path / "parts")
    assert summary["status"] == "completed" and summary["steps"] == 30
    assert_same_run(tmp_path / "whole", tmp_path / "parts")


def rnnbench(run_dir, *args):
    cmd = [sys.executable, "-m", "rnnbench", *SMALL, f"hydra.run.dir={run_dir}", *args]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.slow
def test_killed_run_resumes_to_the_same_result(tmp_path):
    # long enough after the first evaluation that the signal lands mid-run
    args = ["trainer.eval_every=20", "trainer.max_steps=300", "task.batches_per_epoch=25"]
    assert rnnbench(tmp_path / "whole", *args).wait(timeout=300) == 0
    victim = rnnbench(tmp_path / "killed", *args)
    metrics_file = tmp_path / "killed" / "metrics.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and not (
        metrics_file.exists() and metrics_file.read_text().count("\n") >= 1
    ):
        time.sleep(0.05)
    victim.send_signal(signal.SIGTERM)
    assert victim.wait(timeout=60) == 128 + signal.SIGTERM
    summary = json.loads((tmp_path / "killed" / "summary.json").read_text())
    assert summary["status"] == "interrupted" and 0 < summary["steps"] < 300
    again = rnnbench(tmp_path / "killed", *args)
    assert again.wait(timeout=300) == 0, again.stderr.read()
    assert json.loads((tmp_path / "killed" / "summary.json").read_text())["status"] == "completed"
    assert_same_run(tmp_path / "whole", tmp_path / "killed")


def test_finished_run_is_not_run_again(tmp_path):
    cfg = compose_config(*SMALL, "trainer.max_steps=6", "trainer.eval_every=3")
    first = train(cfg, tmp_path)
    again = train(cfg, tmp_path)
    assert again == first
    assert len(metrics(tmp_path)) == 3  # two evaluations and one test line, not repeated


def test_resume_refuses_a_different_config(tmp_path):
    train(compose_config(*SMALL, "trainer.max_steps=3", "trainer.eval_every=3"), tmp_path)
    from rnnbench.errors import ConfigError

    with pytest.raises(ConfigError, match=r"different config \(seed=1 -> 9\)"):
        train(compose_config(*SMALL, "trainer.max_steps=3", "trainer.eval_every=3", "seed=9"), tmp_path)


def test_a_run_saved_before_a_config_key_existed_continues(tmp_path):
    """A checkpoint whose config lacks a key (added to rnnbench since) resumes to the same run."""
    base = [*SMALL, "trainer.eval_every=3"]
    train(compose_config(*base, "trainer.max_steps=6"), tmp_path / "whole")
    train(compose_config(*base, "trainer.max_steps=3"), tmp_path / "parts")
    path = tmp_path / "parts" / "checkpoint.pt"
    saved = torch.load(path, weights_only=True)
    del saved["config"]["task"]["max_digits"], saved["config"]["trainer"]["optimizer"]
    torch.save(saved, path)
    train(compose_config(*base, "trainer.max_steps=6"), tmp_path / "parts")
    assert_same_run(tmp_path / "whole", tmp_path / "parts")


def test_the_limits_evaluation_can_pick_the_best_weights(tmp_path):
    from rnnbench.training.trainer import Trainer

    trainer = Trainer(compose_config(*SMALL, "trainer.eval_every=5", "trainer.max_steps=7"), tmp_path)
    scripted = iter([0.1, 0.5])  # valid acc at step 5, then at the limit (step 7)

    def evaluate(model, split, device, max_batches=None):
        return {"acc": next(scripted) if split == "valid" else 0.0, "loss": 1.0}

    trainer.task.evaluate = evaluate
    summary = trainer.run()
    assert summary["best_step"] == 7 and summary["best"]["valid/acc"] == 0.5


@pytest.mark.slow
def test_raising_the_step_limit_on_the_command_line_extends_the_run(tmp_path):
    base = ["debug=fast", "trainer.eval_every=4", "trainer.progress=false"]
    cmd = [sys.executable, "-m", "rnnbench", *base]
    assert subprocess.run([*cmd, "trainer.max_steps=4"], cwd=tmp_path, capture_output=True).returncode == 0
    assert subprocess.run([*cmd, "trainer.max_steps=8"], cwd=tmp_path, capture_output=True).returncode == 0
    (summary,) = (tmp_path / "results" / "runs").glob("*/*/*/summary.json")
    assert json.loads(summary.read_text())["steps"] == 8
    assert [r["step"] for r in metrics(summary.parent) if r["split"] == "valid"] == [4, 8]


def test_perplexity_of_an_exploded_loss_is_infinite_not_an_error():
    from rnnbench.tasks.ptb import PTBTask

    assert PTBTask.from_loss(1000.0)["ppl"] == float("inf")


def test_huge_learning_rate_diverges_with_exit_code_zero(tmp_path):
    proc = rnnbench(
        tmp_path,
        "trainer.optimizer=sgd",
        "trainer.lr=1e12",
        "trainer.clip_norm=null",
        "trainer.max_steps=40",
        "trainer.eval_every=5",
    )
    assert proc.wait(timeout=300) == 0, proc.stderr.read()
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["status"] == "diverged", summary
    assert summary["steps"] < 40
    assert len(metrics(tmp_path)) >= 1  # the metrics up to that point are kept


def test_time_limit_is_recorded(tmp_path):
    summary = train(compose_config(*SMALL, "trainer.max_minutes=0"), tmp_path)
    assert summary["stop_reason"] == "max_minutes" and summary["steps"] == 0


def test_zaremba_schedule():
    # Zaremba et al. small: lr 1, constant for 4 epochs, then halved every epoch
    rates = lr_sequence(Schedule("zaremba", decay_start=4, decay=0.5), [5.0] * 7, lr=1.0)
    assert rates == [1, 1, 1, 1, 0.5, 0.25, 0.125, 0.0625]
    medium = lr_sequence(Schedule("zaremba", decay_start=6, decay=1 / 1.2), [5.0] * 7, lr=1.0)
    assert medium[:6] == [1.0] * 6 and medium[6] == pytest.approx(1 / 1.2)
    assert medium[7] == pytest.approx(1 / 1.44)


def test_halving_schedule():
    # Jozefowicz et al.: 3 epochs without improvement, then halve each epoch for 4 more, then stop
    curve = [5.0, 4.0, 3.0, 3.5, 3.2, 3.1, 2.0, 1.0, 0.5, 0.1, 0.1]
    rates = lr_sequence(Schedule("halving", higher_is_better=False), curve, lr=1.0)
    # evaluations 4, 5, 6 do not improve on 3.0; halving starts after the 6th; improvements no longer count
    assert rates == [1, 1, 1, 1, 1, 1, 0.5, 0.25, 0.125, 0.0625]
    steady = lr_sequence(Schedule("halving", higher_is_better=True), [float(k) for k in range(20)], 1.0)
    assert steady == [1.0] * 21, "never halves while improving"


def test_greff_nesterov_update_matches_hand_computation():
    cfg = OmegaConf.create(
        dict(
            optimizer="sgd",
            lr=0.1,
            momentum=0.9,
            nesterov=True,
            momentum_scales_lr=True,
            weight_decay=0.0,
            clip_norm=None,
        )
    )
    p = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
    optimizer = build_optimizer(cfg, [p])
    g1, g2 = torch.tensor([0.5, 1.0]), torch.tensor([-1.0, 2.0])
    lr, m = 0.1 * (1 - 0.9), 0.9
    v1 = g1  # velocity after step 1
    expected1 = torch.tensor([1.0, -2.0]) - lr * (g1 + m * v1)
    v2 = m * v1 + g2
    expected2 = expected1 - lr * (g2 + m * v2)
    for g, expected in [(g1, expected1), (g2, expected2)]:
        p.grad = g.clone()
        optimizer.step()
        torch.testing.assert_close(p.detach(), expected)


def test_input_noise_only_in_training():
    cfg = compose_config("task.max_digits=2", "cell.hidden_size=8", "model.input_noise_std=0.5")
    model: SequenceModel = build_model(cfg, build_task(cfg.task, 0))
    x = torch.randint(1, 10, (6, 3))
    model.eval()
    noisy_model_in_eval = model(x)[0]
    model.input_noise_std = 0.0
    clean = model(x)[0]
    torch.testing.assert_close(noisy_model_in_eval, clean)  # no noise in evaluation
    model.input_noise_std = 0.5
    model.train()
    model.stack.dropout.p = model.dropout.p = 0.0  # only the noise may differ
    assert not torch.allclose(model(x)[0], clean)


def test_deterministic_and_threads_are_recorded(tmp_path):
    summary = train(
        compose_config(
            *SMALL,
            "trainer.max_steps=2",
            "trainer.eval_every=2",
            "trainer.threads=1",
            "trainer.deterministic=true",
        ),
        tmp_path,
    )
    assert summary["runtime"] == {"deterministic": True, "amp": None, "compile": False, "threads": 1}


def test_threads_default_to_one_and_are_restored(tmp_path):
    """trainer.threads=null runs on one thread (runtime.DEFAULT_THREADS), whatever the process had."""
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        summary = train(compose_config(*SMALL, "trainer.max_steps=2", "trainer.eval_every=2"), tmp_path)
        assert summary["runtime"]["threads"] == 1 and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


PRESETS = [
    "zaremba_small",
    "zaremba_medium",
    "jozefowicz_arith",
    "jozefowicz_xml",
    "jozefowicz_ptb",
    "jozefowicz_ptb_dropout",
    "greff_jsb",
    "gfrnn_char",
]


def test_every_preset_exists_and_composes():
    from rnnbench.config.cli_checks import available

    assert sorted(available("experiment", [])) == sorted(PRESETS)
    small = compose_config("experiment=zaremba_small")
    assert (small.task.name, small.cell.num_layers, small.cell.hidden_size) == ("ptb", 2, 200)
    assert (small.trainer.schedule, small.trainer.decay_start, small.trainer.max_epochs) == ("zaremba", 4, 13)
    greff = compose_config("experiment=greff_jsb")
    assert (greff.task.name, greff.cell.name, greff.task.batch_size) == ("jsb", "greff_v", 1)
    assert greff.trainer.momentum_scales_lr and greff.trainer.patience == 15
    for name in PRESETS:
        preset = compose_config(f"experiment={name}")
        validate(preset)  # every key of a paper's setup is in the schema and in range
        tc = preset.trainer
        ends = tc.max_steps or tc.max_epochs or tc.max_minutes or tc.schedule == "halving"
        assert ends, f"experiment={name} never ends"


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("RNNBENCH_DATA"), reason="RNNBENCH_DATA not set (presets use PTB/JSB)")
def test_every_preset_runs_in_debug_mode(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "rnnbench",
            "-m",
            f"experiment={','.join(PRESETS)}",
            "debug=fast",
            "trainer.eval_batches=1",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    summaries = [
        json.loads(p.read_text()) for p in (tmp_path / "results" / "runs").glob("*/*/*/summary.json")
    ]
    assert len(summaries) == len(PRESETS)
    assert all(s["status"] == "completed" and s["steps"] == 12 for s in summaries)


def test_the_evaluation_hook_prunes_stops_and_sees_every_evaluation(tmp_path):
    seen = []

    def prune_at_second(record):
        seen.append(record["step"])
        return "prune" if len(seen) == 2 else "continue"

    base = [*SMALL, "trainer.eval_every=3", "trainer.max_steps=30"]
    summary = train(compose_config(*base), tmp_path / "pruned", on_eval=prune_at_second)
    assert seen == [3, 6] and summary["status"] == "pruned" and summary["steps"] == 6
    assert summary["test"] == {}, "a pruned trial is not scored on test"
    stopped = train(compose_config(*base), tmp_path / "stopped", on_eval=lambda r: "stop")
    assert stopped["status"] == "completed" and stopped["steps"] == 3 and stopped["test"]
    with pytest.raises(ValueError, match="on_eval returned 'maybe'"):
        train(compose_config(*base), tmp_path / "bad", on_eval=lambda r: "maybe")


def test_a_step_limit_on_an_epoch_end_counts_the_epoch(tmp_path):
    summary = train(
        compose_config(*SMALL, "task.batches_per_epoch=5", "trainer.max_steps=10", "trainer.eval_every=5"),
        tmp_path / "a",
    )
    assert (summary["steps"], summary["epochs"]) == (10, 2)
    assert [r["epoch"] for r in metrics(tmp_path / "a") if r["split"] == "valid"] == [1, 2]
    summary = train(
        compose_config(*SMALL, "task.batches_per_epoch=5", "trainer.max_steps=7", "trainer.eval_every=5"),
        tmp_path / "b",
    )
    assert (summary["steps"], summary["epochs"]) == (7, 1)


def test_no_step_limit_when_max_steps_is_null(tmp_path):
    summary = train(
        compose_config(
            *SMALL,
            "task.batches_per_epoch=4",
            "trainer.max_steps=null",
            "trainer.max_epochs=3",
            "trainer.eval_every=null",
        ),
        tmp_path,
    )
    assert (summary["steps"], summary["epochs"], summary["stop_reason"]) == (12, 3, "max_epochs")
    assert [r["epoch"] for r in metrics(tmp_path) if r["split"] == "valid"] == [1, 2, 3]


def test_data_seed_and_init_seed_split_the_seed():
    from rnnbench.training.trainer import Trainer

    def parts(*overrides):
        trainer = Trainer(compose_config(*SMALL, *overrides), "/tmp/unused-run-dir")
        batch = next(iter(trainer.task.train_batches(0)))
        return batch.inputs, trainer.model.state_dict()

    base_inputs, base_weights = parts("seed=1")
    other_init_inputs, other_init_weights = parts("seed=1", "init_seed=2")
    other_data_inputs, other_data_weights = parts("seed=1", "data_seed=2")
    assert torch.equal(base_inputs, other_init_inputs) and not torch.equal(base_inputs, other_data_inputs)
    name = next(k for k in base_weights if "weight_hh" in k)
    assert not torch.equal(base_weights[name], other_init_weights[name])
    assert torch.equal(base_weights[name], other_data_weights[name])


def test_process_settings_are_restored_after_a_run(tmp_path):
    threads, state = torch.get_num_threads(), torch.get_rng_state()
    train(
        compose_config(
            *SMALL,
            "trainer.max_steps=2",
            "trainer.eval_every=2",
            "trainer.threads=2",
            "trainer.deterministic=true",
        ),
        tmp_path,
    )
    assert torch.get_num_threads() == threads and not torch.are_deterministic_algorithms_enabled()
    assert torch.equal(torch.get_rng_state(), state)


def test_a_model_too_large_for_memory_is_a_config_error(tmp_path):
    from rnnbench.errors import ConfigError

    with pytest.raises(ConfigError, match=r"cell.hidden_size=60000 gives .*M parameters, more than"):
        train(compose_config(*SMALL, "cell.hidden_size=60000"), tmp_path)


@pytest.mark.parametrize("clip", [None, 1e-3])
def test_the_logged_gradient_norm_is_the_update_over_the_learning_rate(tmp_path, clip):
    # plain SGD, one update per evaluation: each update is lr x the (clipped) gradient, so the
    # parameters' change measures the norm the trainer logs, independently of how it computed it
    lr = 0.05
    cfg = compose_config(
        *SMALL,
        "model.dropout=0.0",
        "trainer.optimizer=sgd",
        "trainer.momentum=0.0",
        f"trainer.lr={lr}",
        f"trainer.clip_norm={'null' if clip is None else clip}",
        "trainer.eval_every=1",
        "trainer.max_steps=4",
    )
    seen = []

    def snapshot(record):
        seen.append((record, torch.cat([p.detach().flatten().clone() for p in trainer.model.parameters()])))
        return "continue"

    trainer = Trainer(cfg, tmp_path, on_eval=snapshot)
    before = torch.cat([p.detach().flatten().clone() for p in trainer.model.parameters()])
    trainer.run()
    assert len(seen) == 4
    for record, after in seen:
        step = float(torch.linalg.vector_norm(after - before)) / lr
        if clip is None:
            assert record["train/grad_norm"] == pytest.approx(step, rel=1e-4)
            assert record["train/clipped"] == 0.0
        else:  # every update was scaled down to the clip norm
            assert step == pytest.approx(clip, rel=1e-3) and record["train/grad_norm"] > 10 * clip
            assert record["train/clipped"] == 1.0
        before = after


def test_a_checkpoint_from_before_the_gradient_fields_still_resumes():
    from rnnbench.training.progress import Progress

    saved = Progress(step=7, epoch=1).state_dict()
    for name in ("window_grad_norm", "window_clipped", "window_steps"):  # what older checkpoints lack
        del saved[name]
    progress = Progress()
    progress.load_state_dict(saved, torch.device("cpu"))
    assert (progress.step, progress.epoch, progress.window_steps) == (7, 1, 0)
    assert progress.window_grad_norm.item() == 0.0 and progress.window_clipped.item() == 0.0


def test_test_weights_last_scores_the_weights_the_run_ended_with(tmp_path):
    cfg = compose_config(*SMALL, "trainer.eval_every=3", "trainer.max_steps=6", "trainer.test_weights=last")
    trainer = Trainer(cfg, tmp_path)
    scripted = iter([0.5, 0.1])  # valid acc at steps 3 and 6: the best weights are step 3's

    def evaluate(model, split, device, max_batches=None):  # the test "metric" reads the weights it scores
        if split == "valid":
            return {"acc": next(scripted), "loss": 1.0}
        return {"acc": float(sum(p.detach().double().sum() for p in model.parameters())), "loss": 1.0}

    trainer.task.evaluate = evaluate
    summary = trainer.run()
    saved = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    scored = torch.load(tmp_path / "model.pt", weights_only=True)["model"]
    assert summary["best_step"] == 3 and summary["test_weights"] == "last"
    assert all(torch.equal(scored[k], v) for k, v in saved["model"].items())  # the final weights
    assert not all(torch.equal(scored[k], v) for k, v in saved["best_weights"].items())
    final = sum(v.double().sum() for v in saved["model"].values())  # (its state is its parameters)
    assert summary["test"]["test/acc"] == pytest.approx(float(final), rel=1e-12)
    assert [r["step"] for r in metrics(tmp_path) if r["split"] == "test"] == [6]


def test_another_test_weights_rescores_an_ended_run_without_training_it(tmp_path):
    base = [*SMALL, "trainer.eval_every=3", "trainer.max_steps=9"]
    best = train(compose_config(*base), tmp_path / "best")
    last = train(compose_config(*base, "trainer.test_weights=last"), tmp_path / "switched")
    lines = metrics(tmp_path / "switched")
    assert last["test_weights"] == "last" and [r["step"] for r in lines if r["split"] == "test"] == [9]
    again = train(compose_config(*base), tmp_path / "switched")  # back to the best weights
    assert again["test_weights"] == "best" and again["test"] == best["test"]
    assert again["steps"] == 9 and metrics(tmp_path / "switched") == metrics(tmp_path / "best")
    assert [r for r in metrics(tmp_path / "switched") if r["split"] == "valid"] == lines[:-1]
    assert train(compose_config(*base), tmp_path / "switched") == again  # and then it is not run again
