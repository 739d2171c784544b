"""Population training: every member of a batched population is the run it would be alone (losses,
metrics, final weights), with its own hyperparameters, hidden size, divergence and resume."""

from __future__ import annotations

import json

import pytest
import torch

from helpers.configs import compose_config
from helpers.realdata import DATA_DIR, needs_data
from helpers.runs import metrics, weights
from rnnbench.errors import ConfigError
from rnnbench.population import PADDABLE, member_configs, train_population
from rnnbench.population import train as population
from rnnbench.population.padding import pad, unpad
from rnnbench.training.trainer import train

TINY = [
    "trainer.progress=false",
    "trainer.eval_batches=2",
    "task.eval_size=32",
    "task.batch_size=4",
    "model.dropout=0.0",
    "trainer.max_steps=6",
    "trainer.eval_every=3",
]
# three members: own seed, hidden size, learning rate, clipping, init scale
MEMBERS = [
    ["seed=1", "cell.hidden_size=8", "trainer.lr=0.01", "trainer.clip_norm=0.5", "model.init_scale=1.0"],
    ["seed=2", "cell.hidden_size=13", "trainer.lr=0.003", "trainer.clip_norm=null", "model.init_scale=0.5"],
    ["seed=3", "cell.hidden_size=5", "trainer.lr=0.02", "trainer.clip_norm=5", "model.init_scale=2.0"],
]


def assert_close_runs(a, b):
    ma, mb = metrics(a), metrics(b)
    assert [(r["step"], r["split"]) for r in ma] == [(r["step"], r["split"]) for r in mb]
    for ra, rb in zip(ma, mb):
        assert ra.keys() == rb.keys()
        for key in ra:
            if isinstance(ra[key], float):
                assert ra[key] == pytest.approx(rb[key], rel=1e-4, abs=1e-6), key
            else:
                assert ra[key] == rb[key], key
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    for name in wa:
        assert torch.allclose(wa[name], wb[name], rtol=1e-4, atol=1e-6), name
    assert (a / "model.pt").exists() == (b / "model.pt").exists()
    if (a / "model.pt").exists():
        best_a, best_b = (torch.load(d / "model.pt", weights_only=True)["model"] for d in (a, b))
        assert all(torch.allclose(best_a[n], best_b[n], rtol=1e-4, atol=1e-6) for n in best_a)
    sa, sb = (json.loads((d / "summary.json").read_text()) for d in (a, b))
    for key in ("status", "stop_reason", "steps", "best_step", "num_params", "hidden_size", "seed"):
        assert sa[key] == sb[key], key


def run_both(tmp_path, base, members, **kw):
    cfgs = [compose_config(*base, *m) for m in members]
    pop_dirs = [tmp_path / "pop" / f"member-{k}" for k in range(len(cfgs))]
    summaries = train_population(cfgs, pop_dirs, **kw)
    for k, m in enumerate(members):
        train(compose_config(*base, *m), tmp_path / f"alone-{k}")
    return summaries, pop_dirs


@pytest.mark.parametrize(
    "task, cell, optimizer",
    [
        ("arithmetic", "lstm_b", "sgd"),  # forget bias; plain SGD as Jozefowicz et al.
        ("classify", "greff_v", "adam"),  # padded batches with step masks; peepholes
        ("copy", "mut1", "sgd"),  # MUT1 adds the raw (embedded) input
    ],
)
def test_members_equal_their_separate_runs(tmp_path, task, cell, optimizer):
    base = [f"task={task}", f"cell={cell}", f"trainer.optimizer={optimizer}", *TINY]
    if optimizer == "sgd":
        base += ["trainer.momentum=0.9", "trainer.nesterov=true", "trainer.momentum_scales_lr=true"]
    summaries, pop_dirs = run_both(tmp_path, base, MEMBERS)
    assert [s["hidden_size"] for s in summaries] == [8, 13, 5]
    for k, d in enumerate(pop_dirs):
        assert_close_runs(d, tmp_path / f"alone-{k}")
        assert (d / "config.yaml").exists() and (d / "summary.json").exists()


