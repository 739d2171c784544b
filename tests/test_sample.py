"""``python -m rnnbench.sample``: text from a short xml run, reproducible per seed; one-line errors."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from helpers.configs import compose_config
from helpers.fixture_data import written
from rnnbench.sample import load_run, main, sample
from rnnbench.training.trainer import train


@pytest.fixture(scope="module")
def xml_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("xml_run")
    train(compose_config("task=xml", "debug=fast", "task.eval_chars=2000", "task.bptt=20"), folder)
    return folder


def sample_cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "rnnbench.sample", *args], capture_output=True, text=True, timeout=120
    )


def test_prints_the_requested_characters_reproducibly(xml_run, capsys):
    first = sample_cli(f"run_dir={xml_run}", "length=200", "temperature=0.8", "seed=1")
    assert first.returncode == 0, first.stderr
    text = first.stdout[:-1]  # print adds one newline
    assert len(text) == 200 and set(text) <= set("\n <>/abcdefghijklmnopqrstuvwxyz")
    outputs = []
    for seed in (1, 1, 2):  # in this process: the command's start-up is the slow part
        main([f"run_dir={xml_run}", "length=200", "temperature=0.8", f"seed={seed}"])
        outputs.append(capsys.readouterr().out)
    assert outputs[0] == outputs[1] and outputs[2] != outputs[0]


def test_greedy_sampling_is_the_argmax_of_one_pass_over_its_own_output(xml_run):
    task, model = load_run(xml_run)
    ids = sample(model, task.start_id, 60, temperature=0.0, seed=5)
    assert ids == sample(model, task.start_id, 60, temperature=0.0, seed=6), "greedy ignores the seed"
    with torch.no_grad():
        logits, _ = model(torch.tensor([task.start_id, *ids[:-1]])[:, None])
    assert logits[:, 0].argmax(-1).tolist() == ids


def test_low_temperature_approaches_greedy_and_high_spreads(xml_run):
    task, model = load_run(xml_run)
    greedy = sample(model, task.start_id, 100, 0.0, 1)
    cold = sample(model, task.start_id, 100, 1e-6, 1)
    hot = sample(model, task.start_id, 100, 5.0, 1)
    assert cold == greedy
    assert len(set(hot)) > len(set(greedy))
    assert sample(model, task.start_id, 100, 1e-300, 1) == greedy  # logits / 1e-300 must not overflow


def errors(capsys, *argv):
    with pytest.raises(SystemExit) as stop:
        main(list(argv))
    lines = capsys.readouterr().err.strip().splitlines()
    assert stop.value.code == 2 and len(lines) == 1
    return lines[0]


def test_bad_input_is_one_line(capsys, tmp_path, xml_run):
    assert "run_dir is missing" in errors(capsys)
    assert "no config.yaml" in errors(capsys, f"run_dir={tmp_path / 'nope'}")
    assert "'colour=red'" in errors(capsys, f"run_dir={xml_run}", "colour=red")
    for value, shown in [("-1", "-1.0"), ("inf", "inf"), ("-inf", "-inf"), ("nan", "nan")]:
        message = errors(capsys, f"run_dir={xml_run}", f"temperature={value}")
        assert (
            f"temperature={shown} is not valid" in message and "0 (greedy) or a finite number > 0" in message
        )
    assert "length=0" in errors(capsys, f"run_dir={xml_run}", "length=0")


def test_a_task_that_is_not_a_language_model_is_refused(capsys, tmp_path):
    train(
        compose_config("task=classify", "debug=fast", "trainer.max_steps=2", "trainer.eval_every=1"), tmp_path
    )
    assert "task='classify' is not a token language model" in errors(capsys, f"run_dir={tmp_path}")


def test_data_dir_finds_the_data_of_a_run_when_it_has_moved(tmp_path, capsys):
    """A PTB run on the tiny files (tests/helpers/fixture_data.py); then the files move and data_dir= finds
    them."""
    with written(tmp_path / "data", "ptb") as root:
        cfg = compose_config(
            "task=ptb", "debug=fast", "task.batch_size=2", "task.bptt=3", "task.eval_batch_size=2"
        )
        cfg.data_dir = str(root)
        assert train(cfg, tmp_path / "run")["status"] == "completed"
        root.rename(tmp_path / "moved")
        assert "ptb/ptb.train.txt" in errors(capsys, f"run_dir={tmp_path / 'run'}")
        main([f"run_dir={tmp_path / 'run'}", f"data_dir={tmp_path / 'moved'}", "length=30"])
    text = capsys.readouterr().out[:-1]
    assert len(text.split()) + text.count("\n") == 30  # <eos> prints as a newline
    assert set(text.split()) <= {"the", "cat", "sat", "dog", "ran", "a"}


class Trap:
    """Unpickling this creates ``flag``: the file exists only if loading ran code."""

    def __init__(self, flag):
        self.flag = str(flag)

    def __reduce__(self):
        return (open, (self.flag, "w"))


def test_a_foreign_model_file_is_refused_without_running_code(capsys, tmp_path, xml_run):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text((xml_run / "config.yaml").read_text())
    torch.save({"model": Trap(tmp_path / "flag")}, run / "model.pt")
    assert "model.pt is not a readable rnnbench model file" in errors(capsys, f"run_dir={run}")
    assert not (tmp_path / "flag").exists()
    torch.save({"model": {"embedding.weight": torch.zeros(2, 2)}}, run / "model.pt")
    assert "model.pt does not match" in errors(capsys, f"run_dir={run}")
