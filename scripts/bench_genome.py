"""Time of one training step of a genome cell against the same built-in cell's step loop.

    python scripts/bench_genome.py                 # the table: lstm, gru, mut1 on two shapes
    python scripts/bench_genome.py --cells gru --repeats 50

A training step is the forward and backward pass of one layer (``rnnbench.layers.recurrent.Recurrent``)
over a sequence, with the built-in cell on ``cell.impl=python`` (the step loop the genome cell also runs) and
the genome cell of ``BUILTIN_GENOMES[name]`` holding the same weights. Shapes: ``arith`` (arithmetic-
like: 16 one-hot inputs, batch 20, 40 steps, hidden 128 and 250) and ``ptb`` (hidden 200, batch 20, 35
steps, input 200). MUT1 adds the raw input to hidden-width values, so its arithmetic rows use input
size == hidden size (a model puts a projection in front). One torch thread; each time is the median of
``--repeats`` steps after a warm-up, the two cells taking turns; ratio = genome / built-in (target
<= 1.5).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from rnnbench.cells import build_cell
from rnnbench.cells.genome import BUILTIN_GENOMES, GenomeCell, copy_builtin_parameters
from rnnbench.layers.recurrent import Recurrent
from rnnbench.model.init import initialize

SHAPES = {  # name: (input size, hidden size, batch, steps)
    "arith-128": (16, 128, 20, 40),
    "arith-250": (16, 250, 20, 40),
    "ptb": (200, 200, 20, 35),
}
SQUARE = ("mut1", "mut2")  # cells that need input size == hidden size


def train_step(layer: Recurrent, x: torch.Tensor) -> float:
    """Seconds of one forward + backward over ``x``."""
    start = time.perf_counter()
    out, state = layer(x)
    (out.square().mean() + sum(s.square().mean() for s in state)).backward()
    seconds = time.perf_counter() - start
    layer.zero_grad(set_to_none=True)
    return seconds


def step_times(layers: list[Recurrent], x: torch.Tensor, repeats: int) -> list[float]:
    """Median seconds per training step of each layer; the layers take turns, step by step, so that a
    machine's changing load falls on all of them alike."""
    times = [[] for _ in layers]
    for k in range(repeats + 3):  # 3 warm-up rounds
        for layer, own in zip(layers, times):
            seconds = train_step(layer, x)
            if k >= 3:
                own.append(seconds)
    return [statistics.median(own) for own in times]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--cells", nargs="+", default=["lstm", "gru", "mut1"], choices=sorted(BUILTIN_GENOMES)
    )
    parser.add_argument("--shapes", nargs="+", default=list(SHAPES), choices=list(SHAPES))
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(
        f"{'cell':6s} {'shape':10s} {'I':>4s} {'H':>4s} {'built-in ms':>12s} {'genome ms':>10s} {'ratio':>6s}"
    )
    for name in args.cells:
        for shape in args.shapes:
            I, H, B, T = SHAPES[shape]
            I = H if name in SQUARE else I
            torch.manual_seed(0)
            builtin = build_cell(name, I, H)
            initialize(builtin)
            genome = copy_builtin_parameters(name, builtin, GenomeCell(I, H, BUILTIN_GENOMES[name]))
            x = torch.randn(T, B, I)
            if I == 16:  # one-hot inputs, as the arithmetic task feeds them
                x = torch.nn.functional.one_hot(torch.randint(0, I, (T, B)), I).float()
            layers = [Recurrent(builtin, impl="python"), Recurrent(genome, impl="python")]
            base, ours = step_times(layers, x, args.repeats)
            row = f"{name:6s} {shape:10s} {I:4d} {H:4d} {base * 1e3:12.2f} {ours * 1e3:10.2f}"
            print(f"{row} {ours / base:6.2f}", flush=True)


if __name__ == "__main__":
    main()