def test_genome_members_equal_their_separate_runs(tmp_path):
    """A genome (MUT1's, not a built-in's kernel or stackable step) runs under vmap in a population."""
    base = ["task=classify", "cell=genome", "cell.genome=mut1", "trainer.optimizer=adam", *TINY]
    members = [[*m[:1], "cell.hidden_size=8", *m[2:]] for m in MEMBERS[:2]]  # genomes are not padded
    summaries, pop_dirs = run_both(tmp_path, base, members)
    assert [s["hidden_size"] for s in summaries] == [8, 8]
    for k, d in enumerate(pop_dirs):
        assert_close_runs(d, tmp_path / f"alone-{k}")


def test_members_in_several_groups_equal_their_separate_runs(tmp_path, monkeypatch):
    """Groups of at most 2: the two smallest members share one vmapped model, the largest has its own."""
    monkeypatch.setattr(population, "MAX_GROUP", 2)
    base = ["task=classify", "cell=gru", "trainer.optimizer=adam", *TINY]
    _, pop_dirs = run_both(tmp_path, base, MEMBERS)
    for k, d in enumerate(pop_dirs):
        assert_close_runs(d, tmp_path / f"alone-{k}")


def test_members_score_the_test_weights_asked_for_and_again_when_it_changes(tmp_path):
    base = ["task=classify", "cell=gru", "trainer.optimizer=adam", *TINY, "trainer.test_weights=last"]
    summaries, pop_dirs = run_both(tmp_path, base, MEMBERS)
    assert [s["test_weights"] for s in summaries] == ["last"] * 3
    for k, d in enumerate(pop_dirs):
        assert_close_runs(d, tmp_path / f"alone-{k}")
        assert [r["step"] for r in metrics(d) if r["split"] == "test"] == [6]
    best = [[*m, "trainer.test_weights=best"] for m in MEMBERS]  # the ended members, scored again
    summaries = train_population([compose_config(*base, *m) for m in best], pop_dirs)
    assert [s["test_weights"] for s in summaries] == ["best"] * 3
    for k, (s, d) in enumerate(zip(summaries, pop_dirs)):
        train(compose_config(*base, *best[k]), tmp_path / f"alone-{k}")
        assert s["steps"] == 6 and [r["step"] for r in metrics(d) if r["split"] == "test"] == [s["best_step"]]
        assert_close_runs(d, tmp_path / f"alone-{k}")


def test_a_diverging_member_stops_alone(tmp_path):
    base = ["task=arithmetic", "cell=gru", "trainer.optimizer=sgd", *TINY, "trainer.max_steps=9"]
    members = [
        MEMBERS[0],
        ["seed=2", "cell.hidden_size=8", "trainer.lr=1e6", "trainer.clip_norm=null"],
        MEMBERS[2],
    ]
    summaries, pop_dirs = run_both(tmp_path, base, members)
    assert [s["status"] for s in summaries] == ["completed", "diverged", "completed"]
    assert summaries[1]["steps"] < summaries[0]["steps"] == 9
    for k, d in enumerate(pop_dirs):
        assert_close_runs(d, tmp_path / f"alone-{k}")


def test_resume_after_a_stop_equals_an_uninterrupted_population(tmp_path):
    base = ["task=classify", "cell=lstm", *TINY, "trainer.max_steps=9"]
    cfgs = lambda steps: [compose_config(*base, *m, f"trainer.max_steps={steps}") for m in MEMBERS]  # noqa: E731
    whole = [tmp_path / "whole" / f"m{k}" for k in range(3)]
    parts = [tmp_path / "parts" / f"m{k}" for k in range(3)]
    train_population(cfgs(9), whole)
    train_population(cfgs(3), parts)  # ends at step 3 with a checkpoint, like a killed run ...
    train_population(cfgs(9), parts)  # ... and continues from it
    for a, b in zip(whole, parts):
        assert metrics(a) == metrics(b)
        wa, wb = weights(a), weights(b)
        assert all(torch.equal(wa[n], wb[n]) for n in wa)


