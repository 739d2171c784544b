"""The package's C++ kernels (``<name>.cpp`` next to this file, sharing the ``kernel_*.h`` headers there):
compiled on first use with the machine's
C++ compiler (``$CXX``, else ``c++``), cached on disk by torch (``$TORCH_EXTENSIONS_DIR``, default
``~/.cache/torch_extensions``) and loaded once per process. Later processes load the cached build.

A kernel that cannot be built (no compiler, a failed build) gives one warning, and its callers run the
Python step loop instead.
"""

from __future__ import annotations

import hashlib
import os
import platform
import shutil
import sys
import warnings
from pathlib import Path

import torch

DTYPES = (torch.float32, torch.float64)  # what the kernels compute in
FLAGS = ["-O3", "-march=native"]  # the time loops are plain loops: let the compiler vectorise them
_loaded: dict[str, bool] = {}  # kernel name -> loaded (True) or failed (False)


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


def build_name(name: str, source: Path) -> str:
    """Names the build after the source and the headers it may include, the flags and the CPU:
    ``-march=native`` code must not be loaded on another kind of CPU that shares the cache (a cluster's
    home directory)."""
    headers = sorted(source.parent.glob("kernel_*.h"))
    identity = "".join(p.read_text() for p in [source, *headers]) + " ".join(FLAGS) + platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            identity += next((line for line in f if line.startswith(("flags", "Features"))), "")
    except OSError:
        identity += platform.processor()
    return f"rnnbench_{name}_{hashlib.sha1(identity.encode()).hexdigest()[:12]}"


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
    it cannot be built. Its operators are then ``torch.ops.rnnbench_<name>``."""
    if name in _loaded:
        return _loaded[name]
    _loaded[name] = False
    missing = missing_tool()
    if missing is not None:
        warnings.warn(
            f"rnnbench: cannot build C++ kernel {name}: {missing}; running the Python step loop instead",
            RuntimeWarning,
            stacklevel=3,
        )
        return False
    from torch.utils import cpp_extension

    source = Path(__file__).with_name(f"{name}.cpp")
    build = build_name(name, source)
    if not any(Path(cpp_extension.get_default_build_root()).glob(f"*/{build}/{build}.so")):
        print(f"rnnbench: building C++ kernel {name} (once per machine; cached)", file=sys.stderr, flush=True)
    try:
        cpp_extension.load(name=build, sources=[str(source)], extra_cflags=FLAGS, is_python_module=False)
    except Exception as error:  # any failure to build or load: the step loop still works
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
