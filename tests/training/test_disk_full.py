"""A run file, a report or a study storage that cannot be written (disk full, read-only folder) is one line
naming the file, the folder and the free space, keeps what was there, and the same command continues
once there is room.

The real cases run on a small tmpfs that the test mounts (and remounts larger, or read-only); where it
cannot mount one (not root, no mount), they are skipped with the reason.
"""

from __future__ import annotations

import contextlib
import errno
import gc
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from helpers.configs import compose_config
from helpers.runs import SMALL, assert_same_run, metrics, write_run
from rnnbench.errors.write import EXIT_CODE, RunFileError, storage_write_error, write_failure
from rnnbench.training import checkpoint
from rnnbench.training.runfiles import RunFiles
from rnnbench.training.trainer import train

ARGS = [*SMALL, "trainer.eval_every=6", "trainer.max_steps=18"]
PAGE = os.sysconf("SC_PAGE_SIZE")


def mount(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["mount", *args], capture_output=True, text=True)


@contextlib.contextmanager
def tmpfs(path: Path, size: int):
    """A tmpfs of ``size`` bytes at ``path``, unmounted at the end; skips the test where none can be
    mounted."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    path.mkdir(parents=True, exist_ok=True)
    done = mount("-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path))
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip() or done.returncode}")
    try:
        yield path
    finally:
        if subprocess.run(["umount", str(path)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(path)], capture_output=True)


def remount(path: Path, options: str) -> None:
    done = mount("-o", f"remount,{options}", str(path))
    assert done.returncode == 0, done.stderr


@contextlib.contextmanager
def read_only(folder: Path, view: Path):
    """``folder`` seen read-only at ``view`` (a read-only bind mount)."""
    view.mkdir(parents=True, exist_ok=True)
    done = mount("--bind", str(folder), str(view))
    if done.returncode != 0:
        pytest.skip(f"cannot bind-mount a folder here: {done.stderr.strip() or done.returncode}")
    try:
        remount(view, "bind,ro")
        yield view
    finally:
        if subprocess.run(["umount", str(view)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(view)], capture_output=True)


def rnnbench(run_dir: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "rnnbench", *ARGS, f"hydra.run.dir={run_dir}", *args]
    return subprocess.run(cmd, cwd=run_dir.parent, capture_output=True, text=True, timeout=300)


def one_line(result: subprocess.CompletedProcess) -> str:
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and result.stdout == "", result.stderr
    return lines[0]


def pages(n: int) -> int:
    return -(-n // PAGE) * PAGE


def leftovers(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.name.endswith(".tmp") or p.name.startswith(".report-")]


# ---- a training run ------------------------------------------------------------------------------------
@pytest.mark.slow
def test_a_full_disk_mid_run_is_one_line_and_the_same_command_continues_to_the_same_result(tmp_path):
    with tmpfs(tmp_path / "disk", PAGE) as disk:
        whole = tmp_path / "whole"
        train(compose_config(*ARGS), whole)
        size = pages((whole / "checkpoint.pt").stat().st_size)
        # room for Hydra's files, the config, the metrics, the lock and one checkpoint, not for the second
        # checkpoint beside it: the evaluation at step 12 cannot save
        remount(disk, f"size={size + 16 * PAGE}")
        run = disk / "run"
        failed = rnnbench(run)
        line = one_line(failed)
        assert failed.returncode == EXIT_CODE, failed.stderr
        assert re.fullmatch(
            rf"rnnbench: error: could not write checkpoint\.pt in {re.escape(str(run))} "
            r"\(disk full: \d+(\.\d)? (B|KiB) free\); the last checkpoint is kept: free space and run the "
            r"same command again to continue from step 6",
            line,
        ), line
        assert not leftovers(run)
        assert checkpoint.load(run / "checkpoint.pt")["progress"]["step"] == 6  # the previous one, intact
        summary = json.loads((run / "summary.json").read_text())
        assert summary["status"] == "write_failed" and summary["resume_step"] == 6
        assert summary["stop_reason"] == line.removeprefix("rnnbench: error: ")

        remount(disk, "size=64m")  # space freed
        again = rnnbench(run)
        assert again.returncode == 0, again.stderr
        assert json.loads((run / "summary.json").read_text())["status"] == "completed"
        assert_same_run(whole, run)
        assert not leftovers(run)


@pytest.mark.slow
def test_a_new_run_on_a_full_disk_is_one_line(tmp_path):
    with tmpfs(tmp_path / "disk", 4 * PAGE) as disk:
        (disk / "filler").write_bytes(b"\0" * 4 * PAGE)
        run = disk / "run"
        result = rnnbench(run)  # Hydra's own files are the first to fail
        assert result.returncode == EXIT_CODE
        line = one_line(result)
        assert line == (
            f"rnnbench: error: could not write config.yaml in {run / '.hydra'} (disk full: 0 B free); no "
            "checkpoint was written yet: free space and run the same command again to start the run"
        )


def test_a_failure_at_the_end_of_a_run_keeps_its_last_evaluation_and_finishes_on_rerun(tmp_path, monkeypatch):
    # the limit (13) falls between evaluations: the extra evaluation at the limit is part of the run
    args = [*SMALL, "trainer.eval_every=6", "trainer.max_steps=13"]
    train(compose_config(*args), tmp_path / "whole")
    save = torch.save

    def no_room_for_the_model(obj, f, *args, **kwargs):
        if str(getattr(f, "name", f)).endswith("model.tmp"):
            f.write(b"half a file")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", no_room_for_the_model)
    run = tmp_path / "run"
    with pytest.raises(RunFileError) as caught:
        train(compose_config(*args), run)
    message = str(caught.value)
    assert message.startswith(f"could not write model.pt in {run} (disk full: ")
    assert message.endswith("free space and run the same command again to continue from step 13")
    assert "\n" not in message
    assert json.loads((run / "summary.json").read_text())["status"] == "write_failed"

    assert not leftovers(run) and not (run / "model.pt").exists()
    monkeypatch.setattr(torch, "save", save)
    summary = train(compose_config(*args), run)
    assert summary["status"] == "completed" and summary["steps"] == 13
    assert_same_run(tmp_path / "whole", run)
    assert [r for r in metrics(run) if r.get("at_limit")], "the evaluation at the limit is kept"


def test_a_metrics_line_without_room_is_cut_off_whole(tmp_path):
    with tmpfs(tmp_path / "disk", 4 * PAGE) as disk:
        files = RunFiles(disk / "run")
        files.start_metrics()
        files.append_metrics({"step": 1, "split": "valid"})
        before = files.metrics.read_bytes()
        filler = disk / "filler"
        with contextlib.suppress(OSError), filler.open("wb") as f:
            while True:
                f.write(b"\0" * PAGE)
                f.flush()
        full = r"could not write metrics\.jsonl in .* \(disk full: 0 B free\)"
        with pytest.raises(RunFileError, match=full):
            files.append_metrics({"step": 2, "split": "valid", "pad": "x" * (2 * PAGE)})
        assert files.metrics.read_bytes() == before
        with pytest.raises(RunFileError, match=r"could not write summary\.json in .*disk full"):
            files.write_summary({"status": "completed", "pad": "x" * (2 * PAGE)})
        assert not leftovers(disk)
        filler.unlink()
        files.append_metrics({"step": 2, "split": "valid"})
        assert len(files.metrics.read_text().splitlines()) == 2


def test_torchs_zip_writer_error_on_a_full_disk_is_recognised(tmp_path):
    with tmpfs(tmp_path / "disk", 8 * PAGE) as disk:
        with pytest.raises(RuntimeError) as caught:  # torch's own message: no errno, no file name
            torch.save({"w": torch.zeros(16 * PAGE)}, disk / "big.pt")
        assert "unexpected pos" in str(caught.value) or "PytorchStreamWriter" in str(caught.value)
        failure = write_failure(caught.value, disk / "big.pt", step=40)
        assert failure is not None
        assert str(failure).startswith(f"could not write big.pt in {disk} (disk full: ")
        assert str(failure).endswith("to continue from step 40")
        # and the checkpoint writer, which goes through Python's file, keeps the previous one
        del caught  # its traceback holds torch's writer, and the writer holds the file open
        gc.collect()
        (disk / "big.pt").unlink()
        checkpoint.save(disk / "checkpoint.pt", {"model": {"w": torch.zeros(4)}})
        with pytest.raises(RunFileError, match="disk full"):
            checkpoint.save(disk / "checkpoint.pt", {"model": {"w": torch.zeros(16 * PAGE)}})
        assert checkpoint.load(disk / "checkpoint.pt", required=("model",))["model"]["w"].shape == (4,)
        assert not leftovers(disk)


def test_a_database_server_that_is_full_is_one_line_without_the_password():
    server = "postgresql+psycopg://bob:secret@db.example/studies"
    full = RuntimeError("(psycopg.errors.DiskFull) could not extend file: No space left on device")
    assert storage_write_error(full, server) == (
        "could not write the study storage postgresql+psycopg://bob:***@db.example/studies (disk full on "
        "the database server); the trials already stored are kept: free space there and run the same "
        "command again to continue the search"
    )


def test_errors_that_are_not_write_failures_pass_through(tmp_path):
    assert write_failure(RuntimeError("some other bug"), tmp_path / "x") is None
    assert write_failure(OSError(errno.ENOENT, "No such file"), tmp_path / "x") is None
    assert storage_write_error(ValueError("no"), f"sqlite:///{tmp_path}/s.db") is None


@pytest.mark.slow
def test_a_read_only_run_directory_is_one_line_and_changes_nothing(tmp_path):
    args = [*ARGS[:-1], f"results_dir={tmp_path / 'disk' / 'results'}"]
    with tmpfs(tmp_path / "disk", 4 << 20) as disk:
        cmd = [sys.executable, "-m", "rnnbench", *args]
        first = subprocess.run([*cmd, "trainer.max_steps=6"], cwd=tmp_path, capture_output=True, text=True)
        assert first.returncode == 0, first.stderr
        [run] = (disk / "results" / "runs").glob("*/*/*")
        before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
        with read_only(run, run):
            # the command line: Hydra's own files in the run directory are the first to fail
            result = subprocess.run(
                [*cmd, "trainer.max_steps=12"], cwd=tmp_path, capture_output=True, text=True
            )
            line = one_line(result)
            assert result.returncode == EXIT_CODE
            assert re.fullmatch(
                rf"rnnbench: error: could not write \S+ in {re.escape(str(run))}\S* \(read-only file system; "
                r"\S+ \S+ free\); the run's files are kept: make the folder writable and run the same "
                r"command again to continue from its last checkpoint",
                line,
            ), line
            # named on the command line, the folder is checked before Hydra starts: one line too
            named = subprocess.run(
                [*cmd, "trainer.max_steps=12", f"hydra.run.dir={run}"],
                cwd=tmp_path,
                capture_output=True,
                text=True,
            )
            assert named.returncode in (2, EXIT_CODE) and "read-only file system" in one_line(named).lower()
            # from Python: the run's lock is the first
            with pytest.raises(RunFileError, match=rf"could not write run\.lock in {re.escape(str(run))} "):
                train(compose_config(*args, "trainer.max_steps=12"), run)
            assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before
        again = subprocess.run([*cmd, "trainer.max_steps=12"], cwd=tmp_path, capture_output=True, text=True)
        assert again.returncode == 0, again.stderr
        summary = json.loads((run / "summary.json").read_text())
        assert summary["status"] == "completed" and summary["steps"] == 12


# ---- a report ------------------------------------------------------------------------------------------
def test_a_report_into_a_full_or_read_only_folder_is_one_line(tmp_path, capsys):
    from rnnbench.report.__main__ import main

    results = tmp_path / "results"
    for k, (cell, valid) in enumerate([("lstm", 0.6), ("lstm", 0.7), ("gru", 0.5), ("gru", 0.8)]):
        write_run(
            results / "runs" / "arithmetic" / cell / f"seed={k}",
            "arithmetic",
            cell,
            "valid/acc",
            True,
            valid,
            valid - 0.1,
            "completed",
        )
    with tmpfs(tmp_path / "disk", 8 * PAGE) as disk:
        out = disk / "report"
        assert main([str(results), "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "Traceback" not in err, err
        assert re.fullmatch(
            rf"rnnbench\.report: error: could not write \S+ in {re.escape(str(out))} \(disk full: .* free\); "
            r"the report's inputs are untouched: free space and run the same command again\n",
            err,
        ), err
        assert not leftovers(out)

        remount(disk, "size=64m")
        assert main([str(results), "--out", str(out)]) == 0
        written = sorted(p.name for p in out.iterdir())
        assert "report.html" in written and not leftovers(out)
        capsys.readouterr()

        remount(disk, "ro")
        assert main([str(results), "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"in {out} (read-only file system; " in err, err
        assert sorted(p.name for p in out.iterdir()) == written  # the previous report, as it was


# ---- a search's study storage --------------------------------------------------------------------------
def test_a_full_sqlite_storage_is_one_line(tmp_path):
    import optuna

    with tmpfs(tmp_path / "disk", 64 * PAGE) as disk:
        url = f"sqlite:///{disk / 'studies.db'}"
        optuna.logging.set_verbosity(optuna.logging.ERROR)
        study = optuna.create_study(storage=url, study_name="s")
        with pytest.raises(Exception) as caught:
            for k in range(1000):
                study.set_user_attr(f"k{k}", "x" * (4 * PAGE))
        stored = len(study.user_attrs)
        message = storage_write_error(caught.value, url)
        assert message is not None, repr(caught.value)
        assert re.fullmatch(
            rf"could not write the study storage studies\.db in {re.escape(str(disk))} "
            r"\(disk full: .* free\); "
            r"the trials already stored are kept: free space and run the same command again to continue "
            r"the search",
            message,
        ), message
        # as sqlite3 reports it, unwrapped
        plain = storage_write_error(sqlite3.OperationalError("database or disk is full"), url)
        assert plain is not None and plain.startswith(
            f"could not write the study storage studies.db in {disk} (disk full: "
        )
        remount(disk, "size=64m")
        assert len(optuna.load_study(study_name="s", storage=url).user_attrs) == stored  # nothing lost

    with tmpfs(tmp_path / "disk2", 64 * PAGE) as disk, read_only(disk, tmp_path / "view") as view:
        optuna.create_study(storage=f"sqlite:///{disk / 'studies.db'}", study_name="s")
        url = f"sqlite:///{view / 'studies.db'}"
        with pytest.raises(Exception) as caught:
            optuna.load_study(study_name="s", storage=url).set_user_attr("more", 1)
        message = storage_write_error(caught.value, url)
        assert message is not None, repr(caught.value)
        assert message.startswith(f"could not write the study storage studies.db in {view} (read-only ")
        assert "make the folder writable" in message, message


def test_a_storage_file_replaced_under_a_running_search_is_named_as_such(tmp_path):
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    path = tmp_path / "studies.db"
    study = optuna.create_study(storage=f"sqlite:///{path}", study_name="s")
    study.set_user_attr("before", 1)
    shutil.copy(path, tmp_path / "copy.db")
    os.replace(tmp_path / "copy.db", path)  # what a git stash or checkout of a tracked file does
    with pytest.raises(Exception) as caught:
        study.set_user_attr("after", 2)
    message = storage_write_error(caught.value, f"sqlite:///{path}")
    assert message == (
        f"could not write the study storage studies.db in {tmp_path} (the file was replaced while open: a "
        "git checkout or stash of it, or a copy over it); the trials already stored are kept: leave the "
        "file alone while a search writes it and run the same command again to continue the search"
    )
    evolve = storage_write_error(caught.value, f"sqlite:///{path}", "the architecture search")
    assert evolve == message.replace("continue the search", "continue the architecture search")
    assert optuna.load_study(study_name="s", storage=f"sqlite:///{path}").user_attrs == {"before": 1}


def test_a_journal_storage_on_a_full_disk_is_one_line(tmp_path):
    with tmpfs(tmp_path / "disk", 2 * PAGE) as disk:
        path = disk / "studies.log"
        with pytest.raises(OSError) as caught, path.open("ab") as f:
            f.write(b"x" * (4 * PAGE))
            f.flush()
        message = storage_write_error(caught.value, str(path))
        assert message is not None, repr(caught.value)
        assert message.startswith(f"could not write the study storage studies.log in {disk} (disk full: ")
