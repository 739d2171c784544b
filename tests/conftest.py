import os
import tempfile

os.environ.setdefault("MPLCONFIGDIR", tempfile.mkdtemp(prefix="mpl-"))
# Test models are tiny: one thread per process is faster than threads contending for two cores.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest  # noqa: E402

from helpers.paths import EXAMPLES  # noqa: E402


@pytest.fixture
def examples_on_path(monkeypatch):
    """examples/ on sys.path for the test: the example cells' and tasks' modules import by name."""
    monkeypatch.syspath_prepend(str(EXAMPLES))
