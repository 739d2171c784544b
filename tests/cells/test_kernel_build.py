"""Kernel builds that survive kills: a build killed mid-way never hangs a later one, a process waiting
for another's build says so and stops on SIGINT/SIGTERM, and builds are named by what they compile.

The lock logic is exercised on a tiny C++ source of our own (a build of seconds, through the same
functions as the real kernels), each build in a ``TORCH_EXTENSIONS_DIR`` under ``tmp_path``; the real
kernels' names are checked without building them.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from rnnbench.cells.kernels import native

pytestmark = pytest.mark.skipif(native.missing_tool() is not None, reason=f"{native.missing_tool()}")

TINY_CPP = """\
#include <ATen/core/Tensor.h>
#include <torch/library.h>

#include "tiny_factor.h"

at::Tensor scaled(const at::Tensor& x) { return x.mul(kFactor); }

TORCH_LIBRARY(rnnbench_build_test, m) { m.def("scaled", &scaled); }
"""
# argv: mode (load | path), then the sources. Prints what it got; the build is named as the kernels' are.
SCRIPT = """\
import sys
from pathlib import Path

import torch

from rnnbench.cells.kernels import native
from rnnbench.training.trainer import StopSignal

mode, sources = sys.argv[1], [Path(p) for p in sys.argv[2:]]
build = "rnnbench_tiny_" + native.identity_hash(sources)
if mode == "path":
    print("path", native.compiled(build, sources, "tiny"), flush=True)
elif mode == "stop-signal":  # as a worker's trial: SIGINT/SIGTERM set a flag
    with StopSignal() as stop:
        loaded = native.build_and_load(build, sources, "tiny")
    print("loaded", loaded, "signal", stop.received, flush=True)
else:
    assert native.build_and_load(build, sources, "tiny")
    print("result", torch.ops.rnnbench_build_test.scaled(torch.arange(4.0)).tolist(), flush=True)
