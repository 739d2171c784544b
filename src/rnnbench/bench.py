"""Speed: every cell's sequence layer against torch.nn.LSTM, and tokens per second of training steps.

    python -m rnnbench.bench                                  # every cell, every study shape, CPU
    python -m rnnbench.bench --cells lstm gru --shapes ptb_small --repeats 20 --threads 1
    python -m rnnbench.bench --impls auto compiled --forward-only
    python -m rnnbench.bench --quick                          # tiny shapes, a smoke run

Layers: at each shape (T x B x I -> H), each cell's ``Recurrent`` layer on its ``cell.impl`` path and
torch.nn.LSTM of the same sizes, measured in the same run: ``--warmup`` untimed passes, then
``--repeats`` timed ones, forward and backward timed apart (CUDA events on a GPU); min and median.
``ratio`` = the cell's min forward+backward time / nn.LSTM's.

Training (``--train``): a full training step of the trainer (forward, loss, backward, clipping,
optimiser) on real batches of a task, with the batches made beforehand and their preparation timed
apart, each batch stepped once untimed and then timed (per-shape library setup is once per run); next
to it a plain PyTorch loop on the same batches (Embedding or nothing -> nn.LSTM -> Linear, SGD,
clipping) of the same sizes. Reports tokens per second.

Prints tables and writes ``cells-<time>.csv`` and ``training-<time>.csv`` under ``--out``
(``results/bench``).
"""

from __future__ import annotations

import argparse
import csv
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

import torch
from tqdm import tqdm

from rnnbench.cells import CELLS, GATED_FEEDBACK, build_cell
from rnnbench.errors import ConfigError
from rnnbench.layers.recurrent import IMPLS, Recurrent
from rnnbench.model.init import initialize
from rnnbench.training.loss import training_loss


@dataclass(frozen=True)
class Shape:
    steps: int  # T
    batch: int  # B
    inputs: int  # I
    hidden: int  # H


# The studies' shapes: PTB (Zaremba small and medium), music (Greff: 88 keys, batched and online),
# arithmetic-like (Jozefowicz).
SHAPES = {
    "ptb_small": Shape(35, 20, 200, 200),
    "ptb_medium": Shape(35, 20, 650, 650),
    "music": Shape(100, 32, 88, 100),
    "music_online": Shape(100, 1, 88, 100),
    "arith": Shape(50, 128, 256, 256),
}
QUICK_SHAPES = {"tiny": Shape(5, 4, 8, 8)}
QUICK_CELLS = ("lstm", "gru", "tanh")
# Training benchmarks: config overrides of a run; "quick" is a tiny one that needs no data files.
TRAININGS = {
    "zaremba_small": ["experiment=zaremba_small"],
    "greff_jsb": ["experiment=greff_jsb", "task.batch_size=32"],
    "arithmetic": ["task=arithmetic"],
}
QUICK_TRAINING = {"quick": ["task=arithmetic", "debug=fast"]}
DTYPES = {"float32": torch.float32, "float64": torch.float64, "bfloat16": torch.bfloat16}


class Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, not argparse's usage block
        self.exit(2, f"rnnbench.bench: error: {message}\n")


def parse_args(argv=None) -> argparse.Namespace:
    parser = Parser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", nargs="+", default=sorted(CELLS), metavar="CELL")
    parser.add_argument("--shapes", nargs="+", default=list(SHAPES), metavar="SHAPE")
    parser.add_argument(
        "--impls", nargs="+", default=["auto"], metavar="IMPL", help="cell.impl paths to time"
    )
    parser.add_argument(
        "--train",
        nargs="*",
        default=["zaremba_small"],
        metavar="RUN",
        help=f"training-step benchmarks: {', '.join(TRAININGS)} (none: skip)",
    )
    parser.add_argument("--train-steps", type=int, default=30, help="timed training steps per run")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--forward-only", action="store_true", help="time the forward pass alone")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--quick", action="store_true", help="tiny shapes, three cells, two repeats")
    parser.add_argument("--out", default="results/bench", help="folder for the CSV files")
    args = parser.parse_args(argv)
    if args.quick:
        args.cells, args.shapes, args.repeats, args.warmup = list(QUICK_CELLS), ["tiny"], 2, 1
        args.train, args.train_steps = ["quick"], 3
    shapes = QUICK_SHAPES | SHAPES
    for key, values, choices in [
        ("--cells", args.cells, sorted(CELLS)),
        ("--shapes", args.shapes, shapes),
        ("--impls", args.impls, IMPLS),
        ("--train", args.train, [*TRAININGS, *QUICK_TRAINING]),
    ]:
        for value in values:
            if value not in choices:
                parser.error(f"{key} {value!r} is not valid; choose from: {', '.join(choices)}")
    if args.dtype not in DTYPES:
        parser.error(f"--dtype {args.dtype!r} is not valid; choose from: {', '.join(DTYPES)}")
    for key in ("repeats", "threads", "train_steps"):
        if getattr(args, key) < 1:
            parser.error(f"--{key.replace('_', '-')} {getattr(args, key)} is not valid; it must be >= 1")
    try:
        args.device = torch.device(args.device)
    except RuntimeError:
        parser.error(f"--device {args.device!r} is not valid; choose cpu, cuda or cuda:N")
    if args.device.type == "cuda" and not torch.cuda.is_available():
        parser.error(f"--device {args.device} is not available here (no CUDA); use --device cpu")
    return args


