"""torch's own whole-sequence kernels (those of ``torch.nn.LSTM`` and ``torch.nn.RNN``) run with a cell's
own fused weights, for the cells whose equations are exactly theirs.

torch's LSTM computes i, f, g, o = split(W_ih x + b_ih + W_hh h + b_hh), in the row order (i, f, z, o)
our LSTM cells use; the cell's single bias is passed as ``b_ih`` and zeros as ``b_hh`` (their sum is
what the kernel adds), so parameters, gradients and checkpoints are the cell's. The tanh RNN likewise.

Masks: a mask that marks a non-empty prefix of every column becomes lengths (a packed sequence), whose
semantics are the runner's: padded steps output 0 and the final state is that of the last real step.
Any other mask returns None, and the caller runs the step loop instead.
"""

from __future__ import annotations

import torch
from torch import _VF
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

KERNELS = {"lstm": _VF.lstm, "rnn_tanh": _VF.rnn_tanh}


def prefix_lengths(mask: torch.Tensor) -> torch.Tensor | None:
    """(B,) lengths on the CPU when each column of ``mask`` (T, B) is a non-empty prefix, else None.
    A CPU-GPU sync point: packing needs the lengths on the host."""
    mask = mask.bool()
    lengths = mask.sum(0)
    steps = torch.arange(mask.shape[0], device=mask.device).unsqueeze(1)
    if not bool(((steps < lengths) == mask).all()) or bool((lengths == 0).any()):
        return None
    return lengths.cpu()


def run_kernel(kind: str, x, state, weights: list, mask, training: bool):
    """Outputs (T, B, H) and the final state (one tensor per entry of ``state``), or None when ``mask``
    cannot be expressed as lengths."""
    kernel = KERNELS[kind]
    hx = [s.unsqueeze(0) for s in state]  # (layers=1, B, H)
    hx = hx if kind == "lstm" else hx[0]
    if mask is None:
        out, *final = kernel(x, hx, weights, True, 1, 0.0, training, False, False)
        return out, tuple(f.squeeze(0) for f in final)
    lengths = prefix_lengths(mask)
    if lengths is None:
        return None
    packed = pack_padded_sequence(x, lengths, enforce_sorted=False)
    order, unorder = packed.sorted_indices, packed.unsorted_indices
    hx = [h.index_select(1, order) for h in hx] if kind == "lstm" else hx.index_select(1, order)
    data, *final = kernel(packed.data, packed.batch_sizes, hx, weights, True, 1, 0.0, training, False)
    out, _ = pad_packed_sequence(
        PackedSequence(data, packed.batch_sizes, order, unorder), total_length=len(x)
    )
    return out, tuple(f.index_select(1, unorder).squeeze(0) for f in final)
