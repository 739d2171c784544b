"""The config schema: every bad key or value is one line naming it and what is valid, before any
training step, from the command line, from --config-dir files and in sweeps."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from helpers.configs import compose_config
from rnnbench.__main__ import main
from rnnbench.config.schema import SCHEMA, validate
from rnnbench.errors import ConfigError

# (override, text the one-line error must hold: the key, the value and what is valid)
BAD = [
    ("trainer.compile=maybe", "trainer.compile='maybe' is not valid; it must be true or false"),
    ("trainer.decay=-1", "trainer.decay=-1 is not valid; it must be a number in (0, 1]"),
    ("trainer.divergence_factor=-1", "trainer.divergence_factor=-1 is not valid; it must be a number > 1"),
    ("trainer.divergence_factor=abc", "trainer.divergence_factor='abc' is not valid"),
    ("trainer.lr=inf", "trainer.lr=inf is not valid; it must be a number > 0"),
    ("trainer.lr=nan", "trainer.lr=nan is not valid"),
    ("trainer.eval_batches=-1", "trainer.eval_batches=-1 is not valid; it must be an integer >= 1 or null"),
    ("trainer.eval_batches=0", "trainer.eval_batches=0 is not valid"),
    ("seed=-1", "seed=-1 is not valid; it must be an integer in [0, 4294967295]"),
    ("cell.forget_bias=abc", "cell.forget_bias='abc' is not valid"),
    ("trainer.threads=1.5", "trainer.threads=1.5 is not valid; it must be an integer in [1, 4096] or null"),
    ("cell.hidden_size=10000000", "cell.hidden_size=10000000 is not valid; it must be an integer in [1,"),
    ("model.dropout=1", "model.dropout=1 is not valid; it must be a number in [0, 1)"),
    ("trainer.max_steps=0", "trainer.max_steps=0 is not valid"),
    ("trainer.amp=fp8", "trainer.amp='fp8' is not valid; choose one of: null, bf16, fp16"),
    ("task.batch_size=2.5", "task.batch_size=2.5 is not valid; it must be an integer"),
    ("task.distractors=5", "task.distractors=5 is not valid; it must be a string"),
    ("cell=", "cell='' is not valid; choose one of:"),
    ("task=null", "task='null' is not valid; choose one of:"),
    ("trainer.foo=1", "trainer.foo is not a config key; valid keys of trainer: optimizer, lr"),
    ("+trainer.foo=1", "trainer.foo is not a config key; valid keys:"),
    ("+task.foo=1", "task.foo is not a config key; valid keys:"),
]


def run_main(monkeypatch, capsys, *argv):
    monkeypatch.setattr(sys, "argv", ["rnnbench", *argv])
    with pytest.raises(SystemExit) as exited:
        main()
    return exited.value.code, capsys.readouterr().err


@pytest.mark.parametrize("override, message", BAD)
def test_bad_value_is_one_line_before_training(tmp_path, monkeypatch, capsys, override, message):
    monkeypatch.chdir(tmp_path)
    code, err = run_main(monkeypatch, capsys, "debug=fast", "trainer.lr=0.01", override)
    assert code == 2
    assert err.count("\n") == 1 and message in err, err
    assert not (tmp_path / "results" / "runs").exists(), "nothing may have run"


def test_compose_errors_are_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code, err = run_main(monkeypatch, capsys, "cell=lstm,gru", "trainer.lr=0.1")
    assert code == 2 and err.count("\n") == 1 and "--multirun" in err


def test_results_dir_that_is_a_file_or_unwritable(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "afile").write_text("x")
    code, err = run_main(monkeypatch, capsys, "debug=fast", f"results_dir={tmp_path / 'afile'}")
    assert code == 2 and "is a file, not a folder" in err and err.count("\n") == 1
    code, err = run_main(monkeypatch, capsys, "debug=fast", "results_dir=/proc/rnnbench-results")
    assert code == 2 and "results_dir='/proc/rnnbench-results' cannot be written" in err


def test_misspelled_key_in_a_config_dir_experiment(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mine" / "experiment").mkdir(parents=True)
    (tmp_path / "mine" / "experiment" / "typo.yaml").write_text("# @package _global_\ntrainer:\n  lrr: 0.1\n")
    code, err = run_main(monkeypatch, capsys, "--config-dir", str(tmp_path / "mine"), "experiment=typo")
    assert code == 2 and "trainer.lrr is not a config key" in err and "lr" in err
    # the same with hydra.* overrides on the line, and with a bad value instead of a bad key
    (tmp_path / "mine" / "experiment" / "bad.yaml").write_text("# @package _global_\ntrainer:\n  lr: -3\n")
    code, err = run_main(
        monkeypatch,
        capsys,
        "--config-dir",
        str(tmp_path / "mine"),
        "experiment=bad",
        "hydra.job.chdir=false",
        f"hydra.run.dir={tmp_path / 'run'}",
    )
    assert code == 2 and "trainer.lr=-3 is not valid" in err
    assert not (tmp_path / "run" / "metrics.jsonl").exists()


def test_the_command_line_error_has_no_traceback(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "rnnbench", "debug=fast", "trainer.decay=-1"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        "rnnbench: error: trainer.decay=-1 is not valid; it must be a number in (0, 1]"
    ]


def test_a_sweep_job_with_a_bad_value_fails_alone(tmp_path):
    env = {**os.environ, "HYDRA_FULL_ERROR": "0"}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "rnnbench",
            "-m",
            "debug=fast",
            "trainer.lr=0.01,-1",
            "trainer.max_steps=4",
            "trainer.eval_every=2",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    errors = [line for line in result.stderr.splitlines() if "rnnbench: error" in line]
    assert len(errors) == 1 and "trainer.lr=-1 is not valid" in errors[0], result.stderr
    assert "Traceback" not in result.stderr
    summaries = list((tmp_path / "results" / "runs").glob("*/*/*/summary.json"))
    assert len(summaries) == 1 and json.loads(summaries[0].read_text())["status"] == "completed"


def test_the_real_configs_and_presets_pass_and_every_key_is_declared():
    validate(compose_config())
    cfg = compose_config("experiment=greff_jsb", "trainer.max_steps=null")
    validate(cfg)
    for group in ("model", "trainer"):
        assert set(cfg[group]) == set(SCHEMA[group]), group  # config files and schema agree


def test_config_checked_in_train_too(tmp_path):
    from rnnbench.training.trainer import train

    cfg = compose_config("debug=fast")
    cfg.trainer.divergence_factor = 0.5
    with pytest.raises(ConfigError, match="trainer.divergence_factor=0.5"):
        train(cfg, tmp_path)
    assert not (tmp_path / "metrics.jsonl").exists()
