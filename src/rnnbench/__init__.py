"""rnnbench: reproducible benchmarks of recurrent cell architectures."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("rnnbench")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"
