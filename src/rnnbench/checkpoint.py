"""Checkpoints: everything a run needs to continue as if it had never stopped.

A checkpoint holds the model, optimiser, schedule, the RNG states (Python, NumPy, torch, CUDA), the
data position (epoch, batch within the epoch, the carried hidden state) and the bookkeeping of the
best evaluation. It is written to a temporary file and renamed over the old one, so a kill during the
write leaves the previous checkpoint intact.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import torch


def rng_states() -> dict:
    states = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_rng_states(states: dict) -> None:
    random.setstate(states["python"])
    np.random.set_state(states["numpy"])
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def save(path: Path, payload: dict) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)


def load(path: Path) -> dict:
    # Our own file, written by save(); it holds RNG states (tuples, numpy arrays), not only tensors.
    return torch.load(path, map_location="cpu", weights_only=False)
