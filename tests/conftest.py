import os
import tempfile

os.environ.setdefault("MPLCONFIGDIR", tempfile.mkdtemp(prefix="mpl-"))
# Test models are tiny: one thread per process is faster than threads contending for two cores.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest  # noqa: E402

from helpers import slurm_cluster  # noqa: E402
from helpers.paths import EXAMPLES  # noqa: E402


@pytest.fixture
def examples_on_path(monkeypatch):
    """examples/ on sys.path for the test: the example cells' and tasks' modules import by name."""
    monkeypatch.syspath_prepend(str(EXAMPLES))


@pytest.fixture(scope="session")
def slurm():
    """A one-node SLURM cluster of the test session's own (tests/helpers/slurm_cluster.py); skips the test,
    with the reason, where the packages are not installed."""
    try:
        cluster = slurm_cluster.start(cpus=2, memory_mb=2048, timeout=300)
    except slurm_cluster.Unavailable as reason:
        pytest.skip(str(reason))
    try:
        yield cluster
    finally:
        cluster.stop()
