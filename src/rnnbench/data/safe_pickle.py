"""Loading the music pickles without running arbitrary code: an allow-list ``Unpickler``.

``pickle.load`` calls any global a file names (``os.system`` included). The Boulanger-Lewandowski
pickles only need numpy scalars (JSB stores its notes as ``numpy.int64``): the allowed globals are
``numpy.core.multiarray.scalar`` (numpy 1 spelling), ``numpy._core.multiarray.scalar`` (numpy 2) and
``numpy.dtype``. Any other global is refused.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from rnnbench.errors import ConfigError


def _scalar():
    core = getattr(np, "_core", None) or np.core  # numpy 2 renamed numpy.core; the old name warns
    return core.multiarray.scalar


ALLOWED = {
    ("numpy.core.multiarray", "scalar"): _scalar,
    ("numpy._core.multiarray", "scalar"): _scalar,
    ("numpy", "dtype"): lambda: np.dtype,
}


class UnsafePickleError(ConfigError):
    """A pickle names a global outside the allow-list."""


class RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) not in ALLOWED:
            allowed = ", ".join(f"{m}.{n}" for m, n in ALLOWED)
            raise UnsafePickleError(f"refusing to load global {module}.{name}; allowed: {allowed}")
        return ALLOWED[module, name]()


def load(path: Path):
    """Python-2 pickles need ``latin1`` for their byte strings (numpy scalars carry raw bytes)."""
    with open(path, "rb") as f:
        return RestrictedUnpickler(f, encoding="latin1").load()
