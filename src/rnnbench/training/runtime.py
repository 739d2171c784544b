"""Process-wide settings a run changes (threads, deterministic algorithms, cuDNN, the global RNGs), set
in one place and all restored when the run ends, so the next run of a sweep in the same process starts
from what the caller had."""

from __future__ import annotations

import os
import random
from contextlib import contextmanager

import numpy as np
import torch

from rnnbench.training import checkpoint


def derived_seed(seed: int, stream: int) -> int:
    """Independent seeds for separate uses of one seed (initial weights, dropout and noise draws)."""
    return int(np.random.SeedSequence([seed, stream]).generate_state(1)[0])


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


# One torch thread unless ``trainer.threads`` says otherwise. On 2 cores, beside one other busy process,
# torch's default (a thread per core, spinning while it waits) ran the default job 10x to over 30x
# slower, one thread at most 1.3x; alone, all cores saved at most 40% (docs/speed.md, "Threads").
DEFAULT_THREADS = 1


@contextmanager
def process_settings(threads: int | None, deterministic: bool):
    saved = (
        torch.get_num_threads(),
        torch.are_deterministic_algorithms_enabled(),
        torch.backends.cudnn.benchmark,
        torch.backends.cudnn.deterministic,
        os.environ.get("CUBLAS_WORKSPACE_CONFIG"),
        checkpoint.rng_states(),
    )
    try:
        torch.set_num_threads(DEFAULT_THREADS if threads is None else threads)
        if deterministic:
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # cuBLAS needs it to be deterministic
            torch.use_deterministic_algorithms(True)
            torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = False, True
        yield
    finally:
        threads_before, det, bench, cudnn_det, cublas, rng = saved
        torch.set_num_threads(threads_before)
        torch.use_deterministic_algorithms(det)
        torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = bench, cudnn_det
        if cublas is None:
            os.environ.pop("CUBLAS_WORKSPACE_CONFIG", None)
        else:
            os.environ["CUBLAS_WORKSPACE_CONFIG"] = cublas
        checkpoint.set_rng_states(rng)
