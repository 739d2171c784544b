"""One long token stream as parallel columns, read in truncated-BPTT windows (Zaremba et al. 2014).

``batchify`` cuts the stream into ``columns`` contiguous pieces, one per batch column::

    stream  a b c d e f g h i j k l        columns=3 ->   a e i
                                                          b f j
                                                          c g k
                                                          d h l

``windows`` then walks down the rows ``bptt`` at a time; the targets are the inputs shifted by one
row, so consecutive windows continue each column and a carried hidden state stays meaningful.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch


def batchify(ids: torch.Tensor, columns: int) -> torch.Tensor:
    """(N,) -> (N // columns, columns); the last N mod columns tokens are dropped."""
    rows = len(ids) // columns
    return ids[: rows * columns].view(columns, rows).t().contiguous()


def windows(data: torch.Tensor, bptt: int) -> Iterator[tuple[slice, slice]]:
    """Row slices (inputs, targets) of each window of at most ``bptt`` steps over ``data`` (T, B)."""
    for start in range(0, data.shape[0] - 1, bptt):
        stop = min(start + bptt, data.shape[0] - 1)
        yield slice(start, stop), slice(start + 1, stop + 1)
