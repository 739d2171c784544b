import os
import tempfile

os.environ.setdefault("MPLCONFIGDIR", tempfile.mkdtemp(prefix="mpl-"))
# Test models are tiny: one thread per process is faster than threads contending for two cores.
os.environ.setdefault("OMP_NUM_THREADS", "1")
