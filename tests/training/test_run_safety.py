"""Run directories are safe to receive and to share: reading them runs no code, damaged files are one-line
errors with the way out, one process owns a directory, and a second Ctrl-C leaves no half-written file."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from helpers.configs import compose_config
from helpers.runs import SMALL, assert_same_run, metrics
from rnnbench.errors import ConfigError
from rnnbench.training.trainer import train

BASE = [*SMALL, "trainer.eval_every=3"]


class Trap:
    """Unpickling this object would create ``marker``."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def finished_run(tmp_path, steps=6) -> Path:
    run_dir = tmp_path / "run"
    train(compose_config(*BASE, f"trainer.max_steps={steps}"), run_dir)
    return run_dir


def test_a_booby_trapped_checkpoint_is_refused_and_runs_nothing(tmp_path):
    run_dir, marker = tmp_path / "run", tmp_path / "marker"
    run_dir.mkdir()
    torch.save({"format": "rnnbench-checkpoint/2", "config": Trap(marker)}, run_dir / "checkpoint.pt")
    refused = r"checkpoint.pt is not a readable rnnbench checkpoint .*resume=never"
    with pytest.raises(ConfigError, match=refused):
        train(compose_config(*BASE, "trainer.max_steps=3"), run_dir)
    assert not marker.exists()
    # the way out the message names works, and replaces the file
    summary = train(compose_config(*BASE, "trainer.max_steps=3", "trainer.resume=never"), run_dir)
    assert summary["status"] == "completed" and not marker.exists()