class Timer:
    """Elapsed milliseconds of the work queued between ``start`` and ``stop``: CUDA events on a GPU
    (no host sync inside the measured region), the host clock on a CPU."""

    def __init__(self, device: torch.device):
        self.cuda = device.type == "cuda"

    def mark(self):
        if self.cuda:
            event = torch.cuda.Event(enable_timing=True)
            event.record()
            return event
        return time.perf_counter()

    def elapsed(self, start, stop) -> float:
        if self.cuda:
            stop.synchronize()
            return start.elapsed_time(stop)
        return (stop - start) * 1000


def time_layer(layer, x, args, timer: Timer) -> dict:
    """Min and median ms of the forward and backward passes over ``args.repeats`` timed passes."""
    forward, backward = [], []
    for k in range(args.warmup + args.repeats):
        layer.zero_grad(set_to_none=True)
        x.grad = None
        start = timer.mark()
        out = layer(x)[0]
        middle = timer.mark()
        if not args.forward_only:
            out.sum().backward()
        stop = timer.mark()
        if k >= args.warmup:
            forward.append(timer.elapsed(start, middle))
            backward.append(timer.elapsed(middle, stop))
    total = [f + b for f, b in zip(forward, backward)]
    row = {}
    for name, times in (("fwd", forward), ("bwd", backward), ("total", total)):
        row[f"{name}_min_ms"] = min(times)
        row[f"{name}_median_ms"] = statistics.median(times)
    return row


def build_layer(name: str, impl: str, shape: Shape):
    """The cell's layer; cells that add the raw input (MUT1, MUT2) read H-wide inputs, as the model's
    input projection gives them."""
    inputs = shape.hidden if name in ("mut1", "mut2") else shape.inputs
    options = {"num_layers": 1} if name in GATED_FEEDBACK else {}
    layer = Recurrent(build_cell(name, inputs, shape.hidden, **options), impl=impl)
    initialize(layer, "uniform")
    return layer, inputs


def bench_cells(args) -> list[dict]:
    timer, dtype, shapes = Timer(args.device), DTYPES[args.dtype], QUICK_SHAPES | SHAPES
    jobs = [(s, None, "nn.LSTM") for s in args.shapes]
    jobs += [(s, impl, name) for s in args.shapes for impl in args.impls for name in args.cells]
    jobs.sort(key=lambda job: args.shapes.index(job[0]))  # nn.LSTM first within each shape
    rows, reference = [], {}
    for shape_name, impl, name in tqdm(jobs, desc="layers", dynamic_ncols=True):
        shape = shapes[shape_name]
        torch.manual_seed(0)
        if impl is None:
            layer, inputs, path = torch.nn.LSTM(shape.inputs, shape.hidden), shape.inputs, "library"
        else:
            layer, inputs = build_layer(name, impl, shape)
            path = layer.path
        layer = layer.to(args.device, dtype)
        x = torch.randn(shape.steps, shape.batch, inputs, device=args.device, dtype=dtype, requires_grad=True)
        sizes = {"shape": shape_name, "T": shape.steps, "B": shape.batch, "I": inputs, "H": shape.hidden}
        row = sizes | {"cell": name, "impl": impl or "-", "path": path} | time_layer(layer, x, args, timer)
        if impl is None:
            reference[shape_name] = row["total_min_ms"]
        row["ratio"] = row["total_min_ms"] / reference[shape_name]
        rows.append(row)
    return rows


def bench_training(args) -> list[dict]:
    from hydra import compose, initialize_config_module

    from rnnbench.training.trainer import Trainer

    rows = []
    runs = QUICK_TRAINING if args.quick else TRAININGS
    for run_name in tqdm(args.train, desc="training steps", dynamic_ncols=True):
        overrides = [
            *runs[run_name],
            f"device={args.device}",
            f"trainer.threads={args.threads}",
            "trainer.progress=false",
        ]
        with initialize_config_module(config_module="rnnbench.configs", version_base="1.3"):
            cfg = compose(config_name="config", overrides=overrides)
        with tempfile.TemporaryDirectory() as run_dir:
            try:
                trainer = Trainer(cfg, run_dir)
            except (ConfigError, FileNotFoundError, OSError) as error:
                tqdm.write(f"training {run_name}: skipped ({str(error).splitlines()[0]})")
                continue
            start = time.perf_counter()  # data preparation, apart from the steps
            batches = list(islice(trainer.task.train_batches(0), args.train_steps))
            prepare_ms = (time.perf_counter() - start) * 1000 / len(batches)
            common = {"run": run_name, "cell": cfg.cell.name, "hidden": trainer.model.hidden_size}
            common |= {
                "layers": cfg.cell.num_layers,
                "batches": len(batches),
                "data_ms_per_batch": prepare_ms,
            }
            ours = time_steps(trainer.train_step, batches, args)
            rows.append(common | {"loop": f"rnnbench ({cfg.cell.name}, impl={cfg.cell.impl})"} | ours)
            plain = plain_step(cfg, trainer.task, trainer.model.hidden_size, args.device)
            if plain is not None:
                rows.append(common | {"loop": "plain PyTorch (nn.LSTM)"} | time_steps(plain, batches, args))
    return rows


