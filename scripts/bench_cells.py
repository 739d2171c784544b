"""Time every cell's sequence layer against torch.nn.LSTM, measured in the same run.

    python scripts/bench_cells.py                       # CPU, T=50 B=32 H=128, forward + backward
    python scripts/bench_cells.py --device cuda --hidden 512 --cells lstm gru mut1

Prints one row per cell: median milliseconds per forward+backward pass over ``--repeats`` timed
passes (after ``--warmup`` untimed ones), the spread (25th-75th percentile), and the ratio to
torch.nn.LSTM of the same sizes. The brief's target is a ratio within 1.3 on CPU.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from rnnbench.cells import CELLS, build_cell
from rnnbench.init import initialize
from rnnbench.sequence import Recurrent


def time_passes(layer, x, repeats: int, warmup: int, device) -> list[float]:
    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()  # CUDA runs asynchronously: time finished work only

    times = []
    for k in range(warmup + repeats):
        sync()
        start = time.perf_counter()
        out = layer(x)[0]
        out.sum().backward()
        sync()
        if k >= warmup:
            times.append((time.perf_counter() - start) * 1000)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", nargs="*", default=sorted(CELLS))
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.manual_seed(0)
    H = args.hidden
    x = torch.randn(args.steps, args.batch, H, device=device, requires_grad=True)

    reference = torch.nn.LSTM(H, H).to(device)
    ref = statistics.median(time_passes(reference, x, args.repeats, args.warmup, device))
    print(f"T={args.steps} B={args.batch} H={H} device={device} threads={torch.get_num_threads()}")
    print(f"{'cell':<10} {'ms/pass':>9} {'p25-p75':>15} {'vs nn.LSTM':>11}")
    print(f"{'nn.LSTM':<10} {ref:>9.2f} {'':>15} {1.0:>11.2f}")
    for name in args.cells:
        options = {"num_layers": 1} if name.startswith("gf_") else {}
        layer = Recurrent(build_cell(name, H, H, **options)).to(device)
        initialize(layer, "uniform")
        times = time_passes(layer, x, args.repeats, args.warmup, device)
        q = statistics.quantiles(times, n=4)
        median = statistics.median(times)
        print(f"{name:<10} {median:>9.2f} {f'{q[0]:.2f}-{q[2]:.2f}':>15} {median / ref:>11.2f}")


if __name__ == "__main__":
    main()