def test_booby_trap_from_the_command_line_is_one_line(tmp_path):
    marker = tmp_path / "marker"
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    torch.save(Trap(marker), run_dir / "checkpoint.pt")
    result = subprocess.run(
        [sys.executable, "-m", "rnnbench", "debug=fast", f"hydra.run.dir={run_dir}"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "trainer.resume=never" in result.stderr
    assert not marker.exists()


@pytest.mark.parametrize("content", [b"not a torch file", None])
def test_corrupt_or_foreign_checkpoint_is_one_line(tmp_path, content):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    if content is None:
        torch.save({"weights": torch.zeros(3)}, run_dir / "checkpoint.pt")  # someone else's torch file
    else:
        (run_dir / "checkpoint.pt").write_bytes(content)
    with pytest.raises(ConfigError, match="checkpoint.pt .*trainer.resume=never") as error:
        train(compose_config(*BASE, "trainer.max_steps=3"), run_dir)
    assert "\n" not in str(error.value)


def test_corrupt_summary_of_a_finished_run_is_one_line(tmp_path):
    run_dir = finished_run(tmp_path)
    (run_dir / "summary.json").write_text('{"status": "compl')
    with pytest.raises(ConfigError, match=r"summary.json cannot be read .*trainer.resume=never"):
        train(compose_config(*BASE, "trainer.max_steps=6"), run_dir)


def test_a_metrics_line_cut_by_a_kill_is_dropped_on_resume(tmp_path):
    train(compose_config(*BASE, "trainer.max_steps=9"), tmp_path / "whole")
    run_dir = finished_run(tmp_path)  # stopped at its step limit: raising the limit resumes it
    with (run_dir / "metrics.jsonl").open("a") as f:
        f.write('{"step": 7, "epoch": 0, "spl')  # a write cut short
    train(compose_config(*BASE, "trainer.max_steps=9"), run_dir)
    assert_same_run(tmp_path / "whole", run_dir)


def test_a_damaged_metrics_line_in_the_middle_is_an_error(tmp_path):
    run_dir = finished_run(tmp_path)
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    lines[0] = lines[0][:10]
    (run_dir / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.raises(ConfigError, match="metrics.jsonl line 1 is not JSON"):
        train(compose_config(*BASE, "trainer.max_steps=9"), run_dir)


def rnnbench(run_dir, *args):
    cmd = [sys.executable, "-m", "rnnbench", *SMALL, f"hydra.run.dir={run_dir}", *args]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_metrics(run_dir: Path, lines: int = 1, timeout: float = 120):
    deadline = time.time() + timeout
    path = run_dir / "metrics.jsonl"
    while time.time() < deadline:
        if path.exists() and path.read_text().count("\n") >= lines:
            return
        time.sleep(0.05)
    raise AssertionError(f"no {lines} metrics lines in {timeout} s")


@pytest.mark.slow
def test_a_second_process_on_a_run_directory_refuses(tmp_path):
    run_dir = tmp_path / "run"
    # long enough that the first is still training when the second has started up; it is then stopped
    args = ["trainer.eval_every=200", "trainer.max_steps=20000", "task.batches_per_epoch=250"]
    first = rnnbench(run_dir, *args)
    wait_for_metrics(run_dir)
    second = subprocess.run(
        [sys.executable, "-m", "rnnbench", *SMALL, f"hydra.run.dir={run_dir}", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert second.returncode == 2
    assert len(second.stderr.strip().splitlines()) == 1 and "is in use by process" in second.stderr
    assert first.poll() is None, "the first run was still training while the second was refused"
    first.send_signal(signal.SIGINT)  # the first goes on undisturbed to its own end: a saved checkpoint
    assert first.wait(timeout=300) == 128 + signal.SIGINT, first.stderr.read()
    steps = [r["step"] for r in metrics(run_dir) if r["split"] == "valid"]
    assert steps == list(range(200, steps[-1] + 1, 200)), "every line once, in order"
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "interrupted" and summary["steps"] >= steps[-1]


def test_a_killed_process_leaves_no_stuck_lock(tmp_path):
    run_dir = tmp_path / "run"
    victim = rnnbench(run_dir, "trainer.eval_every=5", "trainer.max_steps=400")
    wait_for_metrics(run_dir)
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=60)
    summary = train(
        compose_config(*SMALL, "trainer.eval_every=5", "trainer.max_steps=20", "trainer.progress=false"),
        run_dir,
    )
    assert summary["status"] == "completed"


@pytest.mark.slow
def test_a_second_ctrl_c_exits_quietly_and_leaves_no_temporary_file(tmp_path):
    run_dir = tmp_path / "run"
    # evaluations on the whole (large) valid set: the second signal lands while the first is handled
    proc = rnnbench(
        run_dir,
        "trainer.eval_every=5",
        "trainer.max_steps=400",
        "trainer.eval_batches=null",
        "task.eval_size=4000",
    )
    wait_for_metrics(run_dir)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    code = proc.wait(timeout=120)
    err = proc.stderr.read()
    assert code == 128 + signal.SIGINT, err
    assert "Traceback" not in err
    assert not list(run_dir.glob("*.tmp"))
    summary = train(
        compose_config(
            *SMALL,
            "trainer.eval_every=5",
            "trainer.max_steps=20",
            "trainer.eval_batches=null",
            "task.eval_size=4000",
        ),
        run_dir,
    )
    assert summary["status"] == "completed", "the kept checkpoint resumes"


def test_resume_with_other_threads_is_identical(tmp_path):
    base = [*BASE, "task.batches_per_epoch=5"]
    train(compose_config(*base, "trainer.max_steps=12", "trainer.threads=1"), tmp_path / "whole")
    train(compose_config(*base, "trainer.max_steps=6", "trainer.threads=1"), tmp_path / "parts")
    summary = train(
        compose_config(*base, "trainer.max_steps=12", "trainer.threads=2", "trainer.progress=true"),
        tmp_path / "parts",
    )
    assert summary["steps"] == 12 and summary["runtime"]["threads"] == 2
    assert_same_run(tmp_path / "whole", tmp_path / "parts")
    assert torch.get_num_threads() == int(os.environ.get("OMP_NUM_THREADS", torch.get_num_threads()))
