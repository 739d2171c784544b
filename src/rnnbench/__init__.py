"""rnnbench: reproducible benchmarks of recurrent cell architectures.

The cell API (docs/api.md) is importable from here: ``cell_from_step``, ``Cell``, ``build_cell``,
``Recurrent``, ``Stack``, ``Bidirectional``, ``Readout``, ``TeacherForcing``, ``with_context``.
"""

from importlib import import_module
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("rnnbench")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"

# name -> module; imported on first use, so that ``python -m rnnbench --help`` does not load torch
API = {
    "Cell": "rnnbench.cells.base",
    "build_cell": "rnnbench.cells",
    "cell_from_step": "rnnbench.layers.user_cell",
    "Recurrent": "rnnbench.layers.recurrent",
    "Stack": "rnnbench.layers.recurrent",
    "Bidirectional": "rnnbench.layers.recurrent",
    "Readout": "rnnbench.layers.readout",
    "TeacherForcing": "rnnbench.layers.readout",
    "with_context": "rnnbench.layers.readout",
}


def __getattr__(name: str):
    if name in API:
        return getattr(import_module(API[name]), name)
    raise AttributeError(f"module 'rnnbench' has no attribute {name!r}")


__all__ = ["__version__", *API]
