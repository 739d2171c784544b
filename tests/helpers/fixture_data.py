"""Tiny PTB and music files in the data folder's layout, so the data-backed tasks run without the real data.

``written(root, dataset)`` writes a dataset's files under ``root`` (the registered paths) and, for the
``with`` block only, registers their sha256 in place of the real files' (``locate`` checks it on load).
"""

from __future__ import annotations

import contextlib
import hashlib
import pickle
from pathlib import Path

import pytest

from rnnbench import data
from rnnbench.data import DATASETS, DataFile

SPLITS = ("train", "valid", "test")

# Mikolov's layout: one sentence per line, spaces around every word.
PTB_WORDS = {
    "train": " the cat sat \n the dog ran \n a cat ran \n",
    "valid": " the dog sat \n a cat \n",
    "test": " a dog \n the cat \n",
}
# The character files spell the words letter by letter, "_" between words.
PTB_CHARS = {
    "train": "a _ c a t \n t a c t \n",
    "valid": "a _ t a \n c a t \n",
    "test": "t a _ c a t \n",
}
# The Boulanger-Lewandowski layout: split -> sequences -> one tuple of MIDI notes (21..108) per step.
MUSIC = {
    "train": [
        [(60, 64, 67), (60, 64, 67), (), (62, 65)],
        [(21,), (108,), (21, 108)],
        [(40,), (41,), (42,), (43,), (44,)],
        [(70, 72), (70,)],
        [(55, 59), (), (55, 59), (60,), (64,), (67,)],
    ],
    "valid": [[(60,), (62,), (64,)], [(48, 52, 55), (48, 52, 55), (50, 53)], [(21, 22), (22,), (), (23,)]],
    "test": [[(60, 61), (61,)], [(30,), (), (30,), (31, 90)]],
}


def contents(dataset: str) -> dict[str, bytes]:
    """Registered path -> the fixture's bytes."""
    files = DATASETS[dataset]
    if dataset in ("ptb", "ptb_char"):
        texts = PTB_WORDS if dataset == "ptb" else PTB_CHARS
        return {f.path: texts[split].encode() for f, split in zip(files, SPLITS)}
    return {files[0].path: pickle.dumps(MUSIC, protocol=2)}


@contextlib.contextmanager
def written(root: Path, *datasets: str):
    with pytest.MonkeyPatch.context() as patch:
        for dataset in datasets:
            files = []
            for path, content in contents(dataset).items():
                (root / path).parent.mkdir(parents=True, exist_ok=True)
                (root / path).write_bytes(content)
                files.append(DataFile(path, hashlib.sha256(content).hexdigest()))
                patch.setitem(data.FILES, path, files[-1])
            patch.setitem(data.DATASETS, dataset, tuple(files))
        yield root
