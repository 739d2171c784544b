"""The command a user types: run files with their documented keys, and one-line errors."""

from __future__ import annotations

import json

import pytest
import yaml

from helpers.cli import rnnbench, run_dir

METRIC_KEYS = {"step", "epoch", "split", "train/loss", "lr", "tokens_per_s", "wall_s"}
SUMMARY_KEYS = {
    "status",
    "stop_reason",
    "cell",
    "task",
    "headline",
    "higher_is_better",
    "steps",
    "epochs",
    "best_step",
    "best",
    "final",
    "test",
    "seed",
    "device",
    "num_params",
    "hidden_size",
    "num_layers",
    "wall_s",
    "versions",
    "git_commit",
}


def test_debug_fast_writes_the_run_files(tmp_path):
    result = rnnbench("debug=fast", "seed=3", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    folder = run_dir(tmp_path)
    assert folder.relative_to(tmp_path).as_posix() == "results/runs/arithmetic/lstm/debug=fast,seed=3"
    config = yaml.safe_load((folder / "config.yaml").read_text())
    assert config["seed"] == 3 and config["cell"]["name"] == "lstm"
    lines = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    valid = [r for r in lines if r["split"] == "valid"]
    assert [r["step"] for r in valid] == [6, 12]
    for record in valid:
        assert record.keys() >= METRIC_KEYS
        assert {"valid/acc", "valid/exact", "valid/loss"} <= record.keys()
    assert lines[-1]["split"] == "test" and "test/acc" in lines[-1]
    summary = json.loads((folder / "summary.json").read_text())
    assert summary.keys() >= SUMMARY_KEYS
    assert summary["status"] == "completed" and summary["steps"] == 12
    assert summary["best"]["valid/acc"] == max(r["valid/acc"] for r in valid)
    assert summary["num_params"] > 0 and summary["device"] == "cpu"
    assert (folder / "model.pt").is_file()


@pytest.mark.parametrize(
    "override, named",
    [
        ("cell=nope", "cell='nope'"),
        ("task=nope", "task='nope'"),
        ("cell.hidden_size=0", "cell.hidden_size=0"),
        ("trainer.lr=-0.1", "trainer.lr=-0.1"),
        ("trainer.optimizer=lbfgs", "trainer.optimizer='lbfgs'"),
        ("device=tpu", "device='tpu'"),
        ("seed=abc", "seed='abc'"),
        ("trainer.lr=abc", "trainer.lr='abc'"),
        ("task.batch_size=2.5", "task.batch_size=2.5"),
        ("trainer.foo=1", "trainer.foo is not a config key"),
    ],
)
def test_bad_input_is_one_line(tmp_path, override, named):
    result = rnnbench("debug=fast", override, cwd=tmp_path)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert named in lines[0] and "Traceback" not in result.stderr


def test_unknown_choice_lists_the_valid_ones(tmp_path):
    result = rnnbench("cell=lstmm", cwd=tmp_path)
    assert "lstm_b" in result.stderr and "gru" in result.stderr


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="machine has CUDA")
def test_cuda_without_cuda_is_one_line(tmp_path):
    result = rnnbench("debug=fast", "device=cuda", cwd=tmp_path)
    assert result.returncode != 0 and len(result.stderr.strip().splitlines()) == 1
    assert "device='cuda'" in result.stderr


def test_help_lists_groups(tmp_path):
    result = rnnbench("--help", cwd=tmp_path)
    assert result.returncode == 0
    assert "cell:" in result.stdout and "mut2" in result.stdout and "task:" in result.stdout


def test_a_genome_s_text_is_named_by_its_hash_in_the_run_folder():
    from rnnbench.__main__ import run_name

    text = "h' = tanh(Linear(x, h))"
    name = run_name(f"cell.genome='{text}',seed=2,trainer.lr=0.1")
    assert name.startswith("cell.genome=g") and name.endswith(",seed=2,trainer.lr=0.1")
    assert "Linear" not in name and " " not in name
    assert run_name(f"cell.genome='{text}'") != run_name("cell.genome='h\\' = relu(Linear(x, h))'")
    assert run_name("cell=gru,seed=1") == "cell=gru,seed=1" and run_name("") == "default"


def test_a_genome_file_run_records_its_text_and_the_file_edited_is_another_run(tmp_path):
    genome = tmp_path / "cell.genome"
    texts = ["h' = tanh(Linear(x, h))\n", "h' = relu(Linear(x, h))\n"]
    for text in texts:  # the same command, the file edited between the two
        genome.write_text(text)
        result = rnnbench("cell=genome", "cell.genome_file=cell.genome", "debug=fast", cwd=tmp_path)
        assert result.returncode == 0, result.stderr
    folders = sorted((tmp_path / "results" / "runs").glob("*/genome/*/config.yaml"))
    assert len(folders) == 2 and all("cell.genome_file=cell-g" in f.parent.name for f in folders)
    recorded = {yaml.safe_load(f.read_text())["cell"]["genome"] for f in folders}
    assert recorded == set(texts)
    assert all(yaml.safe_load(f.read_text())["cell"]["genome_file"] is None for f in folders)


def test_an_unquoted_genome_is_told_the_quoting_that_works(tmp_path):
    """Hydra cannot read h' unquoted; the one line shows the quoting, and that quoting passes."""
    import shlex

    from rnnbench.config.cli_checks import preflight
    from rnnbench.errors import ConfigError

    with pytest.raises(ConfigError) as error:
        preflight(["cell=genome", "cell.genome=h' = tanh(Linear(x, h))"])
    message = str(error.value)
    assert "\n" not in message and "LexerNoViableAltException" in message
    shown = message.split(": ", 1)[1].split(" (")[0]  # the argument as the shell takes it
    assert shlex.split(shown) == ['cell.genome="h\' = tanh(Linear(x, h))"']
    preflight(["cell=genome", *shlex.split(shown), f"results_dir={tmp_path}"])
    with pytest.raises(ConfigError) as error:  # another override's grammar error gets no such hint
        preflight(["trainer.lr=(0.1"])
    assert "cell.genome" not in str(error.value)
