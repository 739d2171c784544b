"""Trials per hour of population training (``rnnbench.population``) against one run per process.

    RNNBENCH_DATA=/path/to/data python scripts/bench_population.py            # both searches, K = 1..32
    python scripts/bench_population.py --search arith --sizes 1 4 16 --steps 20

Each row times ``--steps`` training steps (after ``--warmup`` untimed ones) of K members sampled as the
search samples them: ``greff`` is Greff et al.'s JSB search (greff_v, one piece per step, hidden size
log-uniform on [20, 200], lr log-uniform on [1e-6, 1e-2], momentum 1 - log-uniform on [0.01, 1], input
noise uniform on [0, 1]); ``arith`` is Jozefowicz et al.'s arithmetic search (lstm at a 250K parameter
budget, minibatch 20, lr, init scale and clipping from their grids). Evaluation is not timed. The row
``train()`` is the ordinary single run (mean over the first 16 trials); ``--hidden`` gives every
greff trial one hidden size, to see what padding members to the largest costs. Columns: seconds per
step, member-steps per second, trials per hour at ``--trial-steps`` steps per trial, and the speedup
over ``train()``. Steps are the median of the timed ones; on a shared machine the numbers are noisy.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from itertools import cycle, islice
from pathlib import Path

import numpy as np
import torch

from rnnbench.population import Population, check_compatible
from rnnbench.training.trainer import Trainer

SEARCHES = {
    "greff": ["experiment=greff_jsb", "trainer.progress=false"],
    "arith": ["experiment=jozefowicz_arith", "model.param_budget=250000", "trainer.progress=false"],
}


def sample(search: str, rng: np.random.Generator, seed: int) -> list[str]:
    """One trial's values, as the search draws them."""
    if search == "greff":
        hidden = int(round(np.exp(rng.uniform(np.log(20), np.log(200)))))
        return [
            f"seed={seed}",
            f"cell.hidden_size={hidden}",
            f"trainer.lr={np.exp(rng.uniform(np.log(1e-6), np.log(1e-2))):.3g}",
            f"trainer.momentum={1 - np.exp(rng.uniform(np.log(0.01), np.log(1))):.3g}",
            f"model.input_noise_std={rng.uniform(0, 1):.3g}",
        ]
    return [
        f"seed={seed}",
        f"trainer.lr={rng.choice([0.1, 0.2, 0.3, 0.5, 1, 2, 5])}",
        f"model.init_scale={rng.choice([0.3, 0.7, 1, 1.4, 2, 2.8])}",
        f"trainer.clip_norm={rng.choice([1, 2.5, 5, 10, 20])}",
    ]


def compose(*overrides):
    from hydra import compose as hydra_compose
    from hydra import initialize_config_module

    with initialize_config_module(config_module="rnnbench.configs", version_base="1.3"):
        return hydra_compose(config_name="config", overrides=list(overrides))


def timed_steps(step, batches, steps: int, warmup: int) -> list[float]:
    """Times ``steps`` batches after a pass over the same batches (``warmup`` of them at least): a run
    of many epochs meets each sequence length again, so the libraries' per-shape setup (oneDNN's
    primitives) is not a per-step cost and is kept out of the timing."""
    batches = list(islice(batches, steps))
    for batch in islice(cycle(batches), max(warmup, steps)):
        step(batch)
    times = []
    for batch in batches:
        start = time.perf_counter()
        step(batch)
        times.append(time.perf_counter() - start)
    return times


def time_single(cfg, steps, warmup, tmp) -> float:
    trainer = Trainer(cfg, tmp / "single")
    return statistics.median(
        timed_steps(trainer.train_step, cycle(trainer.task.train_batches(0)), steps, warmup)
    )


def time_population(cfgs, steps, warmup, tmp) -> float:
    check_compatible(cfgs)
    population = Population(cfgs, [tmp / f"member-{k}" for k in range(len(cfgs))], [None] * len(cfgs))
    population.stack_members(None)
    population.window_loss = torch.zeros(len(cfgs))
    population.window_count = torch.zeros(len(cfgs))
    everyone = list(range(len(cfgs)))
    streams = zip(*[cycle(m.task.train_batches(0)) for m in population.members])
    return statistics.median(
        timed_steps(lambda batches: population.train_step(list(batches), everyone), streams, steps, warmup)
    )


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--search", choices=sorted(SEARCHES), nargs="+", default=sorted(SEARCHES, reverse=True)
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 2, 4, 8, 16, 32])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--trial-steps", type=int, default=10_000, help="training steps of one trial")
    parser.add_argument("--hidden", type=int, help="greff: every trial at this hidden size (no padding)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    for search in args.search:
        rng = np.random.default_rng(0)
        fixed = [f"cell.hidden_size={args.hidden}"] if args.hidden and search == "greff" else []
        seeds = range(max(args.sizes))
        trials = [compose(*SEARCHES[search], *sample(search, rng, seed), *fixed) for seed in seeds]
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            # the ordinary run's seconds per step, averaged over the first 16 trials (K=16's members)
            single = statistics.mean(time_single(t, args.steps, args.warmup, tmp) for t in trials[:16])
            rows = [("train()", 1, single)]
            for K in args.sizes:
                rows.append(
                    (f"K={K}", K, time_population(trials[:K], args.steps, args.warmup, tmp / f"K{K}"))
                )
        print(
            f"\n{search}: {args.steps} timed steps, {args.threads} thread(s), {args.trial_steps} steps/trial"
        )
        print(f"{'':>8} {'s/step':>9} {'member-steps/s':>15} {'trials/h':>9} {'speedup':>8}")
        for name, K, seconds in rows:
            rate = K / seconds
            print(
                f"{name:>8} {seconds:9.4f} {rate:15.1f} {rate * 3600 / args.trial_steps:9.1f} "
                f"{rate * single:8.2f}"
            )


if __name__ == "__main__":
    main()