def time_steps(step, batches, args) -> dict:
    """Tokens per second of ``step(batch)`` over the batches, timed on a second pass: a run of many
    epochs meets every sequence length again, so the libraries' per-shape setup (oneDNN builds a kernel
    for each new length, a fraction of a millisecond) is a cost per run, not per step."""
    for batch in batches:
        step(batch)
    times, tokens = [], 0
    for batch in batches:
        start = time.perf_counter()
        step(batch)
        if args.device.type == "cuda":
            torch.cuda.synchronize()  # the step is finished work only when the device is done
        times.append((time.perf_counter() - start) * 1000)
        tokens += batch.num_tokens
    return {
        "step_min_ms": min(times),
        "step_median_ms": statistics.median(times),
        "tokens_per_s": tokens / (sum(times) / 1000),
    }


def plain_step(cfg, task, hidden: int, device):
    """A plain PyTorch training step of the same sizes (pytorch/examples word_language_model), or None
    where the run is not a plain LSTM stack."""
    model_cfg = cfg.model
    if cfg.cell.name not in ("lstm", "lstm_b", "np") or model_cfg.get("input_projection"):
        return None
    width = model_cfg.embed_size or hidden
    encoder = (
        torch.nn.Embedding(task.input_size, width) if task.input_kind == "tokens" else torch.nn.Identity()
    )
    width = width if task.input_kind == "tokens" else task.input_size
    lstm = torch.nn.LSTM(width, hidden, cfg.cell.num_layers)
    head = torch.nn.Linear(hidden, task.output_size)
    model = torch.nn.ModuleList([encoder, lstm, head]).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=cfg.trainer.lr)
    carried = [None]

    def step(batch):
        batch = batch.to(device)
        out, state = lstm(encoder(batch.inputs), carried[0])
        loss_sum, count = task.loss(head(out), batch)
        optimizer.zero_grad(set_to_none=True)
        loss = training_loss(loss_sum, count, batch.targets.shape[1], cfg.trainer.loss_over_time)
        loss.backward()
        if cfg.trainer.clip_norm is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.trainer.clip_norm)
        optimizer.step()
        carried[0] = tuple(s.detach() for s in state) if task.carries_state else None

    return step


def print_table(rows: list[dict], columns: list[str]) -> None:
    def text(value):
        return f"{value:.2f}" if isinstance(value, float) else str(value)

    widths = [max(len(c), *(len(text(r[c])) for r in rows)) for c in columns]
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths)))
    for row in rows:
        print("  ".join(text(row[c]).ljust(w) for c, w in zip(columns, widths)))


def write_csv(rows: list[dict], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    print(f"wrote {path}")


def main(argv=None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)  # explicit: shared cores make torch's default oversubscribe
    stamp = time.strftime("%Y%m%d-%H%M%S")
    mode = "forward" if args.forward_only else "forward+backward"
    setup = {"device": str(args.device), "dtype": args.dtype, "threads": args.threads, "mode": mode}
    setup["torch"] = torch.__version__
    print(" ".join(f"{k}={v}" for k, v in setup.items()))
    rows = [row | setup for row in bench_cells(args)]
    columns = [
        "shape",
        "cell",
        "impl",
        "path",
        "fwd_min_ms",
        "bwd_min_ms",
        "total_min_ms",
        "total_median_ms",
        "ratio",
    ]
    print_table(rows, columns)
    write_csv(rows, Path(args.out) / f"cells-{stamp}.csv")
    if args.train:
        training = [row | setup for row in bench_training(args)]
        if training:
            print_table(
                training,
                [
                    "run",
                    "loop",
                    "hidden",
                    "layers",
                    "data_ms_per_batch",
                    "step_min_ms",
                    "step_median_ms",
                    "tokens_per_s",
                ],
            )
            write_csv(training, Path(args.out) / f"training-{stamp}.csv")


if __name__ == "__main__":
    try:
        main()
    except ConfigError as error:
        print(f"rnnbench.bench: error: {error}", file=sys.stderr)
        sys.exit(2)