def test_a_rerun_after_the_last_round_but_before_the_summaries_keeps_the_evaluation_at_the_limit(tmp_path):
    """Killed between the last round (which records the members' end) and their summaries: the rerun
    only finishes them, and their metrics keep the evaluation at the step limit, as a single run's do."""
    base = ["task=classify", "cell=lstm", *TINY, "trainer.max_steps=7"]  # 7: not a multiple of eval_every
    cfgs = [compose_config(*base, *m) for m in MEMBERS]
    dirs = [tmp_path / f"m{k}" for k in range(3)]
    train_population(cfgs, dirs)
    whole = [metrics(d) for d in dirs]
    assert all(any(r.get("at_limit") for r in lines) for lines in whole)
    for d in dirs:
        (d / "summary.json").unlink()
    train_population(cfgs, dirs)
    assert [metrics(d) for d in dirs] == whole


def test_a_kill_during_an_evaluation_resumes_from_the_last_complete_round(tmp_path):
    """Member 1's hook fails at step 6, after member 0 has evaluated and logged: the resumed population
    goes back to step 3 for every member and equals an uninterrupted one."""
    base = ["task=classify", "cell=lstm", *TINY, "trainer.max_steps=9"]
    cfgs = [compose_config(*base, *m) for m in MEMBERS]
    whole = [tmp_path / "whole" / f"m{k}" for k in range(3)]
    parts = [tmp_path / "parts" / f"m{k}" for k in range(3)]
    train_population(cfgs, whole)

    def killed(k, record):
        if k == 1 and record["step"] == 6:
            raise KeyboardInterrupt
        return "continue"

    with pytest.raises(KeyboardInterrupt):
        train_population(cfgs, parts, on_eval=killed)
    assert [r["step"] for r in metrics(parts[0])] == [3, 6]  # member 0 logged step 6 ...
    train_population(cfgs, parts)  # ... which the resumed run writes again
    for a, b in zip(whole, parts):
        assert metrics(a) == metrics(b)
        wa, wb = weights(a), weights(b)
        assert all(torch.equal(wa[n], wb[n]) for n in wa)


@pytest.mark.parametrize("phase", ["save_next", "commit"])
def test_a_kill_while_saving_a_round_resumes_all_members_from_one_step(tmp_path, monkeypatch, phase):
    """Killed after member 0 has written (``save_next``) or renamed (``commit``) its checkpoint of step 6
    and before the others: the round is dropped, or finished, and the result equals an uninterrupted run."""
    monkeypatch.setattr(population, "MAX_GROUP", 2)  # and with two groups
    from rnnbench.population import Member

    base = ["task=classify", "cell=lstm", *TINY, "trainer.max_steps=9"]
    cfgs = [compose_config(*base, *m) for m in MEMBERS]
    whole = [tmp_path / "whole" / f"m{k}" for k in range(3)]
    parts = [tmp_path / "parts" / f"m{k}" for k in range(3)]
    train_population(cfgs, whole)
    original, calls = getattr(Member, phase), []

    def dies_at_round_two(self):
        calls.append(self.round)
        if self.round == 2 and calls.count(2) == 2:
            raise KeyboardInterrupt
        original(self)

    monkeypatch.setattr(Member, phase, dies_at_round_two)
    with pytest.raises(KeyboardInterrupt):
        train_population(cfgs, parts)
    monkeypatch.setattr(Member, phase, original)
    train_population(cfgs, parts)
    for a, b in zip(whole, parts):
        assert metrics(a) == metrics(b)
        wa, wb = weights(a), weights(b)
        assert all(torch.equal(wa[n], wb[n]) for n in wa)
        assert not (b / "checkpoint.next.pt").exists()


def test_dropout_and_noise_draws_are_reproducible_and_differ_between_members(tmp_path):
    base = ["task=arithmetic", "cell=gru", *TINY, "model.dropout=0.3", "model.input_noise_std=0.5"]
    members = [["seed=1", "cell.hidden_size=8"], ["seed=1", "cell.hidden_size=8"]]  # the same run twice
    cfgs = [compose_config(*base, *m) for m in members]
    train_population(cfgs, [tmp_path / "a0", tmp_path / "a1"])
    train_population(cfgs, [tmp_path / "b0", tmp_path / "b1"])
    assert metrics(tmp_path / "a0") == metrics(tmp_path / "b0")  # reproducible
    assert metrics(tmp_path / "a1") == metrics(tmp_path / "b1")
    assert metrics(tmp_path / "a0") != metrics(tmp_path / "a1")  # same config, own draws