"""


def tiny_sources(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "tiny.cpp").write_text(TINY_CPP)
    (folder / "tiny_factor.h").write_text("constexpr int kFactor = 3;\n")
    return [folder / "tiny.cpp", folder / "tiny_factor.h"]


def env_for(extensions: Path) -> dict:
    env = dict(os.environ)
    env["TORCH_EXTENSIONS_DIR"] = str(extensions)  # never the real cache
    return env


def start(tmp_path: Path, mode: str, sources: list[Path], log: str, **kwargs) -> subprocess.Popen:
    (tmp_path / "script.py").write_text(SCRIPT)
    command = [sys.executable, str(tmp_path / "script.py"), mode, *map(str, sources)]
    out, err = open(tmp_path / f"{log}.out", "w"), open(tmp_path / f"{log}.err", "w")  # noqa: SIM115

    # SIGINT as a terminal gives it: a shell's background job (CI under nohup, `&`) starts with it ignored
    def default_sigint():
        signal.signal(signal.SIGINT, signal.SIG_DFL)

    return subprocess.Popen(
        command, env=env_for(tmp_path / "ext"), stdout=out, stderr=err, preexec_fn=default_sigint, **kwargs
    )


def wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"no {what} within {timeout} s"
        time.sleep(0.05)


def finish(process: subprocess.Popen, timeout: float) -> int:
    try:
        return process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise


def build_folder(tmp_path: Path, sources: list[Path]) -> Path:
    return tmp_path / "ext" / f"rnnbench_tiny_{native.identity_hash(sources)}"


def test_a_build_killed_mid_way_leaves_nothing_that_hangs_the_next(tmp_path):
    sources = tiny_sources(tmp_path / "checkout-a")
    folder = build_folder(tmp_path, sources)
    builder = start(tmp_path, "load", sources, "killed", start_new_session=True)
    try:  # killed (with its compiler) once torch's build lock exists: as a SIGKILLed worker, a pre-emption
        wait_for(lambda: any(folder.rglob("lock")), 120, "torch build lock")
    finally:
        os.killpg(builder.pid, signal.SIGKILL)
        builder.wait()
    assert any(folder.rglob("lock")) and not (folder / f"{folder.name}.so").exists()  # a stale lock remains

    rebuild = start(tmp_path, "load", sources, "rebuild")
    assert finish(rebuild, 300) == 0, (tmp_path / "rebuild.err").read_text()
    assert (tmp_path / "rebuild.out").read_text().strip() == "result [0.0, 3.0, 6.0, 9.0]"
    assert "building C++ kernel tiny" in (tmp_path / "rebuild.err").read_text()
    assert sorted(p.name for p in folder.iterdir()) == ["build.lock", f"{folder.name}.so"]  # cleaned up

    # another checkout with the same sources loads the same build: no rebuild
    other = tiny_sources(tmp_path / "checkout-b")
    assert build_folder(tmp_path, other) == folder
    again = start(tmp_path, "load", other, "again")
    assert finish(again, 120) == 0, (tmp_path / "again.err").read_text()
    assert (tmp_path / "again.out").read_text().strip() == "result [0.0, 3.0, 6.0, 9.0]"
    assert "building C++ kernel" not in (tmp_path / "again.err").read_text()


def hold_lock(folder: Path) -> int:
    """Takes the build lock as a live process building there would."""
    folder.mkdir(parents=True)
    fd = os.open(folder / native.LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    return fd


def waiting_line(tmp_path: Path, log: str, folder: Path):
    line = f"rnnbench: waiting for another process building the tiny kernel in {folder}\n"
    return lambda: (tmp_path / f"{log}.err").read_text().count(line) == 1


@pytest.mark.parametrize(
    "mode, signum, ends",
    [
        ("stop-signal", signal.SIGTERM, 0),  # a trial's flag handler: the wait ends, the run then stops
        ("stop-signal", signal.SIGINT, 0),
        ("load", signal.SIGTERM, -signal.SIGTERM),  # no handler: the process ends as SIGTERM ends it
        ("load", signal.SIGINT, -signal.SIGINT),  # KeyboardInterrupt, which Python ends as SIGINT would
    ],
)
def test_a_process_waiting_for_another_s_build_says_so_and_a_signal_stops_it(tmp_path, mode, signum, ends):
    sources = tiny_sources(tmp_path / "src")
    folder = build_folder(tmp_path, sources)
    fd = hold_lock(folder)
    try:
        waiter = start(tmp_path, mode, sources, "waiter")
        try:
            wait_for(waiting_line(tmp_path, "waiter", folder), 120, "waiting line")  # handlers in place
            waiter.send_signal(signum)
            assert finish(waiter, 30) == ends, (tmp_path / "waiter.err").read_text()
        finally:
            if waiter.poll() is None:
                waiter.kill()
    finally:
        os.close(fd)
    if mode == "stop-signal":  # the kernel is not loaded, this time: the caller runs the step loop
        assert (tmp_path / "waiter.out").read_text().strip() == f"loaded False signal {signum.value}"
    assert not (folder / f"{folder.name}.so").exists()


def test_a_waiting_process_uses_the_build_it_waited_for(tmp_path):
    sources = tiny_sources(tmp_path / "src")
    folder = build_folder(tmp_path, sources)
    fd = hold_lock(folder)
    try:
        waiter = start(tmp_path, "path", sources, "waiter")
        wait_for(waiting_line(tmp_path, "waiter", folder), 120, "waiting line")
        (folder / f"{folder.name}.so").write_bytes(b"built by the holder")  # its build, moved into place
    finally:
        os.close(fd)  # the holder is done
    assert finish(waiter, 60) == 0, (tmp_path / "waiter.err").read_text()
    assert (tmp_path / "waiter.out").read_text().strip() == f"path {folder / folder.name}.so"
    assert "building C++ kernel" not in (tmp_path / "waiter.err").read_text()


def test_a_failed_build_leaves_no_attempt_and_no_lock_held(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", str(tmp_path / "ext"))
    monkeypatch.setenv("CXX", "false")  # a compiler that fails
    sources = tiny_sources(tmp_path / "src")
    folder = build_folder(tmp_path, sources)
    with pytest.raises(Exception):  # noqa: B017 (whatever torch raises for a failed build)
        native.build_and_load(folder.name, sources, "tiny")
    assert [p.name for p in folder.iterdir()] == [native.LOCK]
    fd = os.open(folder / native.LOCK, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # free
    finally:
        os.close(fd)


def test_builds_are_named_by_the_sources_contents_not_their_path(tmp_path, monkeypatch):
    cells = Path(native.__file__).parent
    copies = []
    for checkout in ("a", "b"):
        folder = tmp_path / checkout
        folder.mkdir()
        for path in native.kernel_sources(cells / "lstm_kernel.cpp"):
            shutil.copy(path, folder / path.name)
        copies.append(folder / "lstm_kernel.cpp")
    name = native.build_name("lstm_kernel", cells / "lstm_kernel.cpp")
    assert name.startswith("rnnbench_lstm_kernel_")
    assert native.build_name("lstm_kernel", copies[0]) == native.build_name("lstm_kernel", copies[1]) == name
    assert native.build_name("gru_kernel", cells / "gru_kernel.cpp") != name.replace("lstm", "gru")
    with open(copies[1].with_name("kernel_math.h"), "a") as header:
        header.write("// another version of a shared header\n")
    assert native.build_name("lstm_kernel", copies[1]) != name
    monkeypatch.setattr(native, "FLAGS", [*native.FLAGS, "-ffast-math"])
    assert native.build_name("lstm_kernel", copies[0]) != name
    monkeypatch.setattr(native, "FLAGS", native.FLAGS[:-1])
    monkeypatch.setattr(torch, "__version__", "0.0.0")
    assert native.build_name("lstm_kernel", copies[0]) != name
    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", str(tmp_path / "ext"))
    assert native.build_root() == tmp_path / "ext"
