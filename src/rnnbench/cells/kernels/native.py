"""The package's C++ kernels (``<name>.cpp`` next to this file, sharing the ``kernel_*.h`` headers there):
compiled on first use with the machine's
C++ compiler (``$CXX``, else ``c++``), cached on disk (``$TORCH_EXTENSIONS_DIR``, default
``~/.cache/torch_extensions/py<version>_<cpu|cuXY>``) and loaded once per process. Later processes load
the cached build.

A build is named by a hash of what it compiles (the kernel's source and headers, by content, not path),
the flags, the CPU, torch and Python: checkouts with the same sources share one build, and different
sources get different builds. Its folder holds ``<build>.so`` once it is complete; a process that finds
it loads it and builds nothing. Otherwise a process builds it while holding ``build.lock`` of the folder
(``flock``: the operating system releases it when its holder dies, however it dies), in an attempt
folder of its own (``attempt-*``, which a killed build leaves behind and the next builder removes, with
any lock file torch left in it), and moves the library into place whole. A process that finds another
one building waits for it, says so in one line on stderr, and a SIGINT or SIGTERM ends its wait.

A kernel that cannot be built (no compiler, a failed build) gives one warning, and its callers run the
Python step loop instead.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import platform
import shutil
import signal
import sys
import threading
import time
import uuid
import warnings
from pathlib import Path

import torch

DTYPES = (torch.float32, torch.float64)  # what the kernels compute in
FLAGS = ["-O3", "-march=native"]  # the time loops are plain loops: let the compiler vectorise them
LOCK = "build.lock"  # held (flock) by the process building; the OS releases it when that process dies
POLL_S = 0.2  # how often a waiting process tries the lock (and lets its signal handlers run)
_loaded: dict[str, bool] = {}  # kernel name -> loaded (True) or failed (False)
_built_here: set[Path] = set()  # libraries this process built (and so loaded)
_stopping: list[int] = []  # a SIGINT or SIGTERM ended a wait here: later calls wait no more


def missing_tool() -> str | None:
    """What the build lacks here, or None: torch's extension builder calls the C++ compiler through
    ninja."""
    if shutil.which(os.environ.get("CXX", "c++")) is None:
        return f"no C++ compiler ({os.environ.get('CXX', 'c++')}; install g++ or set CXX)"
    if shutil.which("ninja") is None:
        return "no ninja (pip install ninja)"
    return None


def can_build(name: str) -> bool:
    """Whether kernel ``name`` is loaded or may be: the tools are here and no build of it failed."""
    return _loaded[name] if name in _loaded else missing_tool() is None


def kernel_sources(source: Path) -> list[Path]:
    """A kernel's source and the headers next to it that it may include."""
    return [source, *sorted(source.parent.glob("kernel_*.h"))]


def build_name(name: str, source: Path) -> str:
    """Names the build after the contents of the source and the headers it may include (not their paths:
    two checkouts of the same sources share one build), the flags, torch, Python and the CPU:
    ``-march=native`` code must not be loaded on another kind of CPU that shares the cache (a cluster's
    home directory)."""
    return f"rnnbench_{name}_{identity_hash(kernel_sources(source))}"


def identity_hash(sources: list[Path]) -> str:
    identity = hashlib.sha1()
    for path in sources:
        identity.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    build = [
        *FLAGS,
        torch.__version__,
        str(torch.version.cuda),
        str(getattr(torch.version, "hip", None)),
        f"{sys.version_info.major}.{sys.version_info.minor}{getattr(sys, 'abiflags', '')}",
        platform.machine(),
    ]
    identity.update("\0".join(build).encode())
    try:
        with open("/proc/cpuinfo") as f:
            identity.update(next((line for line in f if line.startswith(("flags", "Features"))), "").encode())
    except OSError:
        identity.update(platform.processor().encode())
    return identity.hexdigest()[:12]


def build_root() -> Path:
    """Where torch keeps extension builds: ``$TORCH_EXTENSIONS_DIR``, else its cache folder for this
    Python and accelerator."""
    if os.environ.get("TORCH_EXTENSIONS_DIR"):
        return Path(os.environ["TORCH_EXTENSIONS_DIR"])
    from torch.utils import cpp_extension

    hip, cuda = getattr(torch.version, "hip", None), torch.version.cuda
    accelerator = f"rocm{hip.replace('.', '')}" if hip else f"cu{cuda.replace('.', '')}" if cuda else "cpu"
    python = f"py{sys.version_info.major}{sys.version_info.minor}{getattr(sys, 'abiflags', '')}"
    return Path(cpp_extension.get_default_build_root()) / f"{python}_{accelerator}"


def serves(name: str, x: torch.Tensor, weight: torch.Tensor) -> bool:
    """Whether kernel ``name`` runs this sequence (else the step loop does): CPU tensors of one of its
    dtypes, outside torch.compile (to dynamo the kernel is an opaque call: compiled models keep the
    loop), and the kernel loaded."""
    return (
        x.device.type == "cpu"
        and weight.device.type == "cpu"
        and x.dtype in DTYPES
        and x.dtype == weight.dtype
        and not torch.compiler.is_compiling()
        and load(name)
    )