@pytest.mark.parametrize("cell", PADDABLE)
def test_padded_units_are_inert(cell):
    """A member padded to a larger size gives the same outputs and gradients, and zero gradients on
    every padded entry, with input noise on."""
    from rnnbench.model.network import build_model
    from rnnbench.tasks import build_task

    cfg = compose_config(
        "task=copy", f"cell={cell}", "cell.hidden_size=6", "model.input_noise_std=0.3", "cell.num_layers=2"
    )
    task = build_task(cfg.task, 0)
    small = build_model(cfg, task)
    cfg.cell.hidden_size = 11
    big = build_model(cfg, task)
    with torch.no_grad():
        for name, p in big.named_parameters():
            p.copy_(pad(small.get_parameter(name), p.shape, 6, 11))
    batch = next(task.train_batches(0))

    def gradients(model, noise):
        model.zero_grad()
        logits, _ = model(batch.inputs)
        task.loss(logits, batch)[0].backward()
        grads = {
            n: p.grad if p.grad is not None else torch.zeros_like(p) for n, p in model.named_parameters()
        }
        return logits, grads

    # with input noise: every padded entry of every gradient is exactly 0
    big.noise_scale = pad(torch.full((6,), 0.3), (11,), 6, 11)
    _, grads = gradients(big, True)
    for name, g in grads.items():
        assert torch.equal(g, pad(unpad(g, small.get_parameter(name).shape, 6, 11), g.shape, 6, 11)), name
    # without noise (the draws differ with the width): the same outputs and gradients as the small model
    small.noise_scale, big.noise_scale = torch.tensor(0.0), torch.zeros(11)
    (small_logits, small_grads), (big_logits, big_grads) = gradients(small, False), gradients(big, False)
    torch.testing.assert_close(small_logits, big_logits)
    for name, g in big_grads.items():
        torch.testing.assert_close(unpad(g, small_grads[name].shape, 6, 11), small_grads[name])
        assert torch.equal(g, pad(unpad(g, small_grads[name].shape, 6, 11), g.shape, 6, 11)), name


def test_fgr_needs_equal_hidden_sizes(tmp_path):
    cfgs = [compose_config(*TINY, "cell=fgr", *m) for m in MEMBERS[:2]]
    with pytest.raises(ConfigError, match="cell fgr cannot be padded"):
        train_population(cfgs, [tmp_path / "a", tmp_path / "b"])


def test_members_that_differ_in_shared_options_are_a_config_error(tmp_path):
    cfgs = [compose_config(*TINY, "cell=lstm"), compose_config(*TINY, "cell=gru")]
    with pytest.raises(ConfigError, match="cell.name='gru' but member 0 has 'lstm'"):
        train_population(cfgs, [tmp_path / "a", tmp_path / "b"])


def test_population_on_the_command_line_trains_consecutive_seeds(tmp_path):
    cfg = compose_config(*TINY, "seed=5", "trainer.population=3")
    cfgs, dirs = member_configs(cfg, tmp_path)
    assert [c.seed for c in cfgs] == [5, 6, 7]
    assert [d.name for d in dirs] == ["member-0", "member-1", "member-2"]
    assert all(c.trainer.population == 1 for c in cfgs)
    with pytest.raises(ConfigError, match="trainer.population=3 trains several runs"):
        train(cfg, tmp_path / "one")


@needs_data
def test_music_members_with_pieces_of_different_lengths_equal_their_separate_runs(tmp_path):
    """Greff's JSB setting: one piece per step, a different piece (and length) for each member."""
    base = [
        "task=jsb",
        f"data_dir={DATA_DIR}",
        "cell=greff_v",
        "task.batch_size=1",
        "trainer.progress=false",
        "trainer.eval_batches=1",
        "task.eval_batch_size=4",
        "trainer.max_steps=4",
        "trainer.eval_every=2",
        "trainer.optimizer=sgd",
        "trainer.momentum=0.9",
        "trainer.nesterov=true",
        "trainer.momentum_scales_lr=true",
        "model.init=normal",
    ]
    members = [
        ["seed=1", "cell.hidden_size=7", "trainer.lr=0.01"],
        ["seed=2", "cell.hidden_size=12", "trainer.lr=0.1"],
    ]
    _, pop_dirs = run_both(tmp_path, base, members)
    for k, d in enumerate(pop_dirs):
        assert_close_runs(d, tmp_path / f"alone-{k}")
