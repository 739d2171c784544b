"""Checkpoints: everything a run needs to continue as if it had never stopped, in a file that runs no code.

A checkpoint holds the model, optimiser, schedule, the RNG states (Python, NumPy, torch, CUDA), the
run's progress (``rnnbench.training.progress``), the carried hidden state and the best weights. Everything in
it is a tensor or a plain value, so it is read with ``torch.load(weights_only=True)``: a crafted file in a
run directory someone sent you cannot run code. It is written to a temporary file and renamed over the
old one, so a kill during the write, or a disk that fills up, leaves the previous checkpoint intact.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import torch

from rnnbench.errors import ConfigError
from rnnbench.errors.write import writing

FORMAT = "rnnbench-checkpoint/2"
WAY_OUT = "use another run directory, or trainer.resume=never to start over"


def rng_states() -> dict:
    """The global RNG states as tensors and plain values."""
    version, mt, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    states = {
        "python": [version, list(mt), gauss],
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, cached],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_rng_states(states: dict) -> None:
    version, mt, gauss = states["python"]
    random.setstate((version, tuple(mt), gauss))
    kind, keys, pos, has_gauss, cached = states["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def save(path: Path, payload: dict) -> None:
    """Writes beside ``path`` and renames over it. A failed write (disk full, quota, read-only folder)
    is a one-line ``RunFileError`` and leaves the previous checkpoint as it was; a second Ctrl-C during
    the write leaves no half-written file behind."""
    tmp = path.with_suffix(".tmp")
    with writing(path, tmp):
        with tmp.open("wb") as f:  # through Python's file: a failed write keeps its errno
            torch.save({"format": FORMAT, **payload}, f)
        os.replace(tmp, path)


def load(path: Path, required=("config", "model", "optimizer", "progress", "rng")) -> dict:
    """Reads a checkpoint without running code; a foreign or damaged file is a one-line error."""
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # unpickling refused, truncated or not a torch file at all
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0][:160]
        raise ConfigError(f"{path} is not a readable rnnbench checkpoint ({reason}); {WAY_OUT}") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ConfigError(f"{path} is not an rnnbench checkpoint of format {FORMAT}; {WAY_OUT}")
    missing = [key for key in required if key not in payload]
    if missing:
        raise ConfigError(f"{path} lacks {', '.join(missing)}; {WAY_OUT}")
    return payload