def load(name: str) -> bool:
    """Builds (the first time on this machine) and loads kernel ``name``; False, with one warning, where
    it cannot be built. Its operators are then ``torch.ops.rnnbench_<name>``. False without a warning
    (and the next call tries again) where a SIGINT or SIGTERM ended a wait for another process's build."""
    if name in _loaded:
        return _loaded[name]
    missing = missing_tool()
    if missing is not None:
        _loaded[name] = False
        warnings.warn(
            f"rnnbench: cannot build C++ kernel {name}: {missing}; running the Python step loop instead",
            RuntimeWarning,
            stacklevel=3,
        )
        return False
    source = Path(__file__).with_name(f"{name}.cpp")
    try:
        if not build_and_load(build_name(name, source), kernel_sources(source), name.removesuffix("_kernel")):
            return False  # stopped waiting: the caller runs the step loop this time, and stops
    except Exception as error:  # any failure to build or load: the step loop still works
        _loaded[name] = False
        lines = [line.strip() for line in str(error).splitlines() if line.strip()] or [type(error).__name__]
        reason = next((line for line in lines if "error:" in line), lines[0])[:300]  # the compiler's first
        warnings.warn(
            f"rnnbench: building C++ kernel {name} failed ({reason}); running the Python step loop instead",
            RuntimeWarning,
            stacklevel=3,
        )
        return False
    _loaded[name] = True
    return True


def build_and_load(build: str, sources: list[Path], label: str) -> bool:
    """Loads the library of build ``build`` into this process, compiling it from ``sources`` (the
    ``.cpp`` first, then the headers it includes by name) if no process has yet; False where a SIGINT or
    SIGTERM ended the wait for another process that is building it. A failed build raises."""
    library = compiled(build, sources, label)
    if library is None:
        return False
    if library not in _built_here:  # (the build loaded what it built)
        torch.ops.load_library(str(library))
    return True


def compiled(build: str, sources: list[Path], label: str) -> Path | None:
    """The library of build ``build``, ``<build root>/<build>/<build>.so``, built first if no process
    has (see ``build_and_load``)."""
    folder = build_root() / build
    library = folder / f"{build}.so"
    if library.is_file():  # complete: a library is moved into place whole
        return library
    folder.mkdir(parents=True, exist_ok=True)
    with build_lock(folder, label) as held:
        if not held:
            return None
        if library.is_file():  # the process we waited for built it
            return library
        for left in folder.glob("attempt-*"):  # builds killed mid-way, torch's stale lock files with them
            shutil.rmtree(left, ignore_errors=True)
        attempt = folder / f"attempt-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        attempt.mkdir()
        try:
            staged = [attempt / path.name for path in sources]  # the hashed contents, at one path for all
            for path, copy in zip(sources, staged):
                shutil.copyfile(path, copy)
            print(
                f"rnnbench: building C++ kernel {label} (once per machine; cached)",
                file=sys.stderr,
                flush=True,
            )
            from torch.utils import cpp_extension

            cpp_extension.load(
                name=build,
                sources=[str(staged[0])],
                extra_cflags=FLAGS,
                build_directory=str(attempt),
                is_python_module=False,
            )
            os.replace(attempt / library.name, library)
            _built_here.add(library)
        finally:
            shutil.rmtree(attempt, ignore_errors=True)
    return library


@contextlib.contextmanager
def build_lock(folder: Path, label: str):
    """Holds ``folder``'s build lock for the block (yields True), waiting while another process holds it;
    yields False where a SIGINT or SIGTERM came during the wait."""
    fd = os.open(folder / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        yield acquire(fd, folder, label)
    finally:
        os.close(fd)  # releases the lock


def acquire(fd: int, folder: Path, label: str) -> bool:
    """Takes the lock on ``fd``, trying every ``POLL_S`` seconds (not a blocking ``flock``, during which
    no Python signal handler runs); False where a SIGINT or SIGTERM came first (or had ended an earlier
    wait of this process)."""
    told = False
    with stop_signals() as received:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                pass
            if received or _stopping:  # the process is stopping: it runs the step loop until it stops
                _stopping.extend(received)
                return False
            if not told:
                print(
                    f"rnnbench: waiting for another process building the {label} kernel in {folder}",
                    file=sys.stderr,
                    flush=True,
                )
                told = True
            time.sleep(POLL_S)


@contextlib.contextmanager
def stop_signals():
    """Notes SIGINT and SIGTERM in the yielded list during the block, and passes each on to the handler
    in place before it: the trainer's (which stops the run after its step), Python's SIGINT handler
    (KeyboardInterrupt), or the default action (the process ends). An ignored signal is not noted."""
    received: list[int] = []
    if threading.current_thread() is not threading.main_thread():  # signals reach the main thread only
        yield received
        return
    previous = {}

    def handle(signum, frame):
        before = previous[signum]
        if before == signal.SIG_IGN:
            return
        received.append(signum)
        if callable(before):
            before(signum, frame)
        else:  # the default action (or a handler not set from Python): end the process as it would have
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)

    try:
        for signum in (signal.SIGINT, signal.SIGTERM):
            previous[signum] = signal.signal(signum, handle)
        yield received
    finally:
        for signum, before in previous.items():
            signal.signal(signum, before if before is not None else signal.SIG_DFL)
